package report

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
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

// Kind implements worker.Executor.
func (c *CheckRunCreator) Kind() string { return jobs.KindCheckRunCreate }

// Run implements worker.Executor.
func (c *CheckRunCreator) Run(ctx context.Context, j jobs.Job) error {
	var p jobs.CheckRunCreate
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Terminal(fmt.Errorf("decoding %s payload: %w", j.Kind, err))
	}
	d, err := c.deploys.Deploy(ctx, p.DeployID)
	if err != nil {
		return fmt.Errorf("loading deploy %d: %w", p.DeployID, err)
	}
	if d.CheckRunID != 0 {
		return nil // done by an earlier attempt that could not record its success
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
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint) // a bad checkpoint only loses the step table
	run, _, err := gh.Checks.CreateCheckRun(ctx, owner, repo, newCheckRun(view{D: d, CP: cp, Now: time.Now(), WebURL: c.webURL}))
	if err != nil {
		return githubapp.Classify(fmt.Errorf("creating check run for deploy %d on %s@%s: %w", d.ID, d.Repo, d.SHA, err))
	}
	if err := c.deploys.SetCheckRun(ctx, d.ID, run.GetID()); err != nil {
		return fmt.Errorf("recording check run %d of deploy %d: %w", run.GetID(), d.ID, err)
	}
	c.log.Info("check run created", "deploy", d.ID, "app", d.App, "stage", d.Stage, "sha", d.SHA, "delivery", d.Trigger.Delivery, "check_run", run.GetID())
	return nil
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
