package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// The statements of the intake's hot path, prepared once on the writer. A batch binds each of
// them to its transaction once (sql.Tx.StmtContext), so SQLite parses none of them per record.
const (
	lockStage = iota // the dialect's stageLock; nil where there is none
	lockLane         // the same lock for a job lane; nil where there is none
	insDelivery
	selDeploy
	retireKey
	updTrigger
	supersede
	insDeploy
	setSupersededBy
	insJob
	selJob
	nStmts
)

var stmtText = [nStmts]string{
	insDelivery: `INSERT INTO deliveries (id, event, action, repo, installation_id, received_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
	// The deploy a key names, its state, and the newest deploy of its app and stage that was not
	// superseded: whether anything else was deployed there since.
	selDeploy: `SELECT d.id, d.trigger_pr, d.state, (SELECT MAX(n.id) FROM deploys n
		WHERE n.app = d.app AND n.stage = d.stage AND n.state <> 'superseded') FROM deploys d WHERE d.dedup_key = $1`,
	// A key whose deploy is history (something else was deployed since) is retired, so the
	// same commit requested again is a new deploy.
	retireKey: `UPDATE deploys SET dedup_key = dedup_key || '#' || CAST(id AS TEXT) WHERE id = $1`,
	updTrigger: `UPDATE deploys SET trigger_pr = $1, trigger_event = $2, trigger_delivery = $3,
		trigger_actor = $4, updated_at = $5 WHERE id = $6`,
	// Newest wins: a queued deploy of the same app and stage is superseded, never deleted. Its
	// lease goes too; the token stays, and the final state makes the holder's next write fail.
	supersede: `UPDATE deploys SET state = 'superseded', updated_at = $1, finished_at = $1, report_seq = report_seq + 1,
		lease_owner = '', lease_expires = 0 WHERE app = $2 AND stage = $3 AND state = 'queued' RETURNING ` + deployCols,
	insDeploy: `INSERT INTO deploys (dedup_key, app, stage, repo, sha, ref, installation_id,
		trigger_event, trigger_delivery, trigger_pr, trigger_actor, state, created_at, updated_at, run_after,
		mode, image, slot, force_reason, trigger_issue, trigger_comment, held)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12, $12, $12, $13, $14, $15, $16, $17, $18, $19)
		RETURNING id`,
	setSupersededBy: `UPDATE deploys SET superseded_by = $1 WHERE id = $2`,
	// A job of a lane with unfinished jobs waits for them (see finishLane).
	insJob: `INSERT INTO jobs (kind, job_key, payload, run_after, created_at, updated_at, lane, state)
		VALUES ($1, $2, $3, $4, $5, $5, CAST($6 AS TEXT), CASE WHEN CAST($6 AS TEXT) <> '' AND EXISTS (SELECT 1 FROM jobs
			WHERE lane = CAST($6 AS TEXT) AND state IN ('waiting', 'pending', 'running')) THEN 'waiting' ELSE 'pending' END)
		ON CONFLICT (job_key) DO NOTHING`,
	selJob: `SELECT id FROM jobs WHERE job_key = $1`,
}

// stmts holds the prepared statements, either on the database or bound to one transaction.
type stmts [nStmts]*sql.Stmt

func (st *stmts) prepare(ctx context.Context, db *sql.DB, d dialect) error {
	text := stmtText
	text[lockStage], text[lockLane] = d.stageLock, d.stageLock
	for i, q := range text {
		if q == "" {
			continue
		}
		var err error
		if st[i], err = db.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("store: preparing %q: %w", q, err)
		}
	}
	return nil
}

func (st *stmts) close() error {
	var err error
	for i, s := range st {
		if s != nil {
			err = errors.Join(err, s.Close())
			st[i] = nil
		}
	}
	return err
}

// in binds the statements to tx; they are closed with it.
func (st *stmts) in(ctx context.Context, tx *sql.Tx) stmts {
	var out stmts
	for i, s := range st {
		if s != nil {
			out[i] = tx.StmtContext(ctx, s)
		}
	}
	return out
}

// recordOne writes one intake with statements bound to the current transaction.
func (s *Store) recordOne(ctx context.Context, st *stmts, in Intake) (Recorded, error) {
	now := s.now()
	d := in.Delivery
	res, err := st[insDelivery].ExecContext(ctx, d.ID, d.Event, d.Action, d.Repo, d.InstallationID, now)
	if err != nil {
		return Recorded{}, fmt.Errorf("store: recording delivery %s: %w", d.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Recorded{}, fmt.Errorf("store: recording delivery %s: %w", d.ID, err)
	} else if n == 0 {
		return Recorded{Duplicate: true}, nil
	}
	var rec Recorded
	if len(in.Deploys) > 0 {
		rec.Deploys = make([]RecordedDeploy, 0, len(in.Deploys))
	}
	for _, r := range in.Deploys {
		rd, err := s.recordDeploy(ctx, st, r, now)
		if err != nil {
			return Recorded{}, fmt.Errorf("store: recording deploy %s: %w", r.Key(), err)
		}
		rec.Deploys = append(rec.Deploys, rd)
		if rd.New {
			if _, err := insertJob(ctx, st, jobs.CheckRun(deploy.Deploy{ID: rd.ID, Request: r}), now); err != nil {
				return Recorded{}, err
			}
		}
	}
	for _, j := range in.Jobs {
		if j.DeployKey != "" {
			id, err := deployIDFor(ctx, st, in, rec, j.DeployKey)
			if err != nil {
				return Recorded{}, fmt.Errorf("store: recording job %s: %w", j.Key, err)
			}
			if j.Payload, err = withDeployID(j.Payload, id); err != nil {
				return Recorded{}, fmt.Errorf("store: recording job %s: %w", j.Key, err)
			}
		}
		if _, err := insertJob(ctx, st, j, now); err != nil {
			return Recorded{}, err
		}
	}
	return rec, nil
}

func (s *Store) recordDeploy(ctx context.Context, st *stmts, r deploy.Request, now int64) (RecordedDeploy, error) {
	key := r.Key()
	if st[lockStage] != nil {
		if _, err := st[lockStage].ExecContext(ctx, stageLockClass, stageHash(r.App, r.Stage)); err != nil {
			return RecordedDeploy{}, err
		}
	}
	var id, pr, latest int64
	var state string
	err := st[selDeploy].QueryRowContext(ctx, key).Scan(&id, &pr, &state, &latest)
	switch {
	case err == nil && sameDeploy(r, deploy.State(state), id == latest):
		// The same commit again (the push of a merged PR's merge commit, say). If the first
		// request did not know the pull request and this one does, keep the PR: it is where
		// the deploy reports back to.
		if pr == 0 && r.Trigger.PR != 0 {
			if _, err := st[updTrigger].ExecContext(ctx, r.Trigger.PR, r.Trigger.Event, r.Trigger.Delivery,
				r.Trigger.Actor, now, id); err != nil {
				return RecordedDeploy{}, err
			}
		}
		return RecordedDeploy{ID: id}, nil
	case err == nil:
		if _, err := st[retireKey].ExecContext(ctx, id); err != nil {
			return RecordedDeploy{}, err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return RecordedDeploy{}, err
	}
	rows, err := st[supersede].QueryContext(ctx, now, r.App, r.Stage)
	if err != nil {
		return RecordedDeploy{}, err
	}
	var superseded []int64
	var ended []deploy.Deploy
	for rows.Next() {
		sd, err := scanDeploy(rows)
		if err != nil {
			rows.Close()
			return RecordedDeploy{}, err
		}
		superseded, ended = append(superseded, sd.ID), append(ended, sd)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return RecordedDeploy{}, err
	}
	held := 0
	if r.Held {
		held = 1
	}
	err = st[insDeploy].QueryRowContext(ctx, key, r.App, r.Stage, r.Repo, r.SHA, r.Ref, r.InstallationID,
		r.Trigger.Event, r.Trigger.Delivery, r.Trigger.PR, r.Trigger.Actor, now,
		string(r.Mode), r.Image, r.Slot, r.Force, r.Trigger.Issue, r.Trigger.Comment, held).Scan(&id)
	if err != nil {
		return RecordedDeploy{}, err
	}
	for _, sd := range ended {
		if _, err := st[setSupersededBy].ExecContext(ctx, id, sd.ID); err != nil {
			return RecordedDeploy{}, err
		}
		// Its check run and the reply to the command that asked for it must say so.
		sd.SupersededBy = id
		if err := insertJobs(ctx, st, jobs.ForDeploy(sd), now); err != nil {
			return RecordedDeploy{}, err
		}
	}
	return RecordedDeploy{ID: id, New: true, Superseded: superseded}, nil
}

// sameDeploy decides whether a request whose key an existing deploy has is that deploy. A
// command's request (with a nonce) found again is its own retry; a merged pull request's request
// is the companion of its merge commit's push, however late it comes. Any other request for a
// commit is the same deploy while that deploy is not over, or while nothing else was deployed to
// the stage since: a push of a commit that was live long ago (prod moved back by hand) deploys it
// again.
func sameDeploy(r deploy.Request, existing deploy.State, latest bool) bool {
	return r.Nonce != "" || r.Trigger.Event == "pull_request" || !existing.Final() || latest
}

// stageLockClass is the first key of the advisory locks that serialize recording deploys of one
// app and stage, apart from any other advisory lock on the server.
const stageLockClass = 0x5354_4147 // "STAG"

// stageHash is the second key: a hash of app and stage. Two stages that collide only wait for
// each other.
func stageHash(app, stage string) int32 {
	h := fnv.New32a()
	h.Write([]byte(app))
	h.Write([]byte{0})
	h.Write([]byte(stage))
	return int32(h.Sum32())
}

// deployIDFor finds the deploy a job names by its key: one this intake recorded, or an older one.
func deployIDFor(ctx context.Context, st *stmts, in Intake, rec Recorded, key string) (int64, error) {
	for i, r := range in.Deploys {
		if r.Key() == key {
			return rec.Deploys[i].ID, nil
		}
	}
	var id, pr, latest int64
	var state string
	err := st[selDeploy].QueryRowContext(ctx, key).Scan(&id, &pr, &state, &latest)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("deploy %s: %w", key, ErrNotFound)
	}
	return id, err
}

// withDeployID sets deploy_id in a JSON object payload, keeping its other fields.
func withDeployID(payload json.RawMessage, id int64) (json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &fields); err != nil {
			return nil, fmt.Errorf("payload is not a JSON object: %w", err)
		}
	}
	fields["deploy_id"] = strconv.AppendInt(nil, id, 10)
	return json.Marshal(fields)
}

// insertJob inserts j with the statements bound to the current transaction unless a job with
// its key exists; it reports whether it inserted. On PostgreSQL a job with a lane takes the
// lane's lock first, so it and the end of the lane's running job (finishLane) see each other.
func insertJob(ctx context.Context, st *stmts, j jobs.Job, now int64) (bool, error) {
	runAfter := micros(j.RunAfter)
	if runAfter == 0 {
		runAfter = now
	}
	if j.Lane != "" && st[lockLane] != nil {
		if _, err := st[lockLane].ExecContext(ctx, laneLockClass, laneHash(j.Lane)); err != nil {
			return false, fmt.Errorf("store: recording job %s: locking lane %s: %w", j.Key, j.Lane, err)
		}
	}
	res, err := st[insJob].ExecContext(ctx, j.Kind, j.Key, string(j.Payload), runAfter, now, j.Lane)
	if err != nil {
		return false, fmt.Errorf("store: recording job %s: %w", j.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: recording job %s: %w", j.Key, err)
	}
	return n == 1, nil
}

func insertJobs(ctx context.Context, st *stmts, js []jobs.Job, now int64) error {
	for _, j := range js {
		if _, err := insertJob(ctx, st, j, now); err != nil {
			return err
		}
	}
	return nil
}

// laneLockClass is the first key of the advisory locks of job lanes.
const laneLockClass = 0x4C41_4E45 // "LANE"

// laneHash is the second key: a hash of the lane. Lanes that collide only wait for each other.
func laneHash(lane string) int32 {
	h := fnv.New32a()
	h.Write([]byte(lane))
	return int32(h.Sum32())
}
