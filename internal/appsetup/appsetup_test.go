package appsetup

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(w.Body)
	return w.Code, string(b)
}

func TestManifestFlow(t *testing.T) {
	gh := githubtest.New(t)
	manifest, err := os.ReadFile("../../app.yml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "secrets")
	f, err := New(Options{Manifest: manifest, WebURL: "https://github.com", APIURL: gh.URL(), Org: "acme",
		HookURL: "https://stagecoach.acme.dev/webhook", Callback: "http://127.0.0.1:3000/callback", OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	h := f.Handler()
	code, body := get(t, h, "/")
	if code != 200 || !strings.Contains(body, `action="https://github.com/organizations/acme/settings/apps/new?state=`+f.state+`"`) {
		t.Fatalf("page: %d\n%s", code, body)
	}
	m := regexp.MustCompile(`name="manifest" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no manifest field in the page:\n%s", body)
	}
	manifestJSON := html.UnescapeString(m[1])
	for _, want := range []string{`"redirect_url":"http://127.0.0.1:3000/callback"`, `"url":"https://stagecoach.acme.dev/webhook"`, `"checks":"write"`, `"default_events":["push"`,
		`"callback_urls":["https://stagecoach.acme.dev/signin/callback"]`} {
		if !strings.Contains(manifestJSON, want) {
			t.Errorf("manifest lacks %s:\n%s", want, manifestJSON)
		}
	}

	gh.AddManifestCode("one-time-code")
	if code, _ := get(t, h, "/callback?code=one-time-code&state=forged"); code != 400 {
		t.Errorf("a forged state got %d", code)
	}
	code, body = get(t, h, "/callback?code=one-time-code&state="+f.state)
	if code != 200 || !strings.Contains(body, "app_id: "+strconv.FormatInt(gh.AppID(), 10)) ||
		!strings.Contains(body, "client_id: "+gh.ClientID()) || !strings.Contains(body, "public_url: https://stagecoach.acme.dev") {
		t.Fatalf("callback: %d\n%s", code, body)
	}
	res := <-f.Done()
	if strings.Contains(body, gh.ClientSecret()) {
		t.Error("the page shows the client secret")
	}
	if secret, _ := os.ReadFile(res.ClientSecretFile); strings.TrimSpace(string(secret)) != gh.ClientSecret() {
		t.Errorf("client secret file = %q", secret)
	}
	for _, file := range []string{res.PrivateKeyFile, res.WebhookSecretFile, res.AppIDFile, res.ClientSecretFile} {
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", file, st.Mode().Perm())
		}
	}
	if secret, _ := os.ReadFile(res.WebhookSecretFile); strings.TrimSpace(string(secret)) != gh.WebhookSecret() || gh.WebhookSecret() == "" {
		t.Errorf("webhook secret file = %q", secret)
	}
	// The written key works: the App can get an installation token with it.
	key, _ := os.ReadFile(res.PrivateKeyFile)
	fac, err := githubapp.New(githubapp.Options{AppID: res.AppID, PrivateKey: key, BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := fac.Installation(1)
	if _, _, err := c.Checks.GetCheckRun(context.Background(), "acme", "app", 1); err != nil && !strings.Contains(err.Error(), "404") {
		t.Errorf("the new key does not authenticate: %v", err)
	}
	if gh.Count("apps/create-installation-access-token") != 1 {
		t.Error("no installation token was issued to the new key")
	}
	// The code works once.
	if code, _ := get(t, h, "/callback?code=one-time-code&state="+f.state); code != http.StatusBadGateway {
		t.Errorf("a used code got %d", code)
	}
}
