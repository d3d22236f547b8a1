package release

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// soakConfig is testConfig with alpha's min_soak an hour, in Berlin time.
var soakConfig = strings.Replace(testConfig, "promote_from: test}", "promote_from: test, min_soak: 1h, time_zone: Europe/Berlin}", 1)

func (w *world) releaseRun() githubtest.CheckRun {
	w.t.Helper()
	var out githubtest.CheckRun
	n := 0
	for _, r := range w.gh.CheckRuns(repo) {
		if r.Name == CheckName {
			out, n = r, n+1
		}
	}
	if n != 1 {
		w.t.Fatalf("%d release check runs, want 1", n)
	}
	return out
}

// dueReady claims the release.ready job due now, if any, as a worker would.
func (w *world) dueReady() (jobs.Job, bool) {
	w.t.Helper()
	j, l, err := w.st.ClaimJob(context.Background(), "worker", []string{jobs.KindReleaseReady}, time.Minute)
	if errors.Is(err, store.ErrNoWork) {
		return jobs.Job{}, false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.FinishJob(context.Background(), l); err != nil {
		w.t.Fatal(err)
	}
	return j, true
}

func (w *world) readyComments(issue int) int {
	n := 0
	for _, c := range w.gh.Comments(repo, issue) {
		if strings.Contains(c.Body, "is ready to promote to prod") {
			n++
		}
	}
	return n
}

// TestReleaseSoaksBeforeItsPromoteButton: alpha's min_soak is an hour. A release tagged 20
// minutes after its commit went live on alpha opens its issue saying when it will be ready to
// promote, and a check run without the Promote button. A job recorded in the store is due at
// that moment, not before; run then, it adds the button, rewrites the issue and says so once,
// however often it runs (a worker that died after its work runs it again).
func TestReleaseSoaksBeforeItsPromoteButton(t *testing.T) {
	w := newWorldWith(t, soakConfig)
	w.ran("prod", shaA, "po", deploy.Succeeded, 4*time.Minute, deploy.Trigger{})
	w.now = w.now.Add(48 * time.Hour)
	w.ran("test", shaC, "alice", deploy.Succeeded, 3*time.Minute, deploy.Trigger{})
	w.ran("alpha", shaC, "lead", deploy.Succeeded, 3*time.Minute, deploy.Trigger{})
	live := w.now
	w.now = w.now.Add(20 * time.Minute)
	w.tag("v1.2.0", shaC, false)
	w.heard("v1.2.0", "push") // heard twice: one job all the same
	issue := w.gh.Issues(repo)[0]
	golden(t, "issue-soaking", issue.Body)
	run := w.releaseRun()
	if run.Status != "in_progress" || len(run.Actions) != 0 || run.Title != "v1.2.0 is ready to promote to prod at Thu Dec 3 11:10 CET" {
		t.Fatalf("the soaking release's check run = %+v", run)
	}
	golden(t, "checkrun-soaking", run.Title+"\n\n"+run.Summary)

	ready := live.Add(time.Hour)
	w.now = ready.Add(-time.Second)
	if _, due := w.dueReady(); due {
		t.Fatal("the ready job was due before the commit had soaked")
	}
	w.now = ready
	j, due := w.dueReady()
	if !due {
		t.Fatal("the ready job was not due once the commit had soaked")
	}
	if _, again := w.dueReady(); again {
		t.Fatal("a second ready job was recorded for the same release")
	}
	for range 2 { // run twice: a retry after a crash repeats nothing people see twice
		if err := w.w.Ready().Run(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	run = w.releaseRun()
	if run.Status != "completed" || run.Conclusion != "success" || len(run.Actions) != 1 || run.Actions[0].Identifier != jobs.ActionPromote {
		t.Fatalf("the ready release's check run = %+v", run)
	}
	if n := w.readyComments(issue.Number); n != 1 {
		t.Errorf("%d comments say it is ready, want 1", n)
	}
	if body := w.gh.Issues(repo)[0].Body; strings.Contains(body, "Ready to promote at") || !strings.Contains(body, "### How to promote") {
		t.Errorf("the issue still says it waits:\n%s", body)
	}
}

// TestReleaseWhoseCommitLeftAlphaBeforeItSoakedGetsNoButton: the commit was replaced on alpha
// 30 minutes in; when its hour would have been up, its check run says it is not ready and why,
// and offers no button.
func TestReleaseWhoseCommitLeftAlphaBeforeItSoakedGetsNoButton(t *testing.T) {
	w := newWorldWith(t, soakConfig)
	w.ran("alpha", shaC, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	live := w.now
	w.now = w.now.Add(10 * time.Minute)
	w.tag("v1.2.0", shaC, false)
	w.now = live.Add(30 * time.Minute)
	w.ran("alpha", shaD, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.now = live.Add(time.Hour)
	j, due := w.dueReady()
	if !due {
		t.Fatal("the ready job was not due")
	}
	if err := w.w.Ready().Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	run := w.releaseRun()
	if run.Status != "completed" || run.Conclusion != "neutral" || len(run.Actions) != 0 ||
		!strings.Contains(run.Summary, "`ccccccc` ran on **alpha** for only 31m") {
		t.Fatalf("the check run of a release that left alpha early = %+v", run)
	}
	if n := w.readyComments(w.gh.Issues(repo)[0].Number); n != 0 {
		t.Errorf("%d comments say it is ready", n)
	}
}

// TestReadyJobOfAMovedTagDoesNothing: the tag moved to another commit before the first one
// soaked; the first commit's job finds the release about another commit and leaves it alone.
func TestReadyJobOfAMovedTagDoesNothing(t *testing.T) {
	w := newWorldWith(t, soakConfig)
	w.ran("alpha", shaC, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.tag("v1.2.0", shaC, false)
	rel, err := w.st.ReleaseByTag(context.Background(), repo, "v1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	rel.SHA = shaB // as the tag job records a move
	if err := w.st.UpdateRelease(context.Background(), rel); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(time.Hour)
	j, due := w.dueReady()
	if !due {
		t.Fatal("the ready job was not due")
	}
	updates := w.releaseRun().Updates
	if err := w.w.Ready().Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if got := w.releaseRun(); got.Updates != updates || len(got.Actions) != 0 {
		t.Errorf("the moved release's old check run was changed: %+v", got)
	}
}
