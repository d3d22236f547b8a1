// Package chaos runs Stagecoach as an operator scaling out would, and breaks what it runs on: N
// real `stagecoach serve` processes share one real PostgreSQL, against the GitHub and AWS test
// servers and a real Kubernetes control plane. GitHub's webhooks reach the replicas through a
// small round-robin front, as a load balancer would spread them; a delivery that fails (its
// replica died, or PostgreSQL was down) is redelivered, as GitHub's "Redeliver" does.
//
// The workload is 4 app/stage targets (apps web and api, each in its own repository, on stages
// test and alpha) × pushes, with `/deploy` commands on pull requests and duplicate
// redeliveries of webhooks already taken. Meanwhile a random replica is killed with SIGKILL
// every few seconds and restarted, PostgreSQL is restarted once, GitHub answers 502 for a few
// seconds, twice, and with secondary rate limits, and CodeBuild throttles, twice. GitHub takes
// a moment to answer each call after acting on it, as it does for real. Then each target gets one
// last push, the faults stop, and once everything has ended the invariants are checked, each
// from the source of truth for it (the store's tables, GitHub's and AWS's test servers, the
// cluster) rather than Stagecoach's HTTP API:
//
//   - every push was recorded as a deploy (nothing lost), and every deploy is final;
//   - never two deploys running on one target: the store's start and end times never overlap,
//     and the cluster never saw an older deploy's change after a newer deploy's;
//   - the last push wins on each target: the store's newest deploy is its commit and
//     succeeded, and the cluster runs that deploy's image, annotated with that commit;
//   - at most one CodeBuild build per deploy (its STAGECOACH_DEPLOY variable);
//   - exactly one check run per deploy (external_id) with the conclusion of its final state,
//     and one GitHub Deployment per deploy that started (payload stagecoach_deploy), whose last
//     status matches it; no status sent twice; nothing left queued or in progress;
//   - no Deployment status sent after a newer deploy's status for the same environment;
//   - every command's reply on GitHub reaches a final text (no ⏳ left);
//   - GitHub and AWS saw no request outside their descriptions.
//
// The figures (deploys, kills, PostgreSQL restarts, hand-over times from a kill to the killed
// replica's leased work being claimed elsewhere, duplicate and stale reports, replies left
// waiting, invariant violations) come back in a Result.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

// MinPushes is the fewest pushes a run takes: a round over the four targets, and the last one.
const MinPushes = 8

// Options configure a run. Binary, Dir, Postgres and Kube are required.
type Options struct {
	Binary   string            // the stagecoach binary the replicas run (Build makes one)
	Dir      string            // configuration, keys and the replicas' logs
	Postgres *pgtest.Server    // the PostgreSQL server; the run makes a database on it and restarts it once
	Kube     *kubetest.Cluster // the control plane; the run makes two namespaces in it

	Replicas int           // replicas (default 3)
	Pushes   int           // pushes in all, over the 4 targets, the last round included (default 160)
	Commands int           // `/deploy` commands (default Pushes/20, at least 1)
	Duration time.Duration // how long the pushes and faults go on before the last round (default 4 min)
	// KillEvery is the mean time between SIGKILLs of a random replica (each 0.6–1.4× it); zero
	// kills nothing.
	KillEvery time.Duration
	// NoFaults leaves out PostgreSQL's restart, GitHub's 502 window and secondary rate limits,
	// and CodeBuild's throttling.
	NoFaults bool
	// GitHubLatency is how long GitHub takes to answer each call once it has acted on it (as
	// real GitHub takes a few hundred milliseconds): a replica killed then has made an object
	// it never heard of. Default 100 ms; negative for none.
	GitHubLatency time.Duration
	// Settle bounds the wait for everything to end, before the last round and after it
	// (default 5 min each).
	Settle time.Duration
	Seed   uint64    // the random choices (default: random)
	Log    io.Writer // progress lines (default: discarded)
}

func (o *Options) defaults() error {
	if o.Binary == "" || o.Dir == "" || o.Postgres == nil || o.Kube == nil {
		return errors.New("chaos: Options.Binary, Dir, Postgres and Kube are required")
	}
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	if o.Pushes <= 0 {
		o.Pushes = 160
	}
	if o.Pushes < MinPushes {
		return fmt.Errorf("chaos: at least %d pushes (two rounds over the %d targets), got %d", MinPushes, len(targets), o.Pushes)
	}
	if o.Commands <= 0 {
		o.Commands = max(o.Pushes/20, 1)
	}
	if o.Duration <= 0 {
		o.Duration = 4 * time.Minute
	}
	if o.GitHubLatency == 0 {
		o.GitHubLatency = 100 * time.Millisecond
	}
	if o.Settle <= 0 {
		o.Settle = 5 * time.Minute
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Run plays the workload and its faults, waits for everything to end and checks the
// invariants. An error means the run could not be carried out (a replica never started, the
// cluster refused a namespace); a run that broke invariants returns a Result listing them.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	began := time.Now()
	w, err := newWorld(ctx, o)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if err := w.startReplicas(ctx); err != nil {
		return nil, err
	}
	w.logf("chaos: %d replicas up on PostgreSQL in %s (seed %d)", o.Replicas, time.Since(began).Round(time.Millisecond), o.Seed)

	obsCtx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	go w.observe(obsCtx)
	go w.watchCluster(obsCtx)
	go w.redeliverFailed(obsCtx)

	// The workload and its faults, then every replica up again.
	chaosCtx, stopChaos := context.WithCancel(ctx)
	chaosDone := make(chan struct{})
	go func() { defer close(chaosDone); w.chaos(chaosCtx) }()
	w.play(ctx)
	stopChaos()
	<-chaosDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := w.allUp(ctx); err != nil {
		return nil, err
	}
	w.logf("chaos: workload over after %s; waiting for it to settle", time.Since(began).Round(time.Second))
	if why := w.settle(ctx); why != "" {
		w.violation("before the last round: %s", why)
	}
	// The last round: one push per target, the newest request for each.
	w.lastRound()
	settled := w.settle(ctx)
	if settled != "" {
		w.violation("not settled: %s", settled)
	}
	stopObserving()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.logf("chaos: settled after %s; checking", time.Since(began).Round(time.Second))
	res := w.check(ctx)
	res.Elapsed = time.Since(began)
	return res, nil
}

// Build compiles the stagecoach binary of this module into dir, once, and returns its path:
// the replicas run what users run, not a test binary. It needs the module's source and the go
// command, as tests have them.
func Build(ctx context.Context, dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("chaos: cannot find the module's source")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	out := filepath.Join(dir, "stagecoach")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/stagecoach")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build ./cmd/stagecoach: %v\n%s", err, b)
	}
	return out, nil
}
