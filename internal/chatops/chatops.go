// Package chatops carries out the commands people give Stagecoach on GitHub: comments on issues
// and pull requests (/promote, /deploy, /rollback, /lock, /unlock, /status, /help, parsed by
// package command) and presses of the buttons on Stagecoach's check runs (Promote, Retry,
// Rollback). It runs them as durable jobs recorded by the webhook intake.
//
// A command is acknowledged with an 👀 reaction at once, then authorized (package authz: the
// people configured for the command and stage, team membership read from GitHub), then checked
// against the stage order and the stage's lock. Every refusal is a reply that says why and who
// may. An accepted command that deploys records its deploys held, moves the stage's branch when
// it promotes (so the push GitHub sends next finds the same deploy instead of starting a
// second), answers with the comment its deploy's progress will be reported in, and only then
// releases the deploys to the pipeline. Every step is idempotent: a job retried after a crash
// finds what its first attempt recorded and asks for nothing twice. Every command and its
// outcome is recorded (the audit trail).
//
// chatops never calls AWS or Kubernetes: it records deploy requests for the pipeline.
package chatops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what commands read and record.
type Store interface {
	ghcreate.Log
	RecordCommand(ctx context.Context, c store.CommandRecord) (store.CommandRecord, error)
	FinishCommandWith(ctx context.Context, c store.CommandDone) error
	SetCommandReply(ctx context.Context, id, replyComment int64) error

	Deploy(ctx context.Context, id int64) (deploy.Deploy, error)
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
	LiveDeploys(ctx context.Context, app string) (map[string]deploy.Deploy, error)
	Succeeded(ctx context.Context, app, stage, sha string) (deploy.Deploy, bool, error)
	LiveSpans(ctx context.Context, app, stage, sha string) ([]store.Span, error)
	RequestDeploys(ctx context.Context, reqs []deploy.Request) ([]store.RecordedDeploy, error)
	DeploysByDelivery(ctx context.Context, delivery string) ([]deploy.Deploy, error)
	CancelDeploy(ctx context.Context, id int64, reason string) (bool, error)

	LockStage(ctx context.Context, l store.StageLock) (store.StageLock, bool, error)
	UnlockStage(ctx context.Context, app, stage string) (store.StageLock, error)
	StageLocks(ctx context.Context) ([]store.StageLock, error)

	ReleaseByIssue(ctx context.Context, repo string, number int) (store.Release, error)
	ReleaseByCheckRun(ctx context.Context, repo string, id int64) (store.Release, error)
	ReleaseByID(ctx context.Context, repo string, id int64) (store.Release, error)
	ReleaseByTag(ctx context.Context, repo, tag string) (store.Release, error)
	RecordBranchMove(ctx context.Context, m store.BranchMove) error
	UpdateRelease(ctx context.Context, r store.Release) error
	Releases(ctx context.Context, repo string, limit int) ([]store.Release, error)
}

// Clients gives the GitHub client of an installation, and the App's bot login (by which a reply
// is found again after a crash).
type Clients interface {
	Installation(id int64) (*github.Client, error)
	BotLogin(ctx context.Context) (string, error)
}

// Options are what the executors need besides the store and GitHub.
type Options struct {
	Config   *config.Config
	WebURL   string           // GitHub's web root, for links
	Now      func() time.Time // default time.Now
	Log      *slog.Logger
	Observer Observer // hears of every command's outcome (metrics); may be nil
}

// Observer hears of commands carried out.
type Observer interface {
	CommandDone(verb, outcome string)
}

// Executor carries out commands. Comments and Buttons are its two job executors.
type Executor struct {
	st      Store
	gate    *admission.Gate
	clients Clients
	cfg     *config.Config
	webURL  string
	now     func() time.Time
	log     *slog.Logger
	obs     Observer
}

// New builds the executor.
func New(st Store, clients Clients, o Options) *Executor {
	if o.Now == nil {
		o.Now = time.Now
	}
	web := strings.TrimSuffix(o.WebURL, "/")
	return &Executor{st: st, gate: admission.New(st, o.Config, web).WithClock(o.Now), clients: clients, cfg: o.Config, webURL: web, now: o.Now,
		log: o.Log, obs: o.Observer}
}

// origin is where a command came from and who gave it.
type origin struct {
	Repo           string
	InstallationID int64
	Issue          int   // the issue or pull request it was given on; 0 for a button with none
	IsPR           bool  // Issue is a pull request
	Comment        int64 // the comment; 0 for a button
	Actor          string
	Event          string // issue_comment or check_run
	Delivery       string
	Key            string // unique per command, for the audit trail and retries
}

func (o origin) owner() string { owner, _, _ := strings.Cut(o.Repo, "/"); return owner }
func (o origin) name() string  { _, name, _ := strings.Cut(o.Repo, "/"); return name }

// trigger is what a deploy this command asks for records about it.
func (o origin) trigger() deploy.Trigger {
	t := deploy.Trigger{Event: o.Event, Delivery: o.Delivery, Actor: o.Actor, Issue: o.Issue, Comment: o.Comment}
	if o.IsPR {
		t.PR = o.Issue
	}
	return t
}

// outcome is what came of a command: the reply for its issue, whether it was accepted, the held
// deploys to give the reply comment to and release, and for the audit trail what an accepted
// command did beyond the usual (the commits a forced promotion dropped).
type outcome struct {
	reply    string
	accepted bool
	deploys  []int64
	note     string
	// keep leaves the reply as it is: the deploys report their progress in a comment of their
	// own instead of editing it (a forced promotion's reply lists what it dropped, for good).
	keep bool
}

func refused(format string, args ...any) outcome {
	return outcome{reply: fmt.Sprintf(format, args...)}
}

// terminal reports whether GitHub refused a call for good (404, 422): retrying the same call
// cannot succeed, so the command fails with GitHub's reason instead.
func terminal(err error) (string, bool) {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		if c := er.Response.StatusCode; c == http.StatusNotFound || c == http.StatusUnprocessableEntity || c == http.StatusConflict {
			return er.Message, true
		}
	}
	return "", false
}

// finish answers a command and records its outcome. The reply is one comment on the command's
// issue, edited if an earlier attempt already made it, and found again by its marker if an
// earlier attempt made it but died before recording it. The outcome is recorded with the hand
// over of the held deploys in one transaction (store.FinishCommandWith): the first gets the reply
// as the comment its progress is reported in, and from then on only reports write it, in order,
// up to how the deploy ended.
func (x *Executor) finish(ctx context.Context, gh *github.Client, o origin, rec store.CommandRecord, out outcome) error {
	reply := rec.ReplyCommentID
	if o.Issue != 0 && out.reply != "" {
		body := out.reply
		if !strings.HasPrefix(body, "@"+o.Actor+" ") {
			body = fmt.Sprintf("@%s %s", o.Actor, out.reply) // address the person who asked
		}
		marker := replyMarker(o.Key)
		body = markdown.Limit(body, markdown.MaxBody-len(marker)-2, fmt.Sprintf("%s/%s/issues/%d", x.webURL, o.Repo, o.Issue)) + "\n\n" + marker
		if reply != 0 {
			if _, _, err := gh.Issues.EditComment(ctx, o.owner(), o.name(), reply, &github.IssueComment{Body: github.Ptr(body)}); err != nil {
				return githubapp.Classify(fmt.Errorf("editing the reply to %s: %w", o.Key, err))
			}
		} else {
			id, created, err := ghcreate.Once(ctx, x.st, "reply/"+o.Key,
				func(ctx context.Context) (int64, error) {
					bot, err := x.clients.BotLogin(ctx)
					if err != nil {
						return 0, err
					}
					return ghcreate.Comment(ctx, gh, o.owner(), o.name(), o.Issue, bot, marker)
				},
				func(ctx context.Context) (int64, error) {
					c, _, err := gh.Issues.CreateComment(ctx, o.owner(), o.name(), o.Issue, &github.IssueComment{Body: github.Ptr(body)})
					return c.GetID(), err
				})
			if err != nil {
				return fmt.Errorf("replying to %s on #%d: %w", o.Key, o.Issue, err)
			}
			if !created {
				// An earlier attempt made the reply and died before recording it: the comment
				// says what that attempt decided, which need not be what this one did (a gate
				// that refuses now what it admitted then). This attempt's answer replaces it.
				if _, _, err := gh.Issues.EditComment(ctx, o.owner(), o.name(), id, &github.IssueComment{Body: github.Ptr(body)}); err != nil {
					return githubapp.Classify(fmt.Errorf("editing the reply to %s: %w", o.Key, err))
				}
			}
			reply = id
			if err := x.st.SetCommandReply(ctx, rec.ID, reply); err != nil {
				return err
			}
		}
	}
	result, reason := "refused", out.reply
	if out.accepted {
		result, reason = "accepted", out.note
	}
	if err := x.st.FinishCommandWith(ctx, store.CommandDone{ID: rec.ID, Outcome: result, Reason: reason, Reply: reply, Deploys: out.deploys, KeepReply: out.keep}); err != nil {
		return err
	}
	x.log.Info("command", "key", o.Key, "repo", o.Repo, "issue", o.Issue, "actor", o.Actor, "verb", rec.Verb, "stage", rec.Stage,
		"outcome", result, "deploys", out.deploys, "delivery", o.Delivery)
	if x.obs != nil {
		x.obs.CommandDone(rec.Verb, result)
	}
	return nil
}

// replyMarker finds the reply to a command again.
func replyMarker(key string) string {
	return fmt.Sprintf("<!-- stagecoach:reply %s -->", strings.ReplaceAll(key, "--", "-"))
}
