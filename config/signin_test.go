package config

import (
	"strings"
	"testing"
	"time"
)

// TestSignInRules covers each sign-in rule with a file that breaks only it, and files close to
// breaking it that are valid.
func TestSignInRules(t *testing.T) {
	const app = "credentials: {nonprod: {role_arn: \"arn:aws:iam::123456789012:role/n\"}, prod: {role_arn: \"arn:aws:iam::123456789012:role/p\"}}\n" +
		"apps: [{name: web, repo: acme/web}]\n"
	const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	tests := []struct {
		name, yaml string
		want       string // "" for valid, else "field: message" of the only problem, up to its end or "…"
	}{
		{"client id and secret file", `github: {client_id: Iv23liABC, client_secret_file: /s}`, ""},
		{"client id without a secret", `github: {client_id: Iv23liABC}`, `github.client_secret_file: required with client_id…`},
		{"secret file without a client id", `github: {client_secret_file: /s}`, `github.client_id: required with client_secret_file…`},
		{"client id with a space", `github: {client_id: "Iv23 li", client_secret_file: /s}`, `github.client_id: want the App's client id…`},
		{"https public url", `signin: {public_url: "https://stagecoach.acme.dev/"}`, ""},
		{"loopback http public url", `signin: {public_url: "http://127.0.0.1:8080"}`, ""},
		{"http public url on the network", `signin: {public_url: "http://stagecoach.acme.dev"}`, `signin.public_url: want https: sign-in cookies…`},
		{"public url with a path", `signin: {public_url: "https://acme.dev/stagecoach"}`, `signin.public_url: want only scheme and host…`},
		{"relative public url", `signin: {public_url: "stagecoach.acme.dev"}`, `signin.public_url: want the dashboard's absolute URL…`},
		{"session ttl too short", `signin: {session_ttl: 1m}`, `signin.session_ttl: want from 5m to 720h, got 1m0s`},
		{"access ttl too long", `signin: {access_ttl: 1h}`, `signin.access_ttl: want from 1s to 15m…`},
		{"api token", app + `signin: {api_tokens: [{name: board, sha256: ` + hash + `, repos: [ACME/web], audit: true}]}`, ""},
		{"api token hash in capitals", app + `signin: {api_tokens: [{name: board, sha256: ` + strings.ToUpper(hash) + `}]}`, ""},
		{"api token in the clear", app + `signin: {api_tokens: [{name: board, sha256: sct_plaintext}]}`, `signin.api_tokens[0].sha256: want the token's SHA-256…`},
		{"api token without a name", app + `signin: {api_tokens: [{sha256: ` + hash + `}]}`, `signin.api_tokens[0].name: required…`},
		{"api token twice", app + `signin: {api_tokens: [{name: a, sha256: ` + hash + `}, {name: b, sha256: ` + hash + `}]}`, `signin.api_tokens[1].sha256: the same token as signin.api_tokens[0]`},
		{"api token name twice", app + `signin: {api_tokens: [{name: a, sha256: ` + hash + `}, {name: a, sha256: ` + strings.Repeat("0", 64) + `}]}`, `signin.api_tokens[1].name: token "a" is already defined…`},
		{"api token for an unknown repo", app + `signin: {api_tokens: [{name: a, sha256: ` + hash + `, repos: [acme/other]}]}`, `signin.api_tokens[0].repos[0]: no app is built from acme/other`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("rules.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("want one problem, got:\n%v", ps)
			}
			got := ps[0].Field + ": " + ps[0].Message
			if prefix, cut := strings.CutSuffix(tt.want, "…"); cut && strings.HasPrefix(got, prefix) {
				return
			}
			if got != tt.want {
				t.Errorf("problem = %s\nwant      %s", got, tt.want)
			}
		})
	}
}

func TestSignInEnvAndDefaults(t *testing.T) {
	c, err := Load("example.yaml", envOf(map[string]string{
		"STAGECOACH_GITHUB_CLIENT_ID": "Iv23liFromEnv", "STAGECOACH_GITHUB_CLIENT_SECRET": "s3cret",
		"STAGECOACH_PUBLIC_URL": "https://deploys.acme.dev/"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.GitHub.ClientID != "Iv23liFromEnv" || c.SignIn.PublicURL != "https://deploys.acme.dev" {
		t.Errorf("client id %q, public url %q", c.GitHub.ClientID, c.SignIn.PublicURL)
	}
	if s, err := c.GitHub.ReadClientSecret(); err != nil || string(s) != "s3cret" {
		t.Errorf("client secret from the environment = %q, %v", s, err)
	}
	d := Default()
	if d.SignIn.SessionTTL != 8*time.Hour || d.SignIn.AccessTTL != time.Minute {
		t.Errorf("defaults: session %s, access %s", d.SignIn.SessionTTL, d.SignIn.AccessTTL)
	}
	// A client id only in the environment still needs its secret, and the problem names the variable.
	cfg, _ := parse("rules.yaml", []byte("listen: \":1\"\n"))
	_ = cfg.ApplyEnv(envOf(map[string]string{"STAGECOACH_GITHUB_CLIENT_ID": "Iv23li"}))
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "github.client_secret_file: required with client_id") {
		t.Errorf("client id from the environment without a secret: %v", err)
	}
}

// TestOpenLocallyOnlyWithoutAppOnLoopback: the dashboard and API are open to anyone only on a
// local trial bound to loopback; a GitHub App, a client id or a listen address on the network
// closes them.
func TestOpenLocallyOnlyWithoutAppOnLoopback(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(c *Config)
		open   bool
	}{
		{"loopback, no App", func(c *Config) { c.Listen = "127.0.0.1:8080" }, true},
		{"localhost, no App", func(c *Config) { c.Listen = "localhost:8080" }, true},
		{"IPv6 loopback, no App", func(c *Config) { c.Listen = "[::1]:8080" }, true},
		{"every interface, no App", func(c *Config) { c.Listen = ":8080" }, false},
		{"a network address, no App", func(c *Config) { c.Listen = "10.0.0.5:8080" }, false},
		{"loopback with an App", func(c *Config) { c.Listen = "127.0.0.1:8080"; c.GitHub.AppID, c.GitHub.PrivateKeyFile = 1, "/k" }, false},
		{"loopback with a client id", func(c *Config) { c.Listen = "127.0.0.1:8080"; c.GitHub.ClientID = "Iv23li" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			if got := c.OpenLocally(); got != tt.open {
				t.Errorf("OpenLocally = %v, want %v", got, tt.open)
			}
		})
	}
}
