package report

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Enqueuer records jobs.
type Enqueuer interface {
	EnqueueJob(ctx context.Context, j jobs.Job) (int64, bool, error)
}

// Queue is the pipeline's Reporter: it records a report job and returns, so GitHub being slow
// or down never holds a deploy up.
type Queue struct {
	Jobs Enqueuer
	Wake func() // wakes the job runner; may be nil
	Log  *slog.Logger
}

// Report implements pipeline.Reporter.
func (q *Queue) Report(ctx context.Context, d deploy.Deploy, cp deploy.Checkpoint) {
	j := jobs.Job{Kind: jobs.KindDeployReport, Key: fmt.Sprintf("deploy.report/%d/%s/%d", d.ID, d.State, cp.ReportedAt.UnixNano()),
		Payload: fmt.Appendf(nil, `{"deploy_id":%d}`, d.ID)}
	if _, _, err := q.Jobs.EnqueueJob(ctx, j); err != nil {
		q.Log.Error("recording a report", "deploy", d.ID, "err", err)
		return
	}
	if q.Wake != nil {
		q.Wake()
	}
}

// ProgressStore is what the progress reporter reads and records.
type ProgressStore interface {
	Deploys
	Enqueuer
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
	SetGitHubDeployment(ctx context.Context, deployID, githubID int64, status string) error
	SetComment(ctx context.Context, deployID, commentID int64) error
}

// Progress runs jobs.KindDeployReport: it edits the deploy's check run (with its buttons once the
// deploy ended), moves its GitHub Deployment through queued → in_progress → success/failure
// (GitHub marks the previous one inactive), and comments: on a merged pull request once its
// deploy to a merge stage ends, and on the issue a command came from at every step (one comment
// each, edited in place). When a deploy to the release stage that a command asked for ends, it
// records a job for the release workflow, which closes or updates the release issue.
type Progress struct {
	st      ProgressStore
	clients Clients
	cfg     *config.Config
	webURL  string
	log     *slog.Logger
	now     func() time.Time

	mu    sync.Mutex
	locks map[int64]*sync.Mutex // one report of a deploy at a time in this process
}

// NewProgress builds the executor. webURL is GitHub's web root (https://github.com, or the
// GitHub Enterprise host) for commit and compare links.
func NewProgress(st ProgressStore, clients Clients, cfg *config.Config, webURL string, log *slog.Logger) *Progress {
	return &Progress{st: st, clients: clients, cfg: cfg, webURL: strings.TrimSuffix(webURL, "/"), log: log, now: time.Now, locks: map[int64]*sync.Mutex{}}
}

// WebURL derives GitHub's web root from its API root.
func WebURL(apiURL string) string {
	u := strings.TrimSuffix(apiURL, "/")
	if strings.Contains(u, "://api.github.com") {
		return "https://github.com"
	}
	return strings.TrimSuffix(u, "/api/v3")
}

// Kind implements worker.Executor.
func (p *Progress) Kind() string { return jobs.KindDeployReport }

func (p *Progress) lock(id int64) func() {
	p.mu.Lock()
	l, ok := p.locks[id]
	if !ok {
		l = &sync.Mutex{}
		p.locks[id] = l
	}
	p.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Run implements worker.Executor.
func (p *Progress) Run(ctx context.Context, j jobs.Job) error {
	var in jobs.CheckRunCreate
	if err := json.Unmarshal(j.Payload, &in); err != nil {
		return jobs.Terminal(fmt.Errorf("decoding %s payload: %w", j.Kind, err))
	}
	defer p.lock(in.DeployID)()
	d, err := p.st.Deploy(ctx, in.DeployID)
	if err != nil {
		return fmt.Errorf("loading deploy %d: %w", in.DeployID, err)
	}
	if d.CheckRunID == 0 {
		return fmt.Errorf("deploy %d has no check run yet", d.ID) // its creation job runs first; retry
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
	v := view{D: d, CP: cp, Now: p.now(), WebURL: p.webURL, Compare: p.previous(ctx, d)}
	for _, next := range p.cfg.NextStages(d.Stage) {
		if p.cfg.App(d.App) != nil && hasStage(p.cfg.App(d.App), next.Name) {
			v.Next = next.Name
			break
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
	if err := p.comment(ctx, gh, owner, repo, v); err != nil {
		return err
	}
	return p.releaseHook(ctx, d)
}

func hasStage(app *config.App, stage string) bool {
	_, ok := app.Stages[stage]
	return ok
}

// releaseHook hands a finished, command-asked deploy to the release stage to the release
// workflow, which knows whether its issue is a release issue.
func (p *Progress) releaseHook(ctx context.Context, d deploy.Deploy) error {
	if !d.State.Final() || d.Stage != p.cfg.Release.Stage || !d.Trigger.Command() || d.Trigger.Issue == 0 {
		return nil
	}
	j := jobs.Job{Kind: jobs.KindReleaseUpdate, Key: fmt.Sprintf("release.update/%d/%s", d.ID, d.State),
		Payload: mustJSON(jobs.ReleaseUpdate{Repo: d.Repo, InstallationID: d.InstallationID, Issue: d.Trigger.Issue,
			Delivery: d.Trigger.Delivery, DeployID: d.ID})}
	if _, _, err := p.st.EnqueueJob(ctx, j); err != nil {
		return fmt.Errorf("recording the release update of deploy %d: %w", d.ID, err)
	}
	return nil
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
	if want == "" || want == d.GitHubDeploymentStatus {
		return nil
	}
	id := d.GitHubDeploymentID
	if id == 0 {
		prod := false
		if st := p.cfg.Stage(d.Stage); st != nil {
			prod = st.Credentials == "prod"
		}
		gd, _, err := gh.Repositories.CreateDeployment(ctx, owner, repo, &github.DeploymentRequest{
			Ref: github.Ptr(d.SHA), Environment: github.Ptr(d.Stage), Description: github.Ptr(clip(fmt.Sprintf("Stagecoach deploy #%d of %s", d.ID, d.App), 140)),
			AutoMerge: github.Ptr(false), RequiredContexts: &[]string{}, ProductionEnvironment: github.Ptr(prod),
			Payload: map[string]any{"stagecoach_deploy": d.ID, "app": d.App},
		})
		if err != nil {
			return githubapp.Classify(fmt.Errorf("creating the GitHub Deployment of deploy %d: %w", d.ID, err))
		}
		id = gd.GetID()
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
	if (last == "" || last == "queued") && (want == "success" || want == "failure") && len(v.CP.Steps) > 1 {
		statuses = append(statuses, "in_progress")
	}
	statuses = append(statuses, want)
	for _, state := range statuses {
		req := &github.DeploymentStatusRequest{State: github.Ptr(state), Description: github.Ptr(v.statusDescription()), Environment: github.Ptr(d.Stage)}
		if v.CP.BuildLog != "" {
			req.LogURL = github.Ptr(v.CP.BuildLog)
		}
		if _, _, err := gh.Repositories.CreateDeploymentStatus(ctx, owner, repo, id, req); err != nil {
			return githubapp.Classify(fmt.Errorf("setting the GitHub Deployment status of deploy %d: %w", d.ID, err))
		}
		if err := p.st.SetGitHubDeployment(ctx, d.ID, id, state); err != nil {
			return err
		}
	}
	return nil
}

func (p *Progress) comment(ctx context.Context, gh *github.Client, owner, repo string, v view) error {
	d := v.D
	var issue int
	var body string
	switch st := p.cfg.Stage(d.Stage); {
	case d.Mode == deploy.ModePRBuild || d.State == deploy.Superseded:
		return nil
	case d.Trigger.Command() && d.Trigger.Issue != 0:
		issue, body = d.Trigger.Issue, v.commandComment()
	case d.Trigger.PR != 0 && st != nil && st.Trigger == config.TriggerMerge && d.State.Final():
		issue, body = d.Trigger.PR, v.comment()
	default:
		return nil
	}
	if d.CommentID != 0 {
		if _, _, err := gh.Issues.EditComment(ctx, owner, repo, d.CommentID, &github.IssueComment{Body: github.Ptr(body)}); err != nil {
			return githubapp.Classify(fmt.Errorf("editing the comment on #%d: %w", issue, err))
		}
		return nil
	}
	c, _, err := gh.Issues.CreateComment(ctx, owner, repo, issue, &github.IssueComment{Body: github.Ptr(body)})
	if err != nil {
		return githubapp.Classify(fmt.Errorf("commenting on #%d: %w", issue, err))
	}
	return p.st.SetComment(ctx, d.ID, c.GetID())
}

// mustJSON marshals a job payload of plain fields, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("report: marshal %T: %v", v, err))
	}
	return b
}
