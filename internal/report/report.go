// Package report tells GitHub what happens to deploys: check runs on the deployed commit (and,
// with the pipeline, GitHub Deployments and pull-request comments). Reporting runs as durable
// jobs: a GitHub outage delays a report, it never blocks intake or fails a deploy.
package report

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// Clients gives the GitHub client of an installation.
type Clients interface {
	Installation(id int64) (*github.Client, error)
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

// Deploys is what reporting reads and writes of deploys.
type Deploys interface {
	Deploy(ctx context.Context, id int64) (deploy.Deploy, error)
	SetCheckRun(ctx context.Context, deployID, checkRunID int64) error
}
