package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/chromium"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// signinConfig is a service with a GitHub App that people sign in to, and two apps: hello, whose
// repository alice administers, and secret, which mallory cannot read either.
const signinConfig = `
log_level: debug
github:
  app_id: %d
  private_key_file: %q
  webhook_secret_file: %q
  api_url: %q
  client_id: %q
  client_secret_file: %q
signin:
  public_url: %q
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-prod"}
apps:
  - {name: hello, repo: Codertocat/Hello-World}
  - {name: secret, repo: acme/secret}
`

// checkSignIn plays sign-in in a same-origin frame: the anonymous page, signing in with GitHub,
// what the person sees on the page and through the API, and signing out. It posts what it found
// to /check/result; the image below holds the page's load (and so Chromium's exit) until then.
const checkSignIn = `<!doctype html><html><head><meta charset="utf-8"><title>sign-in check</title></head><body>
<iframe id="f" src="/" style="width:1280px;height:900px;border:0"></iframe>
<img src="/check/hold" alt="">
<script>
var who = "%s", out = {}, step = 0, f = document.getElementById('f');
var doc = function () { return f.contentDocument; };
var has = function (s) { return !!doc().querySelector(s); };
var text = function () { return doc().body ? doc().body.textContent.replace(/\s+/g, ' ') : ''; };
var api = async function (p) { var r = await fetch(p, {credentials: 'same-origin', redirect: 'manual'}); return {status: r.status, body: await r.text()}; };
var finish = function () { fetch('/check/result', {method: 'POST', body: JSON.stringify(out)}); };
f.addEventListener('load', async function () {
  try {
    step++;
    if (step === 1) {
      out['anonymous: the sign-in page'] = has('#signin-github');
      out['anonymous: nothing of the apps'] = !has('#app-hello') && text().indexOf('Hello-World') < 0;
      var a = await api('/api/v1/deployments');
      out['anonymous: the API answers 401'] = a.status === 401 && a.body.indexOf('Hello-World') < 0;
      doc().getElementById('signin-github').click();
      return;
    }
    if (step === 2) {
      out['signed in as @' + who] = text().indexOf('Signed in as @' + who) >= 0;
      var list = await api('/api/v1/deployments'), one = await api('/api/v1/deployments/1'), other = await api('/api/v1/deployments/2');
      var byApp = await api('/api/v1/deployments?app=hello'), audit = await api('/api/v1/commands?repo=Codertocat/Hello-World');
      if (who === 'alice') {
        out['alice sees the app'] = has('#app-hello') && text().indexOf('Codertocat/Hello-World') >= 0;
        out['alice sees nothing of the app she cannot read'] = !has('#app-secret') && text().indexOf('acme/secret') < 0;
        out['alice, an admin, sees the command audit'] = has('#app-hello-audit') && text().indexOf('/promote prod') >= 0;
        out['alice lists her deploys through the API'] = list.status === 200 && list.body.indexOf('Codertocat/Hello-World') >= 0 && list.body.indexOf('acme/secret') < 0;
        out['alice reads her deploy by id'] = one.status === 200 && one.body.indexOf('Codertocat/Hello-World') >= 0;
        out['alice gets 404 for the other repository deploy'] = other.status === 404 && other.body.indexOf('acme/secret') < 0;
        out['alice reads the audit through the API'] = audit.status === 200 && audit.body.indexOf('/promote prod') >= 0;
      } else {
        out['mallory sees no app'] = !has('#app-hello') && !has('#app-secret') && has('#no-access') && text().indexOf('Hello-World') < 0;
        out['mallory lists no deploys through the API'] = list.status === 200 && list.body.indexOf('Hello-World') < 0 && list.body.indexOf('acme/secret') < 0;
        out['mallory gets 404 for a deploy by id'] = one.status === 404 && one.body.indexOf('Hello-World') < 0;
        out['mallory gets nothing by filter'] = byApp.status === 200 && byApp.body.indexOf('Hello-World') < 0;
        out['mallory gets no audit'] = audit.status === 403 && audit.body.indexOf('/promote') < 0;
      }
      doc().getElementById('signout').click();
      return;
    }
    out['signed out: the page says so'] = has('#signed-out') && has('#signin-github');
    var after = await api('/api/v1/deployments');
    out['signed out: the API answers 401'] = after.status === 401;
    finish();
  } catch (e) { out['no error (' + e + ')'] = false; finish(); }
});
</script></body></html>`

// TestSignInInBrowser signs two people in to the running service in headless Chromium, through
// the GitHub test server's authorization: anonymous → the sign-in page; alice, who administers
// hello's repository, sees hello (and its command audit) and not secret; mallory, who can read
// neither, sees nothing of them on the page or through the API; signing out works.
func TestSignInInBrowser(t *testing.T) {
	bin := chromium.Find(t)
	gh := githubtest.New(t)
	gh.SetPermission("Codertocat/Hello-World", "alice", "admin")
	gh.SetPermission("acme/elsewhere", "mallory", "admin")
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "stagecoach.db")
	seedSignIn(t, dbPath)

	front := httptest.NewUnstartedServer(nil) // the ingress in front of Stagecoach, where the check page is served too
	public := "http://" + front.Listener.Addr().String()
	gh.SetCallbackURL(public + "/signin/callback")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgFile := write("stagecoach.yaml", fmt.Sprintf(signinConfig, gh.AppID(), write("app.pem", string(gh.PrivateKeyPEM())),
		write("webhook-secret", "whsec"), gh.URL(), gh.ClientID(), write("client-secret", gh.ClientSecret()), public))
	base := serveForTest(t, cfgFile, dbPath)

	target, _ := url.Parse(base)
	results := make(chan map[string]bool, 1)
	var mu sync.Mutex
	done := make(chan struct{}) // closed when a run's checks are in; replaced for the next run
	mux := http.NewServeMux()
	mux.HandleFunc("GET /check/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, checkSignIn, template.JSEscapeString(r.URL.Query().Get("who")))
	})
	mux.HandleFunc("POST /check/result", func(w http.ResponseWriter, r *http.Request) {
		var out map[string]bool
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &out); err != nil {
			out = map[string]bool{"results readable (" + string(b) + ")": false}
		}
		results <- out
	})
	mux.HandleFunc("GET /check/hold", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		wait := done
		mu.Unlock()
		select { // the page's load waits for the checks, so Chromium dumps after them
		case <-wait:
		case <-r.Context().Done():
		case <-time.After(90 * time.Second):
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	front.Config.Handler = mux
	front.Start()
	defer front.Close()

	for _, person := range []string{"alice", "mallory"} {
		t.Run(person, func(t *testing.T) {
			gh.SetBrowserUser(person)
			mu.Lock()
			done = make(chan struct{})
			finished := done
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dumped := make(chan error, 1)
			cmd := exec.CommandContext(ctx, bin, append(chromium.Flags(t.TempDir()), "--dump-dom", public+"/check/page?who="+person)...)
			go func() {
				_, err := cmd.Output()
				dumped <- err
			}()
			var out map[string]bool
			select {
			case out = <-results:
			case <-ctx.Done():
				t.Fatal("the checks did not report within 2 minutes")
			}
			close(finished)
			if err := <-dumped; err != nil {
				t.Errorf("chromium: %v", err)
			}
			if want := map[string]int{"alice": 13, "mallory": 11}[person]; len(out) != want {
				t.Errorf("%d checks ran, want %d: %v", len(out), want, out)
			}
			for name, ok := range out {
				if !ok {
					t.Errorf("in the browser: %s: no", name)
				}
			}
		})
	}
	for tok, live := range gh.UserTokens("alice") {
		if live {
			t.Errorf("alice's token %s… outlived her sign-out", tok[:8])
		}
	}
}

// seedSignIn records a deploy of each app (hello's is 1, secret's 2) and a command of hello's.
func seedSignIn(t *testing.T, dbPath string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, d := range []deploy.Request{
		{App: "hello", Stage: "test", Repo: "Codertocat/Hello-World", SHA: strings.Repeat("a", 40)},
		{App: "secret", Stage: "test", Repo: "acme/secret", SHA: strings.Repeat("b", 40)},
	} {
		d.Trigger = deploy.Trigger{Event: "push", Delivery: fmt.Sprint("seed-", i), Actor: "octocat"}
		if _, err := st.Record(ctx, store.Intake{Delivery: store.Delivery{ID: d.Trigger.Delivery, Event: "push"}, Deploys: []deploy.Request{d}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.RecordCommand(ctx, store.CommandRecord{Key: "c1", Repo: "Codertocat/Hello-World", Actor: "paula", Verb: "promote", Stage: "prod", Args: "/promote prod"}); err != nil {
		t.Fatal(err)
	}
}

// serveForTest runs `stagecoach serve` on cfgFile and the store at dbPath, recording deploys
// without running them, and returns its root URL.
func serveForTest(t *testing.T, cfgFile, dbPath string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &lineWriter{lines: make(chan string, 16)}
	logs, err := os.Create(filepath.Join(t.TempDir(), "stagecoach.log"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgFile, "--listen", "127.0.0.1:0", "--deploy=false"},
			func(k string) string { return map[string]string{"STAGECOACH_STORE": "sqlite:" + dbPath}[k] }, stdout, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("server log:\n%s", b)
		}
	})
	select {
	case line := <-stdout.lines:
		m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected first line %q", line)
		}
		return m[1]
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start within 30 s")
	}
	return ""
}
