package handlers

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// MergeGroup builds the merge groups GitHub's merge queue asks checks for, for the apps whose
// pull-request build is a required check there (pr_build.merge_queue): merge_group
// checks_requested gets the same build a pull request's head gets (the pr tier, the PR build
// project, nothing deployed), of the group's head commit, reported as stagecoach/pr-build on it,
// where the queue waits for it.
//
// The build is recorded under the stage of the pull request that entered the queue last (the
// pr-<number> in the group's ref), so a newer group for it supersedes one still queued, as a
// newer push to a pull request does. A group holds only pull requests someone with write access
// queued, after the branch's required reviews, so it is built whether or not they came from
// forks; the pr tier is all it ever gets.
type MergeGroup struct{ cfg *config.Config }

var _ Handler = (*MergeGroup)(nil)

var mergeGroupSchema = payload.Compile(
	"action", "repository.full_name", "installation.id", "sender.login",
	"merge_group.head_sha", "merge_group.head_ref",
)

// Handles implements Handler.
func (h *MergeGroup) Handles() []string { return []string{"merge_group"} }

// Handle implements Handler.
func (h *MergeGroup) Handle(_ context.Context, ev Event) (Result, error) {
	f, err := pick(ev, mergeGroupSchema)
	if err != nil {
		return Result{}, err
	}
	res := Result{Action: f.str("action"), Repo: f.str("repository.full_name"), InstallationID: f.int("installation.id")}
	sha, ref := f.str("merge_group.head_sha"), f.str("merge_group.head_ref")
	sender := f.str("sender.login")
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	number, ok := queuedPR(ref)
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case res.Action != "checks_requested":
		res.Ignored = "merge group " + res.Action + ": only checks_requested asks for a build"
	case sha == "":
		res.Ignored = "merge group has no head_sha"
	case !ok:
		res.Ignored = fmt.Sprintf("merge group ref %q is not a merge queue's gh-readonly-queue/<base>/pr-<number>-<sha>", ref)
	default:
		branch := strings.TrimPrefix(ref, "refs/heads/")
		res.Ignored = "no app of " + res.Repo + " builds merge groups (pr_build.merge_queue)"
		for _, app := range h.cfg.AppsForRepo(res.Repo) {
			if !app.PRBuild.Enabled || !app.PRBuild.MergeQueue {
				continue
			}
			res.Deploys = append(res.Deploys, deploy.Request{App: app.Name, Stage: deploy.PRStage(number), Repo: res.Repo, SHA: sha,
				Ref: branch, InstallationID: res.InstallationID, Mode: deploy.ModePRBuild,
				Trigger: deploy.Trigger{Event: ev.Name, Delivery: ev.Delivery, PR: number, Actor: sender}})
		}
		if len(res.Deploys) > 0 {
			res.Ignored = ""
		}
	}
	return res, nil
}

// queuedPR reads the pull request that entered the queue last from a merge group's ref,
// refs/heads/gh-readonly-queue/<base>/pr-<number>-<base sha> (the base may contain slashes).
func queuedPR(ref string) (int, bool) {
	branch := strings.TrimPrefix(ref, "refs/heads/")
	if !config.MergeQueueBranch(branch) {
		return 0, false
	}
	last := branch[strings.LastIndexByte(branch, '/')+1:]
	rest, ok := strings.CutPrefix(last, "pr-")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
