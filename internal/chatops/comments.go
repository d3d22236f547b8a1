package chatops

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/command"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Comments runs jobs.KindComment: one new comment by a person on an issue or pull request of a
// configured repository. The intake already left out edited comments (an edit could put words
// in a command after it was approved, and GitHub does not say who edited) and comments by bots,
// so the body here is exactly what its author wrote when creating it.
type Comments struct{ x *Executor }

// Comments returns the comment executor.
func (x *Executor) Comments() *Comments { return &Comments{x: x} }

// Kind implements worker.Executor.
func (c *Comments) Kind() string { return jobs.KindComment }

// Run implements worker.Executor.
func (c *Comments) Run(ctx context.Context, j jobs.Job) error {
	var in jobs.Comment
	if err := json.Unmarshal(j.Payload, &in); err != nil {
		return jobs.Terminal(fmt.Errorf("decoding %s payload: %w", j.Kind, err))
	}
	parsed := command.Parse(in.Body, c.x.cfg.StageNames())
	if parsed.Command == nil && parsed.Reply == "" {
		return nil // not for Stagecoach
	}
	o := origin{Repo: in.Repo, InstallationID: in.InstallationID, Issue: in.Issue, IsPR: in.IsPullRequest,
		Comment: in.CommentID, Actor: in.Author, Event: "issue_comment", Delivery: in.Delivery,
		Key: fmt.Sprintf("comment:%s:%d", in.Repo, in.CommentID)}
	rec := store.CommandRecord{Key: o.Key, Repo: o.Repo, Issue: o.Issue, Actor: o.Actor, Args: firstCommandLine(in.Body)}
	if parsed.Command != nil {
		rec.Verb, rec.Stage, rec.Force = string(parsed.Command.Verb), parsed.Command.Stage, parsed.Command.Reason
		if !parsed.Command.Force {
			rec.Force = ""
		}
	} else {
		rec.Verb = "invalid"
	}
	rec, err := c.x.st.RecordCommand(ctx, rec)
	if err != nil {
		return err
	}
	if rec.Outcome != "" {
		return nil // answered by an earlier attempt
	}
	if !c.x.cfg.Commands.Heard(in.Association) {
		// On a public repository anyone can comment: a command from outside costs no GitHub
		// call (no reaction, no authorization, no reply), only this record.
		assoc := in.Association
		if assoc == "" {
			assoc = "NONE"
		}
		why := fmt.Sprintf("author_association %s is not one of %s (commands.author_associations)", assoc,
			strings.Join(c.x.cfg.Commands.AuthorAssociations, ", "))
		c.x.log.Info("command ignored", "key", o.Key, "repo", o.Repo, "actor", o.Actor, "reason", why, "delivery", o.Delivery)
		if c.x.obs != nil {
			c.x.obs.CommandDone(rec.Verb, "ignored")
		}
		return c.x.st.FinishCommand(ctx, rec.ID, "ignored", why, 0)
	}
	gh, err := c.x.clients.Installation(in.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	// 👀 at once: the person sees the command was read before the work behind it starts.
	// GitHub answers an existing reaction with 200, so a retry adds none.
	if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, o.owner(), o.name(), o.Comment, "eyes"); err != nil {
		return githubapp.Classify(fmt.Errorf("reacting to comment %d: %w", o.Comment, err))
	}
	var out outcome
	if parsed.Command == nil {
		out = outcome{reply: parsed.Reply}
	} else if out, err = c.x.run(ctx, gh, o, *parsed.Command, nil); err != nil {
		return err
	}
	return c.x.finish(ctx, gh, o, rec, out)
}

// firstCommandLine is the command as written, for the audit trail.
func firstCommandLine(body string) string {
	for _, l := range strings.Split(body, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "/") {
			return clip(t, 200)
		}
	}
	return ""
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// pinned is what a button fixes that a command would look up: the commit to promote (the one
// the button's check run is on), and for a release's button, the release.
type pinned struct {
	sha string
	rel *store.Release
}

// run carries out one command and returns what to answer.
func (x *Executor) run(ctx context.Context, gh *github.Client, o origin, cmd command.Command, pin *pinned) (outcome, error) {
	switch cmd.Verb {
	case command.Help:
		return outcome{reply: x.help(), accepted: true}, nil
	case command.Status:
		return x.status(ctx, o)
	case command.Lock:
		return x.lock(ctx, gh, o, cmd)
	case command.Unlock:
		return x.unlock(ctx, gh, o, cmd)
	}
	return x.deployCommand(ctx, gh, o, cmd, pin)
}
