package githubtest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"
	"golang.org/x/oauth2"
)

// noRedirects is a client that shows GitHub's redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func oauthConfig(s *Server, secret, redirect string) *oauth2.Config {
	web := strings.TrimSuffix(s.URL(), "/")
	return &oauth2.Config{ClientID: s.ClientID(), ClientSecret: secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: web + "/login/oauth/authorize", TokenURL: web + "/login/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}}
}

// authorize follows the authorization URL as a browser would and returns where GitHub sent it.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func userClient(t *testing.T, s *Server, tok string) *github.Client {
	t.Helper()
	base := s.URL()
	c, err := github.NewClient(github.WithAuthToken(tok), github.WithURLs(&base, &base))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWebFlowWithPKCE plays the App's user authorization with the real oauth2 client: the code
// comes back with the state, the exchange needs the verifier, and the user token reads the
// person, their installations and their repositories with their permissions, then is revoked.
func TestWebFlowWithPKCE(t *testing.T) {
	s := New(t)
	s.SetCallbackURL("http://127.0.0.1:9/signin/callback")
	s.SetBrowserUser("alice")
	s.SetPermission("acme/app", "alice", "admin")
	s.SetPermission("acme/lib", "alice", "read")
	s.SetPermission("acme/secret", "bob", "write")
	ctx := context.Background()
	cfg := oauthConfig(s, s.ClientSecret(), "http://127.0.0.1:9/signin/callback")
	verifier := oauth2.GenerateVerifier()
	q := authorize(t, cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("redirected with %v", q)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ghu_") || tok.Expiry.IsZero() {
		t.Errorf("token %+v", tok)
	}
	gh := userClient(t, s, tok.AccessToken)
	u, _, err := gh.Users.Get(ctx, "")
	if err != nil || u.GetLogin() != "alice" {
		t.Fatalf("GET /user = %v, %v", u, err)
	}
	insts, _, err := gh.Apps.ListUserInstallations(ctx, nil)
	if err != nil || len(insts) != 1 {
		t.Fatalf("installations = %v, %v", insts, err)
	}
	repos, _, err := gh.Apps.ListUserRepos(ctx, insts[0].GetID(), nil)
	if err != nil || len(repos.Repositories) != 2 {
		t.Fatalf("repositories = %v, %v", repos, err)
	}
	for _, r := range repos.Repositories {
		admin := r.GetPermissions().GetAdmin()
		if (r.GetFullName() == "acme/app") != admin || !r.GetPermissions().GetPull() {
			t.Errorf("%s permissions %v", r.GetFullName(), r.GetPermissions())
		}
	}
	// Revoking needs the client's credentials; afterwards the token is dead.
	bad := basicClient(t, s, s.ClientID(), "wrong")
	if _, err := bad.Authorizations.Revoke(ctx, s.ClientID(), tok.AccessToken); err == nil {
		t.Error("revoked with a wrong client secret")
	}
	if _, err := basicClient(t, s, s.ClientID(), s.ClientSecret()).Authorizations.Revoke(ctx, s.ClientID(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := gh.Users.Get(ctx, ""); err == nil || status(resp) != http.StatusUnauthorized {
		t.Errorf("a revoked token still reads /user: %v", err)
	}
}

func basicClient(t *testing.T, s *Server, id, secret string) *github.Client {
	t.Helper()
	return newClient(t, s, &github.BasicAuthTransport{Username: id, Password: secret})
}

// TestCodeExchangeAttacks: the exchange refuses what GitHub refuses, each with GitHub's error.
func TestCodeExchangeAttacks(t *testing.T) {
	const cb = "http://127.0.0.1:9/signin/callback"
	tests := []struct {
		name     string
		exchange func(cfg *oauth2.Config, code, verifier string) error
		want     string
	}{
		{"stolen code without the verifier", func(cfg *oauth2.Config, code, _ string) error {
			_, err := cfg.Exchange(context.Background(), code)
			return err
		}, "bad_verification_code"},
		{"stolen code with another verifier", func(cfg *oauth2.Config, code, _ string) error {
			_, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		}, "bad_verification_code"},
		{"wrong client secret", func(cfg *oauth2.Config, code, v string) error {
			c := *cfg
			c.ClientSecret = "guess"
			_, err := c.Exchange(context.Background(), code, oauth2.VerifierOption(v))
			return err
		}, "incorrect_client_credentials"},
		{"other redirect_uri", func(cfg *oauth2.Config, code, v string) error {
			c := *cfg
			c.RedirectURL = "http://127.0.0.1:9/signin/callback/x"
			_, err := c.Exchange(context.Background(), code, oauth2.VerifierOption(v))
			return err
		}, "redirect_uri_mismatch"},
		{"code used twice", func(cfg *oauth2.Config, code, v string) error {
			if _, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(v)); err != nil {
				return errors.New("the first exchange failed: " + err.Error())
			}
			_, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(v))
			return err
		}, "bad_verification_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.SetCallbackURL(cb)
			s.SetBrowserUser("alice")
			cfg := oauthConfig(s, s.ClientSecret(), cb)
			v := oauth2.GenerateVerifier()
			q := authorize(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v)))
			err := tt.exchange(cfg, q.Get("code"), v)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != tt.want {
				t.Errorf("exchange = %v, want GitHub's %s", err, tt.want)
			}
			if len(s.UserTokens("alice")) > map[bool]int{true: 1, false: 0}[tt.name == "code used twice"] {
				t.Errorf("tokens were issued: %v", s.UserTokens("alice"))
			}
		})
	}
}

// TestAuthorizePage: without a person signed in to GitHub the page asks who, Authorize sends the
// code back and Cancel sends access_denied; a redirect_uri outside the callback is refused.
func TestAuthorizePage(t *testing.T) {
	s := New(t)
	s.SetCallbackURL("http://127.0.0.1:9/signin/callback")
	cfg := oauthConfig(s, s.ClientSecret(), "")
	resp, err := http.Get(cfg.AuthCodeURL("st-2"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `name="login"`) || !strings.Contains(string(page), `value="st-2"`) {
		t.Fatalf("authorize page: %d\n%s", resp.StatusCode, page)
	}
	post := func(decision string) url.Values {
		form := url.Values{"client_id": {s.ClientID()}, "state": {"st-2"}, "login": {"paula"}, "decision": {decision}}
		resp, err := noRedirects.PostForm(strings.TrimSuffix(s.URL(), "/")+"/login/oauth/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), "http://127.0.0.1:9/signin/callback?") {
			t.Fatalf("%s: %d to %s", decision, resp.StatusCode, loc)
		}
		return loc.Query()
	}
	if q := post("authorize"); q.Get("code") == "" || q.Get("state") != "st-2" {
		t.Errorf("authorize sent %v", q)
	}
	if q := post("cancel"); q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Errorf("cancel sent %v", q)
	}
	elsewhere := oauthConfig(s, s.ClientSecret(), "https://evil.example/signin/callback")
	if q := authorize(t, elsewhere.AuthCodeURL("st-3")); q.Get("error") != "redirect_uri_mismatch" || q.Get("code") != "" {
		t.Errorf("a redirect elsewhere got %v", q)
	}
}

// TestUserEndpointsRefuseAppTokens: an installation token is not a person.
func TestUserEndpointsRefuseAppTokens(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	if _, resp, err := gh.Users.Get(context.Background(), ""); err == nil || status(resp) != http.StatusForbidden {
		t.Errorf("GET /user with an installation token = %d, %v", status(resp), err)
	}
}
