package handlers

import (
	"context"
	"strconv"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// IssueComment records new comments on issues and pull requests of configured repos, for the
// command workflow (/promote, /deploy, ...). Only new comments by people count: an edited
// comment is never obeyed (its author could change a command after it was approved), and bots
// never command Stagecoach (not even Stagecoach itself).
type IssueComment struct{ cfg *config.Config }

var _ Handler = (*IssueComment)(nil)

var issueCommentSchema = payload.Compile(
	"action", "repository.full_name", "installation.id",
	"issue.number", "issue.pull_request",
	"comment.id", "comment.body", "comment.user.login", "comment.user.type", "comment.author_association",
)

// Handles implements Handler.
func (h *IssueComment) Handles() []string { return []string{"issue_comment"} }

// Handle implements Handler.
func (h *IssueComment) Handle(_ context.Context, ev Event) (Result, error) {
	f, err := pick(ev, issueCommentSchema)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Action:         f.str("action"),
		Repo:           f.str("repository.full_name"),
		InstallationID: f.int("installation.id"),
	}
	c := jobs.Comment{
		Repo:           res.Repo,
		InstallationID: res.InstallationID,
		Issue:          int(f.int("issue.number")),
		IsPullRequest:  f.v.Has("issue.pull_request"),
		CommentID:      f.int("comment.id"),
		Body:           f.str("comment.body"),
		Author:         f.str("comment.user.login"),
		AuthorType:     f.str("comment.user.type"),
		Association:    f.str("comment.author_association"),
		Delivery:       ev.Delivery,
	}
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case res.Action != "created":
		res.Ignored = "comment " + res.Action + "; only new comments are read"
	case isBot(c.Author, c.AuthorType):
		res.Ignored = "comment by bot " + c.Author
	default:
		res.Jobs = []jobs.Job{{
			Kind:    jobs.KindComment,
			Key:     "comment:" + res.Repo + ":" + strconv.FormatInt(c.CommentID, 10),
			Payload: mustJSON(c),
		}}
	}
	return res, nil
}
