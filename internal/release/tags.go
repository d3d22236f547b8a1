package release

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/status"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// Tags runs jobs.KindTagCreated: a tag created or pushed in a configured repository.
func (w *Workflow) Tags() worker.Executor { return worker.Handle(jobs.KindTagCreated, w.Tag) }

// Tag opens the release of a release tag: its issue and check run, or the check run that says
// why it cannot be promoted.
func (w *Workflow) Tag(ctx context.Context, j jobs.Job, in jobs.Tag) error {
	target := w.cfg.Stage(w.cfg.Release.Stage)
	if target == nil || !w.cfg.MatchRelease(in.Tag) {
		w.log.Info("tag is no release tag", "repo", in.Repo, "tag", in.Tag, "patterns", w.cfg.Release.Tags)
		return nil
	}
	apps := w.apps(in.Repo, target)
	if len(apps) == 0 {
		return nil
	}
	gh, err := w.clients.Installation(in.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	owner, name := splitRepo(in.Repo)
	sha, err := admission.PeelTag(ctx, gh, owner, name, in.Tag)
	if notFound(err) {
		w.log.Info("tag is gone", "repo", in.Repo, "tag", in.Tag)
		return nil
	}
	if err != nil {
		return githubapp.Classify(fmt.Errorf("resolving tag %s: %w", in.Tag, err))
	}
	rel, created, err := w.st.CreateRelease(ctx, store.Release{Repo: in.Repo, Tag: in.Tag, SHA: sha,
		InstallationID: in.InstallationID, TaggedBy: in.Actor, State: store.ReleaseOpening})
	if err != nil {
		return err
	}
	if !created && rel.SHA == sha && rel.State != store.ReleaseOpening {
		return nil // heard of this tag before (its create and its push both come)
	}
	if mine, err := w.st.ClaimRelease(ctx, rel.ID, j.Key, sha); err != nil || !mine {
		return err // another job of the same tag opens it
	}
	var moved *Move
	if rel.SHA != sha {
		// The tag was moved to another commit: the release is about that one now, and its issue
		// is rewritten to say so; a promotion of the old commit is refused (package admission).
		moved = &Move{From: rel.SHA, To: sha, At: w.now()}
		rel.SHA, rel.State, rel.CheckRunID, rel.Reason = sha, store.ReleaseOpening, 0, ""
	}
	v, err := w.view(ctx, gh, rel, apps, target)
	if err != nil {
		return err
	}
	v.Moved = moved
	if v.Refusal != "" {
		return w.refuse(ctx, gh, rel, v)
	}
	return w.open(ctx, gh, rel, v)
}

// apps are the repository's apps that deploy to the release stage.
func (w *Workflow) apps(repo string, target *config.Stage) []*config.App {
	var out []*config.App
	for _, app := range w.cfg.AppsForRepo(repo) {
		if _, ok := app.Stages[target.Name]; ok {
			out = append(out, app)
		}
	}
	return out
}

// view gathers what the release issue and check run say: where the commit ran on the stage
// releases come from, what is where, and the changelog against what runs on the target.
func (w *Workflow) view(ctx context.Context, gh *github.Client, rel store.Release, apps []*config.App, target *config.Stage) (View, error) {
	v := View{Release: rel, From: target.PromoteFrom, To: target.Name, Branch: target.Branch, WebURL: w.webURL, Now: w.now(), Promoters: target.Promoters}
	owner, name := splitRepo(rel.Repo)
	for _, app := range apps {
		if _, ok := app.Stages[target.PromoteFrom]; !ok {
			continue // the app skips the stage releases come from: nothing to have succeeded on
		}
		a := AppView{Name: app.Name}
		d, ok, err := w.st.Succeeded(ctx, app.Name, target.PromoteFrom, rel.SHA)
		if err != nil {
			return View{}, err
		}
		if ok {
			a.FromDeploy = &d
		}
		live, err := w.st.LiveDeploys(ctx, app.Name)
		if err != nil {
			return View{}, err
		}
		if l, ok := live[target.PromoteFrom]; ok {
			a.FromLive = &l
		}
		if l, ok := live[target.Name]; ok {
			a.ToLive = &l
		}
		v.Apps = append(v.Apps, a)
	}
	for _, a := range v.Apps {
		if a.FromDeploy == nil {
			v.Refusal = fmt.Sprintf("`%s` never succeeded on **%s**", deploy.ShortSHA(rel.SHA), target.PromoteFrom)
			if a.FromLive != nil {
				v.Refusal += fmt.Sprintf(" (%s runs `%s`)", target.PromoteFrom, deploy.ShortSHA(a.FromLive.SHA))
			}
			if len(v.Apps) > 1 {
				v.Refusal = a.Name + ": " + v.Refusal
			}
			return v, nil
		}
	}
	if len(v.Apps) == 0 {
		v.Refusal = fmt.Sprintf("no app of %s deploys to **%s**, where releases come from", rel.Repo, target.PromoteFrom)
		return v, nil
	}
	// Soak time: the same readiness the admission gate holds a promotion to.
	if from := w.cfg.Stage(target.PromoteFrom); from != nil {
		v.MinSoak = from.MinSoak
	}
	rd, err := admission.Soak(ctx, w.st, w.cfg, apps, target, rel.SHA, w.now())
	if err != nil {
		return View{}, err
	}
	if !rd.Ready {
		v.Unsoaked = &rd
	}
	// What the target holds, as GitHub has it: its branch's head (commits pushed there that
	// Stagecoach never deployed count too) and what runs there.
	var heads []admission.Head
	if target.Branch != "" {
		ref, _, err := gh.Git.GetRef(ctx, owner, name, "heads/"+target.Branch)
		switch {
		case notFound(err): // no branch yet: it holds nothing
		case err != nil:
			return View{}, githubapp.Classify(fmt.Errorf("reading %s: %w", target.Branch, err))
		default:
			v.BranchHead = ref.GetObject().GetSHA()
			heads = append(heads, admission.Head{What: fmt.Sprintf("`%s`'s branch", target.Branch), SHA: v.BranchHead})
		}
	}
	base := v.BranchHead
	for _, a := range v.Apps {
		if a.ToLive != nil {
			heads = append(heads, admission.Head{What: "what runs on " + target.Name, SHA: a.ToLive.SHA})
		}
	}
	if live := v.Apps[0].ToLive; live != nil {
		base = live.SHA
	}
	if base != "" && base != rel.SHA {
		cmp, _, err := gh.Repositories.CompareCommits(ctx, owner, name, base, rel.SHA, &github.ListOptions{PerPage: 250})
		if err != nil && !notFound(err) {
			return View{}, githubapp.Classify(fmt.Errorf("comparing %s...%s: %w", deploy.ShortSHA(base), deploy.ShortSHA(rel.SHA), err))
		}
		if err == nil {
			v.Changes = changelog(cmp)
		}
		v.Changes.Base = base
	}
	if v.Dropped, err = admission.Dropped(ctx, gh, rel.Repo, w.webURL, target.Name, rel.SHA, heads); err != nil {
		return View{}, err
	}
	if v.Status, err = status.Read(ctx, w.st, w.cfg, rel.Repo); err != nil {
		return View{}, err
	}
	return v, nil
}

// refuse records why the tag cannot be promoted and says so in a check run on its commit.
func (w *Workflow) refuse(ctx context.Context, gh *github.Client, rel store.Release, v View) error {
	rel.State, rel.Reason = store.ReleaseRefused, v.Refusal
	if rel.CheckRunID == 0 {
		var err error
		rel.CheckRunID, err = w.checkRunOnce(ctx, gh, rel, github.CreateCheckRunOptions{
			Status: github.Ptr("completed"), Conclusion: github.Ptr("failure"),
			Output: &github.CheckRunOutput{Title: github.Ptr(v.refusedTitle()), Summary: github.Ptr(v.RefusedSummary())},
		})
		if err != nil {
			return err
		}
	}
	if rel.Issue != 0 {
		// A moved tag whose release had an issue: the issue must not go on offering it.
		v.Release = rel
		if err := w.rewrite(ctx, gh, rel, v, v.RefusedIssueBody()); err != nil {
			return err
		}
	}
	w.log.Info("release refused", "repo", rel.Repo, "tag", rel.Tag, "sha", rel.SHA, "reason", rel.Reason)
	return w.st.UpdateRelease(ctx, rel)
}

// rewrite replaces a release issue's body after its tag moved, and says so in a comment that
// notifies the people following it.
func (w *Workflow) rewrite(ctx context.Context, gh *github.Client, rel store.Release, v View, body string) error {
	owner, name := splitRepo(rel.Repo)
	if _, _, err := gh.Issues.Edit(ctx, owner, name, rel.Issue, &github.IssueRequest{Body: github.Ptr(body)}); err != nil {
		return githubapp.Classify(fmt.Errorf("rewriting release issue #%d: %w", rel.Issue, err))
	}
	if v.Moved == nil {
		return nil
	}
	// Once per move (found again after a crash by its marker): the followers hear of it once.
	marker := fmt.Sprintf("<!-- stagecoach:release-moved %d %s -->", rel.ID, rel.SHA)
	_, _, err := ghcreate.Once(ctx, w.st, fmt.Sprintf("release/%d/moved/%s", rel.ID, rel.SHA),
		func(ctx context.Context) (int64, error) {
			bot, err := w.clients.BotLogin(ctx)
			if err != nil {
				return 0, err
			}
			return ghcreate.Comment(ctx, gh, owner, name, rel.Issue, bot, marker)
		},
		func(ctx context.Context) (int64, error) {
			c, _, err := gh.Issues.CreateComment(ctx, owner, name, rel.Issue, &github.IssueComment{Body: github.Ptr(v.MovedComment() + "\n\n" + marker)})
			return c.GetID(), err
		})
	if err != nil {
		return fmt.Errorf("telling release issue #%d that its tag moved: %w", rel.Issue, err)
	}
	return nil
}

// open makes the release issue (and its label) and the check run with the Promote button, each
// once: what an earlier attempt made is recorded and skipped.
func (w *Workflow) open(ctx context.Context, gh *github.Client, rel store.Release, v View) error {
	owner, name := splitRepo(rel.Repo)
	if rel.Issue != 0 && v.Moved != nil {
		v.Release.Issue = rel.Issue
		if err := w.rewrite(ctx, gh, rel, v, v.IssueBody()); err != nil {
			return err
		}
	}
	if rel.Issue == 0 {
		if err := w.ensureLabel(ctx, gh, owner, name); err != nil {
			return err
		}
		// Found again after a crash by its label and the marker in its body (View.marker).
		number, _, err := ghcreate.Once(ctx, w.st, fmt.Sprintf("release/%d/issue", rel.ID),
			func(ctx context.Context) (int64, error) {
				bot, err := w.clients.BotLogin(ctx)
				if err != nil {
					return 0, err
				}
				return ghcreate.Issue(ctx, gh, owner, name, w.cfg.Release.Label, bot, v.marker())
			},
			func(ctx context.Context) (int64, error) {
				issue, _, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{
					Title: github.Ptr("Release " + rel.Tag), Body: github.Ptr(v.IssueBody()), Labels: &[]string{w.cfg.Release.Label},
				})
				return int64(issue.GetNumber()), err
			})
		if err != nil {
			return fmt.Errorf("opening the release issue of %s: %w", rel.Tag, err)
		}
		rel.Issue = int(number)
		v.Release.Issue = rel.Issue
		if err := w.st.UpdateRelease(ctx, rel); err != nil {
			return err
		}
	}
	if rel.CheckRunID == 0 {
		opts := github.CreateCheckRunOptions{
			DetailsURL: github.Ptr(v.issueURL()), Status: github.Ptr("completed"), Conclusion: github.Ptr("success"),
			Output:  &github.CheckRunOutput{Title: github.Ptr(v.readyTitle()), Summary: github.Ptr(v.ReadySummary())},
			Actions: promoteButton(v),
		}
		if v.Unsoaked != nil {
			// Not yet: no button until the commit has soaked (MarkReady adds it then).
			opts = github.CreateCheckRunOptions{DetailsURL: github.Ptr(v.issueURL()), Status: github.Ptr("in_progress"),
				Output: &github.CheckRunOutput{Title: github.Ptr(v.soakTitle()), Summary: github.Ptr(v.SoakSummary())}}
			if v.Unsoaked.At.IsZero() {
				opts.Status, opts.Conclusion = github.Ptr("completed"), github.Ptr("neutral")
			}
		}
		var err error
		if rel.CheckRunID, err = w.checkRunOnce(ctx, gh, rel, opts); err != nil {
			return err
		}
	}
	if v.Unsoaked != nil && !v.Unsoaked.At.IsZero() {
		// Recorded before the release is marked open: a crash before it retries the whole job.
		if err := w.scheduleReady(ctx, rel, v.Unsoaked.At); err != nil {
			return err
		}
	}
	rel.State = store.ReleaseOpen
	w.log.Info("release opened", "repo", rel.Repo, "tag", rel.Tag, "sha", rel.SHA, "issue", rel.Issue)
	return w.st.UpdateRelease(ctx, rel)
}

// checkRunOnce creates the release's check run on its commit exactly once (found again after a
// crash by its external_id).
func (w *Workflow) checkRunOnce(ctx context.Context, gh *github.Client, rel store.Release, opts github.CreateCheckRunOptions) (int64, error) {
	owner, name := splitRepo(rel.Repo)
	ext := "release:" + strconv.FormatInt(rel.ID, 10)
	opts.Name, opts.HeadSHA, opts.ExternalID = CheckName, rel.SHA, github.Ptr(ext)
	id, _, err := ghcreate.Once(ctx, w.st, fmt.Sprintf("release/%d/checkrun/%s", rel.ID, rel.SHA),
		func(ctx context.Context) (int64, error) {
			return ghcreate.CheckRun(ctx, gh, owner, name, rel.SHA, CheckName, ext)
		},
		func(ctx context.Context) (int64, error) {
			run, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, opts)
			return run.GetID(), err
		})
	if err != nil {
		return 0, fmt.Errorf("the release check run of %s: %w", rel.Tag, err)
	}
	return id, nil
}

// ensureLabel creates the release label unless the repository has it.
func (w *Workflow) ensureLabel(ctx context.Context, gh *github.Client, owner, name string) error {
	label := w.cfg.Release.Label
	_, _, err := gh.Issues.GetLabel(ctx, owner, name, label)
	if err == nil {
		return nil
	}
	if !notFound(err) {
		return githubapp.Classify(fmt.Errorf("reading label %s: %w", label, err))
	}
	_, _, err = gh.Issues.CreateLabel(ctx, owner, name, &github.Label{Name: github.Ptr(label), Color: github.Ptr("0e8a16"),
		Description: github.Ptr("A release candidate Stagecoach can promote")})
	if err != nil && !isAlreadyExists(err) {
		return githubapp.Classify(fmt.Errorf("creating label %s: %w", label, err))
	}
	return nil
}

// isAlreadyExists reports GitHub's 422 for a label someone created meanwhile.
func isAlreadyExists(err error) bool {
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != 422 {
		return false
	}
	for _, e := range er.Errors {
		if e.Code == "already_exists" {
			return true
		}
	}
	return false
}
