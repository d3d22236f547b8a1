package chatops

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// shaH is a hotfix pushed straight to prod: on top of what prod ran, in no release.
var shaH = strings.Repeat("e", 40)

// releaseWorld has v1.0.0 (shaC) ready for prod: it ran on test and alpha, prod runs shaA, and
// "root" is an admin who is also a product owner.
func releaseWorld(t *testing.T) (*world, store.Release) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaC, "lead", deploy.Checkpoint{})
	w.live("prod", shaA, "po", deploy.Checkpoint{Slot: "prod"})
	w.gh.SetTeamMember("acme", "product-owners", "root")
	return w, w.release("v1.0.0", shaC, 8)
}

// nothingMoved fails unless prod still points at want and no deploy to prod was recorded since
// the world was made (one: the seeded live one).
func (w *world) nothingMoved(want string) {
	w.t.Helper()
	if sha, _ := w.gh.Ref(repo, "prod"); sha != want {
		w.t.Errorf("prod points at %s, want %s", deploy.ShortSHA(sha), deploy.ShortSHA(want))
	}
	if ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "prod"}); len(ds) != 1 {
		w.t.Errorf("%d deploys to prod, want only the seeded one", len(ds))
	}
}

// TestPromoteProdOnALookAlikeIssueIsRefused: anyone can open an issue titled "Release v9"; a
// promotion to prod ships only a recorded release, so /promote prod anywhere else is refused,
// naming the open releases and the explicit form, and moves nothing. (Before, it promoted
// whatever ran on alpha.)
func TestPromoteProdOnALookAlikeIssueIsRefused(t *testing.T) {
	w, _ := releaseWorld(t)
	got := w.say(3, "po", "/promote prod")
	for _, want := range []string{"**prod** ships releases only", "`/promote prod <tag>`", "Open releases: #8 (`v1.0.0`, `ccccccc`)"} {
		if !strings.Contains(got, want) {
			t.Errorf("answer = %q\nwant it to contain %q", got, want)
		}
	}
	w.nothingMoved(shaA)
	if got := w.say(3, "po", "/promote prod v9"); !strings.Contains(got, "`v9` is no release of acme/hello") {
		t.Errorf("/promote prod v9 = %q", got)
	}
	w.nothingMoved(shaA)
	// Named explicitly, the release ships from anywhere.
	if got := w.say(3, "po", "/promote prod v1.0.0"); !strings.Contains(got, "⏳ promoting `v1.0.0` (`ccccccc`) to **prod**") {
		t.Errorf("/promote prod v1.0.0 = %q", got)
	}
	if sha, _ := w.gh.Ref(repo, "prod"); sha != shaC {
		t.Errorf("prod points at %s after the named promotion", deploy.ShortSHA(sha))
	}
}

// TestPromotionOfAMovedTagIsRefused: the release issue described one commit; once its tag moved
// on GitHub a promotion is refused until the issue describes the new one, and a button shown on
// the old commit never promotes the new one.
func TestPromotionOfAMovedTagIsRefused(t *testing.T) {
	w, rel := releaseWorld(t)
	w.gh.SetRef(repo, "tags/v1.0.0", shaB) // the tag moved; the release workflow has not caught up
	got := w.say(8, "po", "/promote prod")
	if !strings.Contains(got, "`v1.0.0` moved from `ccccccc` to `bbbbbbb` after its release issue was opened") {
		t.Errorf("answer = %q", got)
	}
	w.nothingMoved(shaA)

	// The release workflow caught up (the issue now says shaB, which ran on alpha too), but the
	// old check run on shaC still has its Promote button.
	w.live("alpha", shaB, "lead", deploy.Checkpoint{})
	c, _ := w.x.clients.Installation(1)
	old := w.releaseCheckRun(c, shaC)
	rel.SHA = shaB
	if err := w.st.UpdateRelease(context.Background(), rel); err != nil {
		t.Fatal(err)
	}
	w.press(old, "stagecoach/release", "release:"+itoa(rel.ID), "promote", "po")
	if got := w.lastBotComment(8); !strings.Contains(got, "This promotes `ccccccc`, but `v1.0.0` is `bbbbbbb` now") {
		t.Errorf("the old button's answer = %q", got)
	}
	w.nothingMoved(shaA)
}

// TestPromoteProdOverAHotfixOnProdIsRefusedUnlessForced: prod's branch holds a hotfix the
// release lacks. /promote prod would force-move prod over it: it is refused, listing the
// hotfix; an admin's --force "reason" proceeds and says what it dropped, and the audit trail
// keeps both.
func TestPromoteProdOverAHotfixOnProdIsRefusedUnlessForced(t *testing.T) {
	w, _ := releaseWorld(t)
	w.gh.AddCommit(repo, shaH, []string{shaA}, "Hotfix the login timeout\n\nINC-42", 0)
	w.gh.SetRef(repo, "prod", shaH)
	got := w.say(8, "po", "/promote prod")
	for _, want := range []string{"Moving **prod** to `ccccccc` would drop 1 commit(s) that `prod`'s branch (`eeeeeee`) holds and `ccccccc` lacks",
		"[`eeeeeee`](https://github.com/acme/hello/commit/" + shaH + ") Hotfix the login timeout", "Nothing was moved or deployed",
		"`/promote prod v1.0.0 --force \"the reason\"`"} {
		if !strings.Contains(got, want) {
			t.Errorf("answer = %q\nwant it to contain %q", got, want)
		}
	}
	w.nothingMoved(shaH)
	if got := w.say(8, "po", `/promote prod --force "drop the hotfix: v1.0.0 fixes it too"`); !strings.Contains(got, "only admins of acme/hello") {
		t.Errorf("a forced promotion by a product owner who is no admin = %q", got)
	}
	got = w.say(8, "root", `/promote prod --force "drop the hotfix: v1.0.0 fixes it too"`)
	for _, want := range []string{"⏳ promoting `v1.0.0` (`ccccccc`) to **prod**: `prod` now points at `ccccccc`",
		"**Dropping** 1 commit(s) that `prod`'s branch (`eeeeeee`) holds and `ccccccc` lacks from **prod**, as @root forced (`drop the hotfix: v1.0.0 fixes it too`)",
		"Hotfix the login timeout"} {
		if !strings.Contains(got, want) {
			t.Errorf("answer = %q\nwant it to contain %q", got, want)
		}
	}
	if sha, _ := w.gh.Ref(repo, "prod"); sha != shaC {
		t.Errorf("prod points at %s, want the release", deploy.ShortSHA(sha))
	}
	ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "prod"})
	if len(ds) != 2 || ds[0].SHA != shaC || ds[0].Force != "drop the hotfix: v1.0.0 fixes it too" {
		t.Errorf("prod deploys = %+v", ds)
	}
	cmds, _ := w.st.Commands(context.Background(), repo, 3)
	if len(cmds) != 3 || cmds[0].Outcome != "accepted" || !strings.Contains(cmds[0].Reason, "dropped 1 commit(s)") ||
		cmds[0].Force == "" || cmds[2].Outcome != "refused" || !strings.Contains(cmds[2].Reason, "would drop") {
		t.Errorf("audit trail = %+v", cmds)
	}
}

// TestPromoteAlphaOverCommitsOnlyOnAlphaIsRefused: the same holds for alpha, whose branch holds
// a commit test never ran.
func TestPromoteAlphaOverCommitsOnlyOnAlphaIsRefused(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.gh.AddCommit(repo, shaH, []string{shaA}, "Experiment straight on alpha", 0)
	w.gh.SetRef(repo, "alpha", shaH)
	got := w.say(4, "lead", "/promote alpha")
	if !strings.Contains(got, "Moving **alpha** to `ccccccc` would drop 1 commit(s)") || !strings.Contains(got, "Experiment straight on alpha") {
		t.Errorf("answer = %q", got)
	}
	if sha, _ := w.gh.Ref(repo, "alpha"); sha != shaH {
		t.Errorf("alpha moved to %s", deploy.ShortSHA(sha))
	}
}

// TestCommandFromOutsiderCostsNoAPICallAndNoReply: on a public repository anyone may comment.
// A command from someone whose author_association is not configured is not read: no reaction,
// no authorization call, no reply, only an audit record.
func TestCommandFromOutsiderCostsNoAPICallAndNoReply(t *testing.T) {
	w, _ := releaseWorld(t)
	before := len(w.gh.Requests())
	got := w.say(8, "mallory", "/promote prod @acme/everyone")
	if got != "" {
		t.Errorf("answered an outsider: %q", got)
	}
	if n := len(w.gh.Requests()) - before; n != 0 {
		t.Errorf("%d GitHub call(s) for an outsider's command, want none: %+v", n, w.gh.Requests()[before:])
	}
	cmds, _ := w.st.Commands(context.Background(), repo, 1)
	if len(cmds) != 1 || cmds[0].Actor != "mallory" || cmds[0].Outcome != "ignored" ||
		cmds[0].Reason != "author_association NONE is not one of OWNER, MEMBER, COLLABORATOR (commands.author_associations)" {
		t.Errorf("audit trail = %+v", cmds)
	}
	w.nothingMoved(shaA)
}

// TestPromoteWithAMentionIsNotEchoed: `/promote prod @acme/everyone` by someone who may talk to
// Stagecoach gets an answer, but the words come back in a code span: the App mentions no one.
func TestPromoteWithAMentionIsNotEchoed(t *testing.T) {
	w, _ := releaseWorld(t)
	for _, tt := range []struct{ user, body, want string }{
		{"po", "/promote prod @acme/everyone", "`@acme/everyone` is no release"},
		{"po", "/deploy prod @acme/everyone", "There is no branch, tag or commit `@acme/everyone`"},
		{"sam", "/lock prod @acme/everyone look", "locked **prod**: `@acme/everyone look`"},
		{"dev", "/deploy test --now @acme/everyone", "Unknown option in `test --now @acme/everyone`"},
	} {
		got := w.say(8, tt.user, tt.body)
		if !strings.Contains(got, tt.want) {
			t.Errorf("%q: answer = %q, want it to contain %q", tt.body, got, tt.want)
		}
		for i, rest := 0, got; ; {
			j := strings.Index(rest, "@acme/everyone")
			if j < 0 {
				break
			}
			if strings.Count(got[:i+j], "`")%2 == 0 {
				t.Errorf("%q: the answer mentions @acme/everyone outside a code span: %s", tt.body, got)
				break
			}
			i, rest = i+j+1, rest[j+1:]
		}
	}
}

// releaseCheckRun makes a release check run with a Promote button on sha, as the release
// workflow does, and returns its id.
func (w *world) releaseCheckRun(c *github.Client, sha string) int64 {
	w.t.Helper()
	run, _, err := c.Checks.CreateCheckRun(context.Background(), "acme", "hello", github.CreateCheckRunOptions{Name: "stagecoach/release", HeadSHA: sha,
		Status: github.Ptr("completed"), Conclusion: github.Ptr("success"),
		Output:  &github.CheckRunOutput{Title: github.Ptr("ready"), Summary: github.Ptr("s")},
		Actions: []*github.CheckRunAction{{Label: "Promote to prod", Identifier: "promote", Description: "Move prod"}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return run.GetID()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRollbackOfAGuardedStageIsNoDrop: a rollback takes commits off the stage on purpose; the
// drop rule does not stand in its way, even when the old commit must be built again.
func TestRollbackOfAGuardedStageIsNoDrop(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaB, "dev", deploy.Checkpoint{})
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaB, "lead", deploy.Checkpoint{}) // no image recorded: the rollback builds shaB again
	w.live("alpha", shaC, "lead", deploy.Checkpoint{})
	if got := w.say(4, "lead", "/rollback alpha"); !strings.Contains(got, "rolling **alpha** back to `bbbbbbb`") {
		t.Errorf("/rollback alpha = %q", got)
	}
}

// TestRerunOfARefusedPushRunsNothing: GitHub's Re-run on the check run of a refused push has
// nothing to run again; it says so on the check run and deploys nothing.
func TestRerunOfARefusedPushRunsNothing(t *testing.T) {
	w, _ := releaseWorld(t)
	c, _ := w.x.clients.Installation(1)
	run, _, err := c.Checks.CreateCheckRun(context.Background(), "acme", "hello", github.CreateCheckRunOptions{Name: "stagecoach/prod", HeadSHA: shaC,
		ExternalID: github.Ptr("refused:3"), Status: github.Ptr("completed"), Conclusion: github.Ptr("failure"),
		Output: &github.CheckRunOutput{Title: github.Ptr("Not deployed"), Summary: github.Ptr("refused")}})
	if err != nil {
		t.Fatal(err)
	}
	payload := mustJSON(t, jobs.CheckRunAction{Repo: repo, InstallationID: 1, Action: "rerequested", CheckRunID: run.GetID(),
		CheckRunName: "stagecoach/prod", ExternalID: "refused:3", HeadSHA: shaC, Actor: "po", Delivery: "rerun-1"})
	if err := w.x.Buttons().Run(context.Background(), jobs.Job{Kind: jobs.KindCheckRunAction, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	for _, r := range w.gh.CheckRuns(repo) {
		if r.ID == run.GetID() && !strings.Contains(r.Text, "reports a push that was refused; there is nothing to run again") {
			t.Errorf("check run text = %q", r.Text)
		}
	}
	w.nothingMoved(shaA)
}

// TestPushLandingWhilePromotionDecidesIsNotDroppedUnseen: the gate compared prod's branch; if a
// push lands on it before Stagecoach's forced move, the move would drop it unseen. The promotion
// re-reads the branch right before moving it and, finding it moved, moves and deploys nothing.
func TestPushLandingWhilePromotionDecidesIsNotDroppedUnseen(t *testing.T) {
	w, _ := releaseWorld(t)
	w.gh.AddCommit(repo, shaH, []string{shaA}, "Pushed while the promotion was decided", 0)
	reads := 0
	w.gh.OnAnswered(func(r githubtest.Request) {
		if r.Operation == "git/get-ref" && strings.HasSuffix(r.Path, "/git/ref/heads/prod") {
			if reads++; reads == 1 { // the gate has compared prod's branch: now the push lands
				w.gh.SetRef(repo, "prod", shaH)
			}
		}
	})
	got := w.say(8, "po", "/promote prod")
	if !strings.Contains(got, "`prod` moved to `eeeeeee` while this was being decided, so it was not moved again and nothing was deployed") {
		t.Errorf("answer = %q", got)
	}
	if sha, _ := w.gh.Ref(repo, "prod"); sha != shaH {
		t.Errorf("prod points at %s, want the push that landed", deploy.ShortSHA(sha))
	}
	ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "prod"})
	if len(ds) != 2 || ds[0].State != deploy.Cancelled {
		t.Errorf("prod deploys = %+v, want the promotion's cancelled", ds)
	}
}
