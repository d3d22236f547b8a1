package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// redeliverer plays the operator (or a recovery job) pressing GitHub's "Redeliver" on every
// failed delivery until it is taken, and redelivers some taken ones again as duplicates. It
// counts what it asked for, so it knows when a delivery's last attempt is in.
type redeliverer struct {
	gh *githubtest.Server

	mu         sync.Mutex
	asked      map[string]int // delivery id -> redeliveries asked for
	redelivers int            // redeliveries of failed deliveries
	duplicates int            // redeliveries of deliveries already taken
}

func newRedeliverer(gh *githubtest.Server) *redeliverer {
	return &redeliverer{gh: gh, asked: map[string]int{}}
}

// attempt is where one delivery stands: how many attempts were made and how the last went.
type attempt struct {
	n      int
	last   githubtest.Delivery
	failed bool
}

func (r *redeliverer) attempts() map[string]attempt {
	out := map[string]attempt{}
	for _, d := range r.gh.Deliveries() {
		a := out[d.ID]
		a.n++
		a.last, a.failed = d, d.Failed()
		out[d.ID] = a
	}
	return out
}

// redeliverFailed redelivers, once its attempts are all in, every delivery whose last attempt
// failed without an answer or with a 5xx (a replica died, or could not reach its store). A 4xx
// is Stagecoach refusing GitHub, which no redelivery mends: it is left for the checks.
func (r *redeliverer) redeliverFailed() {
	at := r.attempts()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, a := range at {
		if a.n == r.asked[id]+1 && a.failed && (a.last.Status == 0 || a.last.Status >= 500) {
			if r.gh.Redeliver(id) == nil {
				r.asked[id]++
				r.redelivers++
			}
		}
	}
}

// duplicate redelivers one delivery that was taken already, chosen by rng: it must change
// nothing.
func (r *redeliverer) duplicate(rng *rand.Rand) {
	at := r.attempts()
	r.mu.Lock()
	defer r.mu.Unlock()
	var taken []string
	for id, a := range at {
		if a.n == r.asked[id]+1 && !a.failed {
			taken = append(taken, id)
		}
	}
	if len(taken) == 0 {
		return
	}
	slices.Sort(taken) // map order is random; the seed decides
	id := taken[rng.IntN(len(taken))]
	if r.gh.Redeliver(id) == nil {
		r.asked[id]++
		r.duplicates++
	}
}

// untaken says how many deliveries are not taken yet (queued, in flight, failed or waiting
// for their redelivery), and how many were refused with a 4xx; ctx bounds the wait for the
// queue to be sent.
func (r *redeliverer) untaken(ctx context.Context) (waiting int, refused []string) {
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if r.gh.Flush(fctx) != nil {
		waiting++ // still sending what was queued
	}
	at := r.attempts()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, a := range at {
		switch {
		case a.n != r.asked[id]+1:
			waiting++
		case a.failed && a.last.Status >= 400 && a.last.Status < 500:
			refused = append(refused, fmt.Sprintf("%s %s answered %d: %s", a.last.Event, id, a.last.Status, a.last.Response))
		case a.failed:
			waiting++
		}
	}
	return waiting, refused
}

// redeliverFailed redelivers failed deliveries until ctx ends.
func (w *world) redeliverFailed(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.rd.redeliverFailed()
	}
}
