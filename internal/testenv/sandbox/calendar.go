package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// The scenes of the stages' calendar: test's freeze (freezeFor from the start, freezeReason)
// holds a merge's deploy until it ends, and alpha's min_soak (soakFor) holds a release back from
// prod until its commit has run that long on alpha. Both are played on the real clock: the
// sandbox's configuration sets them seconds long.

// apiWait is what a queued deploy waits for, as GET /api/v1/deployments shows it.
type apiWait struct {
	Until  time.Time `json:"until"`
	At     string    `json:"at"`
	Freeze string    `json:"freeze"`
}

// prTypo is merged while test is frozen.
var prTypo = githubtest.Pull{Number: 11, Title: "Fix the install steps in the README", HeadRef: "alice/readme", HeadSHA: commit("readme"), User: developer, BaseRef: "master"}

// frozenMerge merges pr with merge commit sha while test is frozen, and checks that its deploy
// is recorded and held, queued, saying why and until when: in the API, on its check run and on
// the dashboard. It returns the held deploy's id.
func (w *World) frozenMerge(ctx context.Context, pr githubtest.Pull, sha string) (int64, string, error) {
	if !time.Now().Before(w.freezeUntil) {
		return 0, "", fmt.Errorf("the story reached its freeze after it ended at %s: the sandbox took more than %s to start", clock(w.freezeUntil), freezeFor)
	}
	after, err := w.lastDeploy(ctx, "test")
	if err != nil {
		return 0, "", err
	}
	w.GitHub.MergePull(repo, pr, sha, developer)
	var held apiDeploy
	err = w.await(ctx, time.Minute, func() (string, bool, error) {
		ds, err := w.deploys(ctx, "test")
		for _, d := range ds {
			if d.SHA != sha || d.ID <= after {
				continue
			}
			held = d
			if d.State != "queued" {
				return "", false, fmt.Errorf("deploy #%d of #%d's merge went %s while test is frozen", d.ID, pr.Number, d.State)
			}
			return fmt.Sprintf("test: deploy #%d queued", d.ID), d.Waiting != nil, nil
		}
		return fmt.Sprintf("test: waiting for a deploy of %s", deploy.ShortSHA(sha)), false, err
	})
	if err != nil {
		return 0, "", err
	}
	if wt := held.Waiting; wt.Freeze != freezeReason || !wt.Until.Equal(w.freezeUntil) {
		return 0, "", fmt.Errorf("deploy #%d waits for %+v, want the freeze %q until %s", held.ID, *wt, freezeReason, w.freezeUntil)
	}
	text := fmt.Sprintf("frozen (%s): waiting until %s", freezeReason, held.Waiting.At)
	if held.Progress != text {
		return 0, "", fmt.Errorf("the API says deploy #%d is %q, want %q", held.ID, held.Progress, text)
	}
	var run githubtest.CheckRun
	err = w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, r := range w.GitHub.CheckRuns(repo) {
			if r.Name == "stagecoach/test" && r.HeadSHA == sha && strings.EqualFold(r.Title, text) {
				run = r
				return "", true, nil
			}
		}
		return "the check run of the held deploy", false, nil
	})
	if err != nil {
		return 0, "", err
	}
	if run.Status == "completed" || !strings.Contains(run.Summary, "**test** is frozen") {
		return 0, "", fmt.Errorf("the check run of the held deploy is %s and says:\n%s", run.Status, run.Summary)
	}
	page, err := w.dashboard(ctx)
	if err != nil {
		return 0, "", err
	}
	if !strings.Contains(page, text) {
		return 0, "", fmt.Errorf("the dashboard does not say %q", text)
	}
	return held.ID, fmt.Sprintf("deploy #%d is recorded and held, queued; its check run and the dashboard say “%s” (the freeze ends at %s)",
		held.ID, run.Title, clock(w.freezeUntil)), nil
}

// freezeEnds waits for the held deploy id of sha to test to start once the freeze is over, and
// checks it did not start before, succeeded, and pr says it is live.
func (w *World) freezeEnds(ctx context.Context, pr githubtest.Pull, sha string, id int64) (string, error) {
	d, err := w.awaitDeploy(ctx, "test", sha, id-1)
	if err != nil {
		return "", err
	}
	if d.ID != id {
		return "", fmt.Errorf("deploy #%d of %s ran, not the held #%d", d.ID, deploy.ShortSHA(sha), id)
	}
	if d.State != "succeeded" {
		return "", fmt.Errorf("the held deploy #%d ended %s: %s", d.ID, d.State, d.Error)
	}
	if d.Started.Before(w.freezeUntil) {
		return "", fmt.Errorf("the held deploy #%d started at %s, before the freeze ended at %s", d.ID, clock(d.Started), clock(w.freezeUntil))
	}
	if _, err := w.awaitReply(ctx, pr.Number, 0, "live on **test**"); err != nil {
		return "", err
	}
	return fmt.Sprintf("deploy #%d started at %s, %s after the freeze ended, and succeeded in %s; #%d says it is live",
		d.ID, clock(d.Started), d.Started.Sub(w.freezeUntil).Round(time.Millisecond), d.took(), pr.Number), nil
}

// releaseIssue is a release issue and its check run, as a tag opened them.
type releaseIssue struct {
	issue githubtest.Issue
	run   githubtest.CheckRun
}

// soakingRelease tags sha, which has not run soakFor on alpha yet, and checks that its release
// issue says when it will be ready and that its check run offers no Promote button until then.
func (w *World) soakingRelease(ctx context.Context, tag, sha string) (releaseIssue, string, error) {
	rel, err := w.openRelease(ctx, tag, sha)
	if err != nil {
		return rel, "", err
	}
	if len(rel.run.Actions) != 0 || rel.run.Status == "completed" {
		return rel, "", fmt.Errorf("the check run of %s, whose commit has not soaked, is %s and offers %+v", tag, rel.run.Status, rel.run.Actions)
	}
	note := "Ready to promote at "
	if !strings.Contains(rel.issue.Body, note) || !strings.Contains(rel.run.Title, "ready to promote to prod at") {
		return rel, "", fmt.Errorf("release issue #%d does not say when %s is ready to promote (check run: %q):\n%s", rel.issue.Number, tag, rel.run.Title, rel.issue.Body)
	}
	ready, _, _ := strings.Cut(firstLineOf(rel.issue.Body, note), ".")
	return rel, fmt.Sprintf("release issue #%d says “⏳ %s” (alpha's min_soak is %s); its check run, “%s”, has no Promote button yet",
		rel.issue.Number, ready, soakFor, rel.run.Title), nil
}

// soakRefused has the product owner promote a release whose commit has not soaked: refused,
// saying when it will be ready, nothing deployed.
func (w *World) soakRefused(ctx context.Context, issue int) (string, error) {
	return w.refusedCommand(ctx, issue, productOwner, "/promote prod", "ready to promote at", "`min_soak`", "has run on **alpha** for")
}

// soaked waits for rel to become ready: its check run completes with the Promote button, its
// issue drops the wait and a comment says it is ready, no sooner than soakFor after sha's
// deploy to alpha ended. It returns the check run with the button.
func (w *World) soaked(ctx context.Context, rel releaseIssue, sha string) (githubtest.CheckRun, string, error) {
	var onAlpha apiDeploy
	ds, err := w.deploys(ctx, "alpha")
	if err != nil {
		return githubtest.CheckRun{}, "", err
	}
	for _, d := range ds {
		if d.SHA == sha && d.State == "succeeded" {
			onAlpha = d // the oldest: the newest first
		}
	}
	if onAlpha.ID == 0 {
		return githubtest.CheckRun{}, "", fmt.Errorf("%s never ran on alpha", deploy.ShortSHA(sha))
	}
	var run githubtest.CheckRun
	err = w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, r := range w.GitHub.CheckRuns(repo) {
			if r.ID == rel.run.ID {
				run = r
			}
		}
		return fmt.Sprintf("release #%d's Promote button: %s", rel.issue.Number, run.Title), len(run.Actions) > 0, nil
	})
	if err != nil {
		return run, "", err
	}
	seen := time.Now()
	if ready := onAlpha.Finished.Add(soakFor); seen.Before(ready) {
		return run, "", fmt.Errorf("the Promote button appeared at %s, before the commit had run %s on alpha (at %s)", clock(seen), soakFor, clock(ready))
	}
	if run.Status != "completed" || run.Conclusion != "success" || run.Actions[0].Identifier != "promote" {
		return run, "", fmt.Errorf("the ready check run is %s %s and offers %+v", run.Status, run.Conclusion, run.Actions)
	}
	if err := w.await(ctx, time.Minute, func() (string, bool, error) {
		return fmt.Sprintf("release issue #%d to drop its wait", rel.issue.Number), !strings.Contains(w.issueBody(rel.issue.Number), "Ready to promote at "), nil
	}); err != nil {
		return run, "", err
	}
	body, err := w.awaitReply(ctx, rel.issue.Number, 0, "is ready to promote to prod")
	if err != nil {
		return run, "", err
	}
	return run, fmt.Sprintf("after %s on alpha the check run offers “%s”, the issue no longer waits, and a comment says “%s”",
		soakFor, run.Actions[0].Label, firstLine(body)), nil
}

// openRelease waits for the release issue of tag, just made on sha, and its check run.
func (w *World) openRelease(ctx context.Context, tag, sha string) (releaseIssue, error) {
	w.GitHub.CreateTag(repo, tag, sha, lead, true)
	var rel releaseIssue
	err := w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, is := range w.GitHub.Issues(repo) {
			if is.Title == "Release "+tag {
				rel.issue = is
				return "", true, nil
			}
		}
		return "the release issue", false, nil
	})
	if err != nil {
		return rel, err
	}
	if !slices.Contains(rel.issue.Labels, "release") || !strings.Contains(rel.issue.Body, "### What ships") {
		return rel, fmt.Errorf("release issue #%d lacks its label or changelog", rel.issue.Number)
	}
	// The release's own check run, which links its issue: another release of the same commit
	// (shipped already) has a check run of the same name there too. It is complete once the
	// release is ready to promote, and in progress while its commit soaks.
	suffix := fmt.Sprintf("/issues/%d", rel.issue.Number)
	err = w.await(ctx, 2*time.Minute, func() (string, bool, error) {
		for _, r := range w.GitHub.CheckRuns(repo) {
			if r.Name == "stagecoach/release" && r.HeadSHA == sha && strings.HasSuffix(r.DetailsURL, suffix) &&
				(r.Status == "completed" || strings.Contains(r.Title, "ready to promote")) {
				rel.run = r
				return "", true, nil
			}
		}
		return fmt.Sprintf("the check run of release #%d", rel.issue.Number), false, nil
	})
	if err == nil {
		rel.issue.Body = w.issueBody(rel.issue.Number) // as it is once the check run is there
	}
	return rel, err
}

// dashboard is the dashboard's page as the sandbox's watcher sees it, signed in with GitHub.
func (w *World) dashboard(ctx context.Context) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.DashboardURL(), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Jar: jar}).Do(req)
	if err != nil {
		return "", fmt.Errorf("the dashboard: %w", err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("the dashboard: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Signed in as <strong>@"+watcher+"</strong>") {
		return "", errors.New("the dashboard did not sign the watcher in")
	}
	return string(page), nil
}

// clock is a moment for the story: 14:51:37 UTC.
func clock(t time.Time) string { return t.UTC().Format("15:04:05 MST") }

// firstLineOf is the line of s that holds want, from want on, without Markdown emphasis.
func firstLineOf(s, want string) string {
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, want); i >= 0 {
			return strings.TrimSpace(strings.ReplaceAll(l[i:], "**", ""))
		}
	}
	return ""
}
