package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/internal/store"
)

// DefaultLeaseTTL is how long a job's lease lasts without a heartbeat: a replica that dies
// mid-job hands the job over within about this long, on the database's clock.
const DefaultLeaseTTL = 5 * time.Second

// errUnconfirmed means the store did not confirm a renewal in time: the lease may have lapsed.
var errUnconfirmed = errors.New("worker: lease renewal not confirmed in time")

// DefaultOwner names a lease owner after this process: kind, host, pid and a random part, so
// that an operator (or a test that killed a process) can tell whose leases are whose.
func DefaultOwner(kind string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s-%s-%d-%08x", kind, host, os.Getpid(), rand.Uint32())
}

// keepLease renews job l's lease every quarter of LeaseTTL while the job runs, on a context
// derived from parent that it cancels when the lease is lost (taken over, or the job ended) or
// when no renewal was confirmed for three quarters of LeaseTTL: by then the lease may lapse and
// another replica take the job, so this one must stop. claimed is when the claim was asked
// for, the lease's earliest start. release stops the renewals and says why the job was
// stopped, if it was (wrapping store.ErrLeaseLost when the lease is surely gone).
func (r *Runner) keepLease(parent context.Context, l store.Lease, claimed time.Time, log *slog.Logger) (ctx context.Context, release func() error) {
	ctx, cancel := context.WithCancelCause(parent)
	every := max(r.o.LeaseTTL/4, time.Millisecond)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		confirmed := claimed
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			asked := time.Now()
			hctx, hcancel := context.WithTimeout(context.WithoutCancel(parent), every)
			err := r.st.HeartbeatJob(hctx, l, r.o.LeaseTTL)
			hcancel()
			switch {
			case err == nil:
				confirmed = asked
			case errors.Is(err, store.ErrLeaseLost):
				cancel(fmt.Errorf("job %d: %w", l.ID, err))
				return
			case time.Since(confirmed) >= r.o.LeaseTTL*3/4:
				cancel(fmt.Errorf("job %d: no renewal for %s (%v): %w", l.ID, time.Since(confirmed).Round(time.Millisecond), err, errUnconfirmed))
				return
			default:
				log.Warn("renewing a job's lease failed; trying again", "err", err)
			}
		}
	})
	return ctx, func() error {
		close(done)
		wg.Wait()
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, store.ErrLeaseLost) || errors.Is(cause, errUnconfirmed) {
			return cause
		}
		return nil
	}
}
