package report

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// ProgressStore is what the progress reporter reads and records.
type ProgressStore interface {
	Deploys
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
	SetGitHubDeployment(ctx context.Context, deployID, githubID int64, status string) error
	SetComment(ctx context.Context, deployID, commentID int64) error
	NewerSuccessReported(ctx context.Context, app, stage string, id int64) (bool, error)
	ActiveBefore(ctx context.Context, app, stage string, id int64, limit int) ([]store.ActiveDeployment, error)
}

// Progress runs jobs.KindDeployReport: it edits the deploy's check run (with its buttons once the
// deploy ended), moves its GitHub Deployment through queued → in_progress → success/failure
// (and on success marks the app's previous Deployments of the environment inactive itself), and
// comments: on a merged pull request once its
// deploy to a merge stage ends, and on the issue a command came from at every step (one comment
// each, edited in place, ending with how the deploy ended: succeeded, failed, rolled back,
// superseded by which deploy, or cancelled).
type Progress struct {
	st      ProgressStore
	clients Clients
	cfg     *config.Config
	webURL  string
	log     *slog.Logger
	now     func() time.Time
}

// NewProgress builds the executor. webURL is GitHub's web root (https://github.com, or the
// GitHub Enterprise host) for commit and compare links.
func NewProgress(st ProgressStore, clients Clients, cfg *config.Config, webURL string, log *slog.Logger) *Progress {
	return &Progress{st: st, clients: clients, cfg: cfg, webURL: strings.TrimSuffix(webURL, "/"), log: log, now: time.Now}
}

// WebURL derives GitHub's web root from its API root.
func WebURL(apiURL string) string {
	u := strings.TrimSuffix(apiURL, "/")
	if strings.Contains(u, "://api.github.com") {
		return "https://github.com"
	}
	return strings.TrimSuffix(u, "/api/v3")
}

// Executor is the job executor.
func (p *Progress) Executor() worker.Executor {
	return worker.Handle(jobs.KindDeployReport, p.Report)
}

// Report brings GitHub up to where the deploy stands. The deploy's lane runs it after every
// earlier report of its environment and never beside another, on any replica.
func (p *Progress) Report(ctx context.Context, _ jobs.Job, in jobs.DeployReport) error {
	d, err := p.st.Deploy(ctx, in.DeployID)
	if err != nil {
		return fmt.Errorf("loading deploy %d: %w", in.DeployID, err)
	}
	if in.Seq < d.ReportSeq {
		return nil // a later report of this deploy follows in the lane and shows more
	}
	cp, err := deploy.DecodeCheckpoint(d.Checkpoint)
	if err != nil {
		return jobs.Terminal(fmt.Errorf("deploy %d: %w", d.ID, err))
	}
	owner, repo, err := splitRepo(d.Repo)
	if err != nil {
		return err
	}
	gh, err := p.clients.Installation(d.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	v := view{D: d, CP: cp, Now: p.now(), WebURL: p.webURL, Compare: p.previous(ctx, d), EnvURL: p.environmentURL(d)}
	for _, next := range p.cfg.NextStages(d.Stage) {
		if p.cfg.App(d.App) != nil && hasStage(p.cfg.App(d.App), next.Name) {
			v.Next = next.Name
			break
		}
	}
	if d.State == deploy.Superseded && d.SupersededBy != 0 {
		if by, err := p.st.Deploy(ctx, d.SupersededBy); err == nil {
			v.By = &by
		}
	}
	if d.CheckRunID == 0 {
		// The job that creates it ran first in the lane and failed for good: try once more.
		if v.D.CheckRunID, err = ensureCheckRun(ctx, p.st, gh, owner, repo, v); err != nil {
			return err
		}
	}
	if err := p.checkRun(ctx, gh, owner, repo, v); err != nil {
		return err
	}
	if d.Mode != deploy.ModePRBuild {
		if err := p.deployment(ctx, gh, owner, repo, v); err != nil {
			return err
		}
	}
	return p.comment(ctx, gh, owner, repo, v)
}

func hasStage(app *config.App, stage string) bool {
	_, ok := app.Stages[stage]
	return ok
}

// previous is the sha that was live on the stage before d, for the compare link.
func (p *Progress) previous(ctx context.Context, d deploy.Deploy) string {
	ds, err := p.st.ListDeploys(ctx, store.Filter{App: d.App, Stage: d.Stage, State: deploy.Succeeded, BeforeID: d.ID, Limit: 1})
	if err != nil || len(ds) == 0 {
		return ""
	}
	return ds[0].SHA
}

func (p *Progress) checkRun(ctx context.Context, gh *github.Client, owner, repo string, v view) error {
	opts := github.UpdateCheckRunOptions{
		Name:   checkRunName(v.D), // go-github sends the name even when empty: always set it
		Output: &github.CheckRunOutput{Title: github.Ptr(v.title()), Summary: github.Ptr(v.summary())},
	}
	if v.D.State.Final() {
		opts.Actions = v.actions()
	}
	switch c := conclusion(v.D.State); {
	case c != "":
		opts.Status, opts.Conclusion = github.Ptr("completed"), github.Ptr(c)
	case v.D.State == deploy.Queued:
		opts.Status = github.Ptr("queued")
	default:
		opts.Status = github.Ptr("in_progress")
	}
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, owner, repo, v.D.CheckRunID, opts); err != nil {
		return githubapp.Classify(fmt.Errorf("updating check run %d of deploy %d: %w", v.D.CheckRunID, v.D.ID, err))
	}
	return nil
}

// deploymentState maps a deploy's state to a GitHub Deployment status ("" for none).
func deploymentState(s deploy.State) string {
	switch s {
	case deploy.Preflight:
		return "queued"
	case deploy.Building, deploy.RollingOut:
		return "in_progress"
	case deploy.Succeeded:
		return "success"
	case deploy.Failed, deploy.RolledBack:
		return "failure"
	}
	return ""
}

func (p *Progress) deployment(ctx context.Context, gh *github.Client, owner, repo string, v view) error {
	d := v.D
	want := deploymentState(d.State)
	switch {
	case want == "" || d.GitHubDeploymentStatus == "inactive":
		// Inactive is final: a newer deploy replaced this one on GitHub, and no late or
		// repeated report of it may make GitHub show its commit as live again.
		return nil
	case want == d.GitHubDeploymentStatus && want == "success":
		// Sent and recorded; the previous Deployments may not all be retired yet (the process
		// died between): finish that.
		return p.retire(ctx, gh, d)
	case want == d.GitHubDeploymentStatus:
		return nil
	}
	if want == "success" {
		// A newer deploy of the app to this environment was reported live already: this one's
		// success must not make GitHub show the older commit as what runs there.
		newer, err := p.st.NewerSuccessReported(ctx, d.App, d.Stage, d.ID)
		if err != nil {
			return err
		}
		if newer {
			want = "inactive"
		}
	}
	id := d.GitHubDeploymentID
	if id == 0 {
		prod := false
		if st := p.cfg.Stage(d.Stage); st != nil {
			prod = st.Credentials == "prod"
		}
		var err error
		id, _, err = ghcreate.Once(ctx, p.st, fmt.Sprintf("deployment/deploy/%d", d.ID),
			func(ctx context.Context) (int64, error) {
				return ghcreate.Deployment(ctx, gh, owner, repo, d.SHA, d.Stage, "stagecoach_deploy", d.ID)
			},
			func(ctx context.Context) (int64, error) {
				gd, _, err := gh.Repositories.CreateDeployment(ctx, owner, repo, &github.DeploymentRequest{
					Ref: github.Ptr(d.SHA), Environment: github.Ptr(d.Stage), Description: github.Ptr(markdown.Clip(fmt.Sprintf("Stagecoach deploy #%d of %s", d.ID, d.App), 140)),
					AutoMerge: github.Ptr(false), RequiredContexts: &[]string{}, ProductionEnvironment: github.Ptr(prod),
					Payload: map[string]any{"stagecoach_deploy": d.ID, "app": d.App},
				})
				return gd.GetID(), err
			})
		if err != nil {
			return fmt.Errorf("the GitHub Deployment of deploy %d: %w", d.ID, err)
		}
		if err := p.st.SetGitHubDeployment(ctx, d.ID, id, ""); err != nil {
			return err
		}
	}
	// Reports render the deploy as it stands, which may be a step or two past the last status
	// sent: send the ones in between too, so the Deployment always reads queued → in_progress →
	// success/failure (in_progress only if the deploy got as far as building).
	last, statuses := d.GitHubDeploymentStatus, []string{}
	if last == "" && want != "queued" {
		statuses = append(statuses, "queued")
	}
	if (last == "" || last == "queued") && (want == "success" || want == "failure" || want == "inactive") && len(v.CP.Steps) > 1 {
		statuses = append(statuses, "in_progress")
	}
	statuses = append(statuses, want)
	for _, state := range statuses {
		req := p.statusRequest(v, state)
		if _, _, err := ghcreate.Once(ctx, p.st, fmt.Sprintf("deployment-status/deploy/%d/%s", d.ID, state),
			func(ctx context.Context) (int64, error) {
				return ghcreate.DeploymentStatus(ctx, gh, owner, repo, id, state)
			},
			func(ctx context.Context) (int64, error) {
				s, _, err := gh.Repositories.CreateDeploymentStatus(ctx, owner, repo, id, req)
				return s.GetID(), err
			}); err != nil {
			return fmt.Errorf("the GitHub Deployment status of deploy %d: %w", d.ID, err)
		}
		if err := p.st.SetGitHubDeployment(ctx, d.ID, id, state); err != nil {
			return err
		}
	}
	if want == "success" {
		return p.retire(ctx, gh, d)
	}
	return nil
}

func (p *Progress) comment(ctx context.Context, gh *github.Client, owner, repo string, v view) error {
	d := v.D
	var issue int
	var body, key, marker string
	switch st := p.cfg.Stage(d.Stage); {
	case d.Mode == deploy.ModePRBuild:
		return nil
	case d.Trigger.Command() && d.Trigger.Issue != 0:
		if d.Held {
			return nil // the command answers first, then hands its reply over (store.FinishCommandWith)
		}
		issue, body = d.Trigger.Issue, v.commandComment()
		key, marker = fmt.Sprintf("comment/deploy/%d", d.ID), commandMarker(d)
	case d.State == deploy.Superseded:
		return nil
	case d.Trigger.PR != 0 && st != nil && st.Trigger == config.TriggerMerge && d.State.Final():
		issue, body = d.Trigger.PR, v.comment()
		key, marker = fmt.Sprintf("comment/pr/%s#%d/%s/%s", d.Repo, d.Trigger.PR, d.App, d.Stage), commentMarker(d)
	default:
		return nil
	}
	if d.CommentID != 0 {
		if _, _, err := gh.Issues.EditComment(ctx, owner, repo, d.CommentID, &github.IssueComment{Body: github.Ptr(body)}); err != nil {
			return githubapp.Classify(fmt.Errorf("editing the comment on #%d: %w", issue, err))
		}
		return nil
	}
	id, created, err := ghcreate.Once(ctx, p.st, key,
		func(ctx context.Context) (int64, error) {
			bot, err := p.clients.BotLogin(ctx)
			if err != nil {
				return 0, err
			}
			return ghcreate.Comment(ctx, gh, owner, repo, issue, bot, marker)
		},
		func(ctx context.Context) (int64, error) {
			c, _, err := gh.Issues.CreateComment(ctx, owner, repo, issue, &github.IssueComment{Body: github.Ptr(body)})
			return c.GetID(), err
		})
	if err != nil {
		return fmt.Errorf("the comment on #%d: %w", issue, err)
	}
	if !created {
		// Made by an earlier attempt, or the pull request's one comment for this app and stage
		// made for an earlier deploy: bring it up to date.
		if _, _, err := gh.Issues.EditComment(ctx, owner, repo, id, &github.IssueComment{Body: github.Ptr(body)}); err != nil {
			return githubapp.Classify(fmt.Errorf("editing the comment on #%d: %w", issue, err))
		}
	}
	return p.st.SetComment(ctx, d.ID, id)
}
