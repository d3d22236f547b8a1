package report

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// CheckRunCreator runs jobs.KindCheckRunCreate: it gives a newly accepted deploy its check run,
// `stagecoach/<stage>` on the deployed commit, queued (or already skipped when a newer deploy
// superseded it before GitHub could be told).
type CheckRunCreator struct {
	deploys Deploys
	clients Clients
	webURL  string
	log     *slog.Logger
}

// NewCheckRunCreator builds the executor; webURL is GitHub's web root, for links.
func NewCheckRunCreator(d Deploys, c Clients, webURL string, log *slog.Logger) *CheckRunCreator {
	return &CheckRunCreator{deploys: d, clients: c, webURL: strings.TrimSuffix(webURL, "/"), log: log}
}

// Executor is the job executor.
func (c *CheckRunCreator) Executor() worker.Executor {
	return worker.Handle(jobs.KindCheckRunCreate, c.Create)
}

// Create gives the deploy its check run unless it has one.
func (c *CheckRunCreator) Create(ctx context.Context, _ jobs.Job, p jobs.CheckRunCreate) error {
	d, err := c.deploys.Deploy(ctx, p.DeployID)
	if err != nil {
		return fmt.Errorf("loading deploy %d: %w", p.DeployID, err)
	}
	if d.CheckRunID != 0 {
		return nil // done by an earlier attempt
	}
	if d.InstallationID == 0 {
		return jobs.Terminal(fmt.Errorf("deploy %d has no installation to report through", d.ID))
	}
	owner, repo, err := splitRepo(d.Repo)
	if err != nil {
		return err
	}
	gh, err := c.clients.Installation(d.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	id, err := ensureCheckRun(ctx, c.deploys, gh, owner, repo, view{D: d, CP: checkpoint(d), Now: time.Now(), WebURL: c.webURL})
	if err != nil {
		return err
	}
	c.log.Info("check run created", "deploy", d.ID, "app", d.App, "stage", d.Stage, "sha", d.SHA, "delivery", d.Trigger.Delivery, "check_run", id)
	return nil
}

// ensureCheckRun creates the deploy's check run exactly once (found again by its external_id,
// the deploy's id) and records it on the deploy.
func ensureCheckRun(ctx context.Context, st Deploys, gh *github.Client, owner, repo string, v view) (int64, error) {
	d := v.D
	ext := strconv.FormatInt(d.ID, 10)
	id, _, err := ghcreate.Once(ctx, st, "checkrun/deploy/"+ext,
		func(ctx context.Context) (int64, error) {
			return ghcreate.CheckRun(ctx, gh, owner, repo, d.SHA, checkRunName(d), ext)
		},
		func(ctx context.Context) (int64, error) {
			run, _, err := gh.Checks.CreateCheckRun(ctx, owner, repo, newCheckRun(v))
			return run.GetID(), err
		})
	if err != nil {
		return 0, fmt.Errorf("the check run of deploy %d on %s@%s: %w", d.ID, d.Repo, d.SHA, err)
	}
	if err := st.SetCheckRun(ctx, d.ID, id); err != nil {
		return 0, fmt.Errorf("recording check run %d of deploy %d: %w", id, d.ID, err)
	}
	return id, nil
}

// checkpoint is the deploy's checkpoint; a bad one only loses the step table.
func checkpoint(d deploy.Deploy) deploy.Checkpoint {
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	return cp
}

func newCheckRun(v view) github.CreateCheckRunOptions {
	d := v.D
	opts := github.CreateCheckRunOptions{
		Name:       checkRunName(d),
		HeadSHA:    d.SHA,
		ExternalID: github.Ptr(strconv.FormatInt(d.ID, 10)),
		Output:     &github.CheckRunOutput{Title: github.Ptr(v.title()), Summary: github.Ptr(v.summary())},
	}
	if c := conclusion(d.State); c != "" {
		// The deploy ended before GitHub could be told it began.
		opts.Status, opts.Conclusion = github.Ptr("completed"), github.Ptr(c)
		opts.Actions = v.actions()
	} else {
		opts.Status = github.Ptr("queued")
	}
	return opts
}

func actor(login string) string {
	if login == "" {
		return "someone"
	}
	return "@" + login
}
