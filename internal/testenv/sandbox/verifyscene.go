package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// The scene of verification after rollout: v1.2.0 works on test and alpha, and fails prod's
// health check (health.go) once prod's Service sends users to it. Stagecoach switches traffic
// back to the slot that was live, the deploy ends rolled_back, its check run names the check and
// its last answer, and the release issue stays open saying why.

// prV2 is the release that fails on prod.
var prV2 = githubtest.Pull{Number: 15, Title: "Move to the payment provider's API v2", HeadRef: "alice/payments-v2", HeadSHA: commit("payments v2"), User: developer, BaseRef: "master"}

// verifyScenes ship v1.2.0, built from #15's merge, to prod. When they start prod runs live on
// slot prod (the admin's forced v1.1.1), and alpha's branch still holds @alice's refused push.
func (w *World) verifyScenes(live string) []step {
	m15 := commit("merge #15")
	var rel releaseIssue
	return []step{
		{fmt.Sprintf("@alice merges #15 “%s”", prV2.Title), func(ctx context.Context) (string, error) {
			return w.merge(ctx, prV2, m15, "succeeded")
		}},
		{"@lena comments `/promote alpha` on #15", func(ctx context.Context) (string, error) {
			return w.refusedOn(ctx, "alpha", prV2.Number, lead, "/promote alpha", "would drop 1 commit(s)", deploy.ShortSHA(commit("alice's experiment")), "--force")
		}},
		{"@omar, an admin and alpha's other promoter, comments `/promote alpha --force \"drop @alice's push\"` on #15", func(ctx context.Context) (string, error) {
			return w.forceAlpha(ctx, prV2.Number, m15)
		}},
		{"@lena tags v1.2.0, and it soaks on alpha", func(ctx context.Context) (string, error) {
			var err error
			if rel, _, err = w.soakingRelease(ctx, "v1.2.0", m15); err != nil {
				return "", err
			}
			run, result, err := w.soaked(ctx, rel, m15)
			rel.run = run
			return result, err
		}},
		{fmt.Sprintf("@paula presses **Promote to prod** on v1.2.0: prod's `%s` check fails once users reach it", healthCheck), func(ctx context.Context) (string, error) {
			return w.failedVerification(ctx, rel, m15, live)
		}},
	}
}

// forceAlpha has the admin promote sha to alpha over the commit @alice's refused push left on
// alpha's branch, which the reply says it drops.
func (w *World) forceAlpha(ctx context.Context, issue int, sha string) (string, error) {
	after, err := w.lastDeploy(ctx, "alpha")
	if err != nil {
		return "", err
	}
	id := w.GitHub.Comment(repo, issue, admin, `/promote alpha --force "drop @alice's push"`)
	if _, err := w.awaitReply(ctx, issue, id, "**Dropping** 1 commit(s)"); err != nil {
		return "", err
	}
	d, err := w.awaitDeploy(ctx, "alpha", sha, after)
	if err != nil {
		return "", err
	}
	if d.State != "succeeded" {
		return "", fmt.Errorf("the deploy to alpha ended %s: %s", d.State, d.Error)
	}
	if got, _ := w.GitHub.Ref(repo, "alpha"); got != sha {
		return "", fmt.Errorf("alpha points at %s, want %s", deploy.ShortSHA(got), deploy.ShortSHA(sha))
	}
	return fmt.Sprintf("the reply says what it drops from alpha's branch; alpha moved to %s, deploy #%d succeeded in %s", deploy.ShortSHA(sha), d.ID, d.took()), nil
}

// failedVerification has the product owner promote rel, built from sha, to prod, where its
// health check fails after the switch, and checks what Stagecoach made of it: traffic back on
// slot prod, which runs live, the deploy rolled_back naming the check, the check run showing
// its last answer, and the release issue open, saying why.
func (w *World) failedVerification(ctx context.Context, rel releaseIssue, sha, live string) (string, error) {
	after, err := w.lastDeploy(ctx, "prod")
	if err != nil {
		return "", err
	}
	w.GitHub.PressButton(repo, rel.run.ID, "promote", productOwner)
	d, err := w.awaitDeploy(ctx, "prod", sha, after)
	if err != nil {
		return "", err
	}
	if d.State != "rolled_back" || d.Slot != "prod-backup" {
		return "", fmt.Errorf("the deploy to prod ended %s on slot %q (want rolled_back on prod-backup): %s", d.State, d.Slot, d.Error)
	}
	for _, want := range []string{"verification failed: check " + healthCheck + " (" + w.health.URL() + "): status 503, want 200", "prod serves from slot prod again"} {
		if !strings.Contains(d.Error, want) {
			return "", fmt.Errorf("deploy #%d's error does not say %q: %s", d.ID, want, d.Error)
		}
	}
	// The broken version was live, and answered: Stagecoach switched, asked, then switched back.
	bad := w.health.answers(deploy.ShortSHA(sha))
	if len(bad) == 0 || bad[0].Slot != "prod-backup" || bad[0].Status != http.StatusServiceUnavailable {
		return "", fmt.Errorf("prod's health endpoint never answered for %s on slot prod-backup: %+v", deploy.ShortSHA(sha), bad)
	}
	if slot, err := w.kube.liveSlot(ctx); err != nil || slot != "prod" {
		return "", fmt.Errorf("prod's Service selects slot %q after the failed verification, want prod again (%v)", slot, err)
	}
	if now, err := w.live(ctx, "prod"); err != nil || now.SHA != live || now.Slot != "prod" {
		return "", fmt.Errorf("prod runs %s on slot %q, want %s on prod (%v)", deploy.ShortSHA(now.SHA), now.Slot, deploy.ShortSHA(live), err)
	}
	answer, err := w.askHealth(ctx)
	if err != nil {
		return "", err
	}
	run, err := w.awaitCheck(ctx, "stagecoach/prod", sha)
	if err != nil {
		return "", err
	}
	lastAnswer := fmt.Sprintf("| 503 `%s", `{"error":"`+brokenCommits[sha])
	for _, want := range []string{"| Verify | ❌ failed", "`" + healthCheck + "`", "❌ failed: `status 503, want 200`", lastAnswer} {
		if !strings.Contains(run.Summary, want) {
			return "", fmt.Errorf("the check run on %s does not show %q:\n%s", deploy.ShortSHA(sha), want, run.Summary)
		}
	}
	if run.Conclusion != "failure" || !strings.HasPrefix(run.Title, "Rolled back prod: verification failed: check "+healthCheck) {
		return "", fmt.Errorf("the check run on %s concluded %s: %s", deploy.ShortSHA(sha), run.Conclusion, run.Title)
	}
	comment, err := w.awaitReply(ctx, rel.issue.Number, 0, "**Promoting v1.2.0 to prod failed**")
	if err != nil {
		return "", err
	}
	for _, want := range []string{"verification failed: check " + healthCheck, "This issue stays open"} {
		if !strings.Contains(comment, want) {
			return "", fmt.Errorf("release issue #%d's comment does not say %q:\n%s", rel.issue.Number, want, comment)
		}
	}
	for _, is := range w.GitHub.Issues(repo) {
		if is.Number == rel.issue.Number && is.State != "open" {
			return "", fmt.Errorf("release issue #%d is %s after its promotion was rolled back", is.Number, is.State)
		}
	}
	return fmt.Sprintf("deploy #%d rolled v1.2.0 out to the idle slot prod-backup and switched; %s answered %d × 503 (“%s”), so Stagecoach switched back to slot prod, where %s answers %s again; "+
		"the deploy ended rolled_back, its check run shows the failed check and its last answer, and #%d stays open, saying why",
		d.ID, healthCheck, len(bad), brokenCommits[sha], deploy.ShortSHA(live), answer, rel.issue.Number), nil
}

// askHealth asks prod's health endpoint as a user would, and wants it healthy.
func (w *World) askHealth(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.health.URL(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("prod's health endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return "", fmt.Errorf("prod's health endpoint: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), healthBody) {
		return "", errors.New("prod's health endpoint is not healthy after the switch back: " + resp.Status + " " + strings.TrimSpace(string(body)))
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body))), nil
}
