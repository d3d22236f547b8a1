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
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// attacks are what someone with write access tries to ship without approval, and what
// Stagecoach makes of each: refused, with the reason a person reads, and nothing deployed or
// moved that should not be. The story comes back to the release flow at the end: a hotfix on
// prod's branch that the release lacks is dropped only by an admin's --force, which says so.
// m14 is what runs on test and alpha when they start; prod runs m12 on slot prod-backup.
func (w *World) attacks(m14 string) []step {
	x := commit("alice's experiment")
	var issue int
	return []step{
		{"@alice deploys her unreviewed branch to test: `/deploy test alice/experiment` (write access is all test asks)", func(ctx context.Context) (string, error) {
			w.GitHub.AddCommit(repo, x, []string{m14}, "Try a faster checkout", 0)
			w.GitHub.PushBranch(repo, "alice/experiment", x, developer)
			after, err := w.lastDeploy(ctx, "test")
			if err != nil {
				return "", err
			}
			w.GitHub.Comment(repo, prPin.Number, developer, "/deploy test alice/experiment")
			d, err := w.awaitDeploy(ctx, "test", x, after)
			if err != nil {
				return "", err
			}
			if d.State != "succeeded" {
				return "", fmt.Errorf("the deploy to test ended %s: %s", d.State, d.Error)
			}
			return fmt.Sprintf("deploy #%d: test runs %s, which nobody reviewed", d.ID, deploy.ShortSHA(x)), nil
		}},
		{"@alice pushes it to alpha: `git push --force origin alice/experiment:alpha` (it ran on test, so the stage order holds)", func(ctx context.Context) (string, error) {
			return w.refusedPush(ctx, "alpha", x, m14, "only @"+lead+" and @"+admin+" may", "`/promote alpha`")
		}},
		{"@alice pushes it to prod: `git push --force origin alice/experiment:prod`", func(ctx context.Context) (string, error) {
			return w.refusedPush(ctx, "prod", x, commit("merge #12"), "only members of @acme/product-owners may", "`/promote prod`")
		}},
		{"@mallory, who is no collaborator, comments `/promote prod @acme/everyone` on #14", func(ctx context.Context) (string, error) {
			id := w.GitHub.Comment(repo, prPin.Number, outsider, "/promote prod @acme/everyone")
			var reason string
			err := w.await(ctx, time.Minute, func() (string, bool, error) {
				cs, err := w.commands(ctx)
				for _, c := range cs {
					if c.Actor == outsider {
						reason = c.Reason
						return "", c.Outcome == "ignored", err
					}
				}
				return "the audit trail to record @mallory's command", false, err
			})
			if err != nil {
				return "", err
			}
			if rs := w.reactions(prPin.Number, id); len(rs) != 0 {
				return "", fmt.Errorf("the outsider's comment got %v", rs)
			}
			if body, _ := w.replyAfter(prPin.Number, id); body != "" {
				return "", fmt.Errorf("the outsider got an answer: %q", body)
			}
			return "not heard: no 👀, no reply; the audit trail says why: " + reason, nil
		}},
		{"@alice comments `/deploy test ../../orgs/acme`", func(ctx context.Context) (string, error) {
			before, err := w.lastDeploy(ctx, "test")
			if err != nil {
				return "", err
			}
			id := w.GitHub.Comment(repo, prPin.Number, developer, "/deploy test ../../orgs/acme")
			body, err := w.awaitReply(ctx, prPin.Number, id, "is not a branch, tag or sha")
			if err != nil {
				return "", err
			}
			if after, err := w.lastDeploy(ctx, "test"); err != nil || after != before {
				return "", fmt.Errorf("a refused /deploy deployed (%v)", err)
			}
			return "refused before any API call: “" + firstLine(body) + "”", nil
		}},
		{"@lena tags v1.1.1 on what alpha runs", func(ctx context.Context) (string, error) {
			n, _, err := w.tag(ctx, "v1.1.1", m14)
			if err != nil {
				return "", err
			}
			issue = n
			body := w.issueBody(n)
			if !strings.Contains(body, "### ⚠️ What promoting would drop") || !strings.Contains(body, deploy.ShortSHA(x)) {
				return "", fmt.Errorf("release issue #%d does not list what prod's branch holds that v1.1.1 lacks:\n%s", n, body)
			}
			return fmt.Sprintf("release issue #%d; under “What promoting would drop” it lists %s, which @alice's push left on prod's branch", n, deploy.ShortSHA(x)), nil
		}},
		{"@paula comments `/promote prod` on #14, a pull request and no release", func(ctx context.Context) (string, error) {
			return w.refusedCommand(ctx, prPin.Number, productOwner, "/promote prod", "ships releases only", fmt.Sprintf("Open releases: #%d", issue))
		}},
		{"@alice moves the tag onto her commit: `git push --force origin alice/experiment:refs/tags/v1.1.1`", func(ctx context.Context) (string, error) {
			w.GitHub.MoveTag(repo, "v1.1.1", x, developer)
			if err := w.awaitIssue(ctx, issue, "cannot be promoted to **prod**"); err != nil {
				return "", err
			}
			if _, err := w.awaitReply(ctx, issue, 0, "moved** from"); err != nil {
				return "", err
			}
			return fmt.Sprintf("#%d is rewritten: the tag moved from %s to %s, which never ran on alpha, so it cannot be promoted; a comment says so",
				issue, deploy.ShortSHA(m14), deploy.ShortSHA(x)), nil
		}},
		{"@paula presses **Promote to prod** on the check run v1.1.1 had before it moved", func(ctx context.Context) (string, error) {
			run, ok := w.releaseRun("v1.1.1", m14)
			if !ok {
				return "", errors.New("no release check run of v1.1.1 on its first commit")
			}
			last := w.lastComment(issue)
			before, err := w.lastDeploy(ctx, "prod")
			if err != nil {
				return "", err
			}
			w.GitHub.PressButton(repo, run.ID, "promote", productOwner)
			body, err := w.awaitReply(ctx, issue, last, "This promotes `"+deploy.ShortSHA(m14)+"`")
			if err != nil {
				return "", err
			}
			if after, err := w.lastDeploy(ctx, "prod"); err != nil || after != before {
				return "", fmt.Errorf("the old button deployed (%v)", err)
			}
			return "refused: “" + firstLine(body) + "”", nil
		}},
		{"@lena moves v1.1.1 back to what alpha runs", func(ctx context.Context) (string, error) {
			w.GitHub.MoveTag(repo, "v1.1.1", m14, lead)
			if err := w.awaitIssue(ctx, issue, "What promoting would drop"); err != nil {
				return "", err
			}
			return fmt.Sprintf("#%d is rewritten for %s again, with the changelog and what promoting would drop", issue, deploy.ShortSHA(m14)), nil
		}},
		{"@paula comments `/promote prod` on the release issue", func(ctx context.Context) (string, error) {
			return w.refusedCommand(ctx, issue, productOwner, "/promote prod", "would drop 1 commit(s)", "--force")
		}},
		{"@omar, an admin and a product owner, comments `/promote prod --force \"drop @alice's unreviewed push\"`", func(ctx context.Context) (string, error) {
			after, err := w.lastDeploy(ctx, "prod")
			if err != nil {
				return "", err
			}
			id := w.GitHub.Comment(repo, issue, admin, `/promote prod --force "drop @alice's unreviewed push"`)
			body, err := w.awaitReply(ctx, issue, id, "**Dropping** 1 commit(s)")
			if err != nil {
				return "", err
			}
			if !strings.Contains(body, "`drop @alice's unreviewed push`") {
				return "", fmt.Errorf("the reply does not quote the reason in a code span:\n%s", body)
			}
			d, err := w.awaitDeploy(ctx, "prod", m14, after)
			if err != nil {
				return "", err
			}
			if d.State != "succeeded" || d.Slot != "prod" {
				return "", fmt.Errorf("the deploy to prod ended %s on slot %q: %s", d.State, d.Slot, d.Error)
			}
			if got, _ := w.GitHub.Ref(repo, "prod"); got != m14 {
				return "", fmt.Errorf("prod points at %s, want %s", deploy.ShortSHA(got), deploy.ShortSHA(m14))
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
			return fmt.Sprintf("prod moved to v1.1.1 and the reply lists what it dropped (%s); deploy #%d went to the idle slot prod and switched; #%d closed",
				deploy.ShortSHA(x), d.ID, issue), nil
		}},
	}
}

// refusedPush has @alice push sha to branch and checks that nothing deployed: the stage still
// runs live, and the commit's check run names her, who may and the command to use.
func (w *World) refusedPush(ctx context.Context, stage, sha, live, who, command string) (string, error) {
	before, err := w.lastDeploy(ctx, stage)
	if err != nil {
		return "", err
	}
	w.GitHub.PushBranch(repo, stage, sha, developer)
	run, err := w.awaitCheck(ctx, "stagecoach/"+stage, sha)
	if err != nil {
		return "", err
	}
	for _, want := range []string{"@" + developer + " pushed", who, command} {
		if !strings.Contains(run.Summary, want) {
			return "", fmt.Errorf("the check run on %s does not say %q:\n%s", deploy.ShortSHA(sha), want, run.Summary)
		}
	}
	if run.Conclusion != "failure" {
		return "", fmt.Errorf("the check run on %s concluded %s", deploy.ShortSHA(sha), run.Conclusion)
	}
	if after, err := w.lastDeploy(ctx, stage); err != nil || after != before {
		return "", fmt.Errorf("the refused push deployed to %s (%v)", stage, err)
	}
	now, err := w.live(ctx, stage)
	if err != nil || now.SHA != live {
		return "", fmt.Errorf("%s runs %s, want %s (%v)", stage, deploy.ShortSHA(now.SHA), deploy.ShortSHA(live), err)
	}
	// The check run is made before the refusal is recorded: the audit trail follows.
	var why string
	err = w.await(ctx, time.Minute, func() (string, bool, error) {
		cs, err := w.commands(ctx)
		for _, c := range cs {
			if c.Verb == "push" && c.Stage == stage && c.Actor == developer {
				why = c.Reason
				return "", c.Outcome == "refused", err
			}
		}
		return "the refused push in the audit trail", false, err
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("refused: “%s” The check run %s on %s names @%s, who may and %s; %s keeps running %s.",
		firstLine(why), run.Name, deploy.ShortSHA(sha), developer, command, stage, deploy.ShortSHA(live)), nil
}

// refusedCommand has user comment body on issue and checks the reply says why (each of wants)
// and that nothing deployed to prod or moved its branch.
func (w *World) refusedCommand(ctx context.Context, issue int, user, body string, wants ...string) (string, error) {
	return w.refusedOn(ctx, "prod", issue, user, body, wants...)
}

// refusedOn is refusedCommand for stage.
func (w *World) refusedOn(ctx context.Context, stage string, issue int, user, body string, wants ...string) (string, error) {
	before, err := w.lastDeploy(ctx, stage)
	if err != nil {
		return "", err
	}
	ref, _ := w.GitHub.Ref(repo, stage)
	id := w.GitHub.Comment(repo, issue, user, body)
	reply, err := w.awaitReply(ctx, issue, id, wants[0])
	if err != nil {
		return "", err
	}
	for _, want := range wants[1:] {
		if !strings.Contains(reply, want) {
			return "", fmt.Errorf("the reply does not say %q:\n%s", want, reply)
		}
	}
	if after, err := w.lastDeploy(ctx, stage); err != nil || after != before {
		return "", fmt.Errorf("a refused command deployed %s (%v)", stage, err)
	}
	if now, _ := w.GitHub.Ref(repo, stage); now != ref {
		return "", errors.New("a refused command moved " + stage)
	}
	return "refused, nothing moved: “" + firstLine(reply) + "”", nil
}

// auditEntry is a command or push as GET /api/v1/commands shows it.
type auditEntry struct {
	Actor, Verb, Stage, Args, Outcome, Reason string
}

// commands is the audit trail, newest first.
func (w *World) commands(ctx context.Context) ([]auditEntry, error) {
	var out struct {
		Commands []auditEntry `json:"commands"`
	}
	err := w.get(ctx, "/api/v1/commands", url.Values{"repo": {repo}, "limit": {"20"}}, &out)
	return out.Commands, err
}

// replyAfter is Stagecoach's newest comment on issue after comment id.
func (w *World) replyAfter(issue int, id int64) (string, bool) {
	var body string
	for _, c := range w.GitHub.Comments(repo, issue) {
		if c.ID > id && c.User == "" {
			body = c.Body
		}
	}
	return body, body != ""
}

// lastComment is the id of the newest comment on issue.
func (w *World) lastComment(issue int) int64 {
	var id int64
	for _, c := range w.GitHub.Comments(repo, issue) {
		id = max(id, c.ID)
	}
	return id
}

func (w *World) issueBody(number int) string {
	for _, is := range w.GitHub.Issues(repo) {
		if is.Number == number {
			return is.Body
		}
	}
	return ""
}

// awaitIssue waits for issue's body to hold want.
func (w *World) awaitIssue(ctx context.Context, number int, want string) error {
	return w.await(ctx, time.Minute, func() (string, bool, error) {
		return fmt.Sprintf("release issue #%d to say %q", number, want), strings.Contains(w.issueBody(number), want), nil
	})
}

// releaseRun is the newest release check run of tag on sha that offers the Promote button.
func (w *World) releaseRun(tag, sha string) (githubtest.CheckRun, bool) {
	runs := w.GitHub.CheckRuns(repo)
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.Name == "stagecoach/release" && r.HeadSHA == sha && strings.HasPrefix(r.Title, tag+" ") &&
			slices.ContainsFunc(r.Actions, func(a githubtest.CheckRunAction) bool { return a.Identifier == "promote" }) {
			return r, true
		}
	}
	return githubtest.CheckRun{}, false
}
