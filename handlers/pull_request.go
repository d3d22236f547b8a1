package handlers

import (
	"context"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// PullRequest deploys the merge commit of a pull request merged into the branch of a stage
// whose trigger is "merge" (master -> test in the seed process).
type PullRequest struct{ cfg *config.Config }

var _ Handler = (*PullRequest)(nil)

var pullRequestSchema = payload.Compile(
	"action", "number", "repository.full_name", "installation.id", "sender.login",
	"pull_request.merged", "pull_request.merge_commit_sha", "pull_request.base.ref",
	"pull_request.merged_by.login",
)

// Handles implements Handler.
func (h *PullRequest) Handles() []string { return []string{"pull_request"} }

// Handle implements Handler.
func (h *PullRequest) Handle(_ context.Context, ev Event) (Result, error) {
	f, err := pick(ev, pullRequestSchema)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Action:         f.str("action"),
		Repo:           f.str("repository.full_name"),
		InstallationID: f.int("installation.id"),
	}
	number := f.int("number")
	merged := f.bool("pull_request.merged")
	sha := f.str("pull_request.merge_commit_sha")
	base := f.str("pull_request.base.ref")
	actor := f.str("pull_request.merged_by.login")
	if actor == "" {
		actor = f.str("sender.login")
	}
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case res.Action != "closed" || !merged:
		res.Ignored = "pull request " + res.Action + ", not merged"
	case sha == "":
		res.Ignored = "merged pull request has no merge_commit_sha"
	default:
		stages := stagesTriggered(h.cfg, base, config.TriggerMerge)
		res.Deploys = deploysFor(h.cfg, res.Repo, stages, deploy.Request{
			SHA: sha, Ref: base, InstallationID: res.InstallationID,
			Trigger: deploy.Trigger{Event: ev.Name, Delivery: ev.Delivery, PR: int(number), Actor: actor},
		})
		if len(res.Deploys) == 0 {
			res.Ignored = "no stage deploys on merge into " + base
		}
	}
	return res, nil
}
