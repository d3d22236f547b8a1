package poller

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWorksUntilIdleThenWakes(t *testing.T) {
	p := New()
	var pending, done, errs atomic.Int64
	pending.Store(5)
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		p.Run(ctx, 2, time.Hour, func(context.Context) (bool, error) {
			if pending.Add(-1) < 0 {
				pending.Add(1)
				return false, nil
			}
			if done.Add(1) == 3 {
				return true, errors.New("one failure")
			}
			return true, nil
		}, func(error) { errs.Add(1) })
		close(finished)
	}()
	waitFor(t, func() bool { return done.Load() == 5 })
	// Idle now, with an hour to the next tick: only a wake-up finds new work.
	pending.Add(2)
	p.Wake()
	waitFor(t, func() bool { return done.Load() >= 6 })
	cancel()
	<-finished
	if errs.Load() != 1 {
		t.Errorf("errors reported = %d, want 1", errs.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
