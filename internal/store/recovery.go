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

// What package recovery keeps: the lease that lets one replica at a time run a pass, on the
// database's clock; the pass's checkpoint in GitHub's delivery log; the failed deliveries it
// acted on; and the refs it reconciles, as it last saw them.

// recoveryRow names the one row of the recovery table.
const recoveryRow = "github"

// RecoveryLease is the right to run one recovery pass. Token changes on every take, and every
// write under the lease checks it, so a replica whose lease was taken over can no longer write.
type RecoveryLease struct {
	Owner string
	Token int64
	// Checkpoint is GitHub's delivered_at of the newest delivery the last finished pass
	// examined; zero before the first.
	Checkpoint time.Time
}

// TakeRecovery takes the recovery lease for ttl, if nobody else holds a live one and a pass is
// due (or force: a process that just started looks at once). When it cannot, ok is false and
// wait says how long until the lease is free or the next pass is due, by the database's clock.
func (s *Store) TakeRecovery(ctx context.Context, owner string, ttl time.Duration, force bool) (l RecoveryLease, wait time.Duration, ok bool, err error) {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO recovery (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, recoveryRow); err != nil {
		return RecoveryLease{}, 0, false, fmt.Errorf("store: taking the recovery lease: %w", err)
	}
	now := s.dbNow()
	due := ""
	if !force {
		due = " AND next_pass <= " + now
	}
	var token, checkpoint int64
	err = s.write.QueryRowContext(ctx, `UPDATE recovery SET lease_owner = $1, lease_token = lease_token + 1,
		lease_expires = `+now+` + $2 WHERE name = $3 AND (lease_owner = '' OR lease_expires < `+now+`)`+due+`
		RETURNING lease_token, checkpoint`, owner, ttl.Microseconds(), recoveryRow).Scan(&token, &checkpoint)
	if err == nil {
		return RecoveryLease{Owner: owner, Token: token, Checkpoint: fromMicros(checkpoint)}, 0, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return RecoveryLease{}, 0, false, fmt.Errorf("store: taking the recovery lease: %w", err)
	}
	var untilDue, leaseLeft int64
	var holder string
	err = s.write.QueryRowContext(ctx, `SELECT next_pass - `+now+`, lease_expires - `+now+`, lease_owner
		FROM recovery WHERE name = $1`, recoveryRow).Scan(&untilDue, &leaseLeft, &holder)
	if err != nil {
		return RecoveryLease{}, 0, false, fmt.Errorf("store: reading the recovery lease: %w", err)
	}
	if holder != "" && leaseLeft > untilDue {
		untilDue = leaseLeft
	}
	return RecoveryLease{}, time.Duration(max(untilDue, 0)) * time.Microsecond, false, nil
}

// RenewRecovery extends the lease by ttl from now. ErrLeaseLost when another replica took it.
func (s *Store) RenewRecovery(ctx context.Context, l RecoveryLease, ttl time.Duration) error {
	res, err := s.write.ExecContext(ctx, `UPDATE recovery SET lease_expires = `+s.dbNow()+` + $1
		WHERE name = $2 AND lease_owner = $3 AND lease_token = $4`, ttl.Microseconds(), recoveryRow, l.Owner, l.Token)
	return recoveryResult(res, err, "renewing")
}

// FinishRecovery ends a pass: it records the checkpoint, makes the next pass due after next, and
// gives the lease up. Recovered or abandoned deliveries last updated before forget are dropped
// (GitHub's own log keeps three days; rows must outlive the window a pass lists).
func (s *Store) FinishRecovery(ctx context.Context, l RecoveryLease, checkpoint time.Time, next time.Duration, forget time.Time) error {
	return s.underRecovery(ctx, l, "finishing", func(tx *sql.Tx) error {
		now := s.dbNow()
		if _, err := tx.ExecContext(ctx, `UPDATE recovery SET checkpoint = $1, last_pass = `+now+`, next_pass = `+now+` + $2,
			lease_owner = '', lease_expires = 0 WHERE name = $3`, micros(checkpoint), next.Microseconds(), recoveryRow); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM recovery_deliveries WHERE updated_at < $1`, micros(forget))
		return err
	})
}

// underRecovery runs fn in a transaction that first checks the lease and, on PostgreSQL, locks
// its row until commit, so no other replica can take the lease over in between.
func (s *Store) underRecovery(ctx context.Context, l RecoveryLease, op string, fn func(*sql.Tx) error) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE recovery SET lease_owner = lease_owner WHERE name = $1 AND lease_owner = $2
			AND lease_token = $3`, recoveryRow, l.Owner, l.Token)
		if err := recoveryResult(res, err, op); err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("store: %s under the recovery lease: %w", op, err)
	}
	return err
}

func recoveryResult(res sql.Result, err error, op string) error {
	if err != nil {
		return fmt.Errorf("store: %s the recovery lease: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s the recovery lease: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s the recovery lease: %w", op, ErrLeaseLost)
	}
	return nil
}

// RedeliveryState is what recovery made of a failed delivery.
type RedeliveryState string

// The states of a failed delivery recovery acted on.
const (
	// Redelivered: GitHub was asked to redeliver it; the attempt's outcome is not seen yet.
	Redelivered RedeliveryState = "redelivered"
	// RedeliveryRecovered: an attempt of it was answered 2xx.
	RedeliveryRecovered RedeliveryState = "recovered"
	// RedeliveryStale: not redelivered, because its branch has moved on since (newest wins;
	// the branch's head is reconciled instead).
	RedeliveryStale RedeliveryState = "stale"
	// RedeliveryAbandoned: not redelivered (again): too old, refused by the receiver as a
	// payload, or failed too often. Reason says which.
	RedeliveryAbandoned RedeliveryState = "abandoned"
)

// Redelivery is a failed delivery recovery acted on, by its guid (X-GitHub-Delivery).
type Redelivery struct {
	GUID      string
	AttemptID int64 // the attempt of GitHub's log redelivered last
	Event     string
	Action    string
	Repo, Ref string // what a push or merge was about, when recovery read it
	State     RedeliveryState
	Attempts  int // redeliveries asked for
	Reason    string
	UpdatedAt time.Time
}

const redeliveryCols = `guid, attempt_id, event, action, repo, ref, state, attempts, reason, updated_at`

func scanRedelivery(row scanner) (Redelivery, error) {
	var r Redelivery
	var state string
	var updated int64
	if err := row.Scan(&r.GUID, &r.AttemptID, &r.Event, &r.Action, &r.Repo, &r.Ref, &state, &r.Attempts, &r.Reason, &updated); err != nil {
		return Redelivery{}, err
	}
	r.State, r.UpdatedAt = RedeliveryState(state), fromMicros(updated)
	return r, nil
}

// Redeliveries returns what recovery recorded of these guids, by guid.
func (s *Store) Redeliveries(ctx context.Context, guids []string) (map[string]Redelivery, error) {
	out := map[string]Redelivery{}
	for len(guids) > 0 {
		chunk := guids[:min(len(guids), 500)]
		guids = guids[len(chunk):]
		marks := make([]string, len(chunk))
		args := make([]any, len(chunk))
		for i, g := range chunk {
			marks[i], args[i] = fmt.Sprintf("$%d", i+1), g
		}
		if err := s.redeliveries(ctx, out, `SELECT `+redeliveryCols+` FROM recovery_deliveries WHERE guid IN (`+
			strings.Join(marks, ", ")+`)`, args...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PendingRedeliveries returns the deliveries redelivered whose attempt's outcome is not seen yet.
func (s *Store) PendingRedeliveries(ctx context.Context) (map[string]Redelivery, error) {
	out := map[string]Redelivery{}
	if err := s.redeliveries(ctx, out, `SELECT `+redeliveryCols+` FROM recovery_deliveries WHERE state = $1`, string(Redelivered)); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) redeliveries(ctx context.Context, out map[string]Redelivery, q string, args ...any) error {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: reading redeliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRedelivery(rows)
		if err != nil {
			return fmt.Errorf("store: reading redeliveries: %w", err)
		}
		out[r.GUID] = r
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: reading redeliveries: %w", err)
	}
	return nil
}

// SaveRedelivery records what recovery made of a failed delivery, under the lease.
func (s *Store) SaveRedelivery(ctx context.Context, l RecoveryLease, r Redelivery) error {
	if r.GUID == "" || r.State == "" {
		return errors.New("store: saving a redelivery: it needs a guid and a state")
	}
	return s.underRecovery(ctx, l, "saving a redelivery", func(tx *sql.Tx) error {
		now := s.now()
		_, err := tx.ExecContext(ctx, `INSERT INTO recovery_deliveries (guid, attempt_id, event, action, repo, ref, state,
			attempts, reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
			ON CONFLICT (guid) DO UPDATE SET attempt_id = excluded.attempt_id, event = excluded.event, action = excluded.action,
			repo = excluded.repo, ref = excluded.ref, state = excluded.state, attempts = excluded.attempts,
			reason = excluded.reason, updated_at = excluded.updated_at`,
			r.GUID, r.AttemptID, r.Event, r.Action, r.Repo, r.Ref, string(r.State), r.Attempts, r.Reason, now)
		return err
	})
}

// RecoveryRef is a ref recovery reconciles, as a pass saw it. The ref "" marks a repository
// whose refs a pass has read: refs it has no row for are new since.
type RecoveryRef struct {
	Ref        string // refs/heads/… or refs/tags/…
	SHA        string // what it pointed at (for an annotated tag, its tag object)
	ObservedAt time.Time
}

// RecoveryRefs returns a repository's refs as recovery last saw them, by ref.
func (s *Store) RecoveryRefs(ctx context.Context, repo string) (map[string]RecoveryRef, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT ref, sha, observed_at FROM recovery_refs WHERE repo = $1`, repo)
	if err != nil {
		return nil, fmt.Errorf("store: reading the refs of %s: %w", repo, err)
	}
	defer rows.Close()
	out := map[string]RecoveryRef{}
	for rows.Next() {
		var r RecoveryRef
		var at int64
		if err := rows.Scan(&r.Ref, &r.SHA, &at); err != nil {
			return nil, fmt.Errorf("store: reading the refs of %s: %w", repo, err)
		}
		r.ObservedAt = fromMicros(at)
		out[r.Ref] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading the refs of %s: %w", repo, err)
	}
	return out, nil
}

// SaveRecoveryRefs records refs of a repository as a pass saw them and forgets drop (refs that
// are gone), under the lease, in one transaction.
func (s *Store) SaveRecoveryRefs(ctx context.Context, l RecoveryLease, repo string, refs []RecoveryRef, drop []string) error {
	return s.underRecovery(ctx, l, "saving refs", func(tx *sql.Tx) error {
		for _, r := range refs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_refs (repo, ref, sha, observed_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (repo, ref) DO UPDATE SET sha = excluded.sha, observed_at = excluded.observed_at`,
				repo, r.Ref, r.SHA, micros(r.ObservedAt)); err != nil {
				return err
			}
		}
		for _, ref := range drop {
			if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_refs WHERE repo = $1 AND ref = $2`, repo, ref); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeployRequestedSince reports whether a deploy of sha to app's stage was recorded at or after
// since, whatever became of it: a push or merge Stagecoach heard of.
func (s *Store) DeployRequestedSince(ctx context.Context, app, stage, sha string, since time.Time) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM deploys WHERE app = $1 AND stage = $2 AND sha = $3 AND created_at >= $4
		LIMIT 1`, app, stage, sha, micros(since)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: looking for a deploy of %s to %s/%s: %w", sha, app, stage, err)
	}
	return true, nil
}

// PushRecordedSince reports whether a push of sha to repo's stage (a jobs.KindPush job, keyed by
// jobs.PushKey) was recorded at or after since, by any delivery: a push to a guarded stage that
// Stagecoach heard of, whatever the gate made of it.
func (s *Store) PushRecordedSince(ctx context.Context, repo, stage, sha string, since time.Time) (bool, error) {
	prefix := jobs.PushKeyPrefix(repo, stage, sha)
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE kind = $1 AND substr(job_key, 1, $2) = $3 AND created_at >= $4 LIMIT 1`,
		jobs.KindPush, len(prefix), prefix, micros(since)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: looking for a push of %.7s to %s of %s: %w", sha, stage, repo, err)
	}
	return true, nil
}

// JobExists reports whether a job with this key was recorded.
func (s *Store) JobExists(ctx context.Context, key string) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE job_key = $1`, key).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: looking for job %s: %w", key, err)
	}
	return true, nil
}
