package release

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// shaH is a hotfix pushed straight to prod's branch, on top of what prod runs; no release has it.
var shaH = strings.Repeat("e", 40)

// TestReleaseIssueListsAHotfixOnProd: the changelog used to compare only with Stagecoach's own
// history, so a commit pushed to prod that the release lacks went unmentioned and /promote prod
// dropped it silently. The issue now compares with prod's real branch on GitHub and lists it.
func TestReleaseIssueListsAHotfixOnProd(t *testing.T) {
	w := newWorld(t)
	w.ran("prod", shaA, "po", deploy.Succeeded, 4*time.Minute, deploy.Trigger{})
	w.gh.AddCommit(repo, shaH, []string{shaA}, "Hotfix the login timeout (#9)", 9)
	w.gh.SetRef(repo, "prod", shaH)
	w.now = w.now.Add(48 * time.Hour)
	w.ran("alpha", shaC, "lead", deploy.Succeeded, 3*time.Minute, deploy.Trigger{})
	w.tag("v1.2.0", shaC, false)
	issues := w.gh.Issues(repo)
	if len(issues) != 1 {
		t.Fatalf("issues = %+v", issues)
	}
	golden(t, "issue-hotfix", issues[0].Body)
	for _, want := range []string{"### ⚠️ What promoting would drop", "Hotfix the login timeout (\\#9)", "`/promote prod --force \"the reason\"`"} {
		if !strings.Contains(issues[0].Body, strings.ReplaceAll(want, `\#`, "#")) {
			t.Errorf("the issue lacks %q", want)
		}
	}
	runs := w.gh.CheckRuns(repo)
	if len(runs) != 1 || !strings.Contains(runs[0].Summary, "Promoting it would drop 1 commit(s)") {
		t.Errorf("release check run = %+v", runs)
	}
}

// TestReleaseIssueComparesWithProdsBranchWhenNothingRuns: with nothing deployed to prod yet the
// issue said "Nothing runs on prod yet" and showed no changelog, although prod's branch held
// history; now it compares with the branch.
func TestReleaseIssueComparesWithProdsBranchWhenNothingRuns(t *testing.T) {
	w := newWorld(t)
	w.gh.SetRef(repo, "prod", shaA)
	w.ran("alpha", shaC, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.tag("v1.2.0", shaC, false)
	body := w.gh.Issues(repo)[0].Body
	for _, want := range []string{"2 commit(s) since `prod`'s branch at [`aaaaaaa`]", "nothing Stagecoach deployed runs on prod yet", "#2 Add the login page"} {
		if !strings.Contains(body, want) {
			t.Errorf("the issue lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Nothing runs on **prod** yet") || strings.Contains(body, "would drop") {
		t.Errorf("the issue says prod is empty, or that something is dropped:\n%s", body)
	}
}

// TestMovedTagRewritesItsIssue: a release tag moved after its issue opened. The issue used to
// keep describing the old commit while a promotion shipped the new one. Now it is rewritten with
// a visible note, old and new commit, and the new changelog (or why the new commit cannot go),
// the people following it get a comment, and the release records the new commit.
func TestMovedTagRewritesItsIssue(t *testing.T) {
	w := newWorld(t)
	w.ran("prod", shaA, "po", deploy.Succeeded, 4*time.Minute, deploy.Trigger{})
	w.ran("alpha", shaB, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.ran("alpha", shaC, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.tag("v1.2.0", shaC, false)
	issue := w.gh.Issues(repo)[0]

	// Moved onto a commit that never ran on alpha: the issue offers nothing any more.
	w.gh.SetRef(repo, "tags/v1.2.0", shaD)
	w.heard("v1.2.0", "push:moved-1")
	body := w.gh.Issues(repo)[0].Body
	for _, want := range []string{"**The tag moved.**", "[`ccccccc`]", "[`ddddddd`]", "cannot be promoted to **prod**: `ddddddd` never succeeded on **alpha**"} {
		if !strings.Contains(body, want) {
			t.Errorf("the rewritten issue lacks %q:\n%s", want, body)
		}
	}
	if rel, _ := w.st.ReleaseByIssue(context.Background(), repo, issue.Number); rel.SHA != shaD || rel.State != store.ReleaseRefused {
		t.Errorf("release = %+v, want refused at the new commit", rel)
	}

	// Moved again, onto a commit that ran on alpha: offered again, for that commit.
	w.now = w.now.Add(time.Hour)
	w.gh.SetRef(repo, "tags/v1.2.0", shaB)
	w.heard("v1.2.0", "push:moved-2")
	body = w.gh.Issues(repo)[0].Body
	golden(t, "issue-moved", body)
	if !strings.Contains(body, "1 commit(s) since prod") || strings.Contains(body, "Fix the header") {
		t.Errorf("the changelog is not the new commit's:\n%s", body)
	}
	comments := w.gh.Comments(repo, issue.Number)
	if len(comments) != 2 || !strings.Contains(comments[1].Body, "**The tag `v1.2.0` moved** from [`ddddddd`]") {
		t.Errorf("comments = %+v", comments)
	}
	rel, _ := w.st.ReleaseByIssue(context.Background(), repo, issue.Number)
	if rel.SHA != shaB || rel.State != store.ReleaseOpen {
		t.Errorf("release = %+v, want open at the new commit", rel)
	}
	var onB bool
	for _, r := range w.gh.CheckRuns(repo) {
		onB = onB || (r.HeadSHA == shaB && r.Name == CheckName && r.Conclusion == "success" && r.ID == rel.CheckRunID)
	}
	if !onB {
		t.Error("no ready release check run on the new commit")
	}
	if n := len(w.gh.Issues(repo)); n != 1 {
		t.Errorf("%d issues, want the one rewritten", n)
	}
}

// TestCommitTitlesCannotMentionLinkOrInjectMarkdown: pull-request and commit titles are
// anyone's words; in the release issue they mention nobody, link nowhere and change no layout.
func TestCommitTitlesCannotMentionLinkOrInjectMarkdown(t *testing.T) {
	w := newWorld(t)
	evil := strings.Repeat("f", 40)
	w.gh.AddCommit(repo, evil, []string{shaC}, "Ping @acme/everyone <img src=x> [win](https://evil.example) | x (#4)", 4)
	w.ran("prod", shaA, "po", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.ran("alpha", evil, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.tag("v1.2.0", evil, false)
	body := w.gh.Issues(repo)[0].Body
	for _, bad := range []string{"@acme/everyone", "<img", "[win](", "https://evil"} {
		if strings.Contains(body, bad) {
			t.Errorf("the issue holds %q raw", bad)
		}
	}
	if !strings.Contains(body, "- #4 Ping @&#8203;acme/everyone &lt;img src=x&gt; \\[win\\](https:&#8203;//evil.example) \\| x") {
		t.Errorf("the pull request's title is not there, escaped:\n%s", body)
	}
}
