package signin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	listInstallations = "apps/list-installations-for-authenticated-user"
	listRepos         = "apps/list-installation-repos-for-authenticated-user"
)

// TestAccessIsAskedOfGitHubAndCachedBriefly: what a person may read comes from GitHub with their
// token, is asked once per access_ttl however many requests come, and a permission GitHub takes
// away is gone after it.
func TestAccessIsAskedOfGitHubAndCachedBriefly(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.signIn(t, b, "lena")
	for range 5 {
		if !e.signedIn(t, b) {
			t.Fatal("not signed in")
		}
	}
	if n, m := e.gh.Count(listInstallations), e.gh.Count(listRepos); n != 1 || m != 1 {
		t.Errorf("GitHub was asked %d and %d times within access_ttl, want once each", n, m)
	}
	e.gh.SetPermission("acme/app", "lena", "none") // lena loses access on GitHub
	e.clock.Add(time.Minute)
	if _, body := do(t, b, "GET", e.srv.URL+"/api/v1/whoami", nil); !strings.Contains(body, "read= ") {
		t.Errorf("after access_ttl lena still reads: %s", body)
	}
	if n := e.gh.Count(listInstallations); n != 2 {
		t.Errorf("GitHub asked %d times after access_ttl, want 2", n)
	}
}

// TestTokenRevokedOnGitHubEndsTheSession: when GitHub stops taking the person's token (they
// revoked the App's authorization), their next look at GitHub ends the session.
func TestTokenRevokedOnGitHubEndsTheSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.signIn(t, b, "alice")
	for tok := range e.gh.UserTokens("alice") {
		e.gh.RevokeUserToken(tok)
	}
	e.clock.Add(time.Minute)
	if resp, _ := do(t, noFollow(b), "GET", e.srv.URL+"/", nil); resp.StatusCode != http.StatusSeeOther || e.signedIn(t, b) {
		t.Errorf("a session whose token GitHub revoked: %d", resp.StatusCode)
	}
	if e.cookie(b, sessionCookie) != "" {
		t.Error("the ended session's cookie was not cleared")
	}
}

// TestGitHubDownShowsNothing: when GitHub cannot be asked what someone may read, nothing is
// shown (503), rather than everything or what was true long ago.
func TestGitHubDownShowsNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := browser(t)
	e.signIn(t, b, "alice")
	e.gh.SetDown(true)
	e.clock.Add(time.Minute)
	resp, body := do(t, noFollow(b), "GET", e.srv.URL+"/api/v1/whoami", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "acme/") {
		t.Errorf("GitHub down: %d %s", resp.StatusCode, body)
	}
	e.gh.SetDown(false)
	if !e.signedIn(t, b) {
		t.Error("the session did not survive GitHub's outage")
	}
}

// TestGrantCacheStaysBounded: past maxCached entries, stale ones go first, then everything, so
// many sessions cannot grow the cache without end.
func TestGrantCacheStaysBounded(t *testing.T) {
	var c grantCache
	now := time.Now()
	for i := range maxCached {
		e := c.entry(fmt.Sprint(i), now, time.Minute)
		e.ok, e.at = true, now.Add(-time.Duration(i%2)*time.Hour) // every other one stale
	}
	c.entry("one more", now, time.Minute)
	if n := len(c.entries); n != maxCached/2+1 {
		t.Errorf("%d entries after evicting the stale ones, want %d", n, maxCached/2+1)
	}
	c.forget("one more")
	if _, ok := c.entries["one more"]; ok {
		t.Error("forget kept the entry")
	}
}
