package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func noEnv(string) string { return "" }

func TestExampleIsValidAndComplete(t *testing.T) {
	c, err := Load("example.yaml", noEnv)
	if err != nil {
		t.Fatalf("example.yaml: %v", err)
	}
	if len(c.Apps) != 1 || len(c.Stages) != 4 || c.Stage("prod").Credentials != "prod" {
		t.Errorf("example.yaml does not show the seed's stages and one app: %+v", c)
	}
	raw, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Every key the configuration has must appear in the example, so the example stays complete.
	for _, key := range allKeys(reflect.TypeOf(Config{})) {
		if !strings.Contains(string(raw), key+":") {
			t.Errorf("example.yaml does not show key %q", key)
		}
	}
}

func allKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for name, f := range yamlFields(t) {
		keys = append(keys, name)
		keys = append(keys, allKeys(f.Type)...)
	}
	return keys
}

func TestDefaults(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	want := []struct {
		name, branch string
		trigger      Trigger
		tier         string
	}{
		{"dev", "", TriggerNone, "nonprod"},
		{"test", "master", TriggerMerge, "nonprod"},
		{"alpha", "alpha", TriggerPush, "nonprod"},
		{"prod", "prod", TriggerPush, "prod"},
	}
	if len(c.Stages) != len(want) {
		t.Fatalf("stages = %+v", c.Stages)
	}
	for i, w := range want {
		s := c.Stages[i]
		if s.Name != w.name || s.Branch != w.branch || s.Trigger != w.trigger || s.Credentials != w.tier || s.Kubernetes.Namespace != w.name {
			t.Errorf("stage %d = %+v, want %+v", i, s, w)
		}
	}
	if c.Listen != ":8080" || c.Store.DSN() != "sqlite:stagecoach.db" || c.GitHub.APIURL != "https://api.github.com/" || c.GitHub.Configured() {
		t.Errorf("defaults = %+v", c)
	}
	if got := c.StagesOnBranch("master"); len(got) != 1 || got[0].Name != "test" {
		t.Errorf("StagesOnBranch(master) = %+v", got)
	}
	if got := c.StagesOnBranch(""); len(got) != 0 {
		t.Errorf("StagesOnBranch(\"\") = %+v, want none", got)
	}
}

// TestProblems checks the exact report for bad files against golden files (go test -update).
func TestProblems(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, noEnv)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load = %v, want Problems", err)
			}
			got := ps.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
			for _, p := range ps {
				if p.Line == 0 || !strings.HasPrefix(p.String(), f+":") {
					t.Errorf("problem without a line: %s", p)
				}
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"STAGECOACH_WEBHOOK_SECRET":          "s3cret",
		"STAGECOACH_GITHUB_APP_ID":           "77",
		"STAGECOACH_GITHUB_PRIVATE_KEY_FILE": "/k.pem",
		"STAGECOACH_GITHUB_API_URL":          "https://ghe.example.com/api/v3",
		"STAGECOACH_STORE":                   "postgres://u@localhost/db",
	}
	c, err := Load("example.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.GitHub.AppID != 77 || c.GitHub.PrivateKeyFile != "/k.pem" || c.GitHub.APIURL != "https://ghe.example.com/api/v3/" ||
		c.Store.DSN() != "postgres://u@localhost/db" || c.Store.SQLite != "" {
		t.Errorf("overrides not applied: %+v", c)
	}
	if s, err := c.GitHub.ReadWebhookSecret(); err != nil || string(s) != "s3cret" {
		t.Errorf("ReadWebhookSecret = %q, %v", s, err)
	}
	env = map[string]string{"STAGECOACH_STORE": "sqlite:/tmp/x.db", "STAGECOACH_GITHUB_APP_ID": "abc"}
	_, err = Load("example.yaml", func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "STAGECOACH_GITHUB_APP_ID: want a positive integer") {
		t.Errorf("bad app id: %v", err)
	}
}

func TestWebhookSecretFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secret")
	os.WriteFile(f, []byte("  from-file\n"), 0o600)
	if s, err := (GitHub{WebhookSecretFile: f}).ReadWebhookSecret(); err != nil || string(s) != "from-file" {
		t.Errorf("got %q, %v", s, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, g := range []GitHub{{}, {WebhookSecretFile: empty}, {WebhookSecretFile: filepath.Join(dir, "missing")}} {
		if _, err := g.ReadWebhookSecret(); err == nil {
			t.Errorf("%+v: no error", g)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"example.yaml", "testdata/many-problems.yaml", "testdata/wrong-types.yaml"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("stages: [{name: x, trigger: push}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config Validate rejects: %v", verr)
			}
			return
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("Parse error is not Problems: %v", err)
		}
	})
}

func TestShippedConfigsAreValid(t *testing.T) {
	for _, f := range []string{"example.yaml", "local.yaml"} {
		if _, err := Load(f, noEnv); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
