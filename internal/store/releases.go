package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ReleaseState is where a release stands.
type ReleaseState string

// The states of a release.
const (
	// ReleaseOpening: recorded; its issue and check run are being made.
	ReleaseOpening ReleaseState = "opening"
	// ReleaseOpen: its issue offers the promotion.
	ReleaseOpen ReleaseState = "open"
	// ReleaseRefused: the tag's commit never succeeded where releases come from; its check run
	// says so and no issue is opened.
	ReleaseRefused ReleaseState = "refused"
	// ReleasePromoting: someone promoted it; its deploys run.
	ReleasePromoting ReleaseState = "promoting"
	// ReleaseShipped: every deploy of the promotion succeeded; the issue is closed.
	ReleaseShipped ReleaseState = "shipped"
	// ReleaseFailed: the promotion's deploy failed; the issue stays open for another try.
	ReleaseFailed ReleaseState = "failed"
)

// Release is one release tag of a repository and what was made for it.
type Release struct {
	ID             int64
	Repo, Tag, SHA string
	InstallationID int64
	TaggedBy       string
	State          ReleaseState
	Reason         string // why it was refused or failed
	Issue          int
	CheckRunID     int64
	PromotedBy     string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ShippedAt      time.Time
}

const releaseCols = `id, repo, tag, sha, installation_id, tagged_by, state, reason, issue_number, check_run_id,
	promoted_by, created_at, updated_at, shipped_at`

func scanRelease(row scanner) (Release, error) {
	var r Release
	var state string
	var issue, created, updated, shipped int64
	err := row.Scan(&r.ID, &r.Repo, &r.Tag, &r.SHA, &r.InstallationID, &r.TaggedBy, &state, &r.Reason, &issue,
		&r.CheckRunID, &r.PromotedBy, &created, &updated, &shipped)
	if err != nil {
		return Release{}, err
	}
	r.State, r.Issue = ReleaseState(state), int(issue)
	r.CreatedAt, r.UpdatedAt, r.ShippedAt = fromMicros(created), fromMicros(updated), fromMicros(shipped)
	return r, nil
}

// CreateRelease records r unless its repository has a release of that tag already. It returns
// the stored release and whether it is new.
func (s *Store) CreateRelease(ctx context.Context, r Release) (Release, bool, error) {
	var out Release
	var created bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, `INSERT INTO releases (repo, tag, sha, installation_id, tagged_by, state, reason,
			created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (repo, tag) DO NOTHING`,
			r.Repo, r.Tag, r.SHA, r.InstallationID, r.TaggedBy, string(r.State), r.Reason, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		out, err = scanRelease(tx.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE repo = $1 AND tag = $2`, r.Repo, r.Tag))
		return err
	})
	if err != nil {
		return Release{}, false, fmt.Errorf("store: recording release %s of %s: %w", r.Tag, r.Repo, err)
	}
	return out, created, nil
}

// UpdateRelease stores r's state, reason, issue, check run and promotion.
func (s *Store) UpdateRelease(ctx context.Context, r Release) error {
	res, err := s.write.ExecContext(ctx, `UPDATE releases SET sha = $1, state = $2, reason = $3, issue_number = $4,
		check_run_id = $5, promoted_by = $6, shipped_at = $7, updated_at = $8 WHERE id = $9`,
		r.SHA, string(r.State), r.Reason, r.Issue, r.CheckRunID, r.PromotedBy, micros(r.ShippedAt), s.now(), r.ID)
	if err != nil {
		return fmt.Errorf("store: updating release %s of %s: %w", r.Tag, r.Repo, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("release %d: %w", r.ID, ErrNotFound)
	}
	return nil
}

// ClaimRelease makes the job with key the one that opens release id's issue and check run for
// sha. A tag's create and push events both bring a job, and they may run at once: only the first
// to claim goes on (and its own retries, which carry its key). A tag moved to another commit is
// claimed afresh. It reports whether key holds the release.
func (s *Store) ClaimRelease(ctx context.Context, id int64, key, sha string) (bool, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE releases SET opened_by = $1, sha = $2, updated_at = $3
		WHERE id = $4 AND (opened_by = '' OR opened_by = $1 OR sha <> $2)`, key, sha, s.now(), id)
	if err != nil {
		return false, fmt.Errorf("store: claiming release %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseByIssue returns the release whose issue is number in repo; ErrNotFound when the issue
// is no release issue.
func (s *Store) ReleaseByIssue(ctx context.Context, repo string, number int) (Release, error) {
	return s.oneRelease(ctx, `repo = $1 AND issue_number = $2`, repo, number)
}

// ReleaseByCheckRun returns the release whose check run is id; ErrNotFound when there is none.
func (s *Store) ReleaseByCheckRun(ctx context.Context, repo string, id int64) (Release, error) {
	return s.oneRelease(ctx, `repo = $1 AND check_run_id = $2`, repo, id)
}

func (s *Store) oneRelease(ctx context.Context, where string, args ...any) (Release, error) {
	r, err := scanRelease(s.read.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE `+where+
		` ORDER BY id DESC LIMIT 1`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Release{}, fmt.Errorf("release: %w", ErrNotFound)
	}
	if err != nil {
		return Release{}, fmt.Errorf("store: reading a release: %w", err)
	}
	return r, nil
}

// Releases returns repo's releases, newest first (at most limit; default 20).
func (s *Store) Releases(ctx context.Context, repo string, limit int) ([]Release, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE repo = $1 ORDER BY id DESC LIMIT $2`, repo, limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing releases of %s: %w", repo, err)
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing releases of %s: %w", repo, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
