// Package report tells GitHub what happens to deploys: check runs on the deployed commit (and,
// with the pipeline, GitHub Deployments and pull-request comments). Reporting runs as durable
// jobs: a GitHub outage delays a report, it never blocks intake or fails a deploy.
//
// The store records a deploy's report jobs with the changes they report, in its environment's
// lane (jobs.ForDeploy): they run one at a time, on whichever replica claims them, in the order
// the changes happened, after the job that creates the check run. Each renders the deploy as the
// store has it when it runs, and one that a later report follows leaves the work to it. Objects
// are created exactly once (package ghcreate).
package report

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// Clients gives the GitHub client of an installation, and the App's bot login (the author of
// what it creates, by which its comments are found again).
type Clients interface {
	Installation(id int64) (*github.Client, error)
	BotLogin(ctx context.Context) (string, error)
}

// checkRunName is the name of a deploy's check run: stagecoach/<stage>, or stagecoach/pr-build
// for a pull request's build.
func checkRunName(d deploy.Deploy) string {
	if d.Mode == deploy.ModePRBuild {
		return PRBuildCheck
	}
	return "stagecoach/" + d.Stage
}

// PRBuildCheck is the name of pull-request builds' check runs.
const PRBuildCheck = "stagecoach/pr-build"

// splitRepo splits "owner/name".
func splitRepo(full string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || owner == "" || name == "" {
		return "", "", jobs.Terminal(fmt.Errorf("repository %q is not owner/name", full))
	}
	return owner, name, nil
}

// Deploys is what reporting reads and writes of deploys, and where it records what it creates
// on GitHub before creating it (package ghcreate).
type Deploys interface {
	ghcreate.Log
	Deploy(ctx context.Context, id int64) (deploy.Deploy, error)
	SetCheckRun(ctx context.Context, deployID, checkRunID int64) error
}
