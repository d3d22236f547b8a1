package chatops

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/command"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// Comments runs jobs.KindComment: one new comment by a person on an issue or pull request of a
// configured repository. The intake already left out edited comments (an edit could put words
// in a command after it was approved, and GitHub does not say who edited) and comments by bots,
// so the body here is exactly what its author wrote when creating it.
func (x *Executor) Comments() worker.Executor { return worker.Handle(jobs.KindComment, x.comment) }

func (x *Executor) comment(ctx context.Context, _ jobs.Job, in jobs.Comment) error {
	parsed := command.Parse(in.Body, x.cfg.StageNames())
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
	rec, err := x.st.RecordCommand(ctx, rec)
	if err != nil {
		return err
	}
	if rec.Outcome != "" {
		return nil // answered by an earlier attempt
	}
	if !x.cfg.Commands.Heard(in.Association) {
		// On a public repository anyone can comment: a command from outside costs no GitHub
		// call (no reaction, no authorization, no reply), only this record.
		assoc := in.Association
		if assoc == "" {
			assoc = "NONE"
		}
		why := fmt.Sprintf("author_association %s is not one of %s (commands.author_associations)", assoc,
			strings.Join(x.cfg.Commands.AuthorAssociations, ", "))
		x.log.Info("command ignored", "key", o.Key, "repo", o.Repo, "actor", o.Actor, "reason", why, "delivery", o.Delivery)
		if x.obs != nil {
			x.obs.CommandDone(rec.Verb, "ignored")
		}
		return x.st.FinishCommandWith(ctx, store.CommandDone{ID: rec.ID, Outcome: "ignored", Reason: why})
	}
	gh, err := x.clients.Installation(in.InstallationID)
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
	} else if out, err = x.run(ctx, gh, o, *parsed.Command, nil); err != nil {
		return err
	}
	return x.finish(ctx, gh, o, rec, out)
}

// firstCommandLine is the command as written, for the audit trail.
func firstCommandLine(body string) string {
	for _, l := range strings.Split(body, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "/") {
			return markdown.Clip(t, 200)
		}
	}
	return ""
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
		return x.help(ctx, gh, o)
	case command.Status:
		return x.status(ctx, o)
	case command.Lock:
		return x.lock(ctx, gh, o, cmd)
	case command.Unlock:
		return x.unlock(ctx, gh, o, cmd)
	}
	return x.deployCommand(ctx, gh, o, cmd, pin)
}
