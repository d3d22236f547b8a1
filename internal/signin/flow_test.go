package signin

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// startFlow starts a sign-in in browser b for login and returns the authorization GitHub gave:
// the code and state it sends back to the callback, which the browser has not visited yet.
func (e *env) startFlow(t *testing.T, b *http.Client, login string) (authURL *url.URL, code, state string) {
	t.Helper()
	e.gh.SetBrowserUser(login)
	stop := noFollow(b)
	resp, _ := do(t, stop, "GET", e.srv.URL+"/signin/github?return_to=/", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	authURL, _ = url.Parse(resp.Header.Get("Location"))
	resp, _ = do(t, stop, "GET", authURL.String(), nil)
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || back.Query().Get("code") == "" {
		t.Fatalf("GitHub's answer: %d %s", resp.StatusCode, back)
	}
	return authURL, back.Query().Get("code"), back.Query().Get("state")
}

func (e *env) callback(t *testing.T, b *http.Client, code, state string) (*http.Response, string) {
	t.Helper()
	return do(t, noFollow(b), "GET", e.srv.URL+"/signin/callback?"+url.Values{"code": {code}, "state": {state}}.Encode(), nil)
}

// signedIn reports whether browser b gets past the gate.
func (e *env) signedIn(t *testing.T, b *http.Client) bool {
	t.Helper()
	resp, body := do(t, noFollow(b), "GET", e.srv.URL+"/api/v1/whoami", nil)
	return resp.StatusCode == 200 && strings.Contains(body, "login=")
}

func TestSignInWithGitHub(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	if resp, body := do(t, noFollow(b), "GET", e.srv.URL+"/?x=1", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?return_to=%2F%3Fx%3D1" {
		t.Fatalf("anonymous page: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if _, body := do(t, b, "GET", e.srv.URL+"/", nil); !strings.Contains(body, `id="signin-github"`) {
		t.Fatalf("anonymous → sign-in page, got %s", body)
	}
	body := e.signIn(t, b, "alice")
	if !strings.Contains(body, "read=acme/app audit=acme/app") {
		t.Errorf("alice, an admin of acme/app: %s", body)
	}
	c := browser(t)
	if body := e.signIn(t, c, "mallory"); !strings.Contains(body, "read=acme/other audit= ") {
		t.Errorf("mallory reads acme/other only (acme/unconfigured is no app): %s", body)
	}
	if body := e.signIn(t, browser(t), "lena"); !strings.Contains(body, "read=acme/app audit= ") {
		t.Errorf("lena writes acme/app, but is no admin: %s", body)
	}
	// The signed-in sign-in page goes on; the webhook stays public.
	if resp, _ := do(t, noFollow(b), "GET", e.srv.URL+"/signin?return_to=/x", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/x" {
		t.Errorf("the sign-in page when signed in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := do(t, http.DefaultClient, "POST", e.srv.URL+"/webhook", url.Values{}); resp.StatusCode != http.StatusAccepted {
		t.Errorf("webhook behind the gate: %d", resp.StatusCode)
	}
}

// TestAuthorizationCarriesS256ChallengeAndExchangeItsVerifier: the authorization asks with a
// fresh state and an S256 challenge, the exchange sends the verifier that answers it, and the
// verifier cannot be read from the browser's cookie.
func TestAuthorizationCarriesS256ChallengeAndExchangeItsVerifier(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	authURL, code, state := e.startFlow(t, b, "alice")
	q := authURL.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("state")) < 40 || q.Get("state") != state ||
		q.Get("client_id") != e.gh.ClientID() || q.Get("redirect_uri") != e.srv.URL+"/signin/callback" {
		t.Fatalf("authorization request %v", q)
	}
	flow := e.cookie(b, flowCookie)
	if resp, _ := e.callback(t, b, code, state); resp.StatusCode != http.StatusSeeOther || !e.signedIn(t, b) {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	var verifier string
	for _, r := range e.gh.Requests() {
		if r.Operation == "oauth/access-token" {
			form, _ := url.ParseQuery(string(r.Body))
			verifier = form.Get("code_verifier")
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	if verifier == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
		t.Errorf("the exchange's verifier %q does not answer the challenge %q", verifier, q.Get("code_challenge"))
	}
	if flow == "" || strings.Contains(flow, verifier) || strings.Contains(flow, state) {
		t.Error("the flow cookie is missing, or shows its state or verifier")
	}
	if e.cookie(b, flowCookie) != "" {
		t.Error("the flow cookie outlived its callback")
	}
}

// TestCallbackWithForgedStateSignsNobodyIn: a callback whose state is not the one this browser
// started with (login CSRF: an attacker's code pushed into a victim's browser) is refused before
// any code is exchanged.
func TestCallbackWithForgedStateSignsNobodyIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	victim := browser(t)
	e.startFlow(t, victim, "alice") // the victim's sign-in in progress
	attacker := browser(t)
	_, code, _ := e.startFlow(t, attacker, "mallory") // the attacker's own code
	resp, body := e.callback(t, victim, code, "forged-state")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "state mismatch") {
		t.Errorf("forged state: %d %s", resp.StatusCode, body)
	}
	if e.signedIn(t, victim) || len(e.gh.UserTokens("mallory")) != 0 {
		t.Error("a forged state signed someone in, or its code was exchanged")
	}
}

// TestCallbackWithoutThisBrowsersFlowSignsNobodyIn: without the flow cookie (another browser,
// or an expired or tampered one) there is no state to match and no verifier to send: refused.
func TestCallbackWithoutThisBrowsersFlowSignsNobodyIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	attacker := browser(t)
	_, code, state := e.startFlow(t, attacker, "mallory")
	for name, prepare := range map[string]func(b *http.Client){
		"no flow cookie": func(*http.Client) {},
		"tampered flow cookie": func(b *http.Client) {
			u, _ := url.Parse(e.srv.URL + flowPath)
			v := []byte(e.cookie(attacker, flowCookie))
			v[len(v)/2] ^= 1
			b.Jar.SetCookies(u, []*http.Cookie{{Name: flowCookie, Value: string(v), Path: flowPath}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			victim := browser(t)
			prepare(victim)
			resp, body := e.callback(t, victim, code, state)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "did not start in this browser") || e.signedIn(t, victim) {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		})
	}
	// A flow older than ten minutes is over too.
	late := browser(t)
	_, code, state = e.startFlow(t, late, "alice")
	e.clock.Add(flowLifetime + time.Second)
	if resp, _ := e.callback(t, late, code, state); resp.StatusCode != http.StatusBadRequest || e.signedIn(t, late) {
		t.Errorf("an expired flow: %d", resp.StatusCode)
	}
	if len(e.gh.UserTokens("mallory"))+len(e.gh.UserTokens("alice")) != 0 {
		t.Error("a code was exchanged")
	}
}

// TestStolenCodeWithAnotherBrowsersVerifierSignsNobodyIn: the victim's code leaks (a log, a
// referrer); the attacker starts their own sign-in and feeds the victim's code to the callback
// with their own, matching state. Only PKCE stops this: GitHub refuses the attacker's verifier.
func TestStolenCodeWithAnotherBrowsersVerifierSignsNobodyIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	victim := browser(t)
	_, stolen, _ := e.startFlow(t, victim, "alice")
	attacker := browser(t)
	_, _, attackerState := e.startFlow(t, attacker, "mallory")
	resp, body := e.callback(t, attacker, stolen, attackerState)
	if resp.StatusCode != http.StatusBadGateway || e.signedIn(t, attacker) {
		t.Errorf("a stolen code with another browser's verifier: %d %s", resp.StatusCode, body)
	}
	if len(e.gh.UserTokens("alice")) != 0 {
		t.Error("GitHub issued a token for the stolen code")
	}
	if !strings.Contains(e.logs.String(), "reason=bad_verification_code") {
		t.Errorf("the refusal is not logged with GitHub's reason:\n%s", e.logs)
	}
}

// TestDeniedAuthorizationSignsNobodyIn: pressing Cancel on GitHub comes back as access_denied.
func TestDeniedAuthorizationSignsNobodyIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.startFlow(t, b, "alice")
	_, _, state := e.startFlow(t, b, "alice")
	resp, body := do(t, noFollow(b), "GET", e.srv.URL+"/signin/callback?error=access_denied&state="+url.QueryEscape(state), nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not authorize") || e.signedIn(t, b) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

// TestReturnToStaysOnThisSite: where a sign-in goes afterwards is a path here, never another
// site (an open redirect behind a Stagecoach link).
func TestReturnToStaysOnThisSite(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/api/v1/deployments?app=x": "/api/v1/deployments?app=x", "": "/",
		"//evil.example/x": "/", "https://evil.example/": "/", "/\\evil.example": "/", "evil.example": "/",
		"/signin/github": "/", "/signout": "/", "/%0d%0aSet-Cookie:x": "/%0d%0aSet-Cookie:x", "/a\nb": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.gh.SetBrowserUser("alice")
	resp, _ := do(t, noFollow(b), "GET", e.srv.URL+"/signin/github?return_to=//evil.example/", nil)
	auth, _ := url.Parse(resp.Header.Get("Location"))
	resp, _ = do(t, noFollow(b), "GET", auth.String(), nil)
	resp, _ = do(t, noFollow(b), "GET", resp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("after signing in: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCodeExchangesWithGitHubAreBounded: anyone can replay their own flow cookie with made-up
// codes for ten minutes, each a call to GitHub; past maxExchanges in flight the callback answers
// 503 without calling GitHub.
func TestCodeExchangesWithGitHubAreBounded(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	_, code, state := e.startFlow(t, b, "mallory")
	for range maxExchanges {
		e.gate.exchanges <- struct{}{} // exchanges stuck on a slow GitHub
	}
	resp, body := e.callback(t, b, code, state)
	if resp.StatusCode != http.StatusServiceUnavailable || e.signedIn(t, b) {
		t.Errorf("callback past the bound: %d %s", resp.StatusCode, body)
	}
	if n := e.gh.Count("oauth/access-token"); n != 0 {
		t.Errorf("%d exchanges reached GitHub", n)
	}
}
