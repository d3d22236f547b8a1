package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// Lease is the right to advance one deploy or job. Token changes on every claim, and every
// write under the lease checks it, so a worker whose lease expired and was taken over can no
// longer write.
type Lease struct {
	ID    int64
	Owner string
	Token int64
}

// Filter selects deploys for ListDeploys.
type Filter struct {
	App, Stage string
	State      deploy.State
	Limit      int   // default 100, at most 1000
	BeforeID   int64 // only deploys with a smaller id (paging)
	// Repos, when not nil, keeps only the deploys of these repositories (owner/name, compared
	// case-insensitively): what the person or token asking may read. An empty, non-nil list
	// keeps none.
	Repos []string
}

const deployCols = `id, app, stage, repo, sha, ref, installation_id, trigger_event, trigger_delivery, trigger_pr,
	trigger_actor, state, superseded_by, check_run_id, error, checkpoint, created_at, updated_at, started_at, finished_at,
	github_deployment_id, github_deployment_status, pr_comment_id, mode, image, slot, force_reason, trigger_issue,
	trigger_comment, held, report_seq`

type scanner interface{ Scan(...any) error }

func scanDeploy(row scanner) (deploy.Deploy, error) {
	var d deploy.Deploy
	var pr, issue, held, created, updated, started, finished int64
	var state, mode string
	err := row.Scan(&d.ID, &d.App, &d.Stage, &d.Repo, &d.SHA, &d.Ref, &d.InstallationID, &d.Trigger.Event,
		&d.Trigger.Delivery, &pr, &d.Trigger.Actor, &state, &d.SupersededBy, &d.CheckRunID, &d.Error, &d.Checkpoint,
		&created, &updated, &started, &finished, &d.GitHubDeploymentID, &d.GitHubDeploymentStatus, &d.CommentID,
		&mode, &d.Image, &d.Slot, &d.Force, &issue, &d.Trigger.Comment, &held, &d.ReportSeq)
	if err != nil {
		return deploy.Deploy{}, err
	}
	d.Trigger.PR, d.Trigger.Issue, d.State, d.Mode, d.Held = int(pr), int(issue), deploy.State(state), deploy.Mode(mode), held != 0
	d.CreatedAt, d.UpdatedAt, d.StartedAt, d.FinishedAt = fromMicros(created), fromMicros(updated), fromMicros(started), fromMicros(finished)
	return d, nil
}

// ListDeploys returns the deploys f selects, newest first.
func (s *Store) ListDeploys(ctx context.Context, f Filter) ([]deploy.Deploy, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.App != "" {
		add("app = $%d", f.App)
	}
	if f.Stage != "" {
		add("stage = $%d", f.Stage)
	}
	if f.State != "" {
		add("state = $%d", string(f.State))
	}
	if f.BeforeID > 0 {
		add("id < $%d", f.BeforeID)
	}
	if f.Repos != nil {
		if len(f.Repos) == 0 {
			return nil, nil
		}
		in := make([]string, len(f.Repos))
		for i, r := range f.Repos {
			args = append(args, strings.ToLower(r))
			in[i] = fmt.Sprintf("$%d", len(args))
		}
		where = append(where, "LOWER(repo) IN ("+strings.Join(in, ", ")+")")
	}
	q := "SELECT " + deployCols + " FROM deploys"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing deploys: %w", err)
	}
	defer rows.Close()
	var out []deploy.Deploy
	for rows.Next() {
		d, err := scanDeploy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing deploys: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Deploy returns one deploy, or ErrNotFound.
func (s *Store) Deploy(ctx context.Context, id int64) (deploy.Deploy, error) {
	d, err := scanDeploy(s.read.QueryRowContext(ctx, "SELECT "+deployCols+" FROM deploys WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return deploy.Deploy{}, fmt.Errorf("deploy %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return deploy.Deploy{}, fmt.Errorf("store: reading deploy %d: %w", id, err)
	}
	return d, nil
}

// CountDeploys counts deploys by state.
func (s *Store) CountDeploys(ctx context.Context) (map[deploy.State]int, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT state, COUNT(*) FROM deploys GROUP BY state")
	if err != nil {
		return nil, fmt.Errorf("store: counting deploys: %w", err)
	}
	defer rows.Close()
	out := map[deploy.State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: counting deploys: %w", err)
		}
		out[deploy.State(st)] = n
	}
	return out, rows.Err()
}

// SetCheckRun records the check run that reports a deploy.
func (s *Store) SetCheckRun(ctx context.Context, deployID, checkRunID int64) error {
	res, err := s.write.ExecContext(ctx, "UPDATE deploys SET check_run_id = $1, updated_at = $2 WHERE id = $3", checkRunID, s.now(), deployID)
	if err != nil {
		return fmt.Errorf("store: setting check run of deploy %d: %w", deployID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deploy %d: %w", deployID, ErrNotFound)
	}
	return nil
}

// SetGitHubDeployment records the GitHub Deployment of a deploy and the last status sent to it.
func (s *Store) SetGitHubDeployment(ctx context.Context, deployID, githubID int64, status string) error {
	return s.setReport(ctx, deployID, "github_deployment_id = $1, github_deployment_status = $2", githubID, status)
}

// SetComment records the pull-request comment that reports a deploy.
func (s *Store) SetComment(ctx context.Context, deployID, commentID int64) error {
	return s.setReport(ctx, deployID, "pr_comment_id = $1", commentID)
}

func (s *Store) setReport(ctx context.Context, id int64, set string, args ...any) error {
	args = append(args, id)
	res, err := s.write.ExecContext(ctx, fmt.Sprintf("UPDATE deploys SET %s WHERE id = $%d", set, len(args)), args...)
	if err != nil {
		return fmt.Errorf("store: recording a report of deploy %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deploy %d: %w", id, ErrNotFound)
	}
	return nil
}

const runningStates = "('preflight', 'building', 'rolling_out')"
const finalStates = "('succeeded', 'failed', 'rolled_back', 'superseded', 'cancelled')"

// dueStates is the predicate of the partial index deploys_due, spelled exactly as there: a
// claim that repeats it lets both databases walk that index (the deploys that can still run,
// by run_after) instead of the whole history.
const dueStates = "('queued', 'preflight', 'building', 'rolling_out')"

// ClaimDeploy leases one deploy that is due and not leased: a running one (its worker died or
// let it go until run_after) or a queued one whose app and stage have nothing running, that is
// not held, and whose stage is not locked (a command by the lock's owner passes; an expired lock
// holds nothing back). Oldest run_after first. ErrNoWork when there is none. The lease runs for
// ttl on the database's clock, so a replica whose clock is ahead cannot take a lease another
// still holds.
func (s *Store) ClaimDeploy(ctx context.Context, owner string, ttl time.Duration) (deploy.Deploy, Lease, error) {
	var token int64
	var d deploy.Deploy
	row := s.write.QueryRowContext(ctx, s.claimDeployQuery(), owner, ttl.Microseconds(), s.now())
	d, err := scanDeploy(scanFunc(func(dest ...any) error { return row.Scan(append([]any{&token}, dest...)...) }))
	if errors.Is(err, sql.ErrNoRows) {
		return deploy.Deploy{}, Lease{}, ErrNoWork
	}
	if err != nil {
		return deploy.Deploy{}, Lease{}, fmt.Errorf("store: claiming a deploy: %w", err)
	}
	return d, Lease{ID: d.ID, Owner: owner, Token: token}, nil
}

// claimDeployQuery is ClaimDeploy's statement: $1 the owner, $2 the lease in microseconds, $3
// this process's now (for run_after).
func (s *Store) claimDeployQuery() string {
	now := s.dbNow()
	return `UPDATE deploys SET lease_owner = $1, lease_token = lease_token + 1, lease_expires = ` + now + ` + $2
		WHERE id = (
			SELECT d.id FROM deploys d
			WHERE d.state IN ` + dueStates + ` AND d.run_after <= $3 AND d.lease_expires < ` + now + `
				AND (d.state <> 'queued' OR (d.held = 0 AND NOT EXISTS (
					SELECT 1 FROM deploys r WHERE r.app = d.app AND r.stage = d.stage AND r.state IN ` + runningStates + `)
				AND NOT EXISTS (SELECT 1 FROM locks l WHERE l.app = d.app AND l.stage = d.stage
					AND (l.expires_at = 0 OR l.expires_at > $3)
					AND NOT (d.trigger_event IN ('issue_comment', 'check_run') AND d.trigger_actor = l.owner))))
			ORDER BY d.run_after, d.id LIMIT 1` + s.d.lock + `
		) RETURNING lease_token, ` + deployCols
}

type scanFunc func(...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// Heartbeat extends a deploy's lease to ttl from now on the database's clock. ErrLeaseLost
// when it was taken over or the deploy ended.
func (s *Store) Heartbeat(ctx context.Context, l Lease, ttl time.Duration) error {
	res, err := s.write.ExecContext(ctx, `UPDATE deploys SET lease_expires = `+s.dbNow()+` + $1
		WHERE id = $2 AND lease_owner = $3 AND lease_token = $4 AND state NOT IN `+finalStates,
		ttl.Microseconds(), l.ID, l.Owner, l.Token)
	return leaseResult(res, err, "heartbeat", l)
}

// Update is what a pipeline step changes on its deploy.
type Update struct {
	State      deploy.State // "" keeps the state
	Error      string
	Checkpoint []byte    // nil keeps the stored checkpoint
	RunAfter   time.Time // when to look at the deploy again (zero: now)
	Release    bool      // drop the lease (always done for final states)
	// Report says the change is worth telling GitHub about (always so for a new state): the
	// jobs it implies (jobs.ForDeploy) are recorded with it, in the same transaction.
	Report bool
}

// Advance applies u to the leased deploy, with the jobs the change implies. It fails with
// ErrLeaseLost when the lease is no longer this worker's or the deploy ended meanwhile
// (superseded, cancelled), and with ErrConflict when the change would break the
// one-running-per-stage invariant.
func (s *Store) Advance(ctx context.Context, l Lease, u Update) error {
	now := s.now()
	sets := []string{"updated_at = $1", "run_after = $2", "error = $3"}
	args := []any{now, max(micros(u.RunAfter), 0), u.Error}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if u.State != "" {
		sets = append(sets, "state = "+arg(string(u.State)))
		if u.State.Running() {
			sets = append(sets, "started_at = CASE WHEN started_at = 0 THEN "+arg(now)+" ELSE started_at END")
		}
		if u.State.Final() {
			sets = append(sets, "finished_at = "+arg(now))
			u.Release = true
		}
		u.Report = true
	}
	if u.Checkpoint != nil {
		sets = append(sets, "checkpoint = "+arg(u.Checkpoint))
	}
	if u.Release {
		sets = append(sets, "lease_owner = ''", "lease_expires = 0")
	}
	if u.Report {
		sets = append(sets, "report_seq = report_seq + 1")
	}
	q := "UPDATE deploys SET " + strings.Join(sets, ", ") +
		" WHERE id = " + arg(l.ID) + " AND lease_owner = " + arg(l.Owner) + " AND lease_token = " + arg(l.Token) +
		" AND state NOT IN " + finalStates
	if !u.Report {
		res, err := s.write.ExecContext(ctx, q, args...)
		if isUniqueViolation(err) {
			return fmt.Errorf("deploy %d to %s: %w", l.ID, u.State, ErrConflict)
		}
		return leaseResult(res, err, "advance", l)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		d, err := scanDeploy(tx.QueryRowContext(ctx, q+" RETURNING "+deployCols, args...))
		if err != nil {
			return err
		}
		st := s.stmts.in(ctx, tx)
		return insertJobs(ctx, &st, jobs.ForDeploy(d), now)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("advance of %d: %w", l.ID, ErrLeaseLost)
	case isUniqueViolation(err):
		return fmt.Errorf("deploy %d to %s: %w", l.ID, u.State, ErrConflict)
	case err != nil:
		return fmt.Errorf("store: advance of %d: %w", l.ID, err)
	}
	wake := WakeJobs
	if u.State.Final() {
		wake |= WakeDeploys // the stage is free for its queued deploy
	}
	s.wake(wake)
	return nil
}

func leaseResult(res sql.Result, err error, op string, l Lease) error {
	if err != nil {
		return fmt.Errorf("store: %s of %d: %w", op, l.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s of %d: %w", op, l.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("%s of %d: %w", op, l.ID, ErrLeaseLost)
	}
	return nil
}
