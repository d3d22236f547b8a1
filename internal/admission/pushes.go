package admission

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/authz"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// PushStore is what the push executor reads and records.
type PushStore interface {
	Store
	RecordCommand(ctx context.Context, c store.CommandRecord) (store.CommandRecord, error)
	FinishCommand(ctx context.Context, id int64, outcome, reason string, replyComment int64) error
	ghcreate.Log
	MatchBranchMove(ctx context.Context, repo, branch, sha, delivery string) (store.BranchMove, bool, error)
	RequestDeploys(ctx context.Context, reqs []deploy.Request) ([]store.RecordedDeploy, error)
}

// Clients gives the GitHub client of an installation.
type Clients interface {
	Installation(id int64) (*github.Client, error)
}

// Identity knows who Stagecoach is on GitHub: the login of the App's bot user.
type Identity interface {
	BotLogin(ctx context.Context) (string, error)
}

// Observer hears of every push decided (metrics), as a command with the verb "push".
type Observer interface {
	CommandDone(verb, outcome string)
}

// PushOptions are what the push executor needs besides the store and GitHub.
type PushOptions struct {
	Config   *config.Config
	Gate     *Gate
	Identity Identity
	WebURL   string
	Log      *slog.Logger
	Observer Observer // may be nil
}

// Pushes runs jobs.KindPush: a push (or a merge) to a guarded stage's branch. The handler could
// not decide it (deciding reads GitHub), so it recorded the push as this job and no deploy: a
// deploy recorded before the decision could supersede one queued by a promoter. Here the push
// deploys when Stagecoach made it (its own branch move, matched to the move it recorded with its
// held deploys, which are the deploy) or when the gate admits it (the pusher may promote to the
// stage, the stage order, what it would drop). Otherwise nothing deploys, the commit gets a
// check run `stagecoach/<stage>` that names the pusher, who may deploy and the command to use,
// and the refusal goes to the audit trail. Every push is recorded there, with its outcome.
type Pushes struct {
	st      PushStore
	clients Clients
	o       PushOptions
}

// NewPushes builds the push executor.
func NewPushes(st PushStore, clients Clients, o PushOptions) *Pushes {
	o.WebURL = strings.TrimSuffix(o.WebURL, "/")
	return &Pushes{st: st, clients: clients, o: o}
}

// Executor runs the jobs.KindPush jobs.
func (p *Pushes) Executor() worker.Executor { return worker.Handle(jobs.KindPush, p.Decide) }

// Decide settles one push: deploys it, or refuses it and says why.
func (p *Pushes) Decide(ctx context.Context, _ jobs.Job, in jobs.Push) error {
	cfg := p.o.Config
	stage := cfg.Stage(in.Stage)
	apps := AppsFor(cfg, in.Repo, in.Stage)
	if stage == nil || len(apps) == 0 {
		p.o.Log.Info("push to a stage no longer configured", "repo", in.Repo, "stage", in.Stage, "delivery", in.Delivery)
		return nil
	}
	rec, err := p.st.RecordCommand(ctx, store.CommandRecord{Key: fmt.Sprintf("push:%s:%s:%s", in.Repo, in.Stage, in.Delivery),
		Repo: in.Repo, Actor: in.Pusher, Verb: "push", Stage: in.Stage, Args: describe(in)})
	if err != nil {
		return err
	}
	if rec.Outcome != "" {
		return nil // decided by an earlier attempt
	}
	if in.Pusher == "" {
		return p.unknown(ctx, in, rec)
	}
	if isBot(in.Pusher, in.PusherType) {
		login, err := p.o.Identity.BotLogin(ctx)
		if err != nil {
			return err
		}
		if strings.EqualFold(login, in.Pusher) {
			return p.own(ctx, in, rec)
		}
	}
	gh, err := p.clients.Installation(in.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	target := Target{SHA: in.After, Before: in.Before}
	dec, err := p.o.Gate.Admit(ctx, gh, Request{Source: FromPush, Verb: "promote", Repo: in.Repo, Actor: in.Pusher, Stage: stage, Apps: apps,
		Action: fmt.Sprintf("deploy to %s by pushing to `%s`", stage.Name, in.Branch),
		Target: func(context.Context) (Target, string, error) { return target, "", nil }})
	if err != nil {
		return err
	}
	if !dec.Admitted() {
		return p.refuse(ctx, gh, in, rec, stage, dec.Refusal)
	}
	var reqs []deploy.Request
	for _, app := range apps {
		reqs = append(reqs, deploy.Request{App: app.Name, Stage: stage.Name, Repo: in.Repo, SHA: in.After, Ref: in.Branch,
			InstallationID: in.InstallationID, Trigger: deploy.Trigger{Event: in.Event, Delivery: in.Delivery, PR: in.PR, Actor: in.Pusher}})
	}
	recorded, err := p.st.RequestDeploys(ctx, reqs)
	if err != nil {
		return err
	}
	var ids []string
	for _, rd := range recorded {
		ids = append(ids, "#"+strconv.FormatInt(rd.ID, 10))
	}
	why := "deploy " + strings.Join(ids, ", ")
	if dec.Wait != nil {
		why += ", " + dec.Wait.Text() // it waits for the stage's window, or a freeze to end
	}
	return p.finish(ctx, in, rec, "accepted", why)
}

// own settles a push Stagecoach's own credentials made: the move a command recorded, with the
// deploys it recorded held before moving, which are this push's deploy. A move it has no record
// of was not Stagecoach's to make (its credentials in other hands, say): nothing deploys.
func (p *Pushes) own(ctx context.Context, in jobs.Push, rec store.CommandRecord) error {
	m, ok, err := p.st.MatchBranchMove(ctx, in.Repo, in.Branch, in.After, in.Delivery)
	if err != nil {
		return err
	}
	if ok {
		ids := make([]string, len(m.DeployIDs))
		for i, id := range m.DeployIDs {
			ids[i] = "#" + strconv.FormatInt(id, 10)
		}
		return p.finish(ctx, in, rec, "accepted", fmt.Sprintf("Stagecoach's own move for %s: deploy %s", m.CommandKey, strings.Join(ids, ", ")))
	}
	gh, err := p.clients.Installation(in.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	why := fmt.Sprintf("Stagecoach's credentials moved `%s` to `%s`, but no command given to Stagecoach asked for that move, so nothing "+
		"deploys. If nobody at your organisation did this through the App's token, treat the App's credentials as leaked.",
		in.Branch, deploy.ShortSHA(in.After))
	return p.refuse(ctx, gh, in, rec, p.o.Config.Stage(in.Stage), why)
}

// unknown settles a push that names no pusher: one recovery found on GitHub (package recovery)
// because its webhook never arrived, and whose mover GitHub's activity log did not name (a push
// recovery attributes through the log names its pusher and is decided as a delivered one). When it is a
// move Stagecoach recorded (its own promotion, whose push was lost), it is that move; otherwise
// nobody can be said to have approved it, so nothing deploys.
func (p *Pushes) unknown(ctx context.Context, in jobs.Push, rec store.CommandRecord) error {
	m, ok, err := p.st.MatchBranchMove(ctx, in.Repo, in.Branch, in.After, in.Delivery)
	if err != nil {
		return err
	}
	if ok {
		return p.finish(ctx, in, rec, "accepted", fmt.Sprintf("Stagecoach's own move for %s, found by recovery", m.CommandKey))
	}
	gh, err := p.clients.Installation(in.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	stage := p.o.Config.Stage(in.Stage)
	why := fmt.Sprintf("Stagecoach found `%s` at `%s` when it recovered the webhooks it missed, and GitHub does not say who pushed "+
		"it (the repository's activity log shows no such move of the branch: it is older than the log, or GitHub refused the App "+
		"the log), so nobody can be said to have approved it and nothing deploys. Someone who may promote to %s can deploy it with a command.",
		in.Branch, deploy.ShortSHA(in.After), stage.Name)
	return p.refuse(ctx, gh, in, rec, stage, why)
}

// refuse tells GitHub and the audit trail why the push deploys nothing.
func (p *Pushes) refuse(ctx context.Context, gh *github.Client, in jobs.Push, rec store.CommandRecord, stage *config.Stage, why string) error {
	owner, repo, _ := strings.Cut(in.Repo, "/")
	summary, err := p.refusalSummary(ctx, in, stage, why)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("Not deployed: the push of %s to %s by %s was refused", deploy.ShortSHA(in.After), in.Branch, pusher(in))
	// Recorded before it is made, so a retry after a crash finds the check run instead of
	// making a second one.
	name, external := "stagecoach/"+stage.Name, "refused:"+strconv.FormatInt(rec.ID, 10)
	if _, _, err := ghcreate.Once(ctx, p.st, "refused/"+strconv.FormatInt(rec.ID, 10),
		func(ctx context.Context) (int64, error) {
			return ghcreate.CheckRun(ctx, gh, owner, repo, in.After, name, external)
		},
		func(ctx context.Context) (int64, error) {
			run, _, err := gh.Checks.CreateCheckRun(ctx, owner, repo, github.CreateCheckRunOptions{
				Name: name, HeadSHA: in.After, ExternalID: github.Ptr(external),
				Status: github.Ptr("completed"), Conclusion: github.Ptr("failure"),
				Output: &github.CheckRunOutput{Title: github.Ptr(markdown.Clip(title, 120)),
					Summary: github.Ptr(markdown.Limit(summary, 0, fmt.Sprintf("%s/%s/commit/%s", p.o.WebURL, in.Repo, in.After)))},
			})
			return run.GetID(), err
		}); err != nil {
		return fmt.Errorf("reporting the refused push of %s to %s: %w", deploy.ShortSHA(in.After), in.Branch, err)
	}
	return p.finish(ctx, in, rec, "refused", why)
}

// refusalSummary is the refusal's check run: who pushed what, why nothing deployed, what the
// stage keeps running, who may deploy and how.
func (p *Pushes) refusalSummary(ctx context.Context, in jobs.Push, stage *config.Stage, why string) (string, error) {
	var b strings.Builder
	sha := deploy.ShortSHA(in.After)
	verb := "pushed"
	if in.Event == "pull_request" {
		verb = fmt.Sprintf("merged #%d, making", in.PR)
	}
	who := pusher(in)
	if in.Pusher == "" {
		who = "Someone"
	}
	fmt.Fprintf(&b, "**%s %s `%s` to `%s`, and nothing was deployed.**\n\n%s\n\n", who, verb, sha, in.Branch, why)
	for _, app := range AppsFor(p.o.Config, in.Repo, stage.Name) {
		live, err := p.st.LiveDeploys(ctx, app.Name)
		if err != nil {
			return "", err
		}
		if d, ok := live[stage.Name]; ok {
			fmt.Fprintf(&b, "**%s** keeps running `%s` of %s (deploy #%d).\n\n", stage.Name, deploy.ShortSHA(d.SHA), app.Name, d.ID)
		} else {
			fmt.Fprintf(&b, "Nothing of %s runs on **%s** yet, and nothing does now.\n\n", app.Name, stage.Name)
		}
	}
	fmt.Fprintf(&b, "### Who may deploy to %s, and how\n\n", stage.Name)
	promote := fmt.Sprintf("`/promote %s` (moves `%s` to what runs on **%s** and deploys it)", stage.Name, stage.Branch, stage.PromoteFrom)
	if stage.Name == p.o.Config.Release.Stage {
		promote = fmt.Sprintf("`/promote %s` on the commit's release issue, or `/promote %s <tag>`", stage.Name, stage.Name)
	} else if stage.PromoteFrom == "" {
		promote = fmt.Sprintf("`/deploy %s %s`", stage.Name, sha)
	}
	fmt.Fprintf(&b, "- %s may promote: %s.\n", markdown.Capitalize(authz.Who(stage.Who("promote"))), promote)
	fmt.Fprintf(&b, "- %s may deploy a commit: `/deploy %s %s`.\n", markdown.Capitalize(authz.Who(stage.Who("deploy"))), stage.Name, sha)
	fmt.Fprintf(&b, "\nA push to `%s` deploys only when Stagecoach moves it or someone who may promote pushes it; the stage order "+
		"and what a move would drop apply as to `/promote`. A GitHub ruleset that lets only the Stagecoach App push to `%s` "+
		"stops such pushes before they land.\n", in.Branch, in.Branch)
	return b.String(), nil
}

func (p *Pushes) finish(ctx context.Context, in jobs.Push, rec store.CommandRecord, outcome, reason string) error {
	p.o.Log.Info("push", "repo", in.Repo, "stage", in.Stage, "branch", in.Branch, "sha", in.After, "pusher", in.Pusher,
		"outcome", outcome, "reason", reason, "delivery", in.Delivery)
	if p.o.Observer != nil {
		p.o.Observer.CommandDone("push", outcome)
	}
	return p.st.FinishCommand(ctx, rec.ID, outcome, reason, 0)
}

// describe is the push as the audit trail shows it.
func describe(in jobs.Push) string {
	what := fmt.Sprintf("push %s to %s", deploy.ShortSHA(in.After), in.Branch)
	if in.Event == "pull_request" {
		what = fmt.Sprintf("merge of #%d into %s as %s", in.PR, in.Branch, deploy.ShortSHA(in.After))
	}
	if in.Forced {
		what += " (forced)"
	}
	if recovered(in) {
		what += " (recovered: its webhook never arrived"
		if in.Pusher != "" {
			what += "; pusher from GitHub's activity log"
		}
		what += ")"
	}
	return what
}

// recovered reports a push recovery made up for a ref change GitHub never delivered: its
// delivery id is recovery.RecoveredDelivery's, which no GitHub delivery (a UUID) looks like.
func recovered(in jobs.Push) bool { return strings.HasPrefix(in.Delivery, "recovered:") }

// AppsFor returns the apps of repo that deploy to stage.
func AppsFor(cfg *config.Config, repo, stage string) []*config.App {
	var out []*config.App
	for _, app := range cfg.AppsForRepo(repo) {
		if _, ok := app.Stages[stage]; ok {
			out = append(out, app)
		}
	}
	return out
}

// isBot reports whether a GitHub account is a bot, by type or by the "[bot]" GitHub gives apps.
func isBot(login, typ string) bool { return typ == "Bot" || strings.HasSuffix(login, "[bot]") }

// AppLogin is the Identity of the App: its bot's login, "<slug>[bot]", read once from GitHub's
// GET /app (authenticated as the App) and kept; a failed read is tried again next time.
type AppLogin struct {
	App func() (*github.Client, error)

	mu    sync.Mutex
	login string
}

// BotLogin implements Identity.
func (a *AppLogin) BotLogin(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.login != "" {
		return a.login, nil
	}
	c, err := a.App()
	if err != nil {
		return "", err
	}
	app, _, err := c.Apps.Get(ctx, "")
	if err != nil {
		return "", githubapp.Classify(fmt.Errorf("reading the App's slug: %w", err))
	}
	if app.GetSlug() == "" {
		return "", fmt.Errorf("GitHub named no slug for the App")
	}
	a.login = app.GetSlug() + "[bot]"
	return a.login, nil
}

// pusher names who pushed: @login, or, for a push recovery found (GitHub does not say who made
// it), someone.
func pusher(in jobs.Push) string {
	if in.Pusher == "" {
		return "someone"
	}
	return "@" + in.Pusher
}
