package signin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The token of the "board" script, and its configured hash.
const boardToken = "sct_board-script-token-0123456789abcdefghijklmnopq"

var boardHash = HashToken(boardToken)

const cfgYAML = `
github:
  app_id: 1
  private_key_file: /unused.pem
  api_url: %q
  client_id: %q
  client_secret_file: %q
signin:
  public_url: %q
  session_ttl: 1h
  access_ttl: 1m
  api_tokens:
    - {name: board, sha256: %s, repos: [acme/app]}
    - {name: auditor, sha256: %s, repos: [acme/app], audit: true}
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
apps:
  - {name: app, repo: acme/app}
  - {name: other, repo: acme/other}
`

// clock is the gate's settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time       { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration)  { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock                { return &clock{now: time.Now()} }
func (c *clock) fn() func() time.Time { return c.Now }

// env is a Stagecoach replica's front door on a real store, in front of a page and an API route
// that tell who the gate let through, with the GitHub test server behind it.
type env struct {
	gh    *githubtest.Server
	st    *store.Store
	gate  *Gate
	srv   *httptest.Server
	clock *clock
	logs  *bytes.Buffer
}

type envOptions struct {
	dsn       string             // the store; default a fresh SQLite file
	gh        *githubtest.Server // share GitHub with another replica
	clock     *clock
	publicURL func(addr string) string // default http://addr
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{gh: o.gh, clock: o.clock, logs: &bytes.Buffer{}}
	if e.gh == nil {
		e.gh = githubtest.New(t)
		e.gh.SetPermission("acme/app", "alice", "admin")
		e.gh.SetPermission("acme/app", "lena", "write")
		e.gh.SetPermission("acme/other", "mallory", "read")
		e.gh.SetPermission("acme/unconfigured", "mallory", "admin")
	}
	if e.clock == nil {
		e.clock = newClock()
	}
	if o.dsn == "" {
		o.dsn = "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	}
	var err error
	if e.st, err = store.Open(context.Background(), o.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	e.srv = httptest.NewUnstartedServer(nil)
	public := "http://" + e.srv.Listener.Addr().String()
	if o.publicURL != nil {
		public = o.publicURL(e.srv.Listener.Addr().String())
	}
	secret := e.gh.ClientSecret()
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("signin_test.yaml", fmt.Appendf(nil, cfgYAML, e.gh.URL(), e.gh.ClientID(), secretFile, public,
		boardHash, HashToken("sct_auditor")))
	if err != nil {
		t.Fatal(err)
	}
	e.gate, err = New(Options{Config: cfg, Sessions: e.st, WebURL: strings.TrimSuffix(e.gh.URL(), "/"),
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: e.clock.fn()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	whoami := func(w http.ResponseWriter, r *http.Request) {
		v := access.From(r.Context())
		audit := v.AuditRepos()
		fmt.Fprintf(w, "login=%s token=%s read=%s audit=%s csrf=%s", v.Login, v.Token, strings.Join(v.Repos(), ","), strings.Join(audit, ","), v.CSRF)
	}
	mux.HandleFunc("GET /{$}", whoami)
	mux.HandleFunc("GET /api/v1/whoami", whoami)
	mux.HandleFunc("POST /api/v1/whoami", whoami)
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	e.gate.Register(mux)
	e.srv.Config.Handler = e.gate.Protect(mux, "/webhook")
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// browser is a browser: it keeps cookies (across Stagecoach and GitHub, which share a host) and
// follows redirects.
func browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// noFollow is a browser that stops at every redirect, to show where it would go.
func noFollow(c *http.Client) *http.Client {
	return &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t testing.TB, c *http.Client, method, target string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs login in through GitHub in browser b and returns the page it lands on.
func (e *env) signIn(t testing.TB, b *http.Client, login string) string {
	t.Helper()
	e.gh.SetBrowserUser(login)
	resp, body := do(t, b, "GET", e.srv.URL+"/signin/github", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "login="+login+" ") {
		t.Fatalf("signing %s in: %d %s", login, resp.StatusCode, body)
	}
	return body
}

// cookie is the value of the named cookie browser b holds for the server.
func (e *env) cookie(b *http.Client, name string) string {
	u, _ := url.Parse(e.srv.URL + flowPath + "callback") // where both the session and the flow cookie go
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// csrf is the form token the page shows a signed-in browser.
func (e *env) csrf(t *testing.T, b *http.Client) string {
	t.Helper()
	_, body := do(t, b, "GET", e.srv.URL+"/", nil)
	_, tok, ok := strings.Cut(body, "csrf=")
	if !ok || tok == "" {
		t.Fatalf("no form token on the page: %s", body)
	}
	return tok
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func httpRequest(method, target string, header ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}
