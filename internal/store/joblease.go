package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// HeartbeatJob extends a running job's lease to ttl from now, on the database's clock, as a
// runner does while the job runs: a replica that dies stops renewing, and another takes the
// job over once the lease lapses. ErrLeaseLost when the job was taken over or ended.
func (s *Store) HeartbeatJob(ctx context.Context, l Lease, ttl time.Duration) error {
	res, err := s.write.ExecContext(ctx, `UPDATE jobs SET lease_expires = `+s.dbNow()+` + $1
		WHERE id = $2 AND lease_owner = $3 AND lease_token = $4 AND state = 'running'`,
		ttl.Microseconds(), l.ID, l.Owner, l.Token)
	return leaseResult(res, err, "job heartbeat", l)
}

// JobLease is who holds a job and until when, as the database sees it.
type JobLease struct {
	State    string // waiting, pending, running, done or failed
	Owner    string // "" when nobody holds it
	Token    int64  // bumped by every claim
	Expires  time.Time
	Attempts int
}

// JobLease reads job id's lease, or ErrNotFound.
func (s *Store) JobLease(ctx context.Context, id int64) (JobLease, error) {
	var jl JobLease
	var expires int64
	err := s.read.QueryRowContext(ctx, `SELECT state, lease_owner, lease_token, lease_expires, attempts FROM jobs WHERE id = $1`, id).
		Scan(&jl.State, &jl.Owner, &jl.Token, &expires, &jl.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return JobLease{}, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return JobLease{}, fmt.Errorf("store: reading the lease of job %d: %w", id, err)
	}
	jl.Expires = fromMicros(expires)
	return jl, nil
}
