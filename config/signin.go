package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// SignIn is how people and scripts get into the dashboard and the read API. People sign in with
// GitHub, through the App's own user authorization (github.client_id and its secret); scripts
// present an API token whose SHA-256 is listed here.
type SignIn struct {
	// PublicURL is where people open the dashboard, e.g. https://stagecoach.acme.dev. GitHub
	// sends them back to PublicURL + /signin/callback, and cookies are Secure when it is https.
	// Empty: GitHub uses the App's registered callback URL, and cookies are Secure when the
	// request came over TLS.
	PublicURL string `yaml:"public_url"`
	// SessionTTL is how long a sign-in lasts (default 8h, GitHub's own user-token lifetime);
	// a session also ends when GitHub's token for it expires.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// AccessTTL is how long what GitHub said a person may read is trusted before asking again
	// (default 1m).
	AccessTTL time.Duration `yaml:"access_ttl"`
	// APITokens are the read-only tokens scripts present as "Authorization: Bearer TOKEN".
	APITokens []APIToken `yaml:"api_tokens"`
}

// APIToken is one script's read-only token. Only its SHA-256 is configured; `stagecoach token`
// makes a token and prints the entry.
type APIToken struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256"` // hex SHA-256 of the token
	// Repos are the repositories whose apps, deploys, locks and releases the token reads; empty:
	// every configured app's repository.
	Repos []string `yaml:"repos"`
	// Audit lets the token read the command audit trail of those repositories too.
	Audit bool `yaml:"audit"`
}

// SignInConfigured reports whether people can sign in with GitHub: the App's client id is set.
func (g GitHub) SignInConfigured() bool { return g.ClientID != "" }

// ReadClientSecret returns the App's client secret: the environment's, else the trimmed content
// of client_secret_file. Errors name the file, never its content.
func (g GitHub) ReadClientSecret() ([]byte, error) {
	if g.ClientSecret != "" {
		return []byte(g.ClientSecret), nil
	}
	if g.ClientSecretFile == "" {
		return nil, fmt.Errorf("no client secret: set STAGECOACH_GITHUB_CLIENT_SECRET or github.client_secret_file")
	}
	b, err := os.ReadFile(g.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("reading github.client_secret_file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("github.client_secret_file %s is empty", g.ClientSecretFile)
	}
	return []byte(s), nil
}

// OpenLocally reports whether the dashboard and the read API are open to anyone who can reach
// them: only on a local trial, with no GitHub App (so nobody could sign in) and a listen address
// on loopback (so only this machine can reach them).
func (c *Config) OpenLocally() bool {
	if c.GitHub.Configured() || c.GitHub.SignInConfigured() {
		return false
	}
	host, _, err := net.SplitHostPort(c.Listen)
	return err == nil && isLoopback(host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *SignIn) applyDefaults() {
	if s.SessionTTL == 0 {
		s.SessionTTL = 8 * time.Hour
	}
	if s.AccessTTL == 0 {
		s.AccessTTL = time.Minute
	}
	s.PublicURL = strings.TrimSuffix(s.PublicURL, "/")
	for i := range s.APITokens {
		s.APITokens[i].SHA256 = strings.ToLower(strings.TrimSpace(s.APITokens[i].SHA256))
	}
}

// applySignInEnv applies STAGECOACH_GITHUB_CLIENT_ID, STAGECOACH_GITHUB_CLIENT_SECRET (never read
// from the file) and STAGECOACH_PUBLIC_URL.
func (c *Config) applySignInEnv(getenv func(string) string) {
	if s := strings.TrimSpace(getenv("STAGECOACH_GITHUB_CLIENT_ID")); s != "" {
		c.GitHub.ClientID = s
		c.env["github.client_id"] = "STAGECOACH_GITHUB_CLIENT_ID"
	}
	if s := getenv("STAGECOACH_GITHUB_CLIENT_SECRET"); s != "" {
		c.GitHub.ClientSecret = s
	}
	if s := strings.TrimSpace(getenv("STAGECOACH_PUBLIC_URL")); s != "" {
		c.SignIn.PublicURL = strings.TrimSuffix(s, "/")
		c.env["signin.public_url"] = "STAGECOACH_PUBLIC_URL"
	}
}

var (
	clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func (v *validator) signin() {
	g, s := v.c.GitHub, v.c.SignIn
	switch {
	case g.ClientID != "" && !clientIDRE.MatchString(g.ClientID):
		v.add("github.client_id", "want the App's client id as GitHub shows it (e.g. Iv23liABCDEF), got %q", g.ClientID)
	case g.ClientID != "" && g.ClientSecretFile == "" && g.ClientSecret == "":
		v.add("github.client_secret_file", "required with client_id (or set STAGECOACH_GITHUB_CLIENT_SECRET): sign-in exchanges GitHub's code with it")
	case g.ClientID == "" && g.ClientSecretFile != "":
		v.add("github.client_id", "required with client_secret_file: the App's client id, shown on its settings page")
	}
	if s.PublicURL != "" {
		u, err := url.Parse(s.PublicURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			v.add("signin.public_url", "want the dashboard's absolute URL such as https://stagecoach.acme.dev, got %q", s.PublicURL)
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			v.add("signin.public_url", "want https: sign-in cookies and GitHub's code must not cross the network in the clear (http is only for loopback), got %q", s.PublicURL)
		case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			v.add("signin.public_url", "want only scheme and host (Stagecoach serves at the root), got %q", s.PublicURL)
		}
	}
	if s.SessionTTL < 5*time.Minute || s.SessionTTL > 30*24*time.Hour {
		v.add("signin.session_ttl", "want from 5m to 720h, got %s", s.SessionTTL)
	}
	if s.AccessTTL < time.Second || s.AccessTTL > 15*time.Minute {
		v.add("signin.access_ttl", "want from 1s to 15m (what GitHub said someone may read goes stale), got %s", s.AccessTTL)
	}
	names, hashes := map[string]int{}, map[string]int{}
	for i, t := range s.APITokens {
		p := fmt.Sprintf("signin.api_tokens[%d]", i)
		switch j, dup := names[t.Name]; {
		case t.Name == "":
			v.add(p+".name", "required: who uses the token, for the log")
		case !nameRE.MatchString(t.Name):
			v.add(p+".name", "want lower-case letters, digits and dashes starting with a letter, got %q", t.Name)
		case dup:
			v.add(p+".name", "token %q is already defined at signin.api_tokens[%d]", t.Name, j)
		}
		names[t.Name] = i
		switch j, dup := hashes[t.SHA256]; {
		case !sha256RE.MatchString(t.SHA256):
			v.add(p+".sha256", "want the token's SHA-256 as 64 hex digits (stagecoach token prints it), never the token itself")
		case dup:
			v.add(p+".sha256", "the same token as signin.api_tokens[%d]", j)
		}
		hashes[t.SHA256] = i
		for j, repo := range t.Repos {
			switch {
			case !repoRE.MatchString(repo):
				v.add(fmt.Sprintf("%s.repos[%d]", p, j), "want owner/name, got %q", repo)
			case len(v.c.AppsForRepo(repo)) == 0:
				v.add(fmt.Sprintf("%s.repos[%d]", p, j), "no app is built from %s", repo)
			}
		}
	}
}
