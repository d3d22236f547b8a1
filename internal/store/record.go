package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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

type pending struct {
	in   Intake
	rec  Recorded
	err  error
	done chan struct{}
}

// Record writes a delivery and all the work it implies in one transaction and returns once it is
// durable. Concurrent calls are committed together by one goroutine (group commit), so one sync
// to disk serves many deliveries; each delivery is still atomic with its own work.
func (s *Store) Record(ctx context.Context, in Intake) (Recorded, error) {
	p := &pending{in: in, done: make(chan struct{})}
	select {
	case s.queue <- p:
	case <-s.closed:
		return Recorded{}, ErrClosed
	case <-ctx.Done():
		return Recorded{}, ctx.Err()
	}
	// Once queued, the record is committed whatever the caller does: wait for the answer so a
	// 2xx is never sent for something that was not written, and vice versa.
	<-p.done
	return p.rec, p.err
}

// commitLoop is the group committer: it takes whatever is waiting and commits it in one
// transaction. It ends when the store closes, after answering everything queued.
func (s *Store) commitLoop() {
	defer close(s.done)
	batch := make([]*pending, 0, maxBatch)
	for {
		var first *pending
		select {
		case first = <-s.queue:
		case <-s.closed:
			for {
				select {
				case p := <-s.queue:
					p.err = ErrClosed
					close(p.done)
				default:
					return
				}
			}
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
	}
}

func (s *Store) commitBatch(batch []*pending) {
	ctx := context.Background()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, p := range batch {
			rec, err := s.recordOne(ctx, tx, p.in)
			if err != nil {
				return err
			}
			p.rec = rec
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, p := range batch {
			p.err = err
			if err != nil {
				p.rec = Recorded{}
			}
			close(p.done)
		}
		return
	}
	// One record spoilt the batch: commit each alone so only the bad one fails.
	for _, p := range batch {
		p.err = s.inTx(ctx, func(tx *sql.Tx) error {
			rec, err := s.recordOne(ctx, tx, p.in)
			p.rec = rec
			return err
		})
		if p.err != nil {
			p.rec = Recorded{}
		}
		close(p.done)
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

func (s *Store) recordOne(ctx context.Context, tx *sql.Tx, in Intake) (Recorded, error) {
	now := s.now()
	d := in.Delivery
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, event, action, repo, installation_id, received_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Event, d.Action, d.Repo, d.InstallationID, now)
	if err != nil {
		return Recorded{}, fmt.Errorf("store: recording delivery %s: %w", d.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Recorded{}, fmt.Errorf("store: recording delivery %s: %w", d.ID, err)
	} else if n == 0 {
		return Recorded{Duplicate: true}, nil
	}
	var rec Recorded
	for _, r := range in.Deploys {
		rd, err := s.recordDeploy(ctx, tx, r, now)
		if err != nil {
			return Recorded{}, fmt.Errorf("store: recording deploy %s: %w", r.Key(), err)
		}
		rec.Deploys = append(rec.Deploys, rd)
		if rd.New {
			j := jobs.Job{Kind: jobs.KindCheckRunCreate, Key: fmt.Sprintf("checkrun.create/%d", rd.ID),
				Payload: fmt.Appendf(nil, `{"deploy_id":%d}`, rd.ID)}
			if _, err := s.insertJob(ctx, tx, j, now); err != nil {
				return Recorded{}, err
			}
		}
	}
	for _, j := range in.Jobs {
		if _, err := s.insertJob(ctx, tx, j, now); err != nil {
			return Recorded{}, err
		}
	}
	return rec, nil
}

func (s *Store) recordDeploy(ctx context.Context, tx *sql.Tx, r deploy.Request, now int64) (RecordedDeploy, error) {
	key := r.Key()
	var id, pr int64
	err := tx.QueryRowContext(ctx, `SELECT id, trigger_pr FROM deploys WHERE dedup_key = $1`, key).Scan(&id, &pr)
	if err == nil {
		// The same commit again (the push of a merged PR's merge commit, say). If the first
		// request did not know the pull request and this one does, keep the PR: it is where
		// the deploy reports back to.
		if pr == 0 && r.Trigger.PR != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE deploys SET trigger_pr = $1, trigger_event = $2, trigger_delivery = $3,
				trigger_actor = $4, updated_at = $5 WHERE id = $6`,
				r.Trigger.PR, r.Trigger.Event, r.Trigger.Delivery, r.Trigger.Actor, now, id); err != nil {
				return RecordedDeploy{}, err
			}
		}
		return RecordedDeploy{ID: id}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return RecordedDeploy{}, err
	}
	// Newest wins: a queued deploy of the same app and stage is superseded, not deleted.
	rows, err := tx.QueryContext(ctx, `UPDATE deploys SET state = 'superseded', updated_at = $1, finished_at = $1,
		lease_owner = '', lease_expires = 0 WHERE app = $2 AND stage = $3 AND state = 'queued' RETURNING id`, now, r.App, r.Stage)
	if err != nil {
		return RecordedDeploy{}, err
	}
	var superseded []int64
	for rows.Next() {
		var sid int64
		if err := rows.Scan(&sid); err != nil {
			rows.Close()
			return RecordedDeploy{}, err
		}
		superseded = append(superseded, sid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return RecordedDeploy{}, err
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO deploys (dedup_key, app, stage, repo, sha, ref, installation_id,
		trigger_event, trigger_delivery, trigger_pr, trigger_actor, state, created_at, updated_at, run_after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12, $12, $12) RETURNING id`,
		key, r.App, r.Stage, r.Repo, r.SHA, r.Ref, r.InstallationID,
		r.Trigger.Event, r.Trigger.Delivery, r.Trigger.PR, r.Trigger.Actor, now).Scan(&id)
	if err != nil {
		return RecordedDeploy{}, err
	}
	for _, sid := range superseded {
		if _, err := tx.ExecContext(ctx, `UPDATE deploys SET superseded_by = $1 WHERE id = $2`, id, sid); err != nil {
			return RecordedDeploy{}, err
		}
		// Its check run must say so rather than stay queued.
		j := jobs.Job{Kind: jobs.KindDeployReport, Key: fmt.Sprintf("deploy.report/%d/superseded", sid),
			Payload: fmt.Appendf(nil, `{"deploy_id":%d}`, sid)}
		if _, err := s.insertJob(ctx, tx, j, now); err != nil {
			return RecordedDeploy{}, err
		}
	}
	return RecordedDeploy{ID: id, New: true, Superseded: superseded}, nil
}
