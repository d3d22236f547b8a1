// Package installs hears of installations of the GitHub App (the installation event: created,
// deleted, suspended, unsuspended, new_permissions_accepted) and tells operations what they mean
// for the configured apps: which repositories Stagecoach now reaches, and which configured apps
// it cannot, so that a repository left out of an installation is noticed before its first merge
// goes unanswered.
package installs

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// Executor runs jobs.KindInstallation.
type Executor struct {
	cfg *config.Config
	log *slog.Logger
}

// New builds the executor.
func New(cfg *config.Config, log *slog.Logger) *Executor { return &Executor{cfg: cfg, log: log} }

// Executor is the job executor.
func (e *Executor) Executor() worker.Executor {
	return worker.Handle(jobs.KindInstallation, e.Installed)
}

// Installed says, in the log, what an installation of the App means for the configured apps.
func (e *Executor) Installed(_ context.Context, _ jobs.Job, in jobs.Installation) error {
	covered, missing := e.Coverage(in)
	log := e.log.With("installation", in.InstallationID, "account", in.Account, "action", in.Action, "delivery", in.Delivery)
	switch in.Action {
	case "deleted", "suspend":
		if len(covered) > 0 {
			log.Warn("the GitHub App was removed or suspended: Stagecoach can no longer report or answer for these apps", "apps", covered)
		} else {
			log.Info("the GitHub App was removed or suspended from an account with no configured apps")
		}
	default:
		log.Info("the GitHub App is installed", "repositories", len(in.Repos), "apps", covered)
		if len(missing) > 0 {
			log.Warn("configured apps whose repository this installation does not include: add them to it, or their events never arrive",
				"apps", missing)
		}
	}
	return nil
}

// Coverage splits the configured apps of the installation's account into those whose repository
// the installation lists and those it does not (both sorted). An installation that lists no
// repositories is taken to cover its whole account, as one for "All repositories" does.
func (e *Executor) Coverage(in jobs.Installation) (covered, missing []string) {
	for _, app := range e.cfg.Apps {
		owner, _, _ := strings.Cut(app.Repo, "/")
		if !strings.EqualFold(owner, in.Account) {
			continue
		}
		if len(in.Repos) == 0 || slices.ContainsFunc(in.Repos, func(r string) bool { return strings.EqualFold(r, app.Repo) }) {
			covered = append(covered, app.Name)
		} else {
			missing = append(missing, app.Name)
		}
	}
	slices.Sort(covered)
	slices.Sort(missing)
	return covered, missing
}
