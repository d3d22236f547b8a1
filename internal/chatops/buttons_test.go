package chatops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// ended records a deploy of sha to stage that ended in state, asked for by a merge of pr (0:
// a push), and gives it a check run as reporting would.
func (w *world) ended(stage, sha string, state deploy.State, pr int, force string) (deploy.Deploy, int64) {
	w.t.Helper()
	ctx := context.Background()
	r := deploy.Request{App: "hello", Stage: stage, Repo: repo, SHA: sha, Ref: stage, InstallationID: 1,
		Trigger: deploy.Trigger{Event: "push", Delivery: fmt.Sprintf("seed-%d", time.Now().UnixNano()), Actor: "dev", PR: pr}, Force: force}
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{r})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, s := range []deploy.State{deploy.Preflight, state} {
		_, l, err := w.st.ClaimDeploy(ctx, "seed", time.Minute)
		if err != nil {
			w.t.Fatal(err)
		}
		if err := w.st.Advance(ctx, l, store.Update{State: s, Error: "build failed in BUILD", Release: true}); err != nil {
			w.t.Fatal(err)
		}
	}
	return w.checkRun(rd[0].ID, stage, sha)
}

// checkRun gives deploy id a finished check run, as reporting does.
func (w *world) checkRun(id int64, stage, sha string) (deploy.Deploy, int64) {
	w.t.Helper()
	c, _ := w.x.clients.Installation(1)
	run, _, err := c.Checks.CreateCheckRun(context.Background(), "acme", "hello", github.CreateCheckRunOptions{
		Name: "stagecoach/" + stage, HeadSHA: sha, ExternalID: github.Ptr(strconv.FormatInt(id, 10)),
		Status: github.Ptr("completed"), Conclusion: github.Ptr("success"),
		Output: &github.CheckRunOutput{Title: github.Ptr("Deployed"), Summary: github.Ptr("the summary")}})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.SetCheckRun(context.Background(), id, run.GetID()); err != nil {
		w.t.Fatal(err)
	}
	d, _ := w.st.Deploy(context.Background(), id)
	return d, run.GetID()
}

// press has user press a button on a check run and runs the job it records.
func (w *world) press(checkRun int64, name, externalID, identifier, user string) string {
	w.t.Helper()
	delivery := fmt.Sprintf("press-%d", time.Now().UnixNano())
	var head string // GitHub sends the check run's commit with the press
	for _, r := range w.gh.CheckRuns(repo) {
		if r.ID == checkRun {
			head = r.HeadSHA
		}
	}
	payload := mustJSON(w.t, jobs.CheckRunAction{Repo: repo, InstallationID: 1, Action: "requested_action", Identifier: identifier,
		CheckRunID: checkRun, CheckRunName: name, ExternalID: externalID, HeadSHA: head, Actor: user, Delivery: delivery})
	if err := w.x.Buttons().Run(context.Background(), jobs.Job{Kind: jobs.KindCheckRunAction, Payload: payload}); err != nil {
		w.t.Fatalf("%s pressed %s: %v", user, identifier, err)
	}
	return delivery
}

func (w *world) lastBotComment(issue int) string {
	var body string
	for _, c := range w.gh.Comments(repo, issue) {
		if c.User == "" {
			body = c.Body
		}
	}
	return body
}

// TestButtons: each button on a deploy's check run is the command it stands for, given by who
// pressed it: authorized and checked the same way, answered on the deploy's pull request or
// issue, or on the check run itself when there is none.
func TestButtons(t *testing.T) {
	t.Run("retry a failed deploy", func(t *testing.T) {
		w := newWorld(t)
		failed, run := w.ended("test", shaC, deploy.Failed, 2, "")
		delivery := w.press(run, "stagecoach/test", strconv.FormatInt(failed.ID, 10), jobs.ActionRetry, "dev")
		ds, _ := w.st.DeploysByDelivery(context.Background(), delivery)
		if len(ds) != 1 || ds[0].SHA != shaC || ds[0].Stage != "test" || ds[0].ID == failed.ID || ds[0].Held ||
			ds[0].Trigger.Event != "check_run" || ds[0].Trigger.Actor != "dev" {
			t.Fatalf("the retry = %+v", ds)
		}
		if got := w.lastBotComment(2); !strings.Contains(got, "@dev ⏳ deploying `ccccccc` to **test**") {
			t.Errorf("the answer on #2 = %q", got)
		}
	})
	t.Run("a reader may not retry; said on the check run", func(t *testing.T) {
		w := newWorld(t)
		failed, run := w.ended("test", shaC, deploy.Failed, 0, "")
		w.press(run, "stagecoach/test", strconv.FormatInt(failed.ID, 10), jobs.ActionRetry, "guest")
		for _, r := range w.gh.CheckRuns(repo) {
			if r.ID == run && (!strings.Contains(r.Text, "@guest may not deploy to test") || r.Title != "Deployed" || r.Summary != "the summary") {
				t.Errorf("check run after the refusal: title %q, text %q", r.Title, r.Text)
			}
		}
		if ds, _ := w.st.ListDeploys(context.Background(), store.Filter{}); len(ds) != 1 {
			t.Errorf("a refused retry deployed: %+v", ds)
		}
	})
	t.Run("retrying a forced deploy forces again: admins only", func(t *testing.T) {
		w := newWorld(t)
		forced, run := w.ended("prod", shaB, deploy.Failed, 4, "hotfix for INC-7")
		w.press(run, "stagecoach/prod", strconv.FormatInt(forced.ID, 10), jobs.ActionRetry, "po")
		if got := w.lastBotComment(4); !strings.Contains(got, "@po may not deploy to prod with `--force`: only admins of acme/hello") {
			t.Errorf("the answer on #4 = %q", got)
		}
	})
	t.Run("promote this commit to the next stage", func(t *testing.T) {
		w := newWorld(t)
		d := w.live("test", shaB, "dev", deploy.Checkpoint{})
		_, run := w.checkRun(d.ID, "test", shaB)
		w.press(run, "stagecoach/test", strconv.FormatInt(d.ID, 10), jobs.ActionPromote, "lead")
		if sha, _ := w.gh.Ref(repo, "alpha"); sha != shaB {
			t.Errorf("alpha points at %s, want %s", sha, shaB)
		}
		if ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "alpha"}); len(ds) != 1 || ds[0].SHA != shaB {
			t.Errorf("alpha deploys = %+v", ds)
		}
	})
	t.Run("rollback of a deploy that no longer runs", func(t *testing.T) {
		w := newWorld(t)
		old := w.live("test", shaA, "dev", deploy.Checkpoint{Image: "img:a"})
		w.live("test", shaB, "dev", deploy.Checkpoint{Image: "img:b"})
		_, run := w.checkRun(old.ID, "test", shaA)
		w.press(run, "stagecoach/test", strconv.FormatInt(old.ID, 10), jobs.ActionRollback, "dev")
		for _, r := range w.gh.CheckRuns(repo) {
			if r.ID == run && !strings.Contains(r.Text, "no longer what runs on **test**") {
				t.Errorf("check run text = %q", r.Text)
			}
		}
	})
	t.Run("rollback of what runs: the previous image, no build", func(t *testing.T) {
		w := newWorld(t)
		w.live("test", shaA, "dev", deploy.Checkpoint{Image: "img@sha256:aaaa"})
		cur := w.live("test", shaB, "dev", deploy.Checkpoint{Image: "img@sha256:bbbb"})
		_, run := w.checkRun(cur.ID, "test", shaB)
		delivery := w.press(run, "stagecoach/test", strconv.FormatInt(cur.ID, 10), jobs.ActionRollback, "dev")
		ds, _ := w.st.DeploysByDelivery(context.Background(), delivery)
		if len(ds) != 1 || ds[0].Mode != deploy.ModeImage || ds[0].Image != "img@sha256:aaaa" || ds[0].SHA != shaA {
			t.Errorf("the rollback = %+v", ds)
		}
	})
}

// TestReleaseButton: the release check run's Promote button is /promote on the release issue:
// the answer and the progress go to the issue, and the release is marked promoting.
func TestReleaseButton(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaC, "lead", deploy.Checkpoint{})
	c, _ := w.x.clients.Installation(1)
	run, _, err := c.Checks.CreateCheckRun(context.Background(), "acme", "hello", github.CreateCheckRunOptions{Name: "stagecoach/release", HeadSHA: shaC,
		Status: github.Ptr("completed"), Conclusion: github.Ptr("success"),
		Output: &github.CheckRunOutput{Title: github.Ptr("v1.0.0 is ready for prod"), Summary: github.Ptr("s")}})
	if err != nil {
		t.Fatal(err)
	}
	w.gh.SetRef(repo, "tags/v1.0.0", shaC)
	rel, _, err := w.st.CreateRelease(context.Background(), store.Release{Repo: repo, Tag: "v1.0.0", SHA: shaC, InstallationID: 1, State: store.ReleaseOpen})
	if err != nil {
		t.Fatal(err)
	}
	rel.Issue, rel.CheckRunID, rel.State = 8, run.GetID(), store.ReleaseOpen
	if err := w.st.UpdateRelease(context.Background(), rel); err != nil {
		t.Fatal(err)
	}
	w.press(run.GetID(), "stagecoach/release", "release:"+strconv.FormatInt(rel.ID, 10), "promote", "alice")
	if got := w.lastBotComment(8); !strings.Contains(got, "@alice may not promote to prod") {
		t.Errorf("a non-approver's press: answer on #8 = %q", got)
	}
	w.press(run.GetID(), "stagecoach/release", "release:"+strconv.FormatInt(rel.ID, 10), "promote", "pat")
	if got := w.lastBotComment(8); !strings.Contains(got, "@pat ⏳ promoting `v1.0.0` (`ccccccc`) to **prod**: `prod` now points at `ccccccc`") {
		t.Errorf("the product owner's press: answer on #8 = %q", got)
	}
	ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "prod"})
	if len(ds) != 1 || ds[0].Trigger.Issue != 8 || ds[0].Ref != "v1.0.0" || ds[0].CommentID == 0 {
		t.Errorf("prod deploys = %+v", ds)
	}
	if got, _ := w.st.ReleaseByIssue(context.Background(), repo, 8); got.State != store.ReleasePromoting || got.PromotedBy != "pat" {
		t.Errorf("release = %+v", got)
	}
}

// TestDeployAndRollbackCommands: /deploy deploys a ref without moving any branch, as its own
// deploy even of a commit deployed before; /rollback puts the previous image back.
func TestDeployAndRollbackCommands(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaA, "dev", deploy.Checkpoint{Image: "img@sha256:aaaa"})
	w.live("test", shaB, "dev", deploy.Checkpoint{Image: "img@sha256:bbbb"})
	if got := w.say(3, "dev", "/deploy dev "+shaB[:10]); !strings.Contains(got, "deploying `bbbbbbb` to **dev**") {
		t.Fatalf("/deploy dev = %q", got)
	}
	ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "dev"})
	if len(ds) != 1 || ds[0].SHA != shaB || ds[0].Trigger.Actor != "dev" {
		t.Fatalf("dev deploys = %+v", ds)
	}
	if n := w.gh.Count("git/update-ref"); n != 0 {
		t.Errorf("/deploy moved a branch %d time(s)", n)
	}
	if got := w.say(3, "dev", "/rollback test"); !strings.Contains(got, "rolling **test** back to `aaaaaaa`") {
		t.Errorf("/rollback test = %q", got)
	}
}
