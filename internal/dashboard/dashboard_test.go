package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/pipeline"
	"github.com/stagecoach/stagecoach/internal/store"
)

const cfgYAML = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: hello/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: hello/prod, deployments: [{name: api, containers: [api]}]}
`

// world is a store with a little history: test and alpha live on different commits, prod never
// deployed, and a deploy rolling out on test.
func world(t *testing.T) http.Handler {
	t.Helper()
	cfg, err := config.Parse("dashboard_test.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	run := func(stage, sha string, states ...deploy.State) {
		_, err := st.Record(ctx, store.Intake{Delivery: store.Delivery{ID: stage + sha, Event: "push"},
			Deploys: []deploy.Request{{App: "hello", Stage: stage, Repo: "acme/hello", SHA: sha,
				Trigger: deploy.Trigger{Event: "pull_request", PR: 7, Actor: "octocat"}}}})
		if err != nil {
			t.Fatal(err)
		}
		_, l, err := st.ClaimDeploy(ctx, "t", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			u := store.Update{State: s}
			if s == deploy.RollingOut {
				cp, _ := json.Marshal(pipeline.Checkpoint{Progress: "api: 2 of 3 pods updated"})
				u.Checkpoint = cp
			}
			if err := st.Advance(ctx, l, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	ok := []deploy.State{deploy.Preflight, deploy.Building, deploy.RollingOut, deploy.Succeeded}
	run("alpha", "aaaaaaa1111111111111111111111111111111111", ok...)
	run("test", "bbbbbbb2222222222222222222222222222222222", ok...)
	run("test", "ccccccc3333333333333333333333333333333333", deploy.Preflight, deploy.Building, deploy.RollingOut)
	return New(st, cfg, "https://github.com", slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestPage(t *testing.T) {
	w := httptest.NewRecorder()
	world(t).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	body := w.Body.String()
	for _, want := range []string{
		`<section class="stage" id="hello-test">`, `<section class="stage" id="hello-alpha">`, `<section class="stage" id="hello-prod">`,
		`<a href="https://github.com/acme/hello/commit/bbbbbbb2222222222222222222222222222222222">bbbbbbb</a>`, // live on test
		`by @octocat`, `<a href="https://github.com/acme/hello/pull/7">#7</a>`,
		`https://github.com/acme/hello/compare/aaaaaaa1111111111111111111111111111111111...bbbbbbb2222222222222222222222222222222222`,
		`<span class="state">rolling out</span>`, `api: 2 of 3 pods updated`, // in flight
		`nothing yet`, // prod
		`<meta http-equiv="refresh" content="5">`, // a deploy runs: the page refreshes itself
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("answer %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}

// chromium finds Debian's Chromium, installing it with the project's script when missing.
func chromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "install-chromium.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if p, lerr := exec.LookPath("chromium"); lerr == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Chromium is required under CI=true: %v\n%s", err, out)
	}
	t.Skipf("no Chromium (run scripts/install-chromium.sh): %v", err)
	return ""
}

// TestInBrowser renders the page in a real headless Chromium: the DOM it built has the stages,
// and its screenshot is not blank.
func TestInBrowser(t *testing.T) {
	bin := chromium(t)
	srv := httptest.NewServer(world(t))
	defer srv.Close()
	dir := t.TempDir()
	shot := filepath.Join(dir, "dashboard.png")
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1280,900", "--hide-scrollbars"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dom, err := exec.CommandContext(ctx, bin, append(flags, "--dump-dom", srv.URL+"/")...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	for _, want := range []string{`id="hello-test"`, `id="hello-prod"`, "api: 2 of 3 pods updated"} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the DOM Chromium built lacks %s", want)
		}
	}
	if out, err := exec.CommandContext(ctx, bin, append(flags, "--screenshot="+shot, srv.URL+"/")...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	colors := map[uint32]bool{}
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[(r>>11)<<10|(g>>11)<<5|bl>>11] = true
			if r+g+bl < 3*0x8000 {
				dark++
			}
		}
	}
	samples := (b.Dx() / 2) * (b.Dy() / 2)
	t.Logf("screenshot %dx%d: %d colours, %.2f%% dark pixels", b.Dx(), b.Dy(), len(colors), 100*float64(dark)/float64(samples))
	if len(colors) < 8 || dark < samples/500 {
		t.Errorf("the screenshot looks blank: %d colours, %d dark pixels of %d", len(colors), dark, samples)
	}
	// STAGECOACH_SCREENSHOT=FILE keeps the screenshot, to look at it.
	if keep := os.Getenv("STAGECOACH_SCREENSHOT"); keep != "" {
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(keep, b, 0o644)
		}
	}
}
