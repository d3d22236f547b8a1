package signin

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestHashToken(t *testing.T) {
	// sha256("test"), as `printf test | sha256sum` prints it.
	if got := HashToken("test"); got != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" {
		t.Errorf("HashToken = %s", got)
	}
	a, ha, err := NewToken()
	b, _, _ := NewToken()
	if err != nil || !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+43 || a == b || ha != HashToken(a) {
		t.Errorf("NewToken = %q %q, %v", a, ha, err)
	}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestAPITokenReadsOnlyItsRepositories: a configured token reads its repositories, and the
// audit only when it says so.
func TestAPITokenReadsOnlyItsRepositories(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, body := do(t, http.DefaultClient, "GET", e.srv.URL+"/api/v1/whoami", nil, bearer(boardToken)...)
	if body != "login= token=board read=acme/app audit= csrf=" {
		t.Errorf("board: %s", body)
	}
	_, body = do(t, http.DefaultClient, "GET", e.srv.URL+"/api/v1/whoami", nil, bearer("sct_auditor")...)
	if body != "login= token=auditor read=acme/app audit=acme/app csrf=" {
		t.Errorf("auditor: %s", body)
	}
}

// TestAPITokenWithWrongSecretIsRefused: a token that is not configured, or one close to a
// configured one, gets 401 and nothing else.
func TestAPITokenWithWrongSecretIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tok := range []string{"sct_guess", boardToken + "x", boardToken[:len(boardToken)-1], strings.ToUpper(boardToken), "", " "} {
		resp, body := do(t, http.DefaultClient, "GET", e.srv.URL+"/api/v1/whoami", nil, bearer(tok)...)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "acme/") {
			t.Errorf("token %q: %d %s", tok, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, http.DefaultClient, "GET", e.srv.URL+"/api/v1/whoami", nil, "Authorization", "Basic "+boardToken); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "login=") {
		t.Errorf("another scheme: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(e.logs.String(), "sct_guess") {
		t.Error("a refused token is in the log")
	}
}

// TestAPITokenHashFromConfigIsNotAToken: the configuration holds only hashes; someone who reads
// it cannot use a hash as the token.
func TestAPITokenHashFromConfigIsNotAToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	if resp, _ := do(t, http.DefaultClient, "GET", e.srv.URL+"/api/v1/whoami", nil, bearer(boardHash)...); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the configured hash as a token: %d", resp.StatusCode)
	}
}

// TestAPITokenIsReadOnlyAndForTheAPIOnly: a token cannot post, and does not open the dashboard
// or sign-out.
func TestAPITokenIsReadOnlyAndForTheAPIOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	if resp, _ := do(t, http.DefaultClient, "POST", e.srv.URL+"/api/v1/whoami", url.Values{}, bearer(boardToken)...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a token: %d", resp.StatusCode)
	}
	if resp, body := do(t, noFollow(browser(t)), "GET", e.srv.URL+"/", nil, bearer(boardToken)...); resp.StatusCode != http.StatusSeeOther || strings.Contains(body, "acme/") {
		t.Errorf("the dashboard with a token: %d %s (want the way to sign in)", resp.StatusCode, body)
	}
}

// TestAnonymousCallerGetsNothing: without a session or token, the API answers 401 and the
// dashboard sends to the sign-in page; only the public paths answer.
func TestAnonymousCallerGetsNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := noFollow(browser(t))
	if resp, body := do(t, c, "GET", e.srv.URL+"/api/v1/whoami", nil); resp.StatusCode != http.StatusUnauthorized ||
		resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(body, "login=") {
		t.Errorf("API: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/", "/anything", "/webhook/../api/v1/whoami"} {
		if resp, _ := do(t, c, "GET", e.srv.URL+path, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin?") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := do(t, c, "POST", e.srv.URL+"/api/v1/whoami", url.Values{}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}
