// Package worker runs durable jobs. It claims due jobs from the store under a lease, runs each
// with the executor registered for its kind, and records the outcome: done, retried later with
// backoff, or failed for good. It never sleeps inside a job; between claims it waits for a poll
// tick or a Wake from the intake, whichever comes first.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/poller"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what the runner needs of the store.
type Store interface {
	ClaimJob(ctx context.Context, owner string, kinds []string, ttl time.Duration) (jobs.Job, store.Lease, error)
	FinishJob(ctx context.Context, l store.Lease) error
	RetryJob(ctx context.Context, l store.Lease, runAfter time.Time, lastErr string) error
	FailJob(ctx context.Context, l store.Lease, lastErr string) error
}

// Executor runs the jobs of one kind. Run returns nil when done, a jobs.TerminalError when
// retrying cannot help, a jobs.RetryAfterError to set the next attempt's time, and any other
// error to be retried with backoff.
type Executor interface {
	Kind() string
	Run(ctx context.Context, j jobs.Job) error
}

// Options tune a Runner. Zero values take the defaults.
type Options struct {
	Owner       string        // lease owner: unique per process (default: random)
	Concurrency int           // jobs run at once (default 4)
	LeaseTTL    time.Duration // a job not finished by then is taken over (default 2 min)
	Poll        time.Duration // look for due jobs at least this often (default 1 s)
	MaxAttempts int           // then the job fails for good (default 25: two to three hours of backoff)
	BaseBackoff time.Duration // first retry delay (default 2 s), doubling, with jitter
	MaxBackoff  time.Duration // cap (default 10 min)
	Now         func() time.Time
}

// Runner claims and runs jobs until its context ends.
type Runner struct {
	st    Store
	execs map[string]Executor
	kinds []string
	o     Options
	log   *slog.Logger
	poll  *poller.Poller
}

// New builds a Runner over one registration list of executors.
func New(st Store, execs []Executor, o Options, log *slog.Logger) (*Runner, error) {
	r := &Runner{st: st, execs: map[string]Executor{}, o: o, log: log, poll: poller.New()}
	for _, e := range execs {
		if _, dup := r.execs[e.Kind()]; dup {
			return nil, fmt.Errorf("worker: two executors for job kind %q", e.Kind())
		}
		r.execs[e.Kind()] = e
		r.kinds = append(r.kinds, e.Kind())
	}
	if r.o.Owner == "" {
		r.o.Owner = fmt.Sprintf("worker-%016x", rand.Uint64())
	}
	if r.o.Concurrency <= 0 {
		r.o.Concurrency = 4
	}
	if r.o.LeaseTTL <= 0 {
		r.o.LeaseTTL = 2 * time.Minute
	}
	if r.o.Poll <= 0 {
		r.o.Poll = time.Second
	}
	if r.o.MaxAttempts <= 0 {
		r.o.MaxAttempts = 25
	}
	if r.o.BaseBackoff <= 0 {
		r.o.BaseBackoff = 2 * time.Second
	}
	if r.o.MaxBackoff <= 0 {
		r.o.MaxBackoff = 10 * time.Minute
	}
	if r.o.Now == nil {
		r.o.Now = time.Now
	}
	return r, nil
}

// Wake makes an idle runner look for jobs now (the intake calls it after recording work).
func (r *Runner) Wake() { r.poll.Wake() }

// Run works until ctx ends, then waits for the jobs in hand to finish.
func (r *Runner) Run(ctx context.Context) error {
	if len(r.kinds) == 0 {
		<-ctx.Done()
		return nil
	}
	r.poll.Run(ctx, r.o.Concurrency, r.o.Poll, r.RunOne, func(err error) { r.log.Error("claiming a job", "err", err) })
	return nil
}

// RunOne claims and runs one due job. It reports whether there was one.
func (r *Runner) RunOne(ctx context.Context) (bool, error) {
	j, lease, err := r.st.ClaimJob(ctx, r.o.Owner, r.kinds, r.o.LeaseTTL)
	if errors.Is(err, store.ErrNoWork) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claiming: %w", err)
	}
	log := r.log.With("job", j.ID, "kind", j.Kind, "attempt", j.Attempts+1)
	// The job runs on a context that outlives a shutdown signal long enough to finish its one
	// call; the lease covers a process that dies instead.
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.LeaseTTL/2)
	defer cancel()
	runErr := r.execs[j.Kind].Run(runCtx, j)
	// Record the outcome even if ctx ended meanwhile: losing it would run the job again.
	saveCtx, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelSave()
	switch {
	case runErr == nil:
		err = r.st.FinishJob(saveCtx, lease)
	case jobs.IsTerminal(runErr):
		log.Error("job failed", "err", runErr)
		err = r.st.FailJob(saveCtx, lease, runErr.Error())
	case j.Attempts+1 >= r.o.MaxAttempts:
		log.Error("job failed after its last attempt", "err", runErr)
		err = r.st.FailJob(saveCtx, lease, fmt.Sprintf("after %d attempts: %v", j.Attempts+1, runErr))
	default:
		delay := r.backoff(j.Attempts, runErr)
		log.Warn("job will be retried", "err", runErr, "in", delay.Round(time.Millisecond))
		err = r.st.RetryJob(saveCtx, lease, r.o.Now().Add(delay), runErr.Error())
	}
	if err != nil {
		return true, fmt.Errorf("recording the outcome of job %d: %w", j.ID, err)
	}
	return true, nil
}

// backoff is the delay before attempt n+1: exponential with full jitter on its upper half, or
// what a RetryAfterError asks for if that is later.
func (r *Runner) backoff(attempts int, err error) time.Duration {
	d := r.o.BaseBackoff << min(attempts, 20)
	if d <= 0 || d > r.o.MaxBackoff {
		d = r.o.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	var ra *jobs.RetryAfterError
	if errors.As(err, &ra) && ra.After > d {
		d = ra.After
	}
	return d
}
