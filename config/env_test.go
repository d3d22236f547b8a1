package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(c *Config) bool
		want  string // the problems, "" for none
	}{
		{"nothing set", nil, func(c *Config) bool {
			return c.Store.DSN() == "sqlite:/var/lib/stagecoach/stagecoach.db" && c.GitHub.AppID == 123456
		}, ""},
		{"github", map[string]string{
			"STAGECOACH_GITHUB_APP_ID":           "77",
			"STAGECOACH_GITHUB_PRIVATE_KEY_FILE": "/k.pem",
			"STAGECOACH_GITHUB_API_URL":          "https://ghe.example.com/api/v3",
		}, func(c *Config) bool {
			return c.GitHub.AppID == 77 && c.GitHub.PrivateKeyFile == "/k.pem" && c.GitHub.APIURL == "https://ghe.example.com/api/v3/"
		}, ""},
		{"postgres", map[string]string{"STAGECOACH_STORE": "postgres://u@localhost/db"}, func(c *Config) bool {
			return c.Store == Store{Postgres: "postgres://u@localhost/db"} && c.Store.DSN() == "postgres://u@localhost/db"
		}, ""},
		{"postgresql", map[string]string{"STAGECOACH_STORE": "postgresql://u@localhost/db"}, func(c *Config) bool {
			return c.Store == Store{Postgres: "postgresql://u@localhost/db"}
		}, ""},
		{"sqlite prefix", map[string]string{"STAGECOACH_STORE": "sqlite:/tmp/x.db"}, func(c *Config) bool { return c.Store == Store{SQLite: "/tmp/x.db"} }, ""},
		{"sqlite path", map[string]string{"STAGECOACH_STORE": "x.db"}, func(c *Config) bool { return c.Store.DSN() == "sqlite:x.db" }, ""},
		{"internal listen", map[string]string{"STAGECOACH_INTERNAL_LISTEN": ":9090"}, func(c *Config) bool { return c.Internal == ":9090" }, ""},
		{"webhook secret", map[string]string{"STAGECOACH_WEBHOOK_SECRET": "s3cret"}, func(c *Config) bool { return c.GitHub.WebhookSecret == "s3cret" }, ""},
		{"bad app id", map[string]string{"STAGECOACH_GITHUB_APP_ID": "abc"}, nil,
			`environment: STAGECOACH_GITHUB_APP_ID: want a positive integer, got "abc"`},
		{"bad api url", map[string]string{"STAGECOACH_GITHUB_API_URL": "ghe.example.com"}, nil,
			`environment: STAGECOACH_GITHUB_API_URL: want an absolute http(s) URL such as https://api.github.com/ or https://HOST/api/v3/, got "ghe.example.com/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("example.yaml", envOf(tt.env))
			if tt.want != "" {
				if got := problemsOf(t, err).Error(); got != tt.want {
					t.Errorf("problems:\n%s\nwant:\n%s", got, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("overrides not applied: github %+v, store %+v", c.GitHub, c.Store)
			}
		})
	}
}

// TestEnvCompletesTheFile checks that a value the environment supplies is not reported missing:
// Load validates after applying it, Parse (no environment) does not have it.
func TestEnvCompletesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("github: {private_key_file: /k.pem}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, noEnv); err == nil {
		t.Error("Load without the app id: no problem")
	}
	c, err := Load(path, envOf(map[string]string{"STAGECOACH_GITHUB_APP_ID": "9"}))
	if err != nil || !c.GitHub.Configured() {
		t.Errorf("Load with STAGECOACH_GITHUB_APP_ID = %+v, %v", c, err)
	}
}

func TestReadWebhookSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := write("secret", "  from-file\n")
	empty := write("empty", " \n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		g       GitHub
		want    string
		wantErr string // a part of the error, which must name the file
	}{
		{"environment wins", GitHub{WebhookSecret: "from-env", WebhookSecretFile: secretFile}, "from-env", ""},
		{"file, trimmed", GitHub{WebhookSecretFile: secretFile}, "from-file", ""},
		{"empty file", GitHub{WebhookSecretFile: empty}, "", empty},
		{"missing file", GitHub{WebhookSecretFile: missing}, "", missing},
		{"neither", GitHub{}, "", "STAGECOACH_WEBHOOK_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.g.ReadWebhookSecret()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("ReadWebhookSecret = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}
