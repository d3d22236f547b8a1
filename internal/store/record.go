package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// Delivery is a webhook delivery that implies work.
type Delivery struct {
	ID, Event, Action, Repo string
	InstallationID          int64
}

// Intake is a delivery with all the work it implies, recorded together or not at all.
type Intake struct {
	Delivery Delivery
	Deploys  []deploy.Request
	Jobs     []jobs.Job
}

// Recorded says what Record wrote.
type Recorded struct {
	Duplicate bool             // the delivery was recorded before: nothing new was written
	Deploys   []RecordedDeploy // one per Intake.Deploys, in order
}

// RecordedDeploy is the deploy a request became.
type RecordedDeploy struct {
	ID         int64
	New        bool    // false when the same app, stage and sha was requested before (ID is that deploy)
	Superseded []int64 // queued deploys of the same app and stage this one replaced
}

// maxBatch bounds how many deliveries one transaction commits.
const maxBatch = 256

// commitTimeout bounds one PostgreSQL commit, so a server that stopped answering fails the
// callers instead of holding them forever.
const commitTimeout = 30 * time.Second

// maxAttempts is how often a record is tried alone when a transaction may succeed on a retry.
const maxAttempts = 3

// pending is one Record call waiting for the committer. They are pooled: done is buffered and
// reused, and the committer signals it as the last thing it does with one.
type pending struct {
	in   Intake
	rec  Recorded
	err  error
	done chan struct{}
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// Record writes a delivery and all the work it implies in one transaction and returns once it is
// durable. Concurrent calls are committed together by one goroutine (group commit), so one sync
// to disk serves many deliveries; each delivery is still atomic with its own work.
func (s *Store) Record(ctx context.Context, in Intake) (Recorded, error) {
	if in.Delivery.ID == "" {
		// An empty id would make every later delivery without one look like a redelivery.
		return Recorded{}, errors.New("store: recording a delivery: the delivery has no id")
	}
	p := pendingPool.Get().(*pending)
	p.in = in
	select {
	case s.queue <- p:
	case <-s.closed:
		p.in = Intake{}
		pendingPool.Put(p)
		return Recorded{}, ErrClosed
	case <-ctx.Done():
		p.in = Intake{}
		pendingPool.Put(p)
		return Recorded{}, ctx.Err()
	}
	// Once queued, the record is committed whatever the caller does: wait for the answer so a
	// 2xx is never sent for something that was not written, and vice versa.
	<-p.done
	rec, err := p.rec, p.err
	*p = pending{done: p.done}
	pendingPool.Put(p)
	return rec, err
}

// commitLoop is the group committer: it takes whatever is waiting and commits it in one
// transaction. It ends when the store closes.
func (s *Store) commitLoop() {
	defer close(s.done)
	batch := make([]*pending, 0, maxBatch)
	for {
		var first *pending
		select {
		case first = <-s.queue:
		case <-s.closed:
			return
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
		clear(batch) // let the pool own them again
	}
}

// commitBatch commits batch in one transaction and answers each caller. If the transaction
// fails, every record is tried again alone, so one bad record never fails the others.
func (s *Store) commitBatch(batch []*pending) {
	ctx, cancel := s.commitContext()
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st := s.stmts.in(ctx, tx)
		for _, p := range batch {
			rec, err := s.recordOne(ctx, &st, p.in)
			if err != nil {
				return err
			}
			p.rec = rec
		}
		return nil
	})
	if err == nil {
		s.wakeFor(batch)
		for _, p := range batch {
			p.done <- struct{}{}
		}
		return
	}
	for _, p := range batch {
		p.rec, p.err = s.commitAlone(ctx, p.in)
	}
	s.wakeFor(batch)
	for _, p := range batch {
		p.done <- struct{}{}
	}
}

// wakeFor wakes the runners for the work a committed batch recorded.
func (s *Store) wakeFor(batch []*pending) {
	var kinds Wakeup
	for _, p := range batch {
		if p.err != nil || p.rec.Duplicate {
			continue
		}
		if len(p.in.Jobs) > 0 {
			kinds |= WakeJobs
		}
		for _, d := range p.rec.Deploys {
			if d.New {
				kinds |= WakeJobs | WakeDeploys
			}
		}
	}
	if kinds != 0 {
		s.wake(kinds)
	}
}

// commitContext bounds a commit on PostgreSQL, where the network can stop answering. SQLite is a
// local file whose lock waits busy_timeout already bounds, and there a context that can be
// cancelled costs a goroutine per statement (the driver and database/sql each watch it), which
// is most of the intake's overhead.
func (s *Store) commitContext() (context.Context, context.CancelFunc) {
	if s.d.name == "sqlite" {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), commitTimeout)
}

// commitAlone records one intake in its own transaction, trying again while the failure may be
// a race with another process.
func (s *Store) commitAlone(ctx context.Context, in Intake) (Recorded, error) {
	for attempt := 1; ; attempt++ {
		var rec Recorded
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			st := s.stmts.in(ctx, tx)
			var err error
			rec, err = s.recordOne(ctx, &st, in)
			return err
		})
		if err == nil {
			return rec, nil
		}
		if attempt == maxAttempts || !isRetryable(err) {
			return Recorded{}, err
		}
	}
}

// inTx runs fn in a write transaction and commits it.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}
