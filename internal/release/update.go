package release

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/ghcreate"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// Updates runs jobs.KindDeployEnded (and jobs.KindReleaseUpdate, which earlier versions
// recorded): a deploy ended. When it is a deploy to the release stage that a command asked for
// on a release issue, and every deploy of that promotion ended, the release is shipped (a
// summary, the issue closed, a check run saying it is live) or failed (a comment with the reason
// and the rollback's result; the issue stays open). The deploys asked for on one issue end in
// one lane, so one promotion is judged by one job at a time.
func (w *Workflow) Updates() worker.Executor {
	return worker.Handle(jobs.KindDeployEnded, w.DeployEnded)
}

// LegacyUpdates runs the jobs.KindReleaseUpdate jobs an earlier version left in the store.
func (w *Workflow) LegacyUpdates() worker.Executor {
	return worker.Handle(jobs.KindReleaseUpdate, w.DeployEnded)
}

// DeployEnded updates the release issue a promotion's deploy came from, once all of them ended.
func (w *Workflow) DeployEnded(ctx context.Context, _ jobs.Job, in jobs.DeployEnded) error {
	if in.Issue == 0 || (in.Stage != "" && in.Stage != w.cfg.Release.Stage) || (in.State != "" && !in.Command) {
		return nil // not a promotion asked for on an issue
	}
	rel, err := w.st.ReleaseByIssue(ctx, in.Repo, in.Issue)
	if errors.Is(err, store.ErrNotFound) {
		return nil // a command on an issue that is no release issue
	}
	if err != nil {
		return err
	}
	if rel.State == store.ReleaseShipped {
		return nil
	}
	all, err := w.st.DeploysByDelivery(ctx, in.Delivery)
	if err != nil {
		return err
	}
	var ds []deploy.Deploy
	for _, d := range all {
		if d.Stage == w.cfg.Release.Stage && d.SHA == rel.SHA {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	for _, d := range ds {
		if !d.State.Final() {
			return nil // the last deploy to end brings its own update
		}
	}
	gh, err := w.clients.Installation(rel.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	o := outcomeOf(ds)
	if o.failed == nil {
		return w.ship(ctx, gh, rel, ds, o)
	}
	return w.fail(ctx, gh, rel, o)
}

// promotion is how a promotion's deploys ended.
type promotion struct {
	started, ended time.Time
	failed         *deploy.Deploy // the first that did not succeed; nil when all did
}

func outcomeOf(ds []deploy.Deploy) promotion {
	var p promotion
	for i, d := range ds {
		if p.started.IsZero() || d.CreatedAt.Before(p.started) {
			p.started = d.CreatedAt
		}
		if d.FinishedAt.After(p.ended) {
			p.ended = d.FinishedAt
		}
		if d.State != deploy.Succeeded && p.failed == nil {
			p.failed = &ds[i]
		}
	}
	return p
}

// ship closes the release issue with a summary and replaces the release check run with one
// that says the tag is live (GitHub shows the newest check run of a name, and an old one's
// buttons cannot be taken away).
func (w *Workflow) ship(ctx context.Context, gh *github.Client, rel store.Release, ds []deploy.Deploy, p promotion) error {
	owner, name := splitRepo(rel.Repo)
	to := w.cfg.Release.Stage
	summary := ShippedComment(rel, to, ds, p.ended.Sub(p.started), w.webURL)
	// Three calls, each a sub-step recorded once done: a later call failing never posts the
	// summary again.
	marker := fmt.Sprintf("<!-- stagecoach:release-shipped %d -->", rel.ID)
	if err := w.commentOnce(ctx, gh, rel, fmt.Sprintf("release/%d/shipped-comment", rel.ID), marker, summary+"\n"+marker); err != nil {
		return err
	}
	if _, _, err := gh.Issues.Edit(ctx, owner, name, rel.Issue, &github.IssueRequest{State: github.Ptr("closed"), StateReason: github.Ptr("completed")}); err != nil {
		return githubapp.Classify(fmt.Errorf("closing release issue #%d: %w", rel.Issue, err))
	}
	ext := fmt.Sprintf("release:%d:shipped", rel.ID)
	runID, _, err := ghcreate.Once(ctx, w.st, fmt.Sprintf("release/%d/shipped-checkrun", rel.ID),
		func(ctx context.Context) (int64, error) {
			return ghcreate.CheckRun(ctx, gh, owner, name, rel.SHA, CheckName, ext)
		},
		func(ctx context.Context) (int64, error) {
			run, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
				Name: CheckName, HeadSHA: rel.SHA, ExternalID: github.Ptr(ext),
				DetailsURL: github.Ptr(fmt.Sprintf("%s/%s/issues/%d", w.webURL, rel.Repo, rel.Issue)),
				Status:     github.Ptr("completed"), Conclusion: github.Ptr("success"),
				Output: &github.CheckRunOutput{Title: github.Ptr(fmt.Sprintf("%s is live on %s", rel.Tag, to)), Summary: github.Ptr(summary)},
			})
			return run.GetID(), err
		})
	if err != nil {
		return fmt.Errorf("marking release %s shipped: %w", rel.Tag, err)
	}
	rel.State, rel.ShippedAt, rel.CheckRunID, rel.Reason = store.ReleaseShipped, p.ended, runID, ""
	w.log.Info("release shipped", "repo", rel.Repo, "tag", rel.Tag, "issue", rel.Issue, "took", p.ended.Sub(p.started))
	return w.st.UpdateRelease(ctx, rel)
}

// fail says on the issue why the promotion failed and what the rollback did; the issue stays
// open for another try.
func (w *Workflow) fail(ctx context.Context, gh *github.Client, rel store.Release, p promotion) error {
	marker := fmt.Sprintf("<!-- stagecoach:release-failed %d -->", p.failed.ID)
	body := FailedComment(rel, w.cfg.Release.Stage, *p.failed) + "\n" + marker
	if err := w.commentOnce(ctx, gh, rel, fmt.Sprintf("release/%d/failed-comment/%d", rel.ID, p.failed.ID), marker, body); err != nil {
		return err
	}
	rel.State, rel.Reason = store.ReleaseFailed, p.failed.Error
	w.log.Warn("release promotion failed", "repo", rel.Repo, "tag", rel.Tag, "issue", rel.Issue, "reason", p.failed.Error)
	return w.st.UpdateRelease(ctx, rel)
}

// commentOnce comments on the release issue exactly once (found again by marker after a crash).
func (w *Workflow) commentOnce(ctx context.Context, gh *github.Client, rel store.Release, key, marker, body string) error {
	owner, name := splitRepo(rel.Repo)
	_, _, err := ghcreate.Once(ctx, w.st, key,
		func(ctx context.Context) (int64, error) {
			bot, err := w.clients.BotLogin(ctx)
			if err != nil {
				return 0, err
			}
			return ghcreate.Comment(ctx, gh, owner, name, rel.Issue, bot, marker)
		},
		func(ctx context.Context) (int64, error) {
			c, _, err := gh.Issues.CreateComment(ctx, owner, name, rel.Issue, &github.IssueComment{Body: github.Ptr(body)})
			return c.GetID(), err
		})
	if err != nil {
		return fmt.Errorf("commenting on release issue #%d: %w", rel.Issue, err)
	}
	return nil
}

// ShippedComment is the summary a release issue is closed with: what shipped, how long it took.
func ShippedComment(rel store.Release, to string, ds []deploy.Deploy, total time.Duration, webURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "🚢 **%s is live on %s.**\n\n", rel.Tag, to)
	fmt.Fprintf(&b, "Promoted by @%s; from the promotion to the last pod ready it took %s.\n\n", rel.PromotedBy, total.Round(time.Second))
	b.WriteString("| App | Deploy | Commit | Took |\n|---|---|---|---|\n")
	for _, d := range ds {
		fmt.Fprintf(&b, "| %s | #%d | [`%s`](%s/%s/commit/%s) | %s |\n", d.App, d.ID, deploy.ShortSHA(d.SHA), strings.TrimSuffix(webURL, "/"), d.Repo, d.SHA,
			took(d))
	}
	fmt.Fprintf(&b, "\nClosing this release. `/rollback %s` puts back what ran before.\n", to)
	return b.String()
}

// FailedComment says why a promotion failed and what the rollback did.
func FailedComment(rel store.Release, to string, d deploy.Deploy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "❌ **Promoting %s to %s failed** (deploy #%d of %s).\n\n> %s\n\n", rel.Tag, to, d.ID, d.App, d.Error)
	switch d.State {
	case deploy.RolledBack:
		fmt.Fprintf(&b, "The rollback succeeded: %s runs what it ran before the promotion.", to)
	case deploy.Failed:
		if strings.Contains(d.Error, "so did the rollback") {
			fmt.Fprintf(&b, "**The rollback failed too: %s needs a look now.**", to)
		} else {
			fmt.Fprintf(&b, "Nothing changed on %s: it runs what it ran before the promotion.", to)
		}
	case deploy.Cancelled:
		fmt.Fprintf(&b, "Nothing was deployed to %s.", to)
	}
	fmt.Fprintf(&b, " This issue stays open: once the cause is fixed, `/promote %s` here tries again.\n", to)
	return b.String()
}
