package handlers

import (
	"context"
	"slices"
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
// its push, so the two never deploy twice. Pushes to a merge queue's gh-readonly-queue/*
// branches are ignored, and say so: the queue's merge_group events are how its groups are built.
//
// A push to a guarded stage's branch (one with promoters or promote_from) is no deploy yet:
// whether it may deploy depends on who pushed, which only GitHub can say, and a handler never
// asks GitHub. It becomes a jobs.KindPush job that the admission gate decides; only then is a
// deploy recorded, so an unapproved push can never supersede a deploy queued by a promoter.
//
// A push to the repository's default branch that changes its own configuration file
// (config.RepoFilePath) becomes a jobs.KindRepoConfigLoad job: the file is read from GitHub by
// the job, never here, and only ever from the default branch, so a pull request's file changes
// nothing until it is merged.
type Push struct{ cfg *config.Config }

var _ Handler = (*Push)(nil)

var pushSchema = payload.Compile(
	"ref", "before", "after", "deleted", "forced", "repository.full_name", "installation.id", "sender.login", "sender.type",
	"repository.default_branch", "commits",
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
	before, after := f.str("before"), f.str("after")
	deleted, forced := f.bool("deleted"), f.bool("forced")
	actor, actorType := f.str("sender.login"), f.str("sender.type")
	defaultBranch := f.str("repository.default_branch")
	if err := f.check(ev); err != nil {
		return Result{}, err
	}
	switch {
	case len(h.cfg.AppsForRepo(res.Repo)) == 0:
		res.Ignored = "repository " + res.Repo + " is not configured"
	case deleted || after == zeroSHA:
		res.Ignored = ref + " deleted"
	case config.MergeQueueBranch(ref):
		// GitHub's merge queue makes these branches for merge groups it is still testing (and
		// deletes them): their commits are candidates, never merges, whatever stage a
		// configuration puts on them. The queue asks for checks with merge_group.
		res.Ignored = "push to " + strings.TrimPrefix(ref, "refs/heads/") + ", a merge queue's branch: merge groups are never deployed (pr_build.merge_queue builds them)"
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
		open, guarded := splitGuarded(stages)
		res.Deploys = deploysFor(h.cfg, res.Repo, open, deploy.Request{
			SHA: after, Ref: branch, InstallationID: res.InstallationID,
			Trigger: deploy.Trigger{Event: ev.Name, Delivery: ev.Delivery, Actor: actor},
		})
		res.Jobs = guardedJobs(h.cfg, res.Repo, guarded, jobs.Push{Repo: res.Repo, InstallationID: res.InstallationID, Branch: branch,
			Before: before, After: after, Forced: forced, Pusher: actor, PusherType: actorType, Event: ev.Name, Delivery: ev.Delivery})
		if branch == defaultBranch && h.cfg.RepoConfigOn(res.Repo) {
			changes, err := changesRepoFile(f.v)
			if err != nil {
				return Result{}, &MalformedError{Event: ev.Name, Err: err}
			}
			if changes {
				res.Jobs = append(res.Jobs, jobs.RepoConfigLoadJob(jobs.RepoConfigLoad{Repo: res.Repo, InstallationID: res.InstallationID,
					SHA: after, Reason: "push", Delivery: ev.Delivery}, after))
			}
		}
		if res.Empty() {
			res.Ignored = "no stage deploys on push to " + branch
		}
	default:
		res.Ignored = "push to " + ref + " is neither a branch nor a tag"
	}
	return res, nil
}

// splitGuarded separates the stages anyone's push deploys from the guarded ones.
func splitGuarded(stages []*config.Stage) (open, guarded []*config.Stage) {
	for _, st := range stages {
		if st.Guarded() {
			guarded = append(guarded, st)
		} else {
			open = append(open, st)
		}
	}
	return open, guarded
}

// guardedJobs records a push (or merge) to each guarded stage some app of repo deploys to, for
// the admission gate to decide.
func guardedJobs(cfg *config.Config, repo string, stages []*config.Stage, base jobs.Push) []jobs.Job {
	var out []jobs.Job
	for _, st := range stages {
		deployed := false
		for _, app := range cfg.AppsForRepo(repo) {
			_, ok := app.Stages[st.Name]
			deployed = deployed || ok
		}
		if !deployed {
			continue
		}
		p := base
		p.Stage = st.Name
		out = append(out, jobs.Job{Kind: jobs.KindPush, Key: jobs.PushKey(repo, st.Name, base.After, base.Delivery), Payload: mustJSON(p)})
	}
	return out
}

// maxPushCommits is how many commits GitHub lists in a push at most.
const maxPushCommits = 2048

// changesRepoFile reports whether a push's commits added, modified or removed the repository's
// own configuration file. A push that lists no commits (a branch moved back, a recovered push)
// or as many as GitHub lists at most may have changed it unseen: it counts as a change (the job
// reads the file conditionally, so an unchanged one costs nothing).
func changesRepoFile(v payload.Values) (bool, error) {
	var commits []struct{ Added, Modified, Removed []string }
	if v.Has("commits") {
		if err := v.Decode("commits", &commits); err != nil {
			return false, err
		}
	}
	if len(commits) == 0 || len(commits) >= maxPushCommits {
		return true, nil
	}
	for _, c := range commits {
		for _, paths := range [][]string{c.Added, c.Modified, c.Removed} {
			if slices.Contains(paths, config.RepoFilePath) {
				return true, nil
			}
		}
	}
	return false, nil
}
