package handlers

import (
	"context"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// Create records tags created in a configured repo for the release workflow. The event carries
// no sha; the release workflow resolves the tag when it runs. Branch creations are ignored: a
// new branch is no stage until something is pushed to it.
type Create struct{ cfg *config.Config }

var _ Handler = (*Create)(nil)

var createSchema = payload.Compile("ref", "ref_type", "repository.full_name", "installation.id", "sender.login")

// Handles implements Handler.
func (h *Create) Handles() []string { return []string{"create"} }

// Handle implements Handler.
func (h *Create) Handle(_ context.Context, ev Event) (Result, error) {
	f, err := pick(ev, createSchema)
	if err != nil {
		return Result{}, err
	}
	res := Result{Repo: f.str("repository.full_name"), InstallationID: f.int("installation.id")}
	ref, refType, actor := f.str("ref"), f.str("ref_type"), f.str("sender.login")
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case refType != "tag":
		res.Ignored = refType + " " + ref + " created"
	default:
		res.Jobs = []jobs.Job{{
			Kind: jobs.KindTagCreated,
			// A tag can be deleted and created again, so the delivery keeps each creation apart;
			// the release workflow makes one release issue per tag however often it hears of it.
			Key: "tag:" + res.Repo + ":" + ref + ":create:" + ev.Delivery,
			Payload: mustJSON(jobs.Tag{
				Repo: res.Repo, InstallationID: res.InstallationID, Tag: ref, Actor: actor, Delivery: ev.Delivery,
			}),
		}}
	}
	return res, nil
}
