package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StageLock holds one stage of one app: automatic deploys queue behind it (newest wins) and
// commands are refused, except its owner's. A lock taken for a while expires: from ExpiresAt on
// it holds nothing back and is no longer listed.
type StageLock struct {
	App, Stage, Repo string
	Owner            string // GitHub login
	Reason           string
	Issue            int // where it was locked
	CreatedAt        time.Time
	ExpiresAt        time.Time // zero: until someone unlocks it
}

const lockCols = "app, stage, repo, owner, reason, issue, created_at, expires_at"

// liveLock is the condition a lock that has not expired meets, given now as $1.
const liveLock = "(expires_at = 0 OR expires_at > $1)"

func scanLock(row scanner) (StageLock, error) {
	var l StageLock
	var issue, created, expires int64
	if err := row.Scan(&l.App, &l.Stage, &l.Repo, &l.Owner, &l.Reason, &issue, &created, &expires); err != nil {
		return StageLock{}, err
	}
	l.Issue, l.CreatedAt, l.ExpiresAt = int(issue), fromMicros(created), fromMicros(expires)
	return l, nil
}

// LockStage locks l.App's l.Stage for l.Owner (until l.ExpiresAt, when set) unless someone else
// holds it. It returns the lock that holds the stage afterwards and whether it is l: a lock by
// someone else is not replaced unless it expired; the owner locking again updates the reason and
// the expiry.
func (s *Store) LockStage(ctx context.Context, l StageLock) (StageLock, bool, error) {
	var held StageLock
	var ours bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO locks (`+lockCols+`) VALUES ($2, $3, $4, $5, $6, $7, $1, $8)
			ON CONFLICT (app, stage) DO UPDATE SET reason = excluded.reason, issue = excluded.issue, expires_at = excluded.expires_at,
				repo = excluded.repo, owner = excluded.owner,
				created_at = CASE WHEN locks.owner = excluded.owner AND `+strings.ReplaceAll(liveLock, "expires_at", "locks.expires_at")+`
					THEN locks.created_at ELSE excluded.created_at END
			WHERE locks.owner = excluded.owner OR NOT `+strings.ReplaceAll(liveLock, "expires_at", "locks.expires_at"),
			now, l.App, l.Stage, l.Repo, l.Owner, l.Reason, l.Issue, max(micros(l.ExpiresAt), 0)); err != nil {
			return err
		}
		var err error
		held, err = scanLock(tx.QueryRowContext(ctx, `SELECT `+lockCols+` FROM locks WHERE app = $1 AND stage = $2`, l.App, l.Stage))
		ours = err == nil && held.Owner == l.Owner
		return err
	})
	if err != nil {
		return StageLock{}, false, fmt.Errorf("store: locking %s of %s: %w", l.Stage, l.App, err)
	}
	return held, ours, nil
}

// UnlockStage removes the lock of app's stage and returns it; ErrNotFound when there was none,
// or it had expired (it is removed all the same).
func (s *Store) UnlockStage(ctx context.Context, app, stage string) (StageLock, error) {
	var l StageLock
	var expired bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		l, err = scanLock(tx.QueryRowContext(ctx, `SELECT `+lockCols+` FROM locks WHERE app = $1 AND stage = $2`, app, stage))
		if err != nil {
			return err
		}
		expired = !l.ExpiresAt.IsZero() && !l.ExpiresAt.After(fromMicros(s.now()))
		_, err = tx.ExecContext(ctx, `DELETE FROM locks WHERE app = $1 AND stage = $2`, app, stage)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) || err == nil && expired {
		return StageLock{}, fmt.Errorf("lock of %s on %s: %w", app, stage, ErrNotFound)
	}
	if err != nil {
		return StageLock{}, fmt.Errorf("store: unlocking %s of %s: %w", stage, app, err)
	}
	s.wake(WakeDeploys) // its queued deploy may start
	return l, nil
}

// StageLocks returns every lock that has not expired, oldest first.
func (s *Store) StageLocks(ctx context.Context) ([]StageLock, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+lockCols+` FROM locks WHERE `+liveLock+` ORDER BY created_at, app, stage`, s.now())
	if err != nil {
		return nil, fmt.Errorf("store: reading locks: %w", err)
	}
	defer rows.Close()
	var out []StageLock
	for rows.Next() {
		l, err := scanLock(rows)
		if err != nil {
			return nil, fmt.Errorf("store: reading locks: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
