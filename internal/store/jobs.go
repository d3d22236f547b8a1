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
		if created, err = insertJob(ctx, tx.StmtContext(ctx, s.stmts[insJob]), j, s.now()); err != nil {
			return err
		}
		return tx.StmtContext(ctx, s.stmts[selJob]).QueryRowContext(ctx, j.Key).Scan(&id)
	})
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
	args = append(args, s.now(), l.ID, l.Owner, l.Token)
	n := len(args)
	q := fmt.Sprintf(`UPDATE jobs SET %s, updated_at = $%d, lease_owner = '', lease_expires = 0
		WHERE id = $%d AND lease_owner = $%d AND lease_token = $%d AND state = 'running'`, set, n-3, n-2, n-1, n)
	res, err := s.write.ExecContext(ctx, q, args...)
	return leaseResult(res, err, op+" job", l)
}

// FinishJob marks a job done.
func (s *Store) FinishJob(ctx context.Context, l Lease) error {
	return s.endJob(ctx, l, "finish", "state = 'done', attempts = attempts + 1")
}

// RetryJob puts a job back to wait until runAfter, counting the attempt.
func (s *Store) RetryJob(ctx context.Context, l Lease, runAfter time.Time, lastErr string) error {
	return s.endJob(ctx, l, "retry", "state = 'pending', attempts = attempts + 1, run_after = $1, last_error = $2", micros(runAfter), lastErr)
}

// FailJob marks a job failed for good.
func (s *Store) FailJob(ctx context.Context, l Lease, lastErr string) error {
	return s.endJob(ctx, l, "fail", "state = 'failed', attempts = attempts + 1, last_error = $1", lastErr)
}

// PendingJobs counts jobs waiting to run, by kind.
func (s *Store) PendingJobs(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT kind, COUNT(*) FROM jobs WHERE state IN ('pending', 'running') GROUP BY kind")
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
