// Package poller runs claim-and-work loops over durable work in the store: each worker takes
// one due item and works it, goes straight on while there is work, and otherwise waits for a
// tick or a wake-up (new work recorded in this process), whichever comes first. Other
// processes' work is found by the tick.
package poller

import (
	"context"
	"sync"
	"time"
)

// Poller owns the wake-up signal of one kind of work.
type Poller struct {
	wake chan struct{}
}

// New makes a Poller.
func New() *Poller { return &Poller{wake: make(chan struct{}, 1)} }

// Wake makes an idle worker look for work now. It never blocks.
func (p *Poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run runs workers loops of once until ctx ends, then waits for them. once reports whether it
// found work; its errors go to onErr unless ctx ended.
func (p *Poller) Run(ctx context.Context, workers int, every time.Duration, once func(context.Context) (bool, error), onErr func(error)) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for ctx.Err() == nil {
				worked, err := once(ctx)
				if err != nil && ctx.Err() == nil {
					onErr(err)
				}
				if worked {
					continue
				}
				select {
				case <-ctx.Done():
				case <-t.C:
				case <-p.wake:
				}
			}
		})
	}
	wg.Wait()
}
