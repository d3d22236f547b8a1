package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StageLock holds one stage of one app: automatic deploys queue behind it (newest wins) and
// commands are refused, except its owner's.
type StageLock struct {
	App, Stage, Repo string
	Owner            string // GitHub login
	Reason           string
	Issue            int // where it was locked
	CreatedAt        time.Time
}

const lockCols = "app, stage, repo, owner, reason, issue, created_at"

func scanLock(row scanner) (StageLock, error) {
	var l StageLock
	var issue, created int64
	if err := row.Scan(&l.App, &l.Stage, &l.Repo, &l.Owner, &l.Reason, &issue, &created); err != nil {
		return StageLock{}, err
	}
	l.Issue, l.CreatedAt = int(issue), fromMicros(created)
	return l, nil
}

// LockStage locks l.App's l.Stage for l.Owner unless it is locked already. It returns the lock
// that holds the stage afterwards and whether it is l: a lock by someone else is not replaced;
// the owner locking again updates the reason.
func (s *Store) LockStage(ctx context.Context, l StageLock) (StageLock, bool, error) {
	var held StageLock
	var ours bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO locks (`+lockCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (app, stage) DO UPDATE SET reason = excluded.reason, issue = excluded.issue
			WHERE locks.owner = excluded.owner`, l.App, l.Stage, l.Repo, l.Owner, l.Reason, l.Issue, s.now()); err != nil {
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

// UnlockStage removes the lock of app's stage and returns it; ErrNotFound when there was none.
func (s *Store) UnlockStage(ctx context.Context, app, stage string) (StageLock, error) {
	var l StageLock
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if l, err = scanLock(tx.QueryRowContext(ctx, `SELECT `+lockCols+` FROM locks WHERE app = $1 AND stage = $2`, app, stage)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM locks WHERE app = $1 AND stage = $2`, app, stage)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return StageLock{}, fmt.Errorf("lock of %s on %s: %w", app, stage, ErrNotFound)
	}
	if err != nil {
		return StageLock{}, fmt.Errorf("store: unlocking %s of %s: %w", stage, app, err)
	}
	s.wake(WakeDeploys) // its queued deploy may start
	return l, nil
}

// StageLocks returns every lock, oldest first.
func (s *Store) StageLocks(ctx context.Context) ([]StageLock, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+lockCols+` FROM locks ORDER BY created_at, app, stage`)
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
