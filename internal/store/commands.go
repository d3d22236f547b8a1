package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
)

// CommandRecord is one command a person gave (a comment or a check-run button) and what became
// of it: Stagecoach's audit trail of who asked for what, who was refused and why.
type CommandRecord struct {
	ID             int64
	Key            string // the comment or delivery it came from; unique
	Repo           string
	Issue          int
	Actor          string
	Verb, Stage    string
	Args           string // the command line as given
	Force          string // the reason given for --force
	Outcome        string // accepted, refused or failed; "" while it runs
	Reason         string // why it was refused or failed, as the reply said
	ReplyCommentID int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const commandCols = `id, command_key, repo, issue, actor, verb, stage, args, force_reason, outcome, reason,
	reply_comment_id, created_at, updated_at`

func scanCommand(row scanner) (CommandRecord, error) {
	var c CommandRecord
	var issue, created, updated int64
	err := row.Scan(&c.ID, &c.Key, &c.Repo, &issue, &c.Actor, &c.Verb, &c.Stage, &c.Args, &c.Force, &c.Outcome,
		&c.Reason, &c.ReplyCommentID, &created, &updated)
	if err != nil {
		return CommandRecord{}, err
	}
	c.Issue, c.CreatedAt, c.UpdatedAt = int(issue), fromMicros(created), fromMicros(updated)
	return c, nil
}

// RecordCommand stores c unless a command with its key exists, and returns the stored one: a
// retried job finds what its earlier attempt recorded (its reply comment, say).
func (s *Store) RecordCommand(ctx context.Context, c CommandRecord) (CommandRecord, error) {
	var out CommandRecord
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO commands (command_key, repo, issue, actor, verb, stage, args,
			force_reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
			ON CONFLICT (command_key) DO NOTHING`, c.Key, c.Repo, c.Issue, c.Actor, c.Verb, c.Stage, c.Args, c.Force, s.now()); err != nil {
			return err
		}
		var err error
		out, err = scanCommand(tx.QueryRowContext(ctx, `SELECT `+commandCols+` FROM commands WHERE command_key = $1`, c.Key))
		return err
	})
	if err != nil {
		return CommandRecord{}, fmt.Errorf("store: recording command %s: %w", c.Key, err)
	}
	return out, nil
}

// FinishCommand records a command's outcome, its reason and the comment that answered it.
func (s *Store) FinishCommand(ctx context.Context, id int64, outcome, reason string, replyComment int64) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE commands SET outcome = $1, reason = $2, reply_comment_id = $3,
		updated_at = $4 WHERE id = $5`, outcome, reason, replyComment, s.now(), id); err != nil {
		return fmt.Errorf("store: recording the outcome of command %d: %w", id, err)
	}
	return nil
}

// SetCommandReply records the comment that answers a command, as soon as it exists, so a retry
// edits it instead of answering twice.
func (s *Store) SetCommandReply(ctx context.Context, id, replyComment int64) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE commands SET reply_comment_id = $1, updated_at = $2 WHERE id = $3`,
		replyComment, s.now(), id); err != nil {
		return fmt.Errorf("store: recording the reply to command %d: %w", id, err)
	}
	return nil
}

// Commands returns the newest commands given in repo ("" for every repository), at most limit
// (default 50).
func (s *Store) Commands(ctx context.Context, repo string, limit int) ([]CommandRecord, error) {
	if limit <= 0 {
		limit = 50
	}
	q, args := `SELECT `+commandCols+` FROM commands ORDER BY id DESC LIMIT $1`, []any{limit}
	if repo != "" {
		q, args = `SELECT `+commandCols+` FROM commands WHERE repo = $1 ORDER BY id DESC LIMIT $2`, []any{repo, limit}
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing commands: %w", err)
	}
	defer rows.Close()
	var out []CommandRecord
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing commands: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CommandDone is how a command ended: its outcome and reason, the comment that answered it, and
// the deploys it asked for, which it hands over to the pipeline and to reporting.
type CommandDone struct {
	ID      int64
	Outcome string
	Reason  string
	Reply   int64   // the reply comment; 0 when there is none
	Deploys []int64 // the deploys the command recorded held
	// KeepReply leaves the reply as it is: the deploys report in a comment of their own (a
	// forced promotion's reply lists what it dropped, for good).
	KeepReply bool
}

// FinishCommandWith records a command's outcome and hands its deploys over, in one transaction:
// the first deploy gets the reply as the comment its progress is reported in, every deploy is
// let go (held no more; a queued one may start), and each gets a report, which brings the reply
// to where its deploy stands, even one superseded or cancelled while it was held. A retried
// command job finds the outcome recorded and does nothing twice; until then, nobody but the
// command writes the reply.
func (s *Store) FinishCommandWith(ctx context.Context, c CommandDone) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		if _, err := tx.ExecContext(ctx, `UPDATE commands SET outcome = $1, reason = $2, reply_comment_id = $3,
			updated_at = $4 WHERE id = $5`, c.Outcome, c.Reason, c.Reply, now, c.ID); err != nil {
			return err
		}
		st := s.stmts.in(ctx, tx)
		for i, id := range c.Deploys {
			comment := int64(-1) // keep
			if i == 0 && c.Reply != 0 && !c.KeepReply {
				comment = c.Reply
			}
			d, err := scanDeploy(tx.QueryRowContext(ctx, `UPDATE deploys SET held = 0, report_seq = report_seq + 1,
				pr_comment_id = CASE WHEN $1 >= 0 THEN $1 ELSE pr_comment_id END,
				run_after = CASE WHEN state = 'queued' AND held = 1 THEN $2 ELSE run_after END, updated_at = $2
				WHERE id = $3 RETURNING `+deployCols, comment, now, id))
			if err != nil {
				return fmt.Errorf("deploy %d: %w", id, err)
			}
			// Only the report: a deploy that ended while held had its end recorded then.
			if _, err := insertJob(ctx, &st, jobs.ForDeploy(d)[0], now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: recording the outcome of command %d: %w", c.ID, err)
	}
	if len(c.Deploys) > 0 {
		s.wake(WakeJobs | WakeDeploys)
	}
	return nil
}
