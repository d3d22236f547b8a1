package report

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// commandRequest is what `/deploy <stage>` in comment 77 on issue #5 by the product owner asks.
func commandRequest(stage string) deploy.Request {
	r := mergedPR
	r.Stage, r.Ref, r.Trigger, r.Nonce = stage, stage, onIssue, "c1"
	return r
}

// withHello is the seed's stages with the app hello on test and alpha: a success on test
// offers the promotion to alpha.
func withHello() *config.Config {
	cfg := config.Default()
	cfg.Apps = []config.App{{Name: "hello", Repo: "acme/hello", Stages: map[string]config.AppStage{"test": {}, "alpha": {}}}}
	return cfg
}

func (w *progressWorld) report(t *testing.T) {
	t.Helper()
	if err := w.progress.Executor().Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
}

func (w *progressWorld) deploy(t *testing.T) deploy.Deploy {
	t.Helper()
	d, err := w.st.Deploy(context.Background(), w.id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkRun is the world's deploy's check run as GitHub has it.
func (w *progressWorld) checkRun(t *testing.T) githubtest.CheckRun {
	t.Helper()
	id := w.deploy(t).CheckRunID
	for _, r := range w.gh.CheckRuns("acme/hello") {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no check run %d on GitHub", id)
	return githubtest.CheckRun{}
}

func actionIDs(r githubtest.CheckRun) string {
	var ids []string
	for _, a := range r.Actions {
		ids = append(ids, a.Identifier)
	}
	return strings.Join(ids, ",")
}

// TestCommandDeployComment proves a deploy a command asked for gets one comment on the issue
// the command was given on: created by the first report, then edited in place by every later
// one; a comment an earlier attempt recorded is edited, and never a second one made.
func TestCommandDeployComment(t *testing.T) {
	for _, tt := range []struct {
		name     string
		existing bool // an earlier attempt made the comment and recorded it
	}{
		{name: "first report comments"},
		{name: "recorded comment is edited", existing: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, config.Default())
			w.add(t, commandRequest("alpha"))
			made := 0
			if tt.existing {
				gh, err := w.clients.Installation(1)
				if err != nil {
					t.Fatal(err)
				}
				c, _, err := gh.Issues.CreateComment(context.Background(), "acme", "hello", 5, &github.IssueComment{Body: github.Ptr("⏳ deploying")})
				if err != nil {
					t.Fatal(err)
				}
				if err := w.st.SetComment(context.Background(), w.id, c.GetID()); err != nil {
					t.Fatal(err)
				}
				made = 1
			}
			steps := []string{"Preflight", "Build", "Rollout"}
			for i, state := range []deploy.State{deploy.Preflight, deploy.Building, deploy.RollingOut, deploy.Succeeded} {
				w.advance(t, state, steps[:min(i+1, len(steps))]...)
				w.report(t)
				comments := w.gh.Comments("acme/hello", 5)
				if len(comments) != 1 {
					t.Fatalf("after the %s report: %d comments on #5, want 1: %+v", state, len(comments), comments)
				}
				c := comments[0]
				if c.Edits != i+made || !strings.HasPrefix(c.Body, commandMarker(w.deploy(t))) {
					t.Errorf("after the %s report: comment edited %d times, want %d; body %q", state, c.Edits, i+made, c.Body)
				}
				if got := w.deploy(t).CommentID; got != c.ID {
					t.Errorf("deploy records comment %d, want %d", got, c.ID)
				}
			}
			if body := w.gh.Comments("acme/hello", 5)[0].Body; !strings.Contains(body, "is live on **alpha**") {
				t.Errorf("final comment does not say it is live:\n%s", body)
			}
			if n := w.gh.Count("issues/create-comment"); n != 1 {
				t.Errorf("%d comments created, want 1", n)
			}
		})
	}
}

// TestPRBuildReport proves a pull-request build is reported on its own check run,
// stagecoach/pr-build, and nowhere else: no GitHub Deployment (it deploys nothing) and no
// comment; once it ends, only a failure offers a button (Retry).
func TestPRBuildReport(t *testing.T) {
	for _, tt := range []struct {
		end        deploy.State
		conclusion string
		actions    string
	}{
		{deploy.Succeeded, "success", ""},
		{deploy.Failed, "failure", jobs.ActionRetry},
	} {
		t.Run(string(tt.end), func(t *testing.T) {
			w := newWorld(t, withHello())
			r := mergedPR
			r.Stage, r.Mode, r.Ref = deploy.PRStage(3), deploy.ModePRBuild, "login-page"
			r.Trigger = deploy.Trigger{Event: "pull_request", Delivery: "pr1", PR: 3, Actor: "dev"}
			w.add(t, r)
			w.advance(t, deploy.Preflight, "Preflight")
			w.report(t)
			w.advance(t, deploy.Building, "Preflight", "Build")
			w.report(t)
			w.advance(t, tt.end, "Preflight", "Build")
			w.report(t)
			run := w.checkRun(t)
			if run.Name != PRBuildCheck || run.Status != "completed" || run.Conclusion != tt.conclusion || actionIDs(run) != tt.actions {
				t.Errorf("check run %s %s/%s with buttons [%s]; want %s completed/%s with [%s]",
					run.Name, run.Status, run.Conclusion, actionIDs(run), PRBuildCheck, tt.conclusion, tt.actions)
			}
			if strings.Contains(run.Summary, "/compare/") {
				t.Errorf("a build links changes since a deploy:\n%s", run.Summary)
			}
			if n := len(w.gh.Deployments("acme/hello")) + w.gh.Count("repos/create-deployment"); n != 0 {
				t.Errorf("a pull-request build made GitHub Deployments: %+v", w.gh.Deployments("acme/hello"))
			}
			if n := w.gh.Count("issues/create-comment") + len(w.gh.Comments("acme/hello", 3)); n != 0 {
				t.Errorf("a pull-request build commented: %+v", w.gh.Comments("acme/hello", 3))
			}
		})
	}
}

// TestFinishedCheckRunButtons proves the check-run update of a finished deploy carries its
// buttons, and that of a running one none: a success on test promotes to alpha, and rolls back
// once something succeeded on test before it; a failure retries.
func TestFinishedCheckRunButtons(t *testing.T) {
	for _, tt := range []struct {
		name    string
		before  bool // a deploy of another commit succeeded on test first
		end     deploy.State
		actions string
	}{
		{name: "first success", end: deploy.Succeeded, actions: jobs.ActionPromote},
		{name: "success after another", before: true, end: deploy.Succeeded, actions: jobs.ActionPromote + "," + jobs.ActionRollback},
		{name: "failure", before: true, end: deploy.Failed, actions: jobs.ActionRetry},
		{name: "rolled back", end: deploy.RolledBack, actions: jobs.ActionRetry},
		{name: "running", before: true, end: deploy.RollingOut},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withHello())
			if tt.before {
				earlier := mergedPR
				earlier.SHA, earlier.Trigger.PR = oldSHA, 1
				w.add(t, earlier)
				w.advance(t, deploy.Succeeded, "Preflight", "Build", "Rollout")
			}
			w.add(t, mergedPR)
			w.advance(t, deploy.Preflight, "Preflight")
			w.advance(t, tt.end, "Preflight", "Build", "Rollout")
			w.report(t)
			run := w.checkRun(t)
			if got := actionIDs(run); got != tt.actions {
				t.Errorf("buttons [%s], want [%s]", got, tt.actions)
			}
			for _, a := range run.Actions {
				if a.Identifier == jobs.ActionPromote && a.Label != "Promote to alpha" {
					t.Errorf("promote button labelled %q", a.Label)
				}
			}
		})
	}
}

// TestDeployEndIsRecordedWithIt proves a deploy's end is handed to the release workflow as one
// jobs.KindDeployEnded job, recorded by the store in the transaction that ends the deploy (not by a
// report that could be lost), however often it is reported, and never for a deploy still running.
func TestDeployEndIsRecordedWithIt(t *testing.T) {
	push := mergedPR
	push.Stage, push.Ref, push.Trigger = "prod", "prod", deploy.Trigger{Event: "push", Delivery: "p1", Actor: "lead"}
	for _, tt := range []struct {
		name string
		req  deploy.Request
		end  deploy.State
		want int
	}{
		{"command to prod succeeded", commandRequest("prod"), deploy.Succeeded, 1},
		{"command to prod failed", commandRequest("prod"), deploy.Failed, 1},
		{"command to prod rolling out", commandRequest("prod"), deploy.RollingOut, 0},
		{"command to alpha succeeded", commandRequest("alpha"), deploy.Succeeded, 1},
		{"push to prod succeeded", push, deploy.Succeeded, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, config.Default())
			w.add(t, tt.req)
			w.advance(t, deploy.Preflight, "Preflight")
			w.advance(t, tt.end, "Preflight", "Build", "Rollout")
			w.report(t)
			w.report(t) // a retried report records nothing more
			pending, err := w.st.PendingJobs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := pending[jobs.KindDeployEnded]; got != tt.want {
				t.Fatalf("%d %s jobs, want %d", got, jobs.KindDeployEnded, tt.want)
			}
			if tt.want == 0 {
				return
			}
			j, _, err := w.st.ClaimJob(context.Background(), "test", []string{jobs.KindDeployEnded}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var got jobs.DeployEnded
			if err := json.Unmarshal(j.Payload, &got); err != nil {
				t.Fatal(err)
			}
			want := jobs.DeployEnded{DeployID: w.id, State: string(tt.end), App: "hello", Stage: tt.req.Stage, Repo: "acme/hello",
				InstallationID: 1, Issue: tt.req.Trigger.Issue, Command: tt.req.Trigger.Command(), Delivery: tt.req.Trigger.Delivery}
			if got != want {
				t.Errorf("deploy ended %+v, want %+v", got, want)
			}
		})
	}
}
