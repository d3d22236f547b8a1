// Package worker runs durable jobs. It claims due jobs from the store under a short lease (5 s,
// on the database's clock) that heartbeats renew while the job runs, so a replica that dies
// mid-job hands the job over within seconds; it runs each with the executor registered for its
// kind, and records the outcome: done, retried later with backoff, postponed (a rate limit's
// exact wait, or an outage of a service the job needs), or failed for good. It never sleeps inside a job; between claims it waits for a poll tick, a
// commit in this process that made work due, or the time of the next retry it scheduled.
//
// While jobs wait for a service that stopped answering (GitHub), the runner asks the service
// whether it answers again every ProbeEvery, with a call that costs nothing (Service.Probe), and
// wakes every waiting job the moment it does, on every replica: the store holds them.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/poller"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what the runner needs of the store.
type Store interface {
	ClaimJob(ctx context.Context, owner string, kinds []string, ttl time.Duration) (jobs.Job, store.Lease, error)
	HeartbeatJob(ctx context.Context, l store.Lease, ttl time.Duration) error
	FinishJob(ctx context.Context, l store.Lease) error
	RetryJob(ctx context.Context, l store.Lease, runAfter time.Time, lastErr string) error
	PostponeJob(ctx context.Context, l store.Lease, runAfter time.Time, lastErr, blockedOn string) error
	FailJob(ctx context.Context, l store.Lease, lastErr string) error
	UnblockJobs(ctx context.Context, service string) (int64, error)
	Blocked(ctx context.Context, service string) (bool, error)
	OnCommit(kinds store.Wakeup, fn func())
}

// Executor runs the jobs of one kind. Run returns nil when done, a jobs.TerminalError when
// retrying cannot help, a jobs.RetryAfterError to set the next attempt's time, a
// jobs.UnavailableError when a service did not answer, and any other error to be retried with
// backoff.
type Executor interface {
	Kind() string
	Run(ctx context.Context, j jobs.Job) error
}

// Handle makes the Executor of one kind from a function of the job's decoded payload: the one
// place a payload is decoded. A payload that does not decode fails the job for good.
func Handle[T any](kind string, fn func(ctx context.Context, j jobs.Job, payload T) error) Executor {
	return handler[T]{kind: kind, fn: fn}
}

type handler[T any] struct {
	kind string
	fn   func(context.Context, jobs.Job, T) error
}

func (h handler[T]) Kind() string { return h.kind }

func (h handler[T]) Run(ctx context.Context, j jobs.Job) error {
	var p T
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Terminal(fmt.Errorf("decoding %s payload: %w", j.Kind, err))
	}
	return h.fn(ctx, j, p)
}

// Service is something jobs call that can stop answering (GitHub). Probe asks it whether it
// answers, as cheaply as it can (GitHub: GET /rate_limit, which costs no rate limit).
type Service struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Options tune a Runner. Zero values take the defaults.
type Options struct {
	Owner       string        // lease owner: unique per process (default: host, pid and a random part)
	Concurrency int           // jobs run at once (default 4)
	LeaseTTL    time.Duration // a job's lease, renewed every quarter of it while the job runs (default 5 s)
	RunTimeout  time.Duration // one run of a job is cut off after this (default 60 s)
	Poll        time.Duration // look for due jobs at least this often (default 1 s)
	MaxAttempts int           // then the job fails for good (default 25: two to three hours of backoff)
	BaseBackoff time.Duration // first retry delay (default 2 s), doubling, with jitter
	MaxBackoff  time.Duration // cap (default 10 min)
	Services    []Service     // services jobs wait for when they do not answer
	ProbeEvery  time.Duration // while jobs wait for a service, ask it this often (default 1 s)
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

	mu     sync.Mutex
	lastOK map[string]time.Time // when each service last answered a probe
}

// New builds a Runner over one registration list of executors. The store wakes it after every
// commit that made jobs due.
func New(st Store, execs []Executor, o Options, log *slog.Logger) (*Runner, error) {
	r := &Runner{st: st, execs: map[string]Executor{}, o: o, log: log, poll: poller.New(), lastOK: map[string]time.Time{}}
	for _, e := range execs {
		if _, dup := r.execs[e.Kind()]; dup {
			return nil, fmt.Errorf("worker: two executors for job kind %q", e.Kind())
		}
		r.execs[e.Kind()] = e
		r.kinds = append(r.kinds, e.Kind())
	}
	if r.o.Owner == "" {
		r.o.Owner = DefaultOwner("worker")
	}
	if r.o.Concurrency <= 0 {
		r.o.Concurrency = 4
	}
	if r.o.LeaseTTL <= 0 {
		r.o.LeaseTTL = DefaultLeaseTTL
	}
	if r.o.RunTimeout <= 0 {
		r.o.RunTimeout = time.Minute
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
	if r.o.ProbeEvery <= 0 {
		r.o.ProbeEvery = time.Second
	}
	if r.o.Now == nil {
		r.o.Now = time.Now
	}
	st.OnCommit(store.WakeJobs, r.poll.Wake)
	return r, nil
}

// Wake makes an idle runner look for jobs now.
func (r *Runner) Wake() { r.poll.Wake() }

// Run works until ctx ends, then waits for the jobs in hand to finish.
func (r *Runner) Run(ctx context.Context) error {
	if len(r.kinds) == 0 {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	for _, s := range r.o.Services {
		wg.Go(func() { r.watch(ctx, s) })
	}
	r.poll.Run(ctx, r.o.Concurrency, r.o.Poll, r.RunOne, func(err error) { r.log.Error("claiming a job", "err", err) })
	wg.Wait()
	return nil
}

// RunOne claims and runs one due job. It reports whether there was one.
func (r *Runner) RunOne(ctx context.Context) (bool, error) {
	claimed := time.Now() // the lease lasts at least LeaseTTL from here, on any clock
	j, lease, err := r.st.ClaimJob(ctx, r.o.Owner, r.kinds, r.o.LeaseTTL)
	if errors.Is(err, store.ErrNoWork) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claiming: %w", err)
	}
	log := r.log.With("job", j.ID, "kind", j.Kind, "attempt", j.Attempts+1)
	// The job runs on a context that outlives a shutdown signal long enough to finish its
	// calls, under a lease kept by heartbeats; it stops when the lease is lost or cannot be
	// confirmed, since another replica may then take the job over.
	timed, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.RunTimeout)
	defer cancel()
	runCtx, release := r.keepLease(timed, lease, claimed, log)
	started := r.o.Now()
	runErr := r.execs[j.Kind].Run(runCtx, j)
	if lost := release(); errors.Is(lost, store.ErrLeaseLost) {
		log.Warn("lease lost during a job; another replica runs it", "err", lost, "job_err", runErr)
		return true, nil
	} else if lost != nil {
		log.Warn("job stopped: its lease could not be renewed", "err", lost, "job_err", runErr)
	}
	// Record the outcome even if ctx ended meanwhile: losing it would run the job again.
	saveCtx, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelSave()
	var ra *jobs.RetryAfterError
	var un *jobs.UnavailableError
	switch {
	case runErr == nil:
		err = r.st.FinishJob(saveCtx, lease)
	case jobs.IsTerminal(runErr):
		log.Error("job failed", "err", runErr)
		err = r.st.FailJob(saveCtx, lease, runErr.Error())
	case errors.As(runErr, &ra):
		// Exactly when the service said, not compounded with backoff, and not counted: waiting
		// for a rate limit is not the job failing.
		at := r.o.Now().Add(max(ra.After, 0))
		log.Info("job waits for a rate limit", "err", runErr, "until", at)
		if err = r.st.PostponeJob(saveCtx, lease, at, runErr.Error(), ""); err == nil {
			r.poll.WakeAt(at)
		}
	case errors.As(runErr, &un) && !r.answeredSince(un.Service, started):
		// The service is down: wait for it without using up attempts. The backoff only bounds
		// how long a job waits if no probe ever says it answers again.
		delay := r.backoff(j.Attempts)
		log.Warn("job waits for its service", "service", un.Service, "err", runErr, "at most", delay.Round(time.Millisecond))
		err = r.st.PostponeJob(saveCtx, lease, r.o.Now().Add(delay), runErr.Error(), un.Service)
	case j.Attempts+1 >= r.o.MaxAttempts:
		log.Error("job failed after its last attempt", "err", runErr)
		err = r.st.FailJob(saveCtx, lease, fmt.Sprintf("after %d attempts: %v", j.Attempts+1, runErr))
	default:
		delay := r.backoff(j.Attempts)
		log.Warn("job will be retried", "err", runErr, "in", delay.Round(time.Millisecond))
		at := r.o.Now().Add(delay)
		if err = r.st.RetryJob(saveCtx, lease, at, runErr.Error()); err == nil {
			r.poll.WakeAt(at)
		}
	}
	if errors.Is(err, store.ErrLeaseLost) {
		// Taken over after its lease lapsed (this process stalled): the new holder records it.
		log.Warn("lease lost before the outcome was recorded; another replica runs the job", "err", err)
		return true, nil
	}
	if err != nil {
		return true, fmt.Errorf("recording the outcome of job %d: %w", j.ID, err)
	}
	return true, nil
}

// backoff is the delay before attempt n+1: exponential with full jitter on its upper half.
func (r *Runner) backoff(attempts int) time.Duration {
	d := r.o.BaseBackoff << min(attempts, 20)
	if d <= 0 || d > r.o.MaxBackoff {
		d = r.o.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// answeredSince reports whether a probe found service answering after t: then the job's
// failure was its own call's (one endpoint failing), not an outage, and counts as an attempt.
func (r *Runner) answeredSince(service string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastOK[service].After(t.Add(-r.o.ProbeEvery))
}

// watch probes a service while jobs wait for it, and wakes them all once it answers.
func (r *Runner) watch(ctx context.Context, s Service) {
	t := time.NewTicker(r.o.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.probe(ctx, s); err != nil && ctx.Err() == nil {
			r.log.Warn("probing a service", "service", s.Name, "err", err)
		}
	}
}

// probe wakes the jobs waiting for s if any wait and s answers.
func (r *Runner) probe(ctx context.Context, s Service) error {
	blocked, err := r.st.Blocked(ctx, s.Name)
	if err != nil || !blocked {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, max(r.o.ProbeEvery, 5*time.Second))
	err = s.Probe(pctx)
	cancel()
	if err != nil {
		return nil // still down; the jobs keep waiting
	}
	r.mu.Lock()
	r.lastOK[s.Name] = r.o.Now()
	r.mu.Unlock()
	n, err := r.st.UnblockJobs(ctx, s.Name)
	if err == nil && n > 0 {
		r.log.Info("service answers again: jobs woken", "service", s.Name, "jobs", n)
	}
	return err
}
