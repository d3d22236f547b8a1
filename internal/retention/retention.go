// Package retention keeps the store from growing with history: on a schedule it deletes
// webhook deliveries, finished jobs and commands older than the configured retention. Deploys
// are never deleted. Every replica may run it: each row is deleted once.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what retention needs of the store.
type Store interface {
	Prune(ctx context.Context, r store.Retention) (store.Pruned, error)
}

// Every is how often Run prunes. Deletes go in small batches, so an hour's worth is quick.
const Every = time.Hour

// Policy is the configuration's retention as the store takes it.
func Policy(r config.Retention) store.Retention {
	return store.Retention{Deliveries: r.Deliveries, Jobs: r.Jobs, Commands: r.Commands}
}

// Run prunes at once, then every interval, until ctx ends. A failed run is logged and the
// next one tries again: what was not deleted is only kept longer.
func Run(ctx context.Context, st Store, policy store.Retention, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p, err := st.Prune(ctx, policy)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("pruning history", "err", err)
		case p != (store.Pruned{}):
			log.Info("pruned history", "deliveries", p.Deliveries, "jobs", p.Jobs, "commands", p.Commands, "bookkeeping", p.Bookkeeping)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
