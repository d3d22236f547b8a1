package repoconfig

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
	"github.com/stagecoach/stagecoach/internal/webhook"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// The test world: the GitHub test server delivering to Stagecoach's real intake (handlers.All,
// the store's durable Record); the repository configuration jobs run from the store, with real
// GitHub clients, one at a time (work).

const repo = "acme/web"

// serverYAML lets acme/web set its apps' buildspecs and Deployments.
const serverYAML = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/prod"}
repo_config:
  allowed_overrides: [stages.*.buildspec, stages.*.deployments]
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    stages:
      test: {secret_id: web/test, deployments: [{name: web, containers: [web]}]}
      prod: {secret_id: web/prod, deployments: [{name: web, containers: [web]}]}
  - name: payments
    repo: acme/payments
    codebuild_project: payments
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments
    stages:
      prod: {secret_id: payments/prod, deployments: [{name: payments, containers: [payments]}]}
`

// The files acme/web pushes.
const (
	goodFile = `apps:
  - name: web
    stages:
      test: {buildspec: ci/test.yml}
`
	betterFile = `apps:
  - name: web
    stages:
      test:
        buildspec: ci/test-2.yml
        deployments: [{name: web, containers: [web, migrate]}]
`
	// evilFile makes its author a promoter of prod and reads payments' prod secret.
	evilFile = `stages:
  - name: prod
    promoters: {users: [mallory]}
apps:
  - name: web
    stages:
      prod: {secret_id: payments/prod}
`
)

var secret = []byte("repoconfig-test-secret")

func TestMain(m *testing.M) { pgtest.Main(m) }

type world struct {
	t       *testing.T
	gh      *githubtest.Server
	cfg     *config.Config
	st      *store.Store
	sync    *Syncer
	execs   map[string]worker.Executor
	root    string
	clients *githubapp.Factory
}

// newWorld is a world on a fresh SQLite store.
func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldOn(t, githubtest.New(t), "sqlite:"+filepath.Join(t.TempDir(), "repoconfig.db"))
}

// newWorldOn is a replica: its own configuration (as each process loads the server's file),
// its store at dsn, its intake receiving gh's webhooks, its jobs.
func newWorldOn(t *testing.T, gh *githubtest.Server, dsn string) *world {
	t.Helper()
	cfg, err := config.Parse("server.yaml", []byte(serverYAML))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, gh: gh, cfg: cfg, root: sha('e')}
	w.st, err = store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.st.Close() })
	intake, err := webhook.New(secret, handlers.All(cfg), w.st, nil, quiet(), webhook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(intake)
	t.Cleanup(srv.Close)
	gh.SetWebhook(srv.URL+"/webhook", secret)
	if w.clients, err = githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()}); err != nil {
		t.Fatal(err)
	}
	w.sync = NewSyncer(cfg, w.st, SyncOptions{}, quiet())
	w.execs = map[string]worker.Executor{}
	for _, e := range []worker.Executor{NewLoader(cfg, w.st, w.clients, w.sync, quiet()).Executor(),
		NewCheckRuns(w.st, w.clients, "https://github.com", quiet()).Executor()} {
		w.execs[e.Kind()] = e
	}
	for _, r := range []string{repo, "acme/payments"} {
		if _, ok := gh.Ref(r, "master"); !ok {
			gh.AddCommit(r, w.root, nil, "Initial commit", 0)
			gh.SetDefaultBranch(r, "master")
			gh.SetRef(r, "master", w.root)
		}
	}
	return w
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sha(c byte) string { return strings.Repeat(string(c), 40) }

// push pushes a commit changing .github/stagecoach.yml on master as alice (content "" removes
// it), and waits for Stagecoach to have taken the webhook.
func (w *world) push(sha, content string) {
	w.t.Helper()
	if content == "" {
		w.gh.PushFiles(repo, "master", sha, "alice", nil, config.RepoFilePath)
	} else {
		w.gh.PushFiles(repo, "master", sha, "alice", map[string]string{config.RepoFilePath: content})
	}
	w.flush()
}

func (w *world) flush() {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.gh.Flush(ctx); err != nil {
		w.t.Fatal(err)
	}
}

// work runs every due repository configuration job, as the worker would, until none is left.
func (w *world) work() {
	w.t.Helper()
	ctx := context.Background()
	kinds := []string{jobs.KindRepoConfigLoad, jobs.KindRepoConfigCheckRun}
	for range 100 {
		j, lease, err := w.st.ClaimJob(ctx, "test", kinds, time.Minute)
		if errors.Is(err, store.ErrNoWork) {
			return
		}
		if err != nil {
			w.t.Fatal(err)
		}
		if err := w.execs[j.Kind].Run(ctx, j); err != nil {
			w.t.Fatalf("%s %s: %v", j.Kind, j.Key, err)
		}
		if err := w.st.FinishJob(ctx, lease); err != nil {
			w.t.Fatal(err)
		}
	}
	w.t.Fatal("jobs keep coming")
}

// buildspec is what web's test stage builds with, as this replica sees it now.
func (w *world) buildspec() string { return w.cfg.App("web").Stages["test"].Buildspec }

// checkRuns are the stagecoach/config check runs, oldest first.
func (w *world) checkRuns() []githubtest.CheckRun {
	var out []githubtest.CheckRun
	for _, cr := range w.gh.CheckRuns(repo) {
		if cr.Name == CheckName {
			out = append(out, cr)
		}
	}
	return out
}

// contentReads are the requests for acme/web's file, and what they were answered.
func (w *world) contentReads() []githubtest.Request {
	var out []githubtest.Request
	for _, r := range w.gh.Requests() {
		if r.Operation == "repos/get-content" && strings.HasPrefix(r.Path, "/repos/"+repo+"/") {
			out = append(out, r)
		}
	}
	return out
}

// row is acme/web's row in the store.
func (w *world) row() store.RepoConfig {
	w.t.Helper()
	rc, err := w.st.RepoConfig(context.Background(), repo)
	if err != nil {
		w.t.Fatal(err)
	}
	return rc
}
