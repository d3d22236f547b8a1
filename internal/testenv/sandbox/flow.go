package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// step is one thing that happens in the story and what Stagecoach must make of it.
type step struct {
	title string
	do    func(ctx context.Context) (string, error)
}

// Play acts the story out, step by step, and stops at the first step that did not behave. It
// returns nil when every step did.
func (w *World) Play(ctx context.Context) error {
	steps := w.story()
	for i, s := range steps {
		w.p.line("%2d. %s", i+1, s.title)
		result, err := s.do(ctx)
		if err != nil {
			w.p.line("    ✗ %v", err)
			return fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
		w.p.line("    ✓ %s", result)
	}
	return nil
}

// The story's pull requests: number, title, author's branch.
var (
	prHealth = githubtest.Pull{Number: 12, Title: "Add a health endpoint", HeadRef: "alice/health", HeadSHA: commit("health endpoint"), User: developer, BaseRef: "master"}
	prSDK    = githubtest.Pull{Number: 13, Title: "Upgrade the payment SDK to 5.0", HeadRef: "alice/sdk-5", HeadSHA: commit("sdk 5"), User: developer, BaseRef: "master"}
	prPin    = githubtest.Pull{Number: 14, Title: "Pin the payment SDK to 4.2", HeadRef: "alice/sdk-4.2", HeadSHA: commit("sdk 4.2"), User: developer, BaseRef: "master"}
)

func (w *World) story() []step {
	m11, m12, m13, m14 := commit("merge #11"), commit("merge #12"), commit("merge #13"), commit("merge #14")
	var held int64
	var release1, release2 releaseIssue
	steps := []step{
		{fmt.Sprintf("test is frozen until %s (“%s”): @alice merges #11 “%s”", clock(w.freezeUntil), freezeReason, prTypo.Title), func(ctx context.Context) (string, error) {
			id, result, err := w.frozenMerge(ctx, prTypo, m11)
			held = id
			return result, err
		}},
		{"@alice opens pull request #12 “Add a health endpoint”", func(ctx context.Context) (string, error) {
			w.GitHub.OpenPull(repo, prHealth)
			run, err := w.awaitCheck(ctx, "stagecoach/pr-build", prHealth.HeadSHA)
			if err != nil {
				return "", err
			}
			if run.Conclusion != "success" {
				return "", fmt.Errorf("the pull-request build ended %s: %s", run.Conclusion, run.Title)
			}
			for _, b := range w.AWS.CodeBuild.Builds() {
				if b.SourceVersion == prHealth.HeadSHA && b.Project != app+"-pr" {
					return "", fmt.Errorf("the pull request was built in project %s, not its own %s-pr", b.Project, app)
				}
			}
			result := run.Title + " (project " + app + "-pr, not the deploy project; credentials tier pr, no stage secret, nothing deployed)"
			if time.Now().Before(w.freezeUntil) {
				result += "; built while test is frozen: a pull request's build deploys nothing, so no freeze holds it"
			}
			return result, nil
		}},
		{"test's freeze ends", func(ctx context.Context) (string, error) {
			return w.freezeEnds(ctx, prTypo, m11, held)
		}},
		{"@alice merges #12 into master", func(ctx context.Context) (string, error) {
			return w.merge(ctx, prHealth, m12, "succeeded")
		}},
		{"@lena comments `/promote alpha` on #12 (test runs it: it becomes the release candidate)", func(ctx context.Context) (string, error) {
			return w.promoteAlpha(ctx, prHealth.Number, m12)
		}},
		{fmt.Sprintf("@lena tags v1.0.0 on alpha's commit at once (alpha's min_soak is %s)", soakFor), func(ctx context.Context) (string, error) {
			rel, result, err := w.soakingRelease(ctx, "v1.0.0", m12)
			release1 = rel
			return result, err
		}},
		{"@alice comments `/promote prod` on the release issue", func(ctx context.Context) (string, error) {
			return w.refusedPromotion(ctx, release1.issue.Number)
		}},
		{"@paula, the product owner, comments `/promote prod` on it before v1.0.0 has soaked on alpha", func(ctx context.Context) (string, error) {
			return w.soakRefused(ctx, release1.issue.Number)
		}},
		{fmt.Sprintf("v1.0.0 runs on alpha for %s", soakFor), func(ctx context.Context) (string, error) {
			run, result, err := w.soaked(ctx, release1, m12)
			release1.run = run
			return result, err
		}},
		{"@paula presses **Promote to prod** on the release's check run", func(ctx context.Context) (string, error) {
			return w.promoteProd(ctx, release1.issue.Number, m12, "v1.0.0", "prod-backup", release1.run.ID)
		}},
		{"@alice merges #13 “Upgrade the payment SDK to 5.0”: its tests fail in the build", func(ctx context.Context) (string, error) {
			w.AWS.CodeBuild.Queue(awstest.Script{PhaseDuration: w.o.Phase, FailIn: "BUILD",
				Message: "Error while executing command: npm test. Reason: exit status 1 (2 failing: payment refunds)"})
			return w.merge(ctx, prSDK, m13, "failed")
		}},
		{"@alice merges #14 “Pin the payment SDK to 4.2”", func(ctx context.Context) (string, error) {
			return w.merge(ctx, prPin, m14, "succeeded")
		}},
		{"@lena comments `/promote alpha` on #14", func(ctx context.Context) (string, error) {
			return w.promoteAlpha(ctx, prPin.Number, m14)
		}},
		{"@lena tags v1.1.0", func(ctx context.Context) (string, error) {
			rel, result, err := w.soakingRelease(ctx, "v1.1.0", m14)
			release2 = rel
			return result, err
		}},
		{"@paula comments `/promote prod` on it once it has soaked", func(ctx context.Context) (string, error) {
			if _, _, err := w.soaked(ctx, release2, m14); err != nil {
				return "", err
			}
			return w.promoteProd(ctx, release2.issue.Number, m14, "v1.1.0", "prod", 0)
		}},
		{"@paula comments `/rollback prod`: v1.1.0 has to go", func(ctx context.Context) (string, error) {
			return w.rollbackProd(ctx, release2.issue.Number, m12)
		}},
	}
	steps = append(steps, w.attacks(m14)...)
	steps = append(steps, w.repoFileScenes()...)
	steps = append(steps, w.verifyScenes(m14)...)
	return append(steps, step{"@alice comments `/status` on #14", func(ctx context.Context) (string, error) {
		id := w.GitHub.Comment(repo, prPin.Number, developer, "/status")
		body, err := w.awaitReply(ctx, prPin.Number, id, "| **prod**")
		if err != nil {
			return "", err
		}
		if !strings.Contains(body, "v1.1.1") || !strings.Contains(body, "on slot prod;") && !strings.Contains(body, "on slot prod |") {
			return "", fmt.Errorf("/status does not show v1.1.1 on slot prod:\n%s", body)
		}
		return "the reply lists every stage: what runs there, since when, by whom, and which slot serves prod", nil
	}})
}

// merge merges pr with merge commit sha and waits for its deploy to test to end in want, and
// for the pull request's comment that says how it went.
func (w *World) merge(ctx context.Context, pr githubtest.Pull, sha, want string) (string, error) {
	after, err := w.lastDeploy(ctx, "test")
	if err != nil {
		return "", err
	}
	w.GitHub.MergePull(repo, pr, sha, developer)
	d, err := w.awaitDeploy(ctx, "test", sha, after)
	if err != nil {
		return "", err
	}
	if d.State != want {
		return "", fmt.Errorf("the deploy to test ended %s (want %s): %s", d.State, want, d.Error)
	}
	word := map[string]string{"succeeded": "live on **test**", "failed": "to **test** failed"}[want]
	if _, err := w.awaitReply(ctx, pr.Number, 0, word); err != nil {
		return "", err
	}
	if want == "failed" {
		live, err := w.live(ctx, "test")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("deploy #%d failed (%s); test keeps running %s, and #%d says why", d.ID, d.Error, deploy.ShortSHA(live.SHA), pr.Number), nil
	}
	return fmt.Sprintf("deploy #%d built %s and rolled it out to test pod by pod in %s; #%d says it is live", d.ID, deploy.ShortSHA(sha), d.took(), pr.Number), nil
}

// promoteAlpha has the lead promote test to alpha from a comment on issue.
func (w *World) promoteAlpha(ctx context.Context, issue int, sha string) (string, error) {
	after, err := w.lastDeploy(ctx, "alpha")
	if err != nil {
		return "", err
	}
	id := w.GitHub.Comment(repo, issue, lead, "/promote alpha")
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
	if err := w.onlyDeployOf(ctx, "alpha", sha, after); err != nil {
		return "", err
	}
	if !slices.Contains(w.reactions(issue, id), "eyes") {
		return "", errors.New("the command got no 👀")
	}
	return fmt.Sprintf("👀, alpha moved to %s (forced ref update), deploy #%d succeeded in %s; the push GitHub sent for alpha started nothing more",
		deploy.ShortSHA(sha), d.ID, d.took()), nil
}

// tag tags sha, which has soaked on alpha, and waits for the release issue and its check run
// with the Promote button; it returns the issue's number.
func (w *World) tag(ctx context.Context, tag, sha string) (int, string, error) {
	rel, err := w.openRelease(ctx, tag, sha)
	if err != nil {
		return 0, "", err
	}
	run := rel.run
	if len(run.Actions) != 1 || run.Actions[0].Identifier != "promote" {
		return 0, "", fmt.Errorf("the release check run offers %+v, want a Promote button (%s)", run.Actions, run.Title)
	}
	return rel.issue.Number, fmt.Sprintf("release issue #%d “Release %s” (label release, changelog, how to promote); the check run offers “%s”",
		rel.issue.Number, tag, run.Actions[0].Label), nil
}

// refusedPromotion has a developer try to promote the release, which only product owners may.
func (w *World) refusedPromotion(ctx context.Context, issue int) (string, error) {
	before, err := w.lastDeploy(ctx, "prod")
	if err != nil {
		return "", err
	}
	id := w.GitHub.Comment(repo, issue, developer, "/promote prod")
	body, err := w.awaitReply(ctx, issue, id, "may not promote to prod")
	if err != nil {
		return "", err
	}
	if after, err := w.lastDeploy(ctx, "prod"); err != nil || after != before {
		return "", fmt.Errorf("a refused command deployed prod (%v)", err)
	}
	return "refused, with the reason: “" + firstLine(body) + "”", nil
}

// promoteProd has the product owner promote the release on issue, by pressing the Promote
// button of check run press, or with a comment when press is 0: prod moves to the tag's commit,
// which deploys to the idle slot, then the Service switches to it and the issue closes.
func (w *World) promoteProd(ctx context.Context, issue int, sha, release, slot string, press int64) (string, error) {
	after, err := w.lastDeploy(ctx, "prod")
	if err != nil {
		return "", err
	}
	if press != 0 {
		w.GitHub.PressButton(repo, press, "promote", productOwner)
	} else {
		w.GitHub.Comment(repo, issue, productOwner, "/promote prod")
	}
	d, err := w.awaitDeploy(ctx, "prod", sha, after)
	if err != nil {
		return "", err
	}
	if d.State != "succeeded" || d.Slot != slot {
		return "", fmt.Errorf("the deploy to prod ended %s on slot %q (want succeeded on %s): %s", d.State, d.Slot, slot, d.Error)
	}
	if live, err := w.kube.liveSlot(ctx); err != nil || live != slot {
		return "", fmt.Errorf("prod's Service selects slot %q, want %s (%v)", live, slot, err)
	}
	// prod's build pushed prod's own image tag, and runs exactly that image.
	tag := fmt.Sprintf("%s-prod-%d", sha[:12], d.ID)
	if digest := w.AWS.ECR.Digest(imageRepository, tag); digest == "" || d.Image != imageRepository+"@"+digest {
		return "", fmt.Errorf("prod runs %s, not the image of its own tag %s (%s)", d.Image, tag, digest)
	}
	if err := w.onlyDeployOf(ctx, "prod", sha, after); err != nil {
		return "", err
	}
	err = w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, is := range w.GitHub.Issues(repo) {
			if is.Number == issue && is.State == "closed" {
				return "", true, nil
			}
		}
		return fmt.Sprintf("release issue #%d to close", issue), false, nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("prod moved to %s; deploy #%d built its own image (tag %s) and went to the idle slot %s, then the Service switched to it (%s in all); #%d closed with a summary",
		release, d.ID, tag, slot, d.took(), issue), nil
}

// rollbackProd switches prod back to the other slot, with no build.
func (w *World) rollbackProd(ctx context.Context, issue int, sha string) (string, error) {
	after, err := w.lastDeploy(ctx, "prod")
	if err != nil {
		return "", err
	}
	builds := len(w.AWS.CodeBuild.Builds())
	w.GitHub.Comment(repo, issue, productOwner, "/rollback prod")
	d, err := w.awaitDeploy(ctx, "prod", sha, after)
	if err != nil {
		return "", err
	}
	if d.State != "succeeded" || d.Mode != "switch" {
		return "", fmt.Errorf("the rollback ended %s as a %q deploy: %s", d.State, d.Mode, d.Error)
	}
	if n := len(w.AWS.CodeBuild.Builds()); n != builds {
		return "", fmt.Errorf("the rollback started %d build(s)", n-builds)
	}
	live, err := w.kube.liveSlot(ctx)
	if err != nil || live != "prod-backup" {
		return "", fmt.Errorf("prod's Service selects %q after the rollback, want prod-backup (%v)", live, err)
	}
	return fmt.Sprintf("switched back to slot prod-backup (v1.0.0) in %s: no build, no rollout, the old pods never stopped", d.took()), nil
}

// onlyDeployOf checks that one deploy of sha to stage was made after id: a promotion's push
// found the promotion's deploy instead of starting another.
func (w *World) onlyDeployOf(ctx context.Context, stage, sha string, after int64) error {
	ds, err := w.deploys(ctx, stage)
	if err != nil {
		return err
	}
	n := 0
	for _, d := range ds {
		if d.SHA == sha && d.ID > after {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%d deploys of %s to %s, want 1", n, deploy.ShortSHA(sha), stage)
	}
	return nil
}

// awaitCheck waits for the newest check run called name on sha to complete.
func (w *World) awaitCheck(ctx context.Context, name, sha string) (githubtest.CheckRun, error) {
	var run githubtest.CheckRun
	err := w.await(ctx, 2*time.Minute, func() (string, bool, error) {
		runs := w.GitHub.CheckRuns(repo)
		for i := len(runs) - 1; i >= 0; i-- {
			if runs[i].Name == name && runs[i].HeadSHA == sha {
				run = runs[i]
				if run.Status == "completed" {
					return "", true, nil
				}
				return fmt.Sprintf("%s: %s", name, run.Title), false, nil
			}
		}
		return name + " on " + deploy.ShortSHA(sha), false, nil
	})
	return run, err
}

func (w *World) reactions(issue int, comment int64) []string {
	for _, c := range w.GitHub.Comments(repo, issue) {
		if c.ID == comment {
			return c.Reactions
		}
	}
	return nil
}

// live is the newest successful deploy to stage.
func (w *World) live(ctx context.Context, stage string) (apiDeploy, error) {
	ds, err := w.deploys(ctx, stage)
	if err != nil {
		return apiDeploy{}, err
	}
	for _, d := range ds {
		if d.State == "succeeded" {
			return d, nil
		}
	}
	return apiDeploy{}, fmt.Errorf("nothing runs on %s", stage)
}

// Table is the final state of the stages, as the API and the releases show it.
func (w *World) Table(ctx context.Context) (string, error) {
	var rels struct {
		Releases []struct{ Tag, SHA string } `json:"releases"`
	}
	if err := w.get(ctx, "/api/v1/releases", url.Values{"repo": {repo}}, &rels); err != nil {
		return "", err
	}
	tags := map[string]string{}
	for i := len(rels.Releases) - 1; i >= 0; i-- {
		tags[rels.Releases[i].SHA] = rels.Releases[i].Tag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s  %-38s  %s\n", "STAGE", "LIVE", "LAST DEPLOY")
	for _, st := range stageNames {
		ds, err := w.deploys(ctx, st)
		if err != nil {
			return "", err
		}
		live, state := "nothing yet", "-"
		for _, d := range ds {
			if d.State == "succeeded" {
				live = deploy.ShortSHA(d.SHA)
				if t := tags[d.SHA]; t != "" {
					live = t + " (" + deploy.ShortSHA(d.SHA) + ")"
				}
				if d.Slot != "" {
					live += " on slot " + d.Slot
				}
				break
			}
		}
		if len(ds) > 0 {
			state = ds[0].State
			if ds[0].Mode == "switch" {
				state += " (slot switch)"
			}
		}
		fmt.Fprintf(&b, "%-6s  %-38s  %s\n", st, live, state)
	}
	return b.String(), nil
}
