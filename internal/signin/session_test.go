package signin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

// setSession gives browser b a session cookie with value v.
func (e *env) setSession(b *http.Client, v string) {
	u, _ := url.Parse(e.srv.URL)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: v, Path: "/"}})
}

// TestForgedSessionCookieIsRefused: a cookie this configuration did not sign — made up, altered,
// or signed with another client secret — lets nobody in.
func TestForgedSessionCookieIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	real := browser(t)
	e.signIn(t, real, "alice")
	good := e.cookie(real, sessionCookie)
	parts := strings.Split(good, ".")
	other := newEnv(t, envOptions{}) // another App, so another client secret
	elsewhere := browser(t)
	other.signIn(t, elsewhere, "alice")
	for name, v := range map[string]string{
		"made up":                    "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"another session's id":       "v1." + b64.EncodeToString(newSessionID()) + "." + parts[2],
		"signature altered":          parts[0] + "." + parts[1] + "." + strings.Replace(parts[2], parts[2][:1], map[bool]string{true: "B", false: "A"}[parts[2][:1] == "A"], 1),
		"signed with another secret": other.cookie(elsewhere, sessionCookie),
		"no signature":               parts[0] + "." + parts[1],
	} {
		t.Run(name, func(t *testing.T) {
			b := browser(t)
			e.setSession(b, v)
			if e.signedIn(t, b) {
				t.Error("let in")
			}
			if resp, _ := do(t, noFollow(b), "GET", e.srv.URL+"/", nil); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("the page answered %d, want the way to sign in", resp.StatusCode)
			}
		})
	}
	if !e.signedIn(t, real) {
		t.Error("the real session stopped working")
	}
}

// TestExpiredSessionCookieIsRefused: a correctly signed cookie of a session past its end lets
// nobody in, and the session is deleted.
func TestExpiredSessionCookieIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.signIn(t, b, "alice")
	v := e.cookie(b, sessionCookie)
	e.clock.Add(time.Hour + time.Second) // session_ttl is 1h
	stale := browser(t)
	e.setSession(stale, v) // the cookie outlives its Max-Age in a stolen copy
	if e.signedIn(t, stale) {
		t.Fatal("an expired session let someone in")
	}
	id, _ := e.gate.keys.sessionID(v)
	if _, err := e.st.Session(context.Background(), idHash(id)); err == nil {
		t.Error("the expired session is still stored")
	}
}

// TestSignOutWithoutCSRFTokenKeepsSession: another site's form posting to /signout (no token,
// a wrong one, another session's) signs nobody out.
func TestSignOutWithoutCSRFTokenKeepsSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	victim := browser(t)
	e.signIn(t, victim, "alice")
	attacker := browser(t)
	e.signIn(t, attacker, "mallory")
	for name, form := range map[string]url.Values{
		"no token":              {},
		"wrong token":           {"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"another session's":     {"csrf": {e.csrf(t, attacker)}},
		"token in the query":    nil,
		"not base64 at all!!!!": {"csrf": {"%%%"}},
	} {
		t.Run(name, func(t *testing.T) {
			target := e.srv.URL + "/signout"
			if form == nil {
				target += "?csrf=" + url.QueryEscape(e.csrf(t, victim))
				form = url.Values{}
			}
			resp, body := do(t, noFollow(victim), "POST", target, form, "Origin", "https://evil.example")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "still signed in") {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			if !e.signedIn(t, victim) {
				t.Fatal("the victim was signed out")
			}
		})
	}
}

// TestStolenCookieDiesAtSignOut: signing out ends the session on the server (a copied cookie no
// longer works) and revokes the GitHub token behind it.
func TestStolenCookieDiesAtSignOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.signIn(t, b, "alice")
	copied := e.cookie(b, sessionCookie)
	resp, body := do(t, noFollow(b), "POST", e.srv.URL+"/signout", url.Values{"csrf": {e.csrf(t, b)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?signed_out=1" {
		t.Fatalf("sign-out: %d %s", resp.StatusCode, body)
	}
	if e.cookie(b, sessionCookie) != "" || e.signedIn(t, b) {
		t.Error("the browser is still signed in")
	}
	thief := browser(t)
	e.setSession(thief, copied)
	if e.signedIn(t, thief) {
		t.Error("the copied cookie still works after sign-out")
	}
	for tok, live := range e.gh.UserTokens("alice") {
		if live {
			t.Errorf("GitHub token %s… was not revoked", tok[:8])
		}
	}
	if _, body := do(t, b, "GET", e.srv.URL+"/signin?signed_out=1", nil); !strings.Contains(body, `id="signed-out"`) {
		t.Error("the page does not say you are signed out")
	}
}

// TestSessionsWorkAcrossReplicas: two replicas on one PostgreSQL store: a sign-in on one works
// on the other, and a sign-out on the other ends it on the first.
func TestSessionsWorkAcrossReplicas(t *testing.T) {
	dsn := pgtest.URL(t)
	a := newEnv(t, envOptions{dsn: dsn})
	b := newEnv(t, envOptions{dsn: dsn, gh: a.gh, clock: a.clock})
	br := browser(t)
	a.signIn(t, br, "alice")
	onB := browser(t)
	b.setSession(onB, a.cookie(br, sessionCookie))
	if _, body := do(t, onB, "GET", b.srv.URL+"/", nil); !strings.Contains(body, "login=alice token= read=acme/app") {
		t.Fatalf("replica b: %s", body)
	}
	if resp, _ := do(t, noFollow(onB), "POST", b.srv.URL+"/signout", url.Values{"csrf": {b.csrf(t, onB)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on b: %d", resp.StatusCode)
	}
	if a.signedIn(t, br) {
		t.Error("replica a still lets in a session signed out on b")
	}
}

// TestGitHubTokenNeverLeavesTheServerInTheClear: the person's token is in no cookie, no log
// line, and not in the store's row.
func TestGitHubTokenNeverLeavesTheServerInTheClear(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.signIn(t, b, "alice")
	var token string
	for tok := range e.gh.UserTokens("alice") {
		token = tok
	}
	id, ok := e.gate.keys.sessionID(e.cookie(b, sessionCookie))
	if !ok || token == "" {
		t.Fatal("no session or no token")
	}
	row, err := e.st.Session(context.Background(), idHash(id))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.srv.URL + "/signin/x")
	for _, c := range b.Jar.Cookies(u) {
		if strings.Contains(c.Value, token) || strings.Contains(c.Value, token[4:]) {
			t.Errorf("cookie %s carries the token", c.Name)
		}
	}
	if strings.Contains(string(row.Token), token) || strings.Contains(string(row.Token), token[4:]) || row.IDHash == b64.EncodeToString(id) {
		t.Error("the store holds the token, or the session id, in the clear")
	}
	if strings.Contains(e.logs.String(), token[4:]) {
		t.Error("the log holds the token")
	}
	// The sealed token is bound to its row: moved to another session's row it does not open.
	if _, err := open(e.gate.keys.seal, row.Token, idHash(newSessionID())); err == nil {
		t.Error("a sealed token opens under another session")
	}
}

// TestSessionCookieAttributes: HttpOnly and SameSite=Lax always; Secure when the public URL is
// https, or the request came over TLS without one.
func TestSessionCookieAttributes(t *testing.T) {
	for _, tt := range []struct {
		name, public, proto string
		secure              bool
	}{
		{"https public URL", "https://stagecoach.acme.dev", "", true},
		{"loopback http public URL", "http://127.0.0.1:1", "", false},
		{"no public URL, TLS at the proxy", "", "https", true},
		{"no public URL, plain http", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{publicURL: func(string) string { return tt.public }})
			hdr := []string{}
			if tt.proto != "" {
				hdr = []string{"X-Forwarded-Proto", tt.proto}
			}
			resp, _ := do(t, noFollow(browser(t)), "GET", e.srv.URL+"/signin/github", nil, hdr...)
			cs := resp.Cookies()
			if len(cs) != 1 || cs[0].Name != flowCookie || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteLaxMode ||
				cs[0].Secure != tt.secure || cs[0].Path != flowPath || cs[0].MaxAge != int(flowLifetime.Seconds()) {
				t.Errorf("flow cookie %+v", cs)
			}
			w := newRecorder()
			r := httpRequest("GET", "/", hdr...)
			e.gate.setCookie(w, r, sessionCookie, "x", "/", time.Hour)
			c := w.Result().Cookies()[0]
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tt.secure || c.Path != "/" || c.Domain != "" {
				t.Errorf("session cookie %+v", c)
			}
		})
	}
}
