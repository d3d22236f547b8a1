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

// ErrRepoConfigChanged says a repository's configuration was saved by someone else since it was
// read: read it again.
var ErrRepoConfigChanged = errors.New("store: the repository's configuration changed meanwhile")

// RepoConfig is a repository's own configuration file (package repoconfig): the version in
// force, and what the last read of the file found.
type RepoConfig struct {
	Repo string // owner/name, lower case
	// Version counts the versions that were in force; every replica applies the highest.
	Version int64
	SHA     string // the commit that brought the version in force ("" before any)
	Blob    string // its blob sha; "" when the repository has no file
	Content string // the file in force
	// What the last read found: its ETag (for a conditional read next time), the file's blob
	// and the commit that brought it, and its problems when it was refused ("" when it is the
	// version in force).
	ETag      string
	ReadBlob  string
	ReadSHA   string
	Problems  string
	UpdatedAt time.Time
}

const repoConfigCols = `repo, version, sha, blob_sha, content, etag, read_blob, read_sha, problems, updated_at`

// RepoConfig returns repo's row, or ErrNotFound when its file was never read.
func (s *Store) RepoConfig(ctx context.Context, repo string) (RepoConfig, error) {
	var rc RepoConfig
	var updated int64
	err := s.read.QueryRowContext(ctx, `SELECT `+repoConfigCols+` FROM repo_configs WHERE repo = $1`, strings.ToLower(repo)).Scan(
		&rc.Repo, &rc.Version, &rc.SHA, &rc.Blob, &rc.Content, &rc.ETag, &rc.ReadBlob, &rc.ReadSHA, &rc.Problems, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return RepoConfig{}, ErrNotFound
	}
	if err != nil {
		return RepoConfig{}, fmt.Errorf("store: reading the configuration of %s: %w", repo, err)
	}
	rc.UpdatedAt = fromMicros(updated)
	return rc, nil
}

// RepoConfigVersions returns the version in force of every repository whose file was read: what
// a replica compares with the versions it applied.
func (s *Store) RepoConfigVersions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT repo, version FROM repo_configs`)
	if err != nil {
		return nil, fmt.Errorf("store: reading repository configuration versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var repo string
		var v int64
		if err := rows.Scan(&repo, &v); err != nil {
			return nil, fmt.Errorf("store: reading repository configuration versions: %w", err)
		}
		out[repo] = v
	}
	return out, rows.Err()
}

// SaveRepoConfig records a read of rc.Repo's file as rc, with the jobs it implies (its check
// run), in one transaction, provided the row still has version from (0: none yet); otherwise
// nothing is written and the error is ErrRepoConfigChanged.
func (s *Store) SaveRepoConfig(ctx context.Context, rc RepoConfig, from int64, js []jobs.Job) error {
	now := s.now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO repo_configs (`+repoConfigCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (repo) DO UPDATE SET version = excluded.version, sha = excluded.sha, blob_sha = excluded.blob_sha,
				content = excluded.content, etag = excluded.etag, read_blob = excluded.read_blob, read_sha = excluded.read_sha,
				problems = excluded.problems, updated_at = excluded.updated_at
			WHERE repo_configs.version = $11`,
			strings.ToLower(rc.Repo), rc.Version, rc.SHA, rc.Blob, rc.Content, rc.ETag, rc.ReadBlob, rc.ReadSHA, rc.Problems, now, from)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrRepoConfigChanged
		}
		st := s.stmts.in(ctx, tx)
		return insertJobs(ctx, &st, js, now)
	})
	if errors.Is(err, ErrRepoConfigChanged) || isUniqueViolation(err) {
		return fmt.Errorf("saving the configuration of %s: %w", rc.Repo, ErrRepoConfigChanged)
	}
	if err != nil {
		return fmt.Errorf("store: saving the configuration of %s: %w", rc.Repo, err)
	}
	if len(js) > 0 {
		s.wake(WakeJobs)
	}
	return nil
}

// JobsInLane reports whether a job of lane recorded at or after since is not finished yet
// (waiting, pending or running): a repository's configuration being read, for instance.
func (s *Store) JobsInLane(ctx context.Context, lane string, since time.Time) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE lane = $1 AND state IN ('waiting', 'pending', 'running')
		AND created_at >= $2`, lane, micros(since)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: looking for jobs in lane %s: %w", lane, err)
	}
	return n > 0, nil
}
