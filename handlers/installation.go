package handlers

import (
	"context"
	"strconv"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// Installation records installations of the GitHub App and changes to them, so operations can
// see which accounts and repositories the App reaches.
type Installation struct{ cfg *config.Config }

var _ Handler = (*Installation)(nil)

var installationSchema = payload.Compile("action", "installation.id", "installation.account.login", "repositories")

// Handles implements Handler.
func (h *Installation) Handles() []string { return []string{"installation"} }

// Handle implements Handler.
func (h *Installation) Handle(_ context.Context, ev Event) (Result, error) {
	f, err := pick(ev, installationSchema)
	if err != nil {
		return Result{}, err
	}
	res := Result{Action: f.str("action"), InstallationID: f.int("installation.id")}
	account := f.str("installation.account.login")
	var repos []struct {
		FullName string `json:"full_name"`
	}
	if err := f.v.Decode("repositories", &repos); err != nil && f.err == nil {
		f.err = err
	}
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	inst := jobs.Installation{InstallationID: res.InstallationID, Action: res.Action, Account: account, Delivery: ev.Delivery}
	for _, r := range repos {
		inst.Repos = append(inst.Repos, r.FullName)
	}
	res.Jobs = []jobs.Job{{
		Kind:    jobs.KindInstallation,
		Key:     "installation:" + strconv.FormatInt(res.InstallationID, 10) + ":" + ev.Delivery,
		Payload: mustJSON(inst),
	}}
	return res, nil
}
