package store

import "sync"

// Wakeup names the kinds of work a commit can make due.
type Wakeup uint8

// The kinds of work.
const (
	// WakeJobs: jobs were recorded, let go by their lane, or woken.
	WakeJobs Wakeup = 1 << iota
	// WakeDeploys: deploys were recorded or released, or a stage became free.
	WakeDeploys
)

// waiters are the functions OnCommit registered.
type waiters struct {
	mu  sync.Mutex
	fns []waiter
}

type waiter struct {
	kinds Wakeup
	fn    func()
}

// OnCommit has fn called after every commit of this store handle that may have made work of
// kinds due, so the runners in this process look for it at once instead of at their next poll.
// (Other processes find it by polling.) fn must not block: a poller's Wake.
func (s *Store) OnCommit(kinds Wakeup, fn func()) {
	s.waiters.mu.Lock()
	defer s.waiters.mu.Unlock()
	s.waiters.fns = append(s.waiters.fns, waiter{kinds, fn})
}

// wake calls the functions registered for any of kinds.
func (s *Store) wake(kinds Wakeup) {
	s.waiters.mu.Lock()
	fns := s.waiters.fns
	s.waiters.mu.Unlock()
	for _, w := range fns {
		if w.kinds&kinds != 0 {
			w.fn()
		}
	}
}
