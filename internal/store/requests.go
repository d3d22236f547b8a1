package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// RequestDeploys records deploy requests that a command made rather than a webhook (a promotion,
// a rollback, a retry), each with the job that gives it its check run, all in one transaction. A
// request whose key an existing deploy has is that deploy (RecordedDeploy.New false), so a
// command retried after a crash asks for nothing twice.
func (s *Store) RequestDeploys(ctx context.Context, reqs []deploy.Request) ([]RecordedDeploy, error) {
	var out []RecordedDeploy
	for attempt := 1; ; attempt++ {
		out = out[:0]
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			st := s.stmts.in(ctx, tx)
			now := s.now()
			for _, r := range reqs {
				rd, err := s.recordDeploy(ctx, &st, r, now)
				if err != nil {
					return fmt.Errorf("store: requesting deploy %s: %w", r.Key(), err)
				}
				if rd.New {
					if _, err := insertJob(ctx, &st, jobs.CheckRun(deploy.Deploy{ID: rd.ID, Request: r}), now); err != nil {
						return err
					}
				}
				out = append(out, rd)
			}
			return nil
		})
		if err == nil {
			s.wake(WakeJobs | WakeDeploys)
		}
		if err == nil || attempt == maxAttempts || !isRetryable(err) {
			return out, err
		}
	}
}

// ReleaseDeploy lets a held deploy start. Releasing a deploy that is not held, or no longer
// queued (superseded meanwhile), changes nothing.
func (s *Store) ReleaseDeploy(ctx context.Context, id int64) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE deploys SET held = 0, run_after = $1, updated_at = $1
		WHERE id = $2 AND held = 1 AND state = 'queued'`, s.now(), id); err != nil {
		return fmt.Errorf("store: releasing deploy %d: %w", id, err)
	}
	s.wake(WakeDeploys)
	return nil
}

// CancelDeploy ends a deploy that has not started (queued, held or not) as cancelled, with the
// reason, and records the report that tells GitHub. It reports whether it cancelled anything: a
// deploy that started already is not stopped halfway.
func (s *Store) CancelDeploy(ctx context.Context, id int64, reason string) (bool, error) {
	var cancelled bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		d, err := scanDeploy(tx.QueryRowContext(ctx, `UPDATE deploys SET state = 'cancelled', error = $1, held = 0, updated_at = $2,
			finished_at = $2, report_seq = report_seq + 1, lease_owner = '', lease_expires = 0
			WHERE id = $3 AND state = 'queued' RETURNING `+deployCols, reason, now, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		cancelled = true
		st := s.stmts.in(ctx, tx)
		return insertJobs(ctx, &st, jobs.ForDeploy(d), now)
	})
	if err != nil {
		return false, fmt.Errorf("store: cancelling deploy %d: %w", id, err)
	}
	if cancelled {
		s.wake(WakeJobs | WakeDeploys)
	}
	return cancelled, nil
}

// LiveDeploys returns, for each stage of app that has one, the stage's newest successful deploy:
// what runs there now.
func (s *Store) LiveDeploys(ctx context.Context, app string) (map[string]deploy.Deploy, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+deployCols+` FROM deploys WHERE id IN (
		SELECT MAX(id) FROM deploys WHERE app = $1 AND state = 'succeeded' GROUP BY stage)`, app)
	if err != nil {
		return nil, fmt.Errorf("store: reading what is live for %s: %w", app, err)
	}
	defer rows.Close()
	out := map[string]deploy.Deploy{}
	for rows.Next() {
		d, err := scanDeploy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: reading what is live for %s: %w", app, err)
		}
		out[d.Stage] = d
	}
	return out, rows.Err()
}

// Succeeded returns the newest successful deploy of sha to app's stage, and whether there is
// one: the stage order lets a commit onto a stage only once it succeeded on the stage before.
func (s *Store) Succeeded(ctx context.Context, app, stage, sha string) (deploy.Deploy, bool, error) {
	d, err := scanDeploy(s.read.QueryRowContext(ctx, `SELECT `+deployCols+` FROM deploys
		WHERE app = $1 AND stage = $2 AND sha = $3 AND state = 'succeeded' ORDER BY id DESC LIMIT 1`, app, stage, sha))
	if err == sql.ErrNoRows {
		return deploy.Deploy{}, false, nil
	}
	if err != nil {
		return deploy.Deploy{}, false, fmt.Errorf("store: looking for %s on %s of %s: %w", deploy.ShortSHA(sha), stage, app, err)
	}
	return d, true, nil
}

// DeploysByDelivery returns the deploys one delivery asked for (all apps of a repository a
// command or a push deploys), oldest first.
func (s *Store) DeploysByDelivery(ctx context.Context, delivery string) ([]deploy.Deploy, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+deployCols+` FROM deploys WHERE trigger_delivery = $1 ORDER BY id`, delivery)
	if err != nil {
		return nil, fmt.Errorf("store: reading the deploys of delivery %s: %w", delivery, err)
	}
	defer rows.Close()
	var out []deploy.Deploy
	for rows.Next() {
		d, err := scanDeploy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: reading the deploys of delivery %s: %w", delivery, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
