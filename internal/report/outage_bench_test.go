package report

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// outageWorld is a store, the GitHub test server and a running job runner with production's
// probe schedule.
type outageWorld struct {
	st  *store.Store
	gh  *githubtest.Server
	n   int
	cxl context.CancelFunc
}

func newOutageWorld(b *testing.B) *outageWorld {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "o.db"))
	if err != nil {
		b.Fatal(err)
	}
	gh := githubtest.New(b)
	f, _ := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run, err := worker.New(st, []worker.Executor{NewCheckRunCreator(st, f, "https://github.com", log).Executor(),
		NewProgress(st, f, withHello(), "https://github.com", log).Executor()},
		worker.Options{Services: []worker.Service{{Name: githubapp.Service, Probe: f.Probe}}}, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = run.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done; st.Close() })
	return &outageWorld{st: st, gh: gh, cxl: cancel}
}

func (w *outageWorld) deploys(b *testing.B, k int) {
	for range k {
		w.n++
		r := mergedPR
		r.Stage, r.SHA, r.Trigger.PR = fmt.Sprintf("pr#%d", w.n), fmt.Sprintf("%040x", w.n), w.n
		if _, err := w.st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: fmt.Sprintf("o%d", w.n), Event: "pull_request"},
			Deploys: []deploy.Request{r}}); err != nil {
			b.Fatal(err)
		}
	}
}

func (w *outageWorld) waitFor(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("gave up waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *outageWorld) idle() bool {
	p, _ := w.st.PendingJobs(context.Background())
	return p["checkrun.create"] == 0
}

// BenchmarkReportsAfterGitHubOutage: 10 check runs wait while GitHub answers 503 for 14 s; the
// figure is the time from GitHub answering again to the last of them on GitHub (target 10 s;
// the old runner took 43-106 s).
func BenchmarkReportsAfterGitHubOutage(b *testing.B) {
	w := newOutageWorld(b)
	for b.Loop() {
		w.gh.SetDown(true)
		w.deploys(b, 10)
		w.waitFor(b, func() bool { ok, _ := w.st.Blocked(context.Background(), githubapp.Service); return ok })
		time.Sleep(14 * time.Second) // the outage itself, not synchronization
		up := time.Now()
		w.gh.SetDown(false)
		w.waitFor(b, w.idle)
		b.ReportMetric(time.Since(up).Seconds(), "s-to-GitHub-after-outage")
	}
}

// BenchmarkNextCallAfterRetryAfter: GitHub answers a secondary rate limit with Retry-After: 3;
// the figure is the time from that answer to the next call (target: 3 s; the old runner's next
// call came 15-55 s later).
func BenchmarkNextCallAfterRetryAfter(b *testing.B) {
	w := newOutageWorld(b)
	for b.Loop() {
		w.gh.SecondaryRateLimit(1, 3*time.Second)
		before := len(w.gh.Requests())
		w.deploys(b, 1)
		w.waitFor(b, w.idle)
		reqs := w.gh.Requests()[before:]
		for i, r := range reqs {
			if r.Status == 403 && i+1 < len(reqs) {
				b.ReportMetric(reqs[i+1].At.Sub(r.At).Seconds(), "s-Retry-After-to-next-call")
				break
			}
		}
	}
}
