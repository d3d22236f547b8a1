package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/metrics"
	"github.com/stagecoach/stagecoach/internal/repoconfig"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// crashConfig is one app whose test stage deploys merges and whose prod takes release tags that
// succeeded on alpha.
const crashConfig = `
github: {app_id: %d, private_key_file: %q, api_url: %q, webhook_secret_file: %q}
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-prod"}
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: hello/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: hello/prod, deployments: [{name: api, containers: [api], service: api}]}
`

const crashSHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"

// TestKilledBetweenGitHubsAnswerAndTheCommitCreatesOneObject runs Stagecoach's job runner (every
// executor of the registration list) in a real child process and kills it with SIGKILL at each
// place it creates something on GitHub: after GitHub made the object, before the child could
// record it. A fresh child then finishes the work. Before, each retry created a second object
// (created first, recorded after, markers never searched); now exactly one is there.
func TestKilledBetweenGitHubsAnswerAndTheCommitCreatesOneObject(t *testing.T) {
	if os.Getenv("STAGECOACH_CRASH_CHILD") != "" {
		t.Skip("child process")
	}
	for _, tt := range []struct {
		name  string
		op    string                        // the create operation to be killed after
		body  string                        // ... whose body contains this
		setup func(*crashWorld)             // the work to do
		count func(*githubtest.Server) int  // the objects of the kind made, which must be 1
		done  func(*githubtest.Server) bool // the work is finished
	}{
		{"deploy check run", "checks/create", "stagecoach/test", func(w *crashWorld) { w.merge() },
			func(gh *githubtest.Server) int { return len(gh.CheckRuns("acme/hello")) },
			func(gh *githubtest.Server) bool { return len(gh.CheckRuns("acme/hello")) > 0 }},
		{"GitHub Deployment", "repos/create-deployment", "", func(w *crashWorld) { w.advance(w.merge(), deploy.Preflight) },
			func(gh *githubtest.Server) int { return len(gh.Deployments("acme/hello")) },
			func(gh *githubtest.Server) bool { return statuses(gh) == "queued" }},
		{"Deployment status", "repos/create-deployment-status", `"success"`, func(w *crashWorld) { w.advance(w.merge(), deploy.Succeeded) },
			func(gh *githubtest.Server) int { return strings.Count(statuses(gh), "success") },
			func(gh *githubtest.Server) bool { return strings.HasSuffix(statuses(gh), "success") }},
		{"pull request comment", "issues/create-comment", "stagecoach:deploy hello/test", func(w *crashWorld) { w.advance(w.merge(), deploy.Succeeded) },
			func(gh *githubtest.Server) int { return len(gh.Comments("acme/hello", 2)) },
			func(gh *githubtest.Server) bool { return len(gh.Comments("acme/hello", 2)) > 0 }},
		{"reply to a command", "issues/create-comment", "stagecoach:reply", func(w *crashWorld) { w.command("/help") },
			func(gh *githubtest.Server) int { return len(gh.Comments("acme/hello", 7)) - 1 },
			func(gh *githubtest.Server) bool { return len(gh.Comments("acme/hello", 7)) > 1 }},
		{"release issue", "issues/create", "stagecoach:release v1.0.0", func(w *crashWorld) { w.tag() },
			func(gh *githubtest.Server) int { return len(gh.Issues("acme/hello")) },
			func(gh *githubtest.Server) bool { return releaseRuns(gh) > 0 }},
		{"release check run", "checks/create", "stagecoach/release", func(w *crashWorld) { w.tag() },
			releaseRuns, func(gh *githubtest.Server) bool { return releaseRuns(gh) > 0 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newCrashWorld(t)
			tt.setup(w)
			var kill sync.Once
			killed := make(chan struct{})
			w.gh.BeforeAnswer(func(r githubtest.Request) {
				if r.Operation == tt.op && r.Status/100 == 2 && strings.Contains(string(r.Body), tt.body) {
					kill.Do(func() { w.kill(); close(killed) })
				}
			})
			w.start()
			select {
			case <-killed:
			case <-time.After(2 * time.Minute): // a generous bound: the child starts and runs its jobs on a busy machine
				t.Fatalf("the child never reached %s", tt.op)
			}
			w.gh.BeforeAnswer(nil)
			if n := tt.count(w.gh); n != 1 {
				t.Fatalf("%d objects when the child was killed, want the 1 GitHub made", n)
			}
			w.start() // a fresh process: every job it finds unfinished is retried
			eventually(t, "the work to finish", func() bool { return tt.done(w.gh) && w.idle() })
			w.kill()
			if n := tt.count(w.gh); n != 1 {
				t.Errorf("%d objects after the restart, want exactly 1", n)
			}
		})
	}
}

func releaseRuns(gh *githubtest.Server) int {
	n := 0
	for _, r := range gh.CheckRuns("acme/hello") {
		if r.Name == "stagecoach/release" {
			n++
		}
	}
	return n
}

func statuses(gh *githubtest.Server) string {
	var out []string
	for _, d := range gh.Deployments("acme/hello") {
		for _, s := range d.Statuses {
			out = append(out, s.State)
		}
	}
	return strings.Join(out, ",")
}

// crashWorld is a SQLite store, the GitHub test server and a child process running the jobs.
type crashWorld struct {
	t       *testing.T
	gh      *githubtest.Server
	st      *store.Store
	db, cfg string
	mu      sync.Mutex
	child   *exec.Cmd
	n       int
}

func newCrashWorld(t *testing.T) *crashWorld {
	dir := t.TempDir()
	gh := githubtest.New(t)
	key, secret := filepath.Join(dir, "app.pem"), filepath.Join(dir, "secret")
	os.WriteFile(key, gh.PrivateKeyPEM(), 0o600)
	os.WriteFile(secret, []byte("s"), 0o600)
	w := &crashWorld{t: t, gh: gh, db: filepath.Join(dir, "crash.db"), cfg: filepath.Join(dir, "stagecoach.yaml")}
	if err := os.WriteFile(w.cfg, fmt.Appendf(nil, crashConfig, gh.AppID(), key, gh.URL(), secret), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+w.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.kill(); st.Close() })
	w.st = st
	gh.AddCommit("acme/hello", crashSHA, nil, "Add a health endpoint", 2)
	return w
}

func (w *crashWorld) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	c.Env = append(os.Environ(), "STAGECOACH_CRASH_CHILD=1", "STAGECOACH_CRASH_DB="+w.db, "STAGECOACH_CRASH_CONFIG="+w.cfg)
	if err := c.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.child = c
}

// kill sends SIGKILL and waits for the child to be gone.
func (w *crashWorld) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.child != nil {
		_ = w.child.Process.Kill()
		_ = w.child.Wait()
		w.child = nil
	}
}

// idle reports whether no job is left to run (jobs nobody runs here are left out).
func (w *crashWorld) idle() bool {
	p, err := w.st.PendingJobs(context.Background())
	if err != nil {
		return false
	}
	for k, n := range p {
		if k != jobs.KindDeployEnded && n > 0 {
			return false
		}
	}
	return true
}

func (w *crashWorld) record(in store.Intake) store.Recorded {
	w.n++
	in.Delivery.ID = fmt.Sprintf("crash-%d", w.n)
	rec, err := w.st.Record(context.Background(), in)
	if err != nil {
		w.t.Fatal(err)
	}
	return rec
}

// merge records a merged pull request's deploy to test.
func (w *crashWorld) merge() int64 {
	r := deploy.Request{App: "hello", Stage: "test", Repo: "acme/hello", SHA: crashSHA, Ref: "master", InstallationID: 1,
		Trigger: deploy.Trigger{Event: "pull_request", PR: 2, Actor: "octocat", Delivery: "merge"}}
	return w.record(store.Intake{Delivery: store.Delivery{Event: "pull_request"}, Deploys: []deploy.Request{r}}).Deploys[0].ID
}

// advance moves deploy id to state as the pipeline does, through the states before it.
func (w *crashWorld) advance(id int64, to deploy.State) {
	ctx := context.Background()
	d, l, err := w.st.ClaimDeploy(ctx, "pipeline", time.Hour)
	if err != nil || d.ID != id {
		w.t.Fatalf("claimed %d: %v", d.ID, err)
	}
	cp := deploy.Checkpoint{}
	for _, s := range []deploy.State{deploy.Preflight, deploy.Building, deploy.RollingOut, deploy.Succeeded} {
		cp.Steps = append(cp.Steps, deploy.StepRecord{Name: string(s), Status: deploy.StepSucceeded})
		if err := w.st.Advance(ctx, l, store.Update{State: s, Checkpoint: cp.Encode()}); err != nil {
			w.t.Fatal(err)
		}
		if s == to {
			return
		}
	}
}

// command records a comment with a command on issue 7.
func (w *crashWorld) command(body string) {
	w.gh.AddPull("acme/hello", githubtest.Pull{Number: 7, Title: "Add a health endpoint", User: "dev", HeadSHA: crashSHA, HeadRef: "health", State: "open"})
	id := w.gh.Comment("acme/hello", 7, "dev", body)
	w.record(store.Intake{Delivery: store.Delivery{Event: "issue_comment"}, Jobs: []jobs.Job{{Kind: jobs.KindComment,
		Key: fmt.Sprintf("comment/%d", id), Payload: mustJSONBytes(jobs.Comment{Repo: "acme/hello", InstallationID: 1, Issue: 7,
			CommentID: id, Body: body, Author: "dev", AuthorType: "User", Association: "MEMBER", Delivery: "c"})}}})
}

// tag pushes release tag v1.0.0 on a commit that succeeded on alpha.
func (w *crashWorld) tag() {
	r := deploy.Request{App: "hello", Stage: "alpha", Repo: "acme/hello", SHA: crashSHA, Ref: "alpha", InstallationID: 1,
		Trigger: deploy.Trigger{Event: "push", Actor: "lead", Delivery: "alpha"}}
	id := w.record(store.Intake{Delivery: store.Delivery{Event: "push"}, Deploys: []deploy.Request{r}}).Deploys[0].ID
	w.advance(id, deploy.Succeeded)
	w.gh.SetRef("acme/hello", "refs/tags/v1.0.0", crashSHA)
	w.record(store.Intake{Delivery: store.Delivery{Event: "push"}, Jobs: []jobs.Job{{Kind: jobs.KindTagCreated, Key: "tag/v1.0.0",
		Payload: mustJSONBytes(jobs.Tag{Repo: "acme/hello", InstallationID: 1, Tag: "v1.0.0", SHA: crashSHA, Actor: "lead", Delivery: "t"})}}})
}

// TestCrashChild is the child of TestKilledBetweenGitHubsAnswerAndTheCommitCreatesOneObject: the
// job runner with the registration list, until killed.
func TestCrashChild(t *testing.T) {
	if os.Getenv("STAGECOACH_CRASH_CHILD") == "" {
		t.Skip("only runs as the child of TestKilledBetweenGitHubsAnswerAndTheCommitCreatesOneObject")
	}
	cfg, err := loadConfig(os.Getenv("STAGECOACH_CRASH_CONFIG"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+os.Getenv("STAGECOACH_CRASH_DB"))
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(io.Discard, "error")
	execs, services, err := executors(cfg, st, metrics.New(st, log), repoconfig.NewSyncer(cfg, st, repoconfig.SyncOptions{}, log), log)
	if err != nil {
		t.Fatal(err)
	}
	r, err := worker.New(st, execs, worker.Options{Owner: fmt.Sprintf("child-%d", os.Getpid()), LeaseTTL: 2 * time.Second,
		Poll: 20 * time.Millisecond, BaseBackoff: 50 * time.Millisecond, Services: services, ProbeEvery: 50 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Run(context.Background()) // until killed
}

func mustJSONBytes(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
