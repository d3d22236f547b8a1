package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// PlayOutage acts out the outage recovery exists for, with a line per step as Play tells the
// story. With test and alpha running #12's merge (held by test's freeze first) and v1.0.0's
// release issue open and ready to promote (it has soaked on alpha), Stagecoach stops, as when
// every replica is down, and meanwhile @alice merges #13, @alice pushes to her open pull request
// #14, @lena tags v1.0.1 and @paula comments `/promote prod` on v1.0.0's issue: GitHub records every delivery as failed and sends none of them again by itself. Then
// Stagecoach starts again, and each of the four must be acted on exactly once: test deploys
// #13's merge, #14's new head is built, v1.0.1 gets its release issue, and prod moves to v1.0.0
// and deploys it. It returns the deliveries that failed during the outage.
func (w *World) PlayOutage(ctx context.Context) ([]githubtest.Delivery, error) {
	m12, m13 := commit("merge #12"), commit("merge #13")
	pin2 := commit("sdk 4.2, second try")
	var release int
	var failed []githubtest.Delivery
	steps := []step{
		{"@alice merges #12 into master", func(ctx context.Context) (string, error) {
			return w.merge(ctx, prHealth, m12, "succeeded")
		}},
		{"@lena comments `/promote alpha` on #12", func(ctx context.Context) (string, error) {
			return w.promoteAlpha(ctx, prHealth.Number, m12)
		}},
		{"@lena tags v1.0.0 on alpha's commit, and it soaks there", func(ctx context.Context) (string, error) {
			rel, _, err := w.soakingRelease(ctx, "v1.0.0", m12)
			if err != nil {
				return "", err
			}
			release = rel.issue.Number
			_, result, err := w.soaked(ctx, rel, m12)
			return result, err
		}},
		{"@alice opens pull request #14", func(ctx context.Context) (string, error) {
			w.GitHub.OpenPull(repo, prPin)
			run, err := w.awaitCheck(ctx, "stagecoach/pr-build", prPin.HeadSHA)
			if err != nil || run.Conclusion != "success" {
				return "", fmt.Errorf("the pull-request build: %s %v", run.Conclusion, err)
			}
			return run.Title, nil
		}},
		{"Stagecoach stops: every replica is down", func(context.Context) (string, error) {
			if err := w.GitHub.Flush(ctx); err != nil {
				return "", err
			}
			before := len(w.GitHub.Deliveries())
			if err := w.Stop(); err != nil {
				return "", err
			}
			w.GitHub.MergePull(repo, prSDK, m13, developer)
			w.GitHub.PushToPull(repo, prPin.Number, pin2)
			w.GitHub.CreateTag(repo, "v1.0.1", m12, lead, true)
			w.GitHub.Comment(repo, release, productOwner, "/promote prod")
			if err := w.GitHub.Flush(ctx); err != nil {
				return "", err
			}
			for _, d := range w.GitHub.Deliveries()[before:] {
				if !d.Failed() {
					return "", fmt.Errorf("delivery %s %s reached a stopped Stagecoach", d.Event, d.Action)
				}
				failed = append(failed, d)
			}
			return fmt.Sprintf("meanwhile @alice merges #13 and pushes to #14, @lena tags v1.0.1, @paula comments `/promote prod` on #%d: %d deliveries failed",
				release, len(failed)), nil
		}},
		{"Stagecoach starts again", func(ctx context.Context) (string, error) {
			if err := w.Restart(ctx); err != nil {
				return "", err
			}
			return w.recovered(ctx, release, m12, m13, pin2)
		}},
	}
	for i, s := range steps {
		w.p.line("%2d. %s", i+1, s.title)
		result, err := s.do(ctx)
		if err != nil {
			w.p.line("    ✗ %v", err)
			return nil, fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
		w.p.line("    ✓ %s", result)
	}
	return failed, nil
}

// recovered waits for each thing done during the outage to be acted on, and checks it was
// acted on once.
func (w *World) recovered(ctx context.Context, release int, m12, m13, pin2 string) (string, error) {
	d, err := w.awaitDeploy(ctx, "test", m13, 0)
	if err != nil {
		return "", err
	}
	if d.State != "succeeded" {
		return "", fmt.Errorf("#13's deploy to test ended %s: %s", d.State, d.Error)
	}
	if _, err := w.awaitReply(ctx, prSDK.Number, 0, "live on **test**"); err != nil {
		return "", err
	}
	run, err := w.awaitCheck(ctx, "stagecoach/pr-build", pin2)
	if err != nil || run.Conclusion != "success" {
		return "", fmt.Errorf("#14's new head was not built: %s %v", run.Conclusion, err)
	}
	var issue githubtest.Issue
	if err := w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, is := range w.GitHub.Issues(repo) {
			if is.Title == "Release v1.0.1" {
				issue = is
				return "", true, nil
			}
		}
		return "the release issue of v1.0.1", false, nil
	}); err != nil {
		return "", err
	}
	p, err := w.awaitDeploy(ctx, "prod", m12, 0)
	if err != nil {
		return "", err
	}
	if p.State != "succeeded" {
		return "", fmt.Errorf("the promotion's deploy to prod ended %s: %s", p.State, p.Error)
	}
	if err := w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, is := range w.GitHub.Issues(repo) {
			if is.Number == release && is.State == "closed" {
				return "", true, nil
			}
		}
		return fmt.Sprintf("release issue #%d to close", release), false, nil
	}); err != nil {
		return "", err
	}
	if err := w.once(ctx, m12, m13, pin2); err != nil {
		return "", err
	}
	return fmt.Sprintf("recovery redelivered what failed: deploy #%d put #13's merge on test, #14's new head %s was built, "+
		"v1.0.1 got release issue #%d, and prod moved to v1.0.0 (deploy #%d, #%d closed); each once",
		d.ID, deploy.ShortSHA(pin2), issue.Number, p.ID, release), nil
}

// once checks that nothing the outage missed was acted on twice.
func (w *World) once(ctx context.Context, m12, m13, pin2 string) error {
	ds, err := w.deploys(ctx, "")
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, d := range ds {
		count[d.Stage+" "+d.SHA]++
	}
	for what, want := range map[string]int{"test " + m13: 1, "prod " + m12: 1} {
		if count[what] != want {
			return fmt.Errorf("%d deploys of %s, want %d", count[what], what, want)
		}
	}
	n := 0
	for _, r := range w.GitHub.CheckRuns(repo) {
		if r.Name == "stagecoach/pr-build" && r.HeadSHA == pin2 {
			n++
		}
	}
	issues := 0
	for _, is := range w.GitHub.Issues(repo) {
		if strings.HasPrefix(is.Title, "Release v1.0.1") {
			issues++
		}
	}
	switch {
	case n != 1:
		return fmt.Errorf("%d pull-request build check runs on %s, want 1", n, deploy.ShortSHA(pin2))
	case issues != 1:
		return fmt.Errorf("%d release issues of v1.0.1, want 1", issues)
	case w.GitHub.Count("git/update-ref") != 2:
		return fmt.Errorf("%d branch moves, want 2 (alpha, then prod)", w.GitHub.Count("git/update-ref"))
	}
	return nil
}
