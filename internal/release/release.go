// Package release runs the release workflow's GitHub side: a release tag (default v* or
// sprint-*) pushed on a commit that succeeded on the stage releases come from (alpha) opens a
// release issue, "Release <tag>", labelled release, with the tag and commit, the changelog of
// what prod would gain (GitHub's compare API), the alpha deploy's result, what is where, and how
// to promote; and it puts a stagecoach/release check run with a Promote button on the commit. A
// tag on a commit that never succeeded there gets a check run that says why it cannot be
// promoted. A commit that has not yet run its min_soak there gets the issue, saying when it will
// be ready to promote, and a check run without the button; a durable job due at that time
// (Ready) adds the button and says so on the issue, once, whatever restarts happen meanwhile. When the promotion's deploys end, the issue is closed with a summary, or stays open
// with the reason.
//
// Promoting itself (/promote prod on the issue, or the button) is a command: package chatops.
// Both run as durable jobs; every step records what it made, so a retry makes nothing twice.
package release

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/status"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what the release workflow reads and records, and where it records what it creates on
// GitHub before creating it (package ghcreate).
type Store interface {
	status.Store
	ghcreate.Log
	CreateRelease(ctx context.Context, r store.Release) (store.Release, bool, error)
	ClaimRelease(ctx context.Context, id int64, key, sha string) (bool, error)
	UpdateRelease(ctx context.Context, r store.Release) error
	ReleaseByIssue(ctx context.Context, repo string, number int) (store.Release, error)
	Succeeded(ctx context.Context, app, stage, sha string) (deploy.Deploy, bool, error)
	DeploysByDelivery(ctx context.Context, delivery string) ([]deploy.Deploy, error)
	ReleaseByID(ctx context.Context, repo string, id int64) (store.Release, error)
	LiveSpans(ctx context.Context, app, stage, sha string) ([]store.Span, error)
	EnqueueJob(ctx context.Context, j jobs.Job) (int64, bool, error)
}

// Clients gives the GitHub client of an installation, and the App's bot login (by which what it
// created is found again).
type Clients interface {
	Installation(id int64) (*github.Client, error)
	BotLogin(ctx context.Context) (string, error)
}

// CheckName is the name of release check runs.
const CheckName = "stagecoach/release"

// Workflow runs the release jobs: Tags and Updates are its two executors.
type Workflow struct {
	st      Store
	clients Clients
	cfg     *config.Config
	webURL  string
	now     func() time.Time
	log     *slog.Logger
}

// New builds the workflow; webURL is GitHub's web root, for links.
func New(st Store, clients Clients, cfg *config.Config, webURL string, log *slog.Logger) *Workflow {
	return &Workflow{st: st, clients: clients, cfg: cfg, webURL: strings.TrimSuffix(webURL, "/"), now: time.Now, log: log}
}

func notFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}

func splitRepo(full string) (string, string) {
	owner, name, _ := strings.Cut(full, "/")
	return owner, name
}
