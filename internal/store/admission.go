package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BranchMove is a move of a stage's branch that Stagecoach made for a command: recorded before
// the move, so the push GitHub delivers for it can be told from anyone else's.
type BranchMove struct {
	ID                int64
	Repo, Branch, SHA string
	CommandKey        string  // the command that moved it
	DeployIDs         []int64 // the deploys it recorded, held, before moving
	PushDelivery      string  // the push delivery matched to it; "" until one is
	CreatedAt         time.Time
}

// RecordBranchMove records that the command with m.CommandKey is about to move m.Branch to m.SHA.
// Recording it again (the command's job retried) changes nothing.
func (s *Store) RecordBranchMove(ctx context.Context, m BranchMove) error {
	ids := make([]string, len(m.DeployIDs))
	for i, id := range m.DeployIDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO branch_moves (repo, branch, sha, command_key, deploy_ids, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repo, branch, sha, command_key) DO NOTHING`,
		m.Repo, m.Branch, m.SHA, m.CommandKey, strings.Join(ids, ","), s.now()); err != nil {
		return fmt.Errorf("store: recording the move of %s to %.7s: %w", m.Branch, m.SHA, err)
	}
	return nil
}

// MatchBranchMove matches the push delivery to a move of repo's branch to sha that Stagecoach
// recorded and no other push was matched to (or this one was, on a retry), oldest first. It
// reports whether there was one.
func (s *Store) MatchBranchMove(ctx context.Context, repo, branch, sha, delivery string) (BranchMove, bool, error) {
	var m BranchMove
	var found bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var ids string
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT id, repo, branch, sha, command_key, deploy_ids, push_delivery, created_at
			FROM branch_moves WHERE repo = $1 AND branch = $2 AND sha = $3 AND (push_delivery = '' OR push_delivery = $4)
			ORDER BY id LIMIT 1`, repo, branch, sha, delivery).Scan(&m.ID, &m.Repo, &m.Branch, &m.SHA, &m.CommandKey, &ids,
			&m.PushDelivery, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, id := range strings.Split(ids, ",") {
			if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				m.DeployIDs = append(m.DeployIDs, n)
			}
		}
		found, m.PushDelivery, m.CreatedAt = true, delivery, fromMicros(created)
		_, err = tx.ExecContext(ctx, `UPDATE branch_moves SET push_delivery = $1 WHERE id = $2`, delivery, m.ID)
		return err
	})
	if err != nil {
		return BranchMove{}, false, fmt.Errorf("store: matching the push of %s at %.7s: %w", branch, sha, err)
	}
	return m, found, nil
}

// ReleaseByID returns release id of repo; ErrNotFound when there is none.
func (s *Store) ReleaseByID(ctx context.Context, repo string, id int64) (Release, error) {
	return s.oneRelease(ctx, `repo = $1 AND id = $2`, repo, id)
}

// ReleaseByTag returns repo's release of tag; ErrNotFound when the tag is no release.
func (s *Store) ReleaseByTag(ctx context.Context, repo, tag string) (Release, error) {
	return s.oneRelease(ctx, `repo = $1 AND tag = $2`, repo, tag)
}

// Refusals returns the newest commands and pushes of repo ("" for every repository) that were
// refused or ignored, at most limit (default 20): who asked for what, and why not.
func (s *Store) Refusals(ctx context.Context, repo string, limit int) ([]CommandRecord, error) {
	if limit <= 0 {
		limit = 20
	}
	q, args := `SELECT `+commandCols+` FROM commands WHERE outcome IN ('refused', 'ignored') ORDER BY id DESC LIMIT $1`, []any{limit}
	if repo != "" {
		q, args = `SELECT `+commandCols+` FROM commands WHERE repo = $1 AND outcome IN ('refused', 'ignored') ORDER BY id DESC LIMIT $2`,
			[]any{repo, limit}
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing refusals: %w", err)
	}
	defer rows.Close()
	var out []CommandRecord
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing refusals: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
