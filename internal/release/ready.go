package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/window"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// Ready runs jobs.KindReleaseReady: the moment a release's commit has run its min_soak on the
// stage releases come from. The job is recorded in the store when the release opens, due then
// (run_after), keyed by the release, its commit and that moment, so a restart neither loses it
// nor runs it twice, and a moved tag's new commit gets its own.
func (w *Workflow) Ready() worker.Executor { return worker.Handle(jobs.KindReleaseReady, w.MarkReady) }

// MarkReady gives a release that has soaked its Promote button: the check run completes with
// it, the issue is rewritten without the wait, and a comment tells the people following it
// (once: found again by its marker after a crash). A release whose tag moved since, or that is
// promoted or refused by now, is left alone; one whose commit left the stage before it soaked
// says so on its check run instead.
func (w *Workflow) MarkReady(ctx context.Context, _ jobs.Job, in jobs.ReleaseReady) error {
	rel, err := w.st.ReleaseByID(ctx, in.Repo, in.ReleaseID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	target := w.cfg.Stage(w.cfg.Release.Stage)
	if rel.SHA != in.SHA || rel.State != store.ReleaseOpen || rel.CheckRunID == 0 || rel.Issue == 0 || target == nil {
		return nil
	}
	gh, err := w.clients.Installation(rel.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	v, err := w.view(ctx, gh, rel, w.apps(rel.Repo, target), target)
	if err != nil || v.Refusal != "" {
		return err
	}
	if u := v.Unsoaked; u != nil {
		if !u.At.IsZero() {
			return w.scheduleReady(ctx, rel, u.At) // later than it was (deployed there again since)
		}
		return w.editCheckRun(ctx, gh, rel, github.UpdateCheckRunOptions{Name: CheckName, Status: github.Ptr("completed"),
			Conclusion: github.Ptr("neutral"), Output: &github.CheckRunOutput{Title: github.Ptr(v.soakTitle()), Summary: github.Ptr(v.SoakSummary())}})
	}
	owner, name := splitRepo(rel.Repo)
	if _, _, err := gh.Issues.Edit(ctx, owner, name, rel.Issue, &github.IssueRequest{Body: github.Ptr(v.IssueBody())}); err != nil {
		return githubapp.Classify(fmt.Errorf("rewriting release issue #%d: %w", rel.Issue, err))
	}
	if err := w.editCheckRun(ctx, gh, rel, github.UpdateCheckRunOptions{Name: CheckName, DetailsURL: github.Ptr(v.issueURL()),
		Status: github.Ptr("completed"), Conclusion: github.Ptr("success"),
		Output:  &github.CheckRunOutput{Title: github.Ptr(v.readyTitle()), Summary: github.Ptr(v.ReadySummary())},
		Actions: promoteButton(v)}); err != nil {
		return err
	}
	marker := fmt.Sprintf("<!-- stagecoach:release-ready %d %s -->", rel.ID, rel.SHA)
	if err := w.commentOnce(ctx, gh, rel, fmt.Sprintf("release/%d/ready/%s", rel.ID, rel.SHA), marker, v.ReadyComment()+"\n"+marker); err != nil {
		return err
	}
	w.log.Info("release ready to promote", "repo", rel.Repo, "tag", rel.Tag, "sha", rel.SHA, "issue", rel.Issue)
	return nil
}

// scheduleReady records the job that makes rel ready at at. Recording it again changes nothing.
func (w *Workflow) scheduleReady(ctx context.Context, rel store.Release, at time.Time) error {
	payload, err := json.Marshal(jobs.ReleaseReady{Repo: rel.Repo, ReleaseID: rel.ID, SHA: rel.SHA})
	if err != nil {
		return err
	}
	_, _, err = w.st.EnqueueJob(ctx, jobs.Job{Kind: jobs.KindReleaseReady, Payload: payload, RunAfter: at,
		Key: fmt.Sprintf("release-ready:%d:%s:%d", rel.ID, rel.SHA, at.UnixMicro())})
	return err
}

func (w *Workflow) editCheckRun(ctx context.Context, gh *github.Client, rel store.Release, opts github.UpdateCheckRunOptions) error {
	owner, name := splitRepo(rel.Repo)
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, owner, name, rel.CheckRunID, opts); err != nil {
		return githubapp.Classify(fmt.Errorf("updating the release check run of %s: %w", rel.Tag, err))
	}
	return nil
}

// promoteButton is the release check run's button.
func promoteButton(v View) []*github.CheckRunAction {
	return []*github.CheckRunAction{{Label: markdown.Clip("Promote to "+v.To, 20), Identifier: jobs.ActionPromote,
		Description: markdown.Clip("Move "+v.To+" to "+v.Release.Tag+" and deploy", 40)}}
}

// when is a moment as the release shows it, in the zone of the stage it soaks on.
func (v View) when(t time.Time) string { return window.Format(t, v.Unsoaked.Zone) }

// soakTitle is the release check run's title while the commit soaks.
func (v View) soakTitle() string {
	if v.Unsoaked.At.IsZero() {
		return markdown.Clip(fmt.Sprintf("%s is not ready for %s: it left %s before it ran %s there", v.Release.Tag, v.To, v.From,
			human(v.Unsoaked.MinSoak)), 120)
	}
	return markdown.Clip(fmt.Sprintf("%s is ready to promote to %s at %s", v.Release.Tag, v.To, v.when(v.Unsoaked.At)), 120)
}

// soakNote is what the release issue says of the wait, above how to promote.
func (v View) soakNote() string {
	u := v.Unsoaked
	if u == nil {
		return ""
	}
	rule := fmt.Sprintf("**%s** takes a commit only once it has run %s on **%s** without a break (`min_soak`)", v.To, human(u.MinSoak), v.From)
	if u.At.IsZero() {
		return fmt.Sprintf("> [!WARNING]\n> **Not ready to promote.** `%s` ran on **%s** for only %s, and %s. Deploy it to %s again; "+
			"it is ready once it has run there %s.\n\n", short(v.Release.SHA), v.From, human(u.Ran), rule, v.From, human(u.MinSoak))
	}
	return fmt.Sprintf("> [!NOTE]\n> ⏳ **Ready to promote at %s.** %s: until then `/promote %s` is refused, and the **Promote to %s** button "+
		"appears on the check run when it is ready.\n\n", v.when(u.At), rule, v.To, v.To)
}

// SoakSummary is the release check run's body while the commit soaks.
func (v View) SoakSummary() string {
	return markdown.Limit(fmt.Sprintf("**%s** (%s) succeeded on **%s**.\n\n%s[The release issue](%s) says what would ship.\n", v.tag(),
		v.commitLink(v.Release.SHA), v.From, v.soakNote(), v.issueURL()), 0, v.issueURL())
}

// ReadyComment tells the people following the release issue it may be promoted now.
func (v View) ReadyComment() string {
	return fmt.Sprintf("✅ **%s is ready to promote to %s**: it has run %s on **%s** (`min_soak`). %s may press **Promote to %s** on "+
		"its `%s` check run, or comment `/promote %s` here.\n", v.tag(), v.To, human(v.MinSoak), v.From, markdown.Capitalize(v.who()), v.To, CheckName, v.To)
}

// human shows a duration as people write it: "1h", "48m", "2h30m".
func human(d time.Duration) string {
	if d >= 10*time.Minute {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String()
	if len(s) > 3 && s[len(s)-3:] == "m0s" {
		s = s[:len(s)-2]
	}
	if len(s) > 3 && s[len(s)-3:] == "h0m" {
		s = s[:len(s)-2]
	}
	return s
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
