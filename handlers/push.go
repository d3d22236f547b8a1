package handlers

import (
	"context"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// Push deploys the new head of a stage's branch, and records pushed tags for the release
// workflow. Forced pushes are normal (the release flow moves alpha and prod by force); deletions
// are ignored. A push to the branch of a "merge" stage deploys too, as a direct push to master
// does in the seed process; the merge commit of a merged pull request has the same deploy key as
// its push, so the two never deploy twice.
type Push struct{ cfg *config.Config }

var _ Handler = (*Push)(nil)

var pushSchema = payload.Compile(
	"ref", "after", "deleted", "repository.full_name", "installation.id", "sender.login",
)

// Handles implements Handler.
func (h *Push) Handles() []string { return []string{"push"} }

// Handle implements Handler.
func (h *Push) Handle(_ context.Context, ev Event) (Result, error) {
	f, err := pick(ev, pushSchema)
	if err != nil {
		return Result{}, err
	}
	res := Result{Repo: f.str("repository.full_name"), InstallationID: f.int("installation.id")}
	ref := f.str("ref")
	after := f.str("after")
	deleted := f.bool("deleted")
	actor := f.str("sender.login")
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case deleted || after == zeroSHA:
		res.Ignored = ref + " deleted"
	case strings.HasPrefix(ref, "refs/tags/"):
		tag := strings.TrimPrefix(ref, "refs/tags/")
		res.Jobs = []jobs.Job{{
			Kind: jobs.KindTagCreated,
			Key:  "tag:" + res.Repo + ":" + tag + ":" + after,
			Payload: mustJSON(jobs.Tag{
				Repo: res.Repo, InstallationID: res.InstallationID, Tag: tag, SHA: after,
				Actor: actor, Delivery: ev.Delivery,
			}),
		}}
	case strings.HasPrefix(ref, "refs/heads/"):
		branch := strings.TrimPrefix(ref, "refs/heads/")
		stages := stagesTriggered(h.cfg, branch, config.TriggerPush, config.TriggerMerge)
		res.Deploys = deploysFor(h.cfg, res.Repo, stages, deploy.Request{
			SHA: after, Ref: branch, InstallationID: res.InstallationID,
			Trigger: deploy.Trigger{Event: ev.Name, Delivery: ev.Delivery, Actor: actor},
		})
		if len(res.Deploys) == 0 {
			res.Ignored = "no stage deploys on push to " + branch
		}
	default:
		res.Ignored = "push to " + ref + " is neither a branch nor a tag"
	}
	return res, nil
}
