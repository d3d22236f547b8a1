package handlers

import (
	"context"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// CheckRun records presses of Stagecoach's check-run buttons (requested_action) and "Re-run"
// requests (rerequested) for the workflows that act on them. Other check runs and actions
// (created, completed) are ignored.
type CheckRun struct{ cfg *config.Config }

var _ Handler = (*CheckRun)(nil)

var checkRunSchema = payload.Compile(
	"action", "repository.full_name", "installation.id", "sender.login",
	"check_run.id", "check_run.name", "check_run.external_id", "check_run.head_sha", "check_run.app.id",
	"requested_action.identifier",
)

// checkRunPrefix starts the name of every check run Stagecoach creates.
const checkRunPrefix = "stagecoach/"

// Handles implements Handler.
func (h *CheckRun) Handles() []string { return []string{"check_run"} }

// Handle implements Handler.
func (h *CheckRun) Handle(_ context.Context, ev Event) (Result, error) {
	f, err := pick(ev, checkRunSchema)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Action:         f.str("action"),
		Repo:           f.str("repository.full_name"),
		InstallationID: f.int("installation.id"),
	}
	a := jobs.CheckRunAction{
		Repo:           res.Repo,
		InstallationID: res.InstallationID,
		Action:         res.Action,
		Identifier:     f.str("requested_action.identifier"),
		CheckRunID:     f.int("check_run.id"),
		CheckRunName:   f.str("check_run.name"),
		ExternalID:     f.str("check_run.external_id"),
		HeadSHA:        f.str("check_run.head_sha"),
		Actor:          f.str("sender.login"),
		Delivery:       ev.Delivery,
	}
	appID := f.int("check_run.app.id")
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	ours := strings.HasPrefix(a.CheckRunName, checkRunPrefix) &&
		(h.cfg.GitHub.AppID == 0 || appID == h.cfg.GitHub.AppID)
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case res.Action != "requested_action" && res.Action != "rerequested":
		res.Ignored = "check_run " + res.Action
	case !ours:
		res.Ignored = "check run " + a.CheckRunName + " is not Stagecoach's"
	default:
		res.Jobs = []jobs.Job{{
			Kind:    jobs.KindCheckRunAction,
			Key:     "check_run:" + ev.Delivery,
			Payload: mustJSON(a),
		}}
	}
	return res, nil
}
