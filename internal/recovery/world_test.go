package recovery

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
	"github.com/stagecoach/stagecoach/internal/webhook"
)

// The test world: the GitHub test server delivering to Stagecoach's real intake (handlers.All,
// the store's durable Record), which can be taken down (503 to everything, as when every replica
// is down or failing); recovery runs on the same store with real GitHub clients.

const repo = "acme/web"

const configYAML = `
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test, promoters: {users: [lena]}}
  - {name: prod, branch: prod, trigger: push, credentials: prod, promote_from: alpha, promoters: {users: [paula]}}
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/prod"}
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    stages:
      test: {secret_id: web/test, deployments: [{name: web, containers: [web]}]}
      alpha: {secret_id: web/alpha, deployments: [{name: web, containers: [web]}]}
      prod: {secret_id: web/prod, deployments: [{name: web, containers: [web]}]}
`

var secret = []byte("recovery-test-secret")

type world struct {
	t       *testing.T
	gh      *githubtest.Server
	cfg     *config.Config
	st      *store.Store
	dsn     string
	hookURL string
	clients *githubapp.Factory
	up      atomic.Bool // false: the intake answers 503
	seen    *observer
	woken   atomic.Int32
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// newWorld is a world on a fresh SQLite store.
func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldOn(t, "sqlite:"+filepath.Join(t.TempDir(), "recovery.db"))
}

// newWorldOn is a world on the store at dsn.
func newWorldOn(t *testing.T, dsn string) *world {
	t.Helper()
	cfg, err := config.Parse("recovery.yaml", []byte(configYAML))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, gh: githubtest.New(t), cfg: cfg, seen: &observer{}}
	w.dsn = dsn
	w.st = openStore(t, w.dsn)
	intake, err := webhook.New(secret, handlers.All(cfg), w.st, nil, quiet(), webhook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.up.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !w.up.Load() {
			http.Error(rw, "every replica is down", http.StatusServiceUnavailable)
			return
		}
		intake.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.hookURL = srv.URL + "/webhook"
	w.gh.SetWebhook(w.hookURL, secret)
	if w.clients, err = githubapp.New(githubapp.Options{AppID: w.gh.AppID(), PrivateKey: w.gh.PrivateKeyPEM(), BaseURL: w.gh.URL()}); err != nil {
		t.Fatal(err)
	}
	root := sha('e') // not '0': forty zeros is a push's "no commit"
	w.gh.AddCommit(repo, root, nil, "Initial commit", 0)
	w.gh.SetDefaultBranch(repo, "master")
	for _, b := range []string{"master", "alpha", "prod"} {
		w.gh.SetRef(repo, b, root)
	}
	return w
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func sha(c byte) string { return strings.Repeat(string(c), 40) }

// runner is a recovery runner of this world, on st (the world's store when nil).
func (w *world) runner(owner string, st Store, hs []handlers.Handler) *Runner {
	w.t.Helper()
	if st == nil {
		st = w.st
	}
	if hs == nil {
		hs = handlers.All(w.cfg)
	}
	r, err := New(st, w.clients, w.cfg, hs, Options{Owner: owner, Observer: w.seen, Wake: func() { w.woken.Add(1) }}, quiet())
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// pass runs a pass, forced (the interval does not matter here), and waits for the deliveries
// it asked for to be answered.
func (w *world) pass(r *Runner) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Pass(ctx, true); err != nil {
		w.t.Fatalf("pass: %v", err)
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

// deploys are the recorded deploys, as "stage sha[:1] event", oldest first.
func (w *world) deploys() []deploy.Deploy {
	w.t.Helper()
	ds, err := w.st.ListDeploys(context.Background(), store.Filter{Limit: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	slices.Reverse(ds)
	return ds
}

// pushes names the pushes to guarded stages recorded for the admission gate (jobs.KindPush),
// "stage:sha-initial:gate", oldest first: a push to alpha or prod deploys only once the gate
// admits it, so recovery's work there is these jobs, not deploys.
func (w *world) pushes() []jobs.Push {
	w.t.Helper()
	driver, dsn := "pgx", w.dsn
	if path, ok := strings.CutPrefix(w.dsn, "sqlite:"); ok {
		driver, dsn = "sqlite", "file:"+path+"?mode=ro"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT payload FROM jobs WHERE kind = $1 ORDER BY id", jobs.KindPush)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []jobs.Push
	for rows.Next() {
		var payload string
		var p jobs.Push
		if err := rows.Scan(&payload); err != nil {
			w.t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(payload), &p); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// work describes what Stagecoach recorded to do: its deploys, then the pushes waiting for the
// admission gate ("alpha:a:gate").
func (w *world) work() string {
	w.t.Helper()
	out := describe(w.deploys())
	for _, p := range w.pushes() {
		out = strings.TrimSpace(out + " " + fmt.Sprintf("%s:%s:gate", p.Stage, p.After[:1]))
	}
	return out
}

func (w *world) jobs() map[string]int {
	w.t.Helper()
	n, err := w.st.PendingJobs(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) failed() int {
	n := 0
	for _, d := range w.gh.Deliveries() {
		if d.Failed() {
			n++
		}
	}
	return n
}

// observer counts what recovery reports.
type observer struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *observer) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[string]int{}
	}
	o.counts[k]++
}

func (o *observer) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[k]
}

func (o *observer) RecoveryPass(result string)  { o.add("pass " + result) }
func (o *observer) Redelivery(outcome string)   { o.add("redelivery " + outcome) }
func (o *observer) Recovered(how, event string) { o.add(how + " " + event) }
