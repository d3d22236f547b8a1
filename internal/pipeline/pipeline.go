// Package pipeline runs deploys: preflight, a CodeBuild build of the exact commit, then the new
// image set on the stage's Kubernetes Deployments and the rolling update followed to its end,
// rolled back when it fails. A deploy is a row in the store advanced one short step at a time: a
// step does one thing, records what it started in the deploy's checkpoint and says when to look
// again. It never sleeps in a loop, so a process killed at any point resumes every deploy where
// it stood, and never starts a second build or a second rollout for the same deploy.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/poller"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/verify"
)

// Store is what the pipeline needs of the store.
type Store interface {
	ClaimDeploy(ctx context.Context, owner string, ttl time.Duration) (deploy.Deploy, store.Lease, error)
	Heartbeat(ctx context.Context, l store.Lease, ttl time.Duration) error
	Advance(ctx context.Context, l store.Lease, u store.Update) error
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
	Succeeded(ctx context.Context, app, stage, sha string) (deploy.Deploy, bool, error)
	SlotImages(ctx context.Context, app, stage, slot string) (store.SlotImages, bool, error)
	SetSlotImages(ctx context.Context, l store.Lease, si store.SlotImages) error
	LiveSpans(ctx context.Context, app, stage, sha string) ([]store.Span, error)
}

// Cloud is what the pipeline needs of AWS.
type Cloud interface {
	SecretExists(ctx context.Context, s amazon.Session, id string) error
	FindBuild(ctx context.Context, s amazon.Session, q amazon.BuildQuery) (string, bool, error)
	StartBuild(ctx context.Context, s amazon.Session, in amazon.BuildInput) (string, error)
	GetBuild(ctx context.Context, s amazon.Session, id string) (amazon.Build, error)
	ImageDigest(ctx context.Context, s amazon.Session, repository, tag string) (string, error)
}

// Cluster is what the pipeline needs of one stage's Kubernetes namespace: images and rollouts
// of Deployments, and for a stage with two slots, which slot its Services select.
type Cluster interface {
	Images(ctx context.Context, targets []kube.Target) ([]kube.Image, error)
	SecretExists(ctx context.Context, name string) error
	SetImages(ctx context.Context, images []kube.Image, cause, sha, deployID string) (map[string]int64, error)
	Follow(ctx context.Context, name string, started time.Time, timeout, budget time.Duration, progress func(health.Status)) (health.Status, error)
	Status(ctx context.Context, name string) (health.Status, error)
	ServiceSlot(ctx context.Context, service string) (string, error)
	SwitchService(ctx context.Context, service, slot, cause, sha, deployID string) error
	SlotLabelOf(ctx context.Context, deployment string) (string, error)
}

// Clusters gives the cluster of a stage.
type Clusters interface {
	For(stage *config.Stage) (Cluster, error)
}

// Observer hears of deploys that ended (for metrics).
type Observer interface {
	DeployEnded(d deploy.Deploy, took time.Duration)
}

// Options tune the runner. Zero values take the defaults.
type Options struct {
	Owner       string // lease owner, unique per process (default: random)
	Concurrency int    // deploys advanced at once (default 4)
	// LeaseTTL is how long a claim on a deploy lasts on the database's clock (default 5 s):
	// heartbeats renew it every quarter while a step runs, and a replica that dies hands its
	// deploys over once it lapses.
	LeaseTTL time.Duration
	Poll     time.Duration // look for due deploys at least this often (default 1 s)
	// A running build is looked at every MinPoll during its first half minute, every EndPoll
	// around its expected end (learned from earlier builds), and otherwise every MaxPoll
	// (defaults 5 s, 1 s and 30 s): quick when a change is likely, bounded calls in between.
	MinPoll, EndPoll, MaxPoll time.Duration
	FollowBudget              time.Duration // how long one rollout step watches before yielding (default 20 s)
	ReportEvery               time.Duration // while a step runs, report at most this often (default 30 s)
	// RetryBudget is how long a step retries transient failures in a row before it gives up
	// (default 30 min); MaxBackoff caps the wait between two tries (default 1 min). A refusal
	// (amazon.Permanent, kube.Permanent) is not retried at all.
	RetryBudget, MaxBackoff time.Duration
	Now                     func() time.Time
	Observer                Observer // hears of ended deploys; may be nil
	// Checker asks verification's HTTP checks (default: verify.NewHTTP's client, on Now).
	Checker verify.Asker
	// RepoConfigs, when set, holds a deploy back before its first step while its repository's
	// own configuration file is being read (package repoconfig); nil never holds one.
	RepoConfigs RepoConfigs
}

// RepoConfigs says whether a deploy of a repository may start with the configuration in force.
type RepoConfigs interface {
	Ready(ctx context.Context, repo string) (bool, error)
}

// Runner claims due deploys and advances them.
type Runner struct {
	st       Store
	cfg      *config.Config
	cloud    Cloud
	clusters Clusters
	o        Options
	log      *slog.Logger
	poll     *poller.Poller
}

// New builds a runner. What it reports to GitHub is recorded by the store with each change
// (store.Update.Report).
func New(st Store, cfg *config.Config, cloud Cloud, clusters Clusters, o Options, log *slog.Logger) *Runner {
	if o.Owner == "" {
		o.Owner = fmt.Sprintf("pipeline-%016x", rand.Uint64())
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = config.DefaultLease
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MinPoll <= 0 {
		o.MinPoll = 5 * time.Second
	}
	if o.EndPoll <= 0 {
		o.EndPoll = time.Second
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = 30 * time.Second
	}
	if o.FollowBudget <= 0 {
		o.FollowBudget = 20 * time.Second
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = 30 * time.Second
	}
	if o.RetryBudget <= 0 {
		o.RetryBudget = config.DefaultRetryBudget
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Checker == nil {
		o.Checker = &verify.HTTP{Client: verify.NewClient(), Now: o.Now}
	}
	return &Runner{st: st, cfg: cfg, cloud: cloud, clusters: clusters, o: o, log: log, poll: poller.New()}
}

// Wake makes an idle runner look for due deploys now.
func (r *Runner) Wake() { r.poll.Wake() }

// Run advances deploys until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	r.poll.Run(ctx, r.o.Concurrency, r.o.Poll, r.RunOnce, func(err error) { r.log.Error("advancing a deploy", "err", err) })
	return nil
}

// RunOnce claims one due deploy and advances it by one step. It reports whether there was one.
func (r *Runner) RunOnce(ctx context.Context) (bool, error) {
	claimed := time.Now() // before the claim: the lease cannot end sooner than LeaseTTL after this
	d, lease, err := r.st.ClaimDeploy(ctx, r.o.Owner, r.o.LeaseTTL)
	if errors.Is(err, store.ErrNoWork) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claiming: %w", err)
	}
	cp, err := deploy.DecodeCheckpoint(d.Checkpoint)
	if err != nil {
		return true, r.save(ctx, d, lease, cp, result{state: deploy.Failed, err: fmt.Sprintf("unreadable checkpoint: %v", err)})
	}
	log := r.log.With("deploy", d.ID, "app", d.App, "stage", d.Stage, "sha", d.SHA, "delivery", d.Trigger.Delivery)

	// Keep the lease while the step runs; a lost lease stops the step.
	stepCtx, cancel := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		r.keepLease(stepCtx, cancel, lease, claimed, log)
	}()
	res := r.step(stepCtx, log, d, lease, &cp)
	cancel()
	<-hbDone
	if res.retry != "" {
		log.Warn("step failed; trying again", "err", res.retry, "attempt", cp.Retries, "in", res.after.Round(time.Millisecond))
	} else {
		cp.Retries, cp.RetryingSince = 0, time.Time{} // the step got through: a new streak starts from scratch
	}
	saveCtx, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelSave()
	return true, r.save(saveCtx, d, lease, cp, res)
}

// keepLease renews the lease every quarter of LeaseTTL until ctx ends. It stops the step
// (cancel) when the lease was taken over, or when the store has not confirmed a renewal for
// three quarters of LeaseTTL: the lease may lapse before the store answers again, and another
// replica may then take the deploy over. A store that fails a renewal or two (a PostgreSQL
// restart) does not stop the step by itself.
func (r *Runner) keepLease(ctx context.Context, cancel context.CancelFunc, lease store.Lease, since time.Time, log *slog.Logger) {
	t := time.NewTicker(r.o.LeaseTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		began := time.Now()
		hbCtx, done := context.WithTimeout(ctx, r.o.LeaseTTL/4)
		err := r.st.Heartbeat(hbCtx, lease, r.o.LeaseTTL)
		done()
		switch {
		case err == nil:
			since = began
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrLeaseLost):
			log.Warn("lease lost during a step", "err", err)
			cancel()
			return
		case time.Since(since) > r.o.LeaseTTL*3/4:
			log.Warn("lease not renewed in time; stopping the step", "err", err)
			cancel()
			return
		default:
			log.Warn("renewing the lease failed; trying again", "err", err)
		}
	}
}

// result is the outcome of one step.
type result struct {
	state  deploy.State  // "" keeps the state
	after  time.Duration // when to look again
	err    string        // the reason, for a failed deploy
	retry  string        // the transient failure the step will be tried again after
	report bool          // worth telling GitHub about though the state stays (a deploy starts waiting)
}

func (r *Runner) save(ctx context.Context, d deploy.Deploy, lease store.Lease, cp deploy.Checkpoint, res result) error {
	state := d.State
	if res.state != "" {
		state = res.state
	}
	now := r.o.Now()
	reportNow := res.report || state != d.State || (progressKey(&cp, state) != cp.ReportedKey && now.Sub(cp.ReportedAt) >= r.o.ReportEvery)
	if reportNow {
		cp.ReportedKey, cp.ReportedAt = progressKey(&cp, state), now
	}
	// The change and the reports it implies are one transaction (store.Advance): a crash can
	// lose neither the report of a step nor the deploy's end.
	err := r.st.Advance(ctx, lease, store.Update{State: res.state, Error: res.err, Checkpoint: cp.Encode(),
		RunAfter: now.Add(res.after), Release: true, Report: reportNow})
	if errors.Is(err, store.ErrConflict) {
		// Another deploy of this app and stage runs: wait for it.
		return r.st.Advance(ctx, lease, store.Update{RunAfter: now.Add(2 * time.Second), Release: true})
	}
	if errors.Is(err, store.ErrLeaseLost) {
		r.log.Info("deploy changed hands or ended during a step", "deploy", d.ID, "app", d.App, "stage", d.Stage, "sha", d.SHA, "delivery", d.Trigger.Delivery, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	d.State, d.Error = state, res.err
	if state.Final() && r.o.Observer != nil {
		start := d.StartedAt
		if start.IsZero() {
			start = d.CreatedAt
		}
		r.o.Observer.DeployEnded(d, now.Sub(start))
	}
	return nil
}

// progressKey is what a report shows of a step's progress: a new key is worth a report.
func progressKey(cp *deploy.Checkpoint, state deploy.State) string {
	return string(state) + "|" + cp.BuildPhase + "|" + cp.Progress + "|" + fmt.Sprint(cp.RollingBack) + "|" + fmt.Sprint(cp.RolloutDone)
}

// retry schedules a transient failure's next attempt with backoff, or fails the deploy when
// the failures have lasted the step's time budget, or at once when err is a refusal that
// retrying cannot change. (A step that changed images turns that failure into its rollback.)
func (r *Runner) retry(cp *deploy.Checkpoint, what string, err error) result {
	now := r.o.Now()
	if amazon.Permanent(err) || kube.Permanent(err) {
		why := fmt.Sprintf("%s: %v", what, err)
		failRunning(cp, why, now)
		return result{state: deploy.Failed, err: why}
	}
	if cp.RetryingSince.IsZero() {
		cp.RetryingSince = now
	}
	cp.Retries++
	if failing := now.Sub(cp.RetryingSince); failing >= r.o.RetryBudget {
		why := fmt.Sprintf("%s: gave up after %d attempts in %s: %v", what, cp.Retries, failing.Round(time.Second), err)
		failRunning(cp, why, now)
		return result{state: deploy.Failed, err: why}
	}
	backoff := min(time.Second<<min(cp.Retries, 16), r.o.MaxBackoff)
	return result{after: backoff/2 + rand.N(backoff/2+1), retry: fmt.Sprintf("%s: %v", what, err)}
}
