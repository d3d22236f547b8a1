package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Write is what the store knows of one object Stagecoach creates on GitHub, by a key that names
// it (its purpose, not its GitHub id): whether a create was attempted before, and its id once
// known.
type Write struct {
	Attempted bool  // a create was begun before: it may have reached GitHub even if ObjectID is 0
	ObjectID  int64 // the object's id on GitHub; 0 while unknown
}

// BeginWrite records that the object key names is about to be created, and says what an earlier
// attempt left: nothing (create it), an id (it exists: use it), or an attempt without an id (the
// process died or the call failed between GitHub's answer and the commit: look it up on GitHub
// before creating it). The record is committed before the caller calls GitHub.
func (s *Store) BeginWrite(ctx context.Context, key string) (Write, error) {
	var w Write
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, `INSERT INTO github_writes (write_key, created_at, updated_at) VALUES ($1, $2, $2)
			ON CONFLICT (write_key) DO NOTHING`, key, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 1 {
			return err
		}
		w.Attempted = true
		return tx.QueryRowContext(ctx, `SELECT object_id FROM github_writes WHERE write_key = $1`, key).Scan(&w.ObjectID)
	})
	if err != nil {
		return Write{}, fmt.Errorf("store: recording the GitHub write %s: %w", key, err)
	}
	return w, nil
}

// EndWrite records the id of the object key names, once GitHub made (or a lookup found) it.
func (s *Store) EndWrite(ctx context.Context, key string, objectID int64) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE github_writes SET object_id = $1, updated_at = $2 WHERE write_key = $3`,
		objectID, s.now(), key); err != nil {
		return fmt.Errorf("store: recording the GitHub write %s: %w", key, err)
	}
	return nil
}

// NewerSuccessReported reports whether a deploy of app to stage newer than id has had a
// successful GitHub Deployment status sent: what GitHub shows as live there is newer than id.
func (s *Store) NewerSuccessReported(ctx context.Context, app, stage string, id int64) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM deploys WHERE app = $1 AND stage = $2 AND id > $3
		AND github_deployment_status = 'success' LIMIT 1) n`, app, stage, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: looking for newer deploys of %s to %s: %w", app, stage, err)
	}
	return n > 0, nil
}
