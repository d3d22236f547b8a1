// Package recovery finds the work Stagecoach missed and puts it back on the webhook's own path.
// GitHub does not redeliver a webhook by itself: what it sent while every replica was down or
// answering 503 (a merge, a push, a tag, a /promote) is otherwise lost. One replica at a time,
// under a lease in the store, runs a pass, at start and then every interval:
//
//  1. Deliveries. It lists the App's webhook deliveries (GET /app/hook/deliveries, App JWT,
//     cursor paging) from a little before its checkpoint, and asks GitHub to redeliver each one
//     none of whose attempts was answered 2xx (POST /app/hook/deliveries/{id}/attempts). The
//     redelivery reaches the intake like any delivery, with its original X-GitHub-Delivery, so
//     the intake records its work once however often it comes. A failed push or merge whose
//     branch has moved on since is not redelivered: newest wins, as it does for webhooks, and the
//     branch's head is reconciled instead. A delivery is redelivered a bounded number of times,
//     and not at all once older than max_age or refused by the intake as a payload.
//  2. Reconciliation. For each configured repository it reads the head of every trigger branch
//     and the release tags, and compares them with what it saw last time and with what
//     Stagecoach recorded since. A change Stagecoach never recorded (GitHub failed to send it, or
//     it is older than the delivery log) becomes the push event GitHub would have sent, marked
//     recovered (handlers.Event.Recovered, and a delivery id "recovered:<repo>:<ref>:<sha>"),
//     translated by the same handler and recorded by the same durable intake as a webhook, so
//     every rule that applies to a push applies to it. A ref read names nobody; for a push the
//     admission gate decides (a guarded stage's branch) the pass asks the repository's activity
//     log who moved the branch to that head, and the push names that pusher, or nobody when the
//     log does not say (the gate then refuses it unless it is Stagecoach's own recorded move).
//     The first pass over a repository only learns its refs, and so does the first after the
//     configuration changes what is reconciled: what was there before recovery looked is not
//     work it missed.
//
// Nothing is done twice: redeliveries keep their delivery id, reconciled changes have a
// deterministic one, a ref change is acted on only if Stagecoach recorded nothing for it, and
// the store's lease (on the database's clock) lets one replica at a time run a pass.
package recovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what recovery reads and records: the intake's own Record, and its lease and memory.
type Store interface {
	Record(ctx context.Context, in store.Intake) (store.Recorded, error)
	TakeRecovery(ctx context.Context, owner string, ttl time.Duration, force bool) (store.RecoveryLease, time.Duration, bool, error)
	RenewRecovery(ctx context.Context, l store.RecoveryLease, ttl time.Duration) error
	FinishRecovery(ctx context.Context, l store.RecoveryLease, checkpoint time.Time, next time.Duration, forget time.Time) error
	Redeliveries(ctx context.Context, guids []string) (map[string]store.Redelivery, error)
	PendingRedeliveries(ctx context.Context) (map[string]store.Redelivery, error)
	SaveRedelivery(ctx context.Context, l store.RecoveryLease, r store.Redelivery) error
	RecoveryRefs(ctx context.Context, repo string) (map[string]store.RecoveryRef, error)
	SaveRecoveryRefs(ctx context.Context, l store.RecoveryLease, repo string, refs []store.RecoveryRef, drop []string) error
	DeployRequestedSince(ctx context.Context, app, stage, sha string, since time.Time) (bool, error)
	JobExists(ctx context.Context, key string) (bool, error)
	PushRecordedSince(ctx context.Context, repo, stage, sha string, since time.Time) (bool, error)
}

// Clients gives GitHub clients: the App's own (JWT) and an installation's.
type Clients interface {
	App() (*github.Client, error)
	Installation(id int64) (*github.Client, error)
}

// Observer hears what recovery did, for metrics.
type Observer interface {
	// RecoveryPass: a pass ended, "done" or "failed".
	RecoveryPass(result string)
	// Redelivery: recovery asked GitHub to redeliver a failed delivery ("requested"), or left one
	// alone because its branch moved on ("stale") or for good ("abandoned").
	Redelivery(outcome string)
	// Recovered: missed work was taken: a failed delivery redelivered and answered 2xx (how
	// "redelivered"), or a ref change recorded by reconciliation ("reconciled"); event is the
	// webhook event it came as.
	Recovered(how, event string)
}

// Options tune recovery; zero values take the defaults.
type Options struct {
	// Interval is the time between passes (default the configuration's recovery.interval).
	Interval time.Duration
	// MaxAge is how old a failed delivery may be and still be redelivered (default the
	// configuration's recovery.max_age).
	MaxAge time.Duration
	// FollowUp is how soon a pass that left redeliveries in flight is followed by the next, which
	// sees their outcome and reconciles their refs (default the shorter of Interval and 30 s).
	FollowUp time.Duration
	// LeaseTTL is how long a pass holds the lease between renewals (default 2 min).
	LeaseTTL time.Duration
	// Owner names this process in the lease (default host, pid and a random suffix).
	Owner string
	// Observer hears what recovery did (nil: nobody).
	Observer Observer
	// Wake tells the runners that recovered work was recorded (nil: they find it on their tick).
	Wake func()
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Recovery's fixed limits.
const (
	// maxAttempts bounds the redeliveries of one delivery: a receiver that keeps failing it
	// (a wrong webhook secret, say) gets it this often, not on every pass forever.
	maxAttempts = 5
	// overlap is how far before its checkpoint a pass lists: GitHub lists an attempt once it
	// ended, up to ten seconds after it began, and its clock is not ours.
	overlap = 10 * time.Minute
	// skew is the slack given to times two replicas wrote, each on its own clock.
	skew = 5 * time.Minute
	// pageSize is the page of the delivery log (GitHub's most).
	pageSize = 100
	// maxPages bounds one pass's listing (100,000 attempts).
	maxPages = 1000
)

// Runner runs recovery passes.
type Runner struct {
	st     Store
	gh     Clients
	cfg    *config.Config
	routes map[string]handlers.Handler
	o      Options
	log    *slog.Logger
}

// New builds a runner on the store, GitHub clients, the configuration and the one list of
// handlers (handlers.All), whose translation recovered events take.
func New(st Store, gh Clients, cfg *config.Config, hs []handlers.Handler, o Options, log *slog.Logger) (*Runner, error) {
	routes := map[string]handlers.Handler{}
	for _, h := range hs {
		for _, name := range h.Handles() {
			routes[name] = h
		}
	}
	if routes["push"] == nil {
		return nil, errors.New("recovery: no handler takes push events, which reconciled ref changes are")
	}
	if o.Interval <= 0 {
		o.Interval = cfg.Recovery.Interval
	}
	if o.MaxAge <= 0 {
		o.MaxAge = cfg.Recovery.MaxAge
	}
	if o.Interval <= 0 || o.MaxAge <= 0 {
		return nil, errors.New("recovery: the interval and max_age must be positive")
	}
	if o.FollowUp <= 0 {
		o.FollowUp = min(o.Interval, 30*time.Second)
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Minute
	}
	if o.Owner == "" {
		o.Owner = owner()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Runner{st: st, gh: gh, cfg: cfg, routes: routes, o: o, log: log.With("component", "recovery")}, nil
}

func owner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Run runs passes until ctx ends: one at once (a process that starts after an outage looks
// without waiting for the interval), then whenever the store says one is due.
func (r *Runner) Run(ctx context.Context) error {
	force := true
	for {
		wait, err := r.Pass(ctx, force)
		force = false
		if err != nil && ctx.Err() == nil {
			r.log.Warn("recovery pass failed", "err", err)
		}
		// Ask again when the next pass is due or the holder's lease runs out, and at least every
		// interval; never spin.
		wait = min(max(wait, time.Second), r.o.Interval)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Pass runs one pass if this process gets the lease and a pass is due (force: whether due or
// not). It returns how long until the next one should be tried.
func (r *Runner) Pass(ctx context.Context, force bool) (time.Duration, error) {
	l, wait, ok, err := r.st.TakeRecovery(ctx, r.o.Owner, r.o.LeaseTTL, force)
	if err != nil {
		return r.o.FollowUp, err
	}
	if !ok {
		return wait, nil
	}
	started := r.o.Now()
	p := &pass{r: r, l: l, heads: map[string]string{}}
	checkpoint, inFlight, err := p.deliveries(ctx)
	if err == nil {
		err = p.reconcile(ctx)
	}
	next := r.o.Interval
	if err != nil || inFlight {
		next = r.o.FollowUp
	}
	if err != nil {
		checkpoint = l.Checkpoint // examined only in part: list the same window again
	}
	// Rows must outlive the window a pass lists, or a delivery would be redelivered afresh.
	forget := started.Add(-r.o.MaxAge - overlap - 24*time.Hour)
	if ferr := r.st.FinishRecovery(context.WithoutCancel(ctx), l, checkpoint, next, forget); ferr != nil {
		err = errors.Join(err, ferr)
	}
	result := "done"
	if err != nil {
		result = "failed"
	}
	r.observe(func(o Observer) { o.RecoveryPass(result) })
	r.log.Debug("recovery pass", "result", result, "took", r.o.Now().Sub(started).String(), "next", next.String(), "err", err)
	return next, err
}

func (r *Runner) observe(f func(Observer)) {
	if r.o.Observer != nil {
		f(r.o.Observer)
	}
}

// pass is one recovery pass under the lease.
type pass struct {
	r     *Runner
	l     store.RecoveryLease
	busy  map[refKey]bool   // refs whose redelivery is in flight: reconciled next pass
	heads map[string]string // "repo\x00branch" -> head, read once a pass
}

// refKey names a ref of a repository (repo as GitHub spells it in payloads, lower-cased).
type refKey struct{ repo, ref string }

// renew extends the lease between steps; a pass whose lease was taken over stops.
func (p *pass) renew(ctx context.Context) error {
	return p.r.st.RenewRecovery(ctx, p.l, p.r.o.LeaseTTL)
}

// notFound reports GitHub's 404.
func notFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}
