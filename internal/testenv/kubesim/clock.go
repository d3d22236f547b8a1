package kubesim

import (
	"sync"
	"time"
)

// Clock is the simulation's time: when pods become ready, when a progress deadline passes, and
// how long Follow waits. The real clock is the default; tests inject a FakeClock so a rollout
// takes no real time and every run is the same.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a func that stops the wait
	// early (so a Follow woken by something else leaves no timer behind).
	After(d time.Duration) (<-chan time.Time, func())
}

// realClock is wall-clock time.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// FakeClock is a Clock that moves only when Advance is called, for deterministic tests of code
// that uses a simulated cluster. It is safe for concurrent use.
type FakeClock struct {
	mu      sync.Mutex
	cond    *sync.Cond // broadcast whenever the set of waiters changes
	now     time.Time
	waiters map[*fakeWaiter]struct{}
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time // buffered (1), so firing never blocks
}

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	c := &FakeClock{now: start, waiters: map[*fakeWaiter]struct{}{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Now is the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock has been advanced by d (at once when
// d <= 0), and a func that cancels the wait.
func (c *FakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &fakeWaiter{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		w.ch <- c.now
		return w.ch, func() {}
	}
	c.waiters[w] = struct{}{}
	c.cond.Broadcast()
	return w.ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.waiters[w]; ok {
			delete(c.waiters, w)
			c.cond.Broadcast()
		}
	}
}

// Advance moves the clock forward by d and fires every wait that has come due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			delete(c.waiters, w)
		}
	}
	c.cond.Broadcast()
}

// Waiters is how many waits are pending: a test reads it to know a Follow is blocked.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// BlockUntil waits until at least n waits are pending, so a test can advance the clock knowing
// the code under test is waiting on it rather than racing it.
func (c *FakeClock) BlockUntil(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.waiters) < n {
		c.cond.Wait()
	}
}
