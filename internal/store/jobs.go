package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
)

// EnqueueJob records a job outside an intake. created is false when its key existed; id is
// then the existing job's.
func (s *Store) EnqueueJob(ctx context.Context, j jobs.Job) (id int64, created bool, err error) {
	if j.Kind == "" || j.Key == "" {
		return 0, false, errors.New("store: enqueueing a job: it needs a kind and a key")
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		st := s.stmts.in(ctx, tx)
		if created, err = insertJob(ctx, &st, j, s.now()); err != nil {
			return err
		}
		return st[selJob].QueryRowContext(ctx, j.Key).Scan(&id)
	})
	if created {
		s.wake(WakeJobs)
	}
	return id, created, err
}

// ClaimJob leases the oldest due job of one of kinds: a pending one, or a running one whose
// lease expired (its worker died). ErrNoWork when there is none. The lease runs for ttl on the
// database's clock, like a deploy's.
//
// A pending job holds no lease (lease_expires is 0), so "pending, or running with an expired
// lease" is one condition, lease_expires before now, over the rows of the partial index
// jobs_claim: the claim walks that index in run_after order however many finished jobs the
// table keeps.
func (s *Store) ClaimJob(ctx context.Context, owner string, kinds []string, ttl time.Duration) (jobs.Job, Lease, error) {
	if len(kinds) == 0 {
		return jobs.Job{}, Lease{}, ErrNoWork
	}
	args := []any{owner, ttl.Microseconds(), s.now()}
	for _, k := range kinds {
		args = append(args, k)
	}
	var j jobs.Job
	var payload string
	var runAfter, token int64
	err := s.write.QueryRowContext(ctx, s.claimJobQuery(len(kinds)), args...).Scan(&j.ID, &j.Kind, &j.Key, &payload, &j.Attempts, &runAfter, &token)
	if errors.Is(err, sql.ErrNoRows) {
		return jobs.Job{}, Lease{}, ErrNoWork
	}
	if err != nil {
		return jobs.Job{}, Lease{}, fmt.Errorf("store: claiming a job: %w", err)
	}
	j.Payload, j.RunAfter = []byte(payload), fromMicros(runAfter)
	return j, Lease{ID: j.ID, Owner: owner, Token: token}, nil
}

// claimJobQuery is ClaimJob's statement for n kinds: $1 the owner, $2 the lease in
// microseconds, $3 this process's now (for run_after), then the kinds.
func (s *Store) claimJobQuery(n int) string {
	now := s.dbNow()
	marks := make([]string, n)
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+4)
	}
	return `UPDATE jobs SET lease_owner = $1, lease_token = lease_token + 1, lease_expires = ` + now + ` + $2, state = 'running'
		WHERE id = (
			SELECT id FROM jobs WHERE state IN ` + claimableJobs + ` AND run_after <= $3 AND lease_expires < ` + now + `
				AND kind IN (` + strings.Join(marks, ", ") + `)
			ORDER BY run_after, id LIMIT 1` + s.d.lock + `
		) RETURNING id, kind, job_key, payload, attempts, run_after, lease_token`
}

// claimableJobs is the predicate of the partial index jobs_claim, spelled exactly as there.
const claimableJobs = "('pending', 'running')"

func (s *Store) endJob(ctx context.Context, l Lease, op, set string, args ...any) error {
	now := s.now()
	args = append(args, now, l.ID, l.Owner, l.Token)
	n := len(args)
	q := fmt.Sprintf(`UPDATE jobs SET %s, updated_at = $%d, lease_owner = '', lease_expires = 0
		WHERE id = $%d AND lease_owner = $%d AND lease_token = $%d AND state = 'running' RETURNING lane, state`, set, n-3, n-2, n-1, n)
	var promoted bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var lane, state string
		if err := tx.QueryRowContext(ctx, q, args...).Scan(&lane, &state); err != nil {
			return err
		}
		if lane == "" || state == "pending" {
			return nil // no lane, or the job is still its lane's head
		}
		var err error
		promoted, err = s.finishLane(ctx, tx, lane, now)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s job of %d: %w", op, l.ID, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("store: %s job of %d: %w", op, l.ID, err)
	}
	if promoted {
		s.wake(WakeJobs)
	}
	return nil
}

// finishLane lets the next waiting job of a lane run once nothing else of the lane is pending or
// running. It runs in the transaction that ended the lane's job, under the lane's lock on
// PostgreSQL, so a job recorded at the same moment either sees the ended job and waits (and is
// let go here) or sees it ended and does not wait.
func (s *Store) finishLane(ctx context.Context, tx *sql.Tx, lane string, now int64) (bool, error) {
	if s.d.stageLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.stageLock, laneLockClass, laneHash(lane)); err != nil {
			return false, err
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'pending', run_after = $1, updated_at = $1
		WHERE id = (SELECT MIN(id) FROM jobs WHERE lane = $2 AND state = 'waiting')
		AND NOT EXISTS (SELECT 1 FROM jobs WHERE lane = $2 AND state IN ('pending', 'running'))`, now, lane)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// FinishJob marks a job done.
func (s *Store) FinishJob(ctx context.Context, l Lease) error {
	return s.endJob(ctx, l, "finish", "state = 'done', attempts = attempts + 1, blocked_on = ''")
}

// RetryJob puts a job back to wait until runAfter, counting the attempt.
func (s *Store) RetryJob(ctx context.Context, l Lease, runAfter time.Time, lastErr string) error {
	return s.endJob(ctx, l, "retry", "state = 'pending', attempts = attempts + 1, run_after = $1, last_error = $2, blocked_on = ''", micros(runAfter), lastErr)
}

// PostponeJob puts a job back to wait until runAfter without counting an attempt: the job did
// not fail, a service made it wait (a rate limit, or an outage: blockedOn names the service,
// and UnblockJobs wakes the job as soon as it answers again).
func (s *Store) PostponeJob(ctx context.Context, l Lease, runAfter time.Time, lastErr, blockedOn string) error {
	return s.endJob(ctx, l, "postpone", "state = 'pending', run_after = $1, last_error = $2, blocked_on = $3", micros(runAfter), lastErr, blockedOn)
}

// FailJob marks a job failed for good.
func (s *Store) FailJob(ctx context.Context, l Lease, lastErr string) error {
	return s.endJob(ctx, l, "fail", "state = 'failed', attempts = attempts + 1, last_error = $1", lastErr)
}

// UnblockJobs makes every job waiting for service due now: it answers again. It returns how
// many it woke.
func (s *Store) UnblockJobs(ctx context.Context, service string) (int64, error) {
	now := s.now()
	res, err := s.write.ExecContext(ctx, `UPDATE jobs SET run_after = $1, blocked_on = '', updated_at = $1
		WHERE state = 'pending' AND blocked_on = $2`, now, service)
	if err != nil {
		return 0, fmt.Errorf("store: waking the jobs waiting for %s: %w", service, err)
	}
	n, err := res.RowsAffected()
	if n > 0 {
		s.wake(WakeJobs)
	}
	return n, err
}

// Blocked reports whether any job waits for service to answer again.
func (s *Store) Blocked(ctx context.Context, service string) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = 'pending' AND blocked_on = $1 LIMIT 1) b`, service).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: looking for jobs waiting for %s: %w", service, err)
	}
	return n > 0, nil
}

// PendingJobs counts jobs waiting to run (their lane's turn, their time, or a claim), by kind.
func (s *Store) PendingJobs(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT kind, COUNT(*) FROM jobs WHERE state IN ('waiting', 'pending', 'running') GROUP BY kind")
	if err != nil {
		return nil, fmt.Errorf("store: counting jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("store: counting jobs: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}
