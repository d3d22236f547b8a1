package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/signin"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
	"github.com/stagecoach/stagecoach/internal/webhook"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	kubetest.Stop()
	os.Exit(code)
}

// appConfig configures the fixtures' repository; its test stage is in kubeconfig's cluster.
const appConfig = `
log_level: debug
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod,
     kubernetes: {kubeconfig: %q, context: %q, namespace: %q}}
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-prod"}
apps:
  - name: hello
    repo: Codertocat/Hello-World
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
`

const mergeSHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"

// testServer is a Stagecoach started through run(), as the binary starts it.
type testServer struct {
	url      string // the public listener
	internal string // the internal listener: metrics and probes
	secret   []byte
	stop     func() error
}

// lineWriter hands each complete line written to it to a channel.
type lineWriter struct {
	lines chan string
	buf   bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		select {
		case w.lines <- strings.TrimSpace(line):
		default:
		}
	}
}

// awsEnv points the AWS SDK at the AWS test servers, through the standard variables; without
// them the SDK would look for credentials on the network.
func awsEnv(t testing.TB, env *awstest.Env) {
	t.Setenv("AWS_ENDPOINT_URL", env.URL())
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSTAGECOACHTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	env.STS.Allow("arn:aws:iam::123456789012:role/stagecoach-nonprod", "")
}

// cluster says where the test stage runs: kubeconfig path, context and namespace.
type cluster struct{ kubeconfig, context, namespace string }

func startServer(t testing.TB, storeDSN string, env map[string]string, c cluster, extra ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "stagecoach.yaml")
	if c.kubeconfig == "" { // no cluster: a kubeconfig that does not exist, never the developer's own
		c = cluster{kubeconfig: filepath.Join(dir, "no-kubeconfig"), context: "none", namespace: "test"}
	}
	cfg := fmt.Appendf(nil, appConfig, c.kubeconfig, c.context, c.namespace)
	cfg = fmt.Appendf(cfg, "signin:\n  api_tokens: [{name: tests, sha256: %s}]\n", signin.HashToken(testToken))
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "e2e-secret"
	vars := map[string]string{"STAGECOACH_WEBHOOK_SECRET": secret, "STAGECOACH_STORE": storeDSN}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &lineWriter{lines: make(chan string, 16)}
	logs, err := os.Create(filepath.Join(dir, "stagecoach.log"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		args := append([]string{"serve", "--config", cfgFile, "--listen", "127.0.0.1:0", "--internal-listen", "127.0.0.1:0"}, extra...)
		done <- run(ctx, args, func(k string) string { return vars[k] }, stdout, logs)
	}()
	addr := regexp.MustCompile(`listening on (http://\S+) \(internal (http://[^;]+);`)
	select {
	case line := <-stdout.lines:
		m := addr.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected first line %q", line)
		}
		s := &testServer{url: m[1], internal: m[2], secret: []byte(secret)}
		s.stop = func() error { cancel(); return <-done }
		t.Cleanup(func() {
			if err := s.stop(); err != nil {
				t.Errorf("run returned %v", err)
			}
			if t.Failed() {
				b, _ := os.ReadFile(logs.Name())
				t.Logf("server log:\n%s", b)
			}
		})
		return s
	case err := <-done:
		cancel()
		t.Fatalf("run ended early: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	return nil
}

func (s *testServer) deliver(t testing.TB, event, delivery string, body []byte, secret []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type apiDeploy struct {
	ID         int64  `json:"id"`
	App        string `json:"app"`
	Stage      string `json:"stage"`
	SHA        string `json:"sha"`
	State      string `json:"state"`
	CheckRunID int64  `json:"check_run_id"`
	Trigger    struct {
		Event    string `json:"event"`
		Delivery string `json:"delivery"`
		PR       int    `json:"pr"`
		Actor    string `json:"actor"`
	} `json:"trigger"`
}

// testToken is the tests' read-only API token: with a GitHub App configured the API is closed to
// anyone else.
const testToken = "sct_cmd-stagecoach-tests"

func (s *testServer) deploys(t testing.TB, query string) []apiDeploy {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/deployments"+query, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET deployments: %d %s", resp.StatusCode, b)
	}
	var out struct{ Deployments []apiDeploy }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Deployments
}

// eventually polls cond until it holds or the deadline passes; it waits on real work in
// another goroutine, it does not time anything.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMergedPullRequestEndToEnd is the core issue's acceptance test, on each store: a signed
// merged-PR delivery creates exactly one queued test deploy even when delivered three times; a
// forged one is refused and creates nothing; with GitHub down intake still answers 202, and the
// check run is created once GitHub answers again.
func TestMergedPullRequestEndToEnd(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "e2e.db") },
		"postgres": func(t *testing.T) string { return pgtest.URL(t) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			gh := githubtest.New(t)
			keyFile := filepath.Join(t.TempDir(), "app.pem")
			if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
				t.Fatal(err)
			}
			gh.SetDown(true)
			awsEnv(t, awstest.New(t)) // an AWS without the stage's secret: the deploy fails its preflight
			s := startServer(t, stores[name](t), map[string]string{
				"STAGECOACH_GITHUB_APP_ID":           fmt.Sprint(gh.AppID()),
				"STAGECOACH_GITHUB_PRIVATE_KEY_FILE": keyFile,
				"STAGECOACH_GITHUB_API_URL":          gh.URL(),
			}, cluster{})
			body, err := os.ReadFile("../../handlers/testdata/pull_request_closed_merged.json")
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				code, answer := s.deliver(t, "pull_request", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body, s.secret)
				if code != http.StatusAccepted {
					t.Fatalf("delivery %d: %d %s", i+1, code, answer)
				}
			}
			// The push of the merge commit to master is the same deploy (app, stage, sha).
			push, err := os.ReadFile("../../handlers/testdata/push_master_merge_commit.json")
			if err != nil {
				t.Fatal(err)
			}
			if code, answer := s.deliver(t, "push", "push-of-merge-commit", push, s.secret); code != http.StatusAccepted {
				t.Fatalf("push: %d %s", code, answer)
			}
			if code, answer := s.deliver(t, "pull_request", "forged-1", body, []byte("guess")); code != http.StatusUnauthorized {
				t.Fatalf("forged delivery: %d %s, want 401", code, answer)
			}
			ds := s.deploys(t, "?app=hello&stage=test")
			if len(ds) != 1 {
				t.Fatalf("deploys = %+v, want exactly one", ds)
			}
			d := ds[0]
			if d.SHA != mergeSHA || d.Trigger.PR != 2 || d.Trigger.Event != "pull_request" ||
				d.Trigger.Delivery != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || d.Trigger.Actor != "Codertocat" {
				t.Errorf("deploy = %+v", d)
			}
			if got := s.deploys(t, "?state=succeeded"); len(got) != 0 {
				t.Errorf("state filter: got %+v, want none", got)
			}

			// GitHub is down: the reporter has tried and failed, and intake was not held up.
			eventually(t, "a report attempt while GitHub is down", func() bool { return len(gh.Requests()) > 0 })
			if n := len(gh.CheckRuns("Codertocat/Hello-World")); n != 0 {
				t.Fatalf("%d check runs while GitHub was down", n)
			}
			gh.SetDown(false)
			eventually(t, "the check run once GitHub answers", func() bool { return s.deploys(t, "")[0].CheckRunID != 0 })
			// Meanwhile the deploy ran its preflight, which found the secret missing: the
			// check run ends saying so.
			eventually(t, "the check run to complete", func() bool {
				runs := gh.CheckRuns("Codertocat/Hello-World")
				return len(runs) == 1 && runs[0].Status == "completed"
			})
			runs := gh.CheckRuns("Codertocat/Hello-World")
			want := "Failed: preflight: secret hello/test not found in Secrets Manager (eu-west-1) (credentials tier nonprod)"
			if r := runs[0]; r.Name != "stagecoach/test" || r.HeadSHA != mergeSHA || r.Conclusion != "failure" || !strings.HasPrefix(r.Title, want) {
				t.Errorf("check run = %+v, want title %q", r, want)
			}
			if rej := gh.Rejected(); len(rej) != 0 {
				t.Errorf("GitHub test server rejected %d requests: %+v", len(rej), rej)
			}
		})
	}
}

// TestRecordOnly runs the service with --deploy=false: deploys are recorded and stay queued,
// and nothing reaches for AWS or a cluster.
func TestRecordOnly(t *testing.T) {
	cloud := awstest.New(t)
	awsEnv(t, cloud)
	s := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "e2e.db"), nil, cluster{}, "--deploy=false")
	body, _ := os.ReadFile("../../handlers/testdata/pull_request_closed_merged.json")
	if code, answer := s.deliver(t, "pull_request", "d1", body, s.secret); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, answer)
	}
	ds := s.deploys(t, "")
	if len(ds) != 1 || ds[0].State != "queued" {
		t.Fatalf("deploys = %+v, want one queued", ds)
	}
	time.Sleep(300 * time.Millisecond) // time a running pipeline would have used to start
	if ds := s.deploys(t, ""); ds[0].State != "queued" || len(cloud.Calls("")) != 0 {
		t.Errorf("the deploy ran: %s, %d AWS calls", ds[0].State, len(cloud.Calls("")))
	}
}

func TestReplay(t *testing.T) {
	s := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "e2e.db"), nil, cluster{}, "--deploy=false")
	var out, errOut bytes.Buffer
	env := func(k string) string { return map[string]string{"STAGECOACH_WEBHOOK_SECRET": string(s.secret)}[k] }
	args := []string{"replay", "../../handlers/testdata/pull_request_closed_merged.json", "--event", "pull_request", "--url", s.url + "/webhook", "--delivery", "replayed-1"}
	if err := run(context.Background(), args, env, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "202 Accepted") || !strings.Contains(out.String(), `"accepted"`) {
		t.Errorf("replay printed %q", out.String())
	}
	if ds := s.deploys(t, ""); len(ds) != 1 || ds[0].Trigger.Delivery != "replayed-1" {
		t.Errorf("deploys = %+v", ds)
	}
	// A wrong secret: the server refuses it and replay says so with a non-zero exit.
	out.Reset()
	bad := func(k string) string { return map[string]string{"STAGECOACH_WEBHOOK_SECRET": "wrong"}[k] }
	if err := run(context.Background(), args, bad, &out, &errOut); err == nil || !strings.Contains(out.String(), "401") {
		t.Errorf("forged replay: %v, %q", err, out.String())
	}
	if err := run(context.Background(), []string{"replay", "--event", "push"}, env, &out, &errOut); exitCode(err) != 2 {
		t.Errorf("replay without a file: %v", err)
	}
}

func TestCheckConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "../../config/example.yaml"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("example config: %v\n%s%s", err, out.String(), errOut.String())
	}
	if strings.TrimSpace(out.String()) != "ok" {
		t.Errorf("check-config printed %q, want ok", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("stages:\n  - name: test\n    trigger: merged\n    brnach: master\n"), 0o600)
	out.Reset()
	err := run(context.Background(), []string{"check-config", bad}, func(string) string { return "" }, &out, &errOut)
	if err == nil || exitCode(err) == 0 {
		t.Fatalf("bad config passed: %q", out.String())
	}
	sc := bufio.NewScanner(&out)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[0], bad+":") {
		t.Errorf("want every problem as file:line: field: message, got %q", lines)
	}
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &out, &errOut)
	if exitCode(err) != 2 || !strings.Contains(errOut.String(), "Usage:") {
		t.Errorf("unknown command: err %v, stderr %q", err, errOut.String())
	}
}

// TestSetup runs `stagecoach setup` against the GitHub test server, following GitHub's redirect
// as a browser would.
func TestSetup(t *testing.T) {
	gh := githubtest.New(t)
	gh.AddManifestCode("code-1")
	out := filepath.Join(t.TempDir(), "secrets")
	stdout := &lineWriter{lines: make(chan string, 32)}
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"setup", "--listen", "127.0.0.1:0", "--out", out, "--api-url", gh.URL(), "--manifest", "../../app.yml"},
			func(string) string { return "" }, stdout, io.Discard)
	}()
	var base string
	select {
	case line := <-stdout.lines:
		m := regexp.MustCompile(`Open (http://\S+)/ in your browser`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("first line %q", line)
		}
		base = m[1]
	case <-time.After(10 * time.Second):
		t.Fatal("setup did not start")
	}
	page, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	state := regexp.MustCompile(`state=([0-9a-f]+)`).FindStringSubmatch(string(body))
	if state == nil {
		t.Fatalf("no state in the page: %s", body)
	}
	resp, err := http.Get(base + "/callback?code=code-1&state=" + state[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatalf("setup: %v", err)
	}
	if id, _ := os.ReadFile(filepath.Join(out, "github-app-id")); strings.TrimSpace(string(id)) != fmt.Sprint(gh.AppID()) {
		t.Errorf("app id file = %q", id)
	}
}
