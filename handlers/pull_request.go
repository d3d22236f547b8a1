package handlers

import (
	"context"
	"fmt"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// PullRequest deploys the merge commit of a pull request merged into the branch of a stage
// whose trigger is "merge" (master -> test in the seed process), and asks for a build of a pull
// request's head when it is opened, reopened or pushed to, for apps that build pull requests.
// A pull request from a fork is built only where the app allows it, and always with the pr
// credentials tier alone (the pipeline never gives a pull-request build anything else).
type PullRequest struct{ cfg *config.Config }

var _ Handler = (*PullRequest)(nil)

var pullRequestSchema = payload.Compile(
	"action", "number", "repository.full_name", "installation.id", "sender.login",
	"pull_request.merged", "pull_request.merge_commit_sha", "pull_request.base.ref",
	"pull_request.merged_by.login", "pull_request.head.sha", "pull_request.head.ref", "pull_request.head.repo.full_name",
	"pull_request.user.login",
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
	head := prHead{sha: f.str("pull_request.head.sha"), ref: f.str("pull_request.head.ref"),
		repo: f.str("pull_request.head.repo.full_name"), sender: f.str("sender.login")}
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case res.Action == "opened" || res.Action == "reopened" || res.Action == "synchronize":
		res.Deploys, res.Ignored = h.builds(ev, res, int(number), head)
	case res.Action != "closed" || !merged:
		res.Ignored = "pull request " + res.Action + ", not merged"
	case sha == "":
		res.Ignored = "merged pull request has no merge_commit_sha"
	default:
		// A merge into a guarded stage's branch is decided by the admission gate, as a push is.
		open, guarded := splitGuarded(stagesTriggered(h.cfg, base, config.TriggerMerge))
		res.Deploys = deploysFor(h.cfg, res.Repo, open, deploy.Request{
			SHA: sha, Ref: base, InstallationID: res.InstallationID,
			Trigger: deploy.Trigger{Event: ev.Name, Delivery: ev.Delivery, PR: int(number), Actor: actor},
		})
		res.Jobs = guardedJobs(h.cfg, res.Repo, guarded, jobs.Push{Repo: res.Repo, InstallationID: res.InstallationID, Branch: base,
			After: sha, Pusher: actor, Event: ev.Name, PR: int(number), Delivery: ev.Delivery})
		if res.Empty() {
			res.Ignored = "no stage deploys on merge into " + base
		}
	}
	return res, nil
}

// prHead is the commit a pull request proposes and where it comes from.
type prHead struct{ sha, ref, repo, sender string }

// builds asks for a pull-request build of head for every app of the repository that builds pull
// requests, and says why when there is none.
func (h *PullRequest) builds(ev Event, res Result, number int, head prHead) ([]deploy.Request, string) {
	if head.sha == "" {
		return nil, "pull request has no head sha"
	}
	fork := head.repo != "" && !strings.EqualFold(head.repo, res.Repo)
	var out []deploy.Request
	why := "no app of " + res.Repo + " builds pull requests"
	for _, app := range h.cfg.AppsForRepo(res.Repo) {
		if !app.PRBuild.Enabled {
			continue
		}
		if fork && !app.PRBuild.Forks {
			why = fmt.Sprintf("pull request #%d comes from the fork %s, and %s does not build forks (pr_build.forks)", number, head.repo, app.Name)
			continue
		}
		out = append(out, deploy.Request{App: app.Name, Stage: deploy.PRStage(number), Repo: res.Repo, SHA: head.sha, Ref: head.ref,
			InstallationID: res.InstallationID, Mode: deploy.ModePRBuild,
			Trigger: deploy.Trigger{Event: ev.Name, Delivery: ev.Delivery, PR: number, Actor: head.sender}})
	}
	if len(out) > 0 {
		why = ""
	}
	return out, why
}
