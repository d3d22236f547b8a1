package report

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

const helloTestURL = "https://test.hello.acme.dev/"

// withEnvironmentURL is hello on test, alpha and prod, with test's environment_url set, and
// worker, another app of the repository, on test.
func withEnvironmentURL() *config.Config {
	cfg := config.Default()
	cfg.Apps = []config.App{{Name: "hello", Repo: "acme/hello",
		Stages: map[string]config.AppStage{"test": {EnvironmentURL: helloTestURL}, "alpha": {}, "prod": {}}},
		{Name: "worker", Repo: "acme/hello", Stages: map[string]config.AppStage{"test": {}}}}
	return cfg
}

// succeed records r as the world's deploy, moves it to success and runs its report.
func (w *progressWorld) succeed(t *testing.T, r deploy.Request) int64 {
	t.Helper()
	w.add(t, r)
	w.advance(t, deploy.Preflight, "Preflight")
	w.advance(t, deploy.Building, "Preflight", "Build")
	w.advance(t, deploy.Succeeded, "Preflight", "Build", "Rollout")
	if err := w.progress.Executor().Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	return w.id
}

// reportAgain runs deploy id's report as it stands, as a late or repeated job would.
func (w *progressWorld) reportAgain(t *testing.T, id int64) error {
	t.Helper()
	cur := w.id
	w.id = id
	j := w.job()
	w.id = cur
	return w.progress.Executor().Run(context.Background(), j)
}

// ghDeployment is the GitHub Deployment the test server holds for deploy id.
func (w *progressWorld) ghDeployment(t *testing.T, id int64) githubtest.Deployment {
	t.Helper()
	for _, d := range w.gh.Deployments("acme/hello") {
		if strings.Contains(d.Payload, fmt.Sprintf(`"stagecoach_deploy":%d,`, id)) || strings.Contains(d.Payload, fmt.Sprintf(`"stagecoach_deploy":%d}`, id)) {
			return d
		}
	}
	t.Fatalf("no GitHub Deployment for deploy %d", id)
	return githubtest.Deployment{}
}

func states(d githubtest.Deployment) string {
	var out []string
	for _, s := range d.Statuses {
		out = append(out, s.State)
	}
	return strings.Join(out, ",")
}

func commit(n int) deploy.Request {
	r := mergedPR
	r.SHA, r.Trigger.PR = fmt.Sprintf("%040x", 0xc0ffee00+n), 10+n
	return r
}

// TestSuccessMarksThePreviousDeploymentInactive: GitHub's auto_inactive retires earlier
// Deployments only outside production environments, and every app's of the environment at once.
// Stagecoach sends auto_inactive: false and marks the app's previous Deployment inactive itself,
// once, after the new success: GitHub's environment shows one live deploy per app, on every stage.
func TestSuccessMarksThePreviousDeploymentInactive(t *testing.T) {
	w := newWorld(t, withEnvironmentURL())
	failed := commit(0)
	w.add(t, failed)
	w.advance(t, deploy.Failed, "Preflight")
	if err := w.progress.Executor().Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	failedID := w.id
	first := w.succeed(t, commit(1))
	second := w.succeed(t, commit(2))

	if got := states(w.ghDeployment(t, first)); got != "queued,in_progress,success,inactive" {
		t.Errorf("deploy %d's (replaced) statuses = %s, want queued,in_progress,success,inactive", first, got)
	}
	if got := states(w.ghDeployment(t, second)); got != "queued,in_progress,success" {
		t.Errorf("deploy %d's (live) statuses = %s", second, got)
	}
	if got := states(w.ghDeployment(t, failedID)); got != "queued,failure" {
		t.Errorf("the failed deploy's statuses = %s: only successes are retired", got)
	}
	for _, d := range w.gh.Deployments("acme/hello") {
		for _, s := range d.Statuses {
			if s.AutoInactive == nil || *s.AutoInactive {
				t.Errorf("status %s of Deployment %d left auto_inactive to GitHub", s.State, d.ID)
			}
		}
	}
	if d, _ := w.st.Deploy(context.Background(), first); d.GitHubDeploymentStatus != "inactive" {
		t.Errorf("the store has deploy %d's Deployment %q, want inactive", first, d.GitHubDeploymentStatus)
	}
	if probs := w.gh.Problems(); len(probs) > 0 {
		t.Errorf("GitHub saw requests outside its description: %v", probs)
	}

	// Late and repeated reports of the replaced deploy never make it live again.
	for range 2 {
		if err := w.reportAgain(t, first); err != nil {
			t.Fatal(err)
		}
	}
	if got := states(w.ghDeployment(t, first)); got != "queued,in_progress,success,inactive" {
		t.Errorf("after late reports deploy %d's statuses = %s: a replaced deploy was re-activated", first, got)
	}
	if err := w.reportAgain(t, second); err != nil {
		t.Fatal(err)
	}
	if got := states(w.ghDeployment(t, second)) + "|" + states(w.ghDeployment(t, first)); got != "queued,in_progress,success|queued,in_progress,success,inactive" {
		t.Errorf("a repeated report of the live deploy sent more: %s", got)
	}
}

// TestALateSuccessNeverReactivatesAnOlderDeploy: the report of an older deploy's success runs
// only after a newer deploy of the environment was reported live. It ends inactive and leaves
// the newer one live.
func TestALateSuccessNeverReactivatesAnOlderDeploy(t *testing.T) {
	w := newWorld(t, withEnvironmentURL())
	w.add(t, commit(1))
	w.advance(t, deploy.Preflight, "Preflight")
	w.advance(t, deploy.Building, "Preflight", "Build")
	w.advance(t, deploy.Succeeded, "Preflight", "Build", "Rollout")
	old := w.id // its reports have not run
	newer := w.succeed(t, commit(2))
	if err := w.reportAgain(t, old); err != nil {
		t.Fatal(err)
	}
	if got := states(w.ghDeployment(t, old)); got != "queued,in_progress,inactive" {
		t.Errorf("the late deploy's statuses = %s, want queued,in_progress,inactive", got)
	}
	if got := states(w.ghDeployment(t, newer)); got != "queued,in_progress,success" {
		t.Errorf("the live deploy's statuses = %s", got)
	}
}

// TestRetiringSurvivesAFailedCall: GitHub fails the inactive status after the new success went
// out and was recorded. The retried report sends no second success and retires the old one once.
func TestRetiringSurvivesAFailedCall(t *testing.T) {
	w := newWorld(t, withEnvironmentURL())
	first := w.succeed(t, commit(1))
	w.add(t, commit(2))
	w.advance(t, deploy.Succeeded, "Preflight", "Build", "Rollout")
	w.gh.BeforeAnswer(func(req githubtest.Request) {
		if req.Operation == "repos/create-deployment-status" && strings.Contains(string(req.Body), `"success"`) {
			w.gh.FailNext("repos/create-deployment-status", 1, http.StatusBadGateway)
		}
	})
	err := w.progress.Executor().Run(context.Background(), w.job())
	w.gh.BeforeAnswer(nil)
	if err == nil || jobs.IsTerminal(err) {
		t.Fatalf("report with GitHub failing = %v, want a transient error", err)
	}
	if err := w.progress.Executor().Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	if got := states(w.ghDeployment(t, first)) + "|" + states(w.ghDeployment(t, w.id)); got != "queued,in_progress,success,inactive|queued,in_progress,success" {
		t.Errorf("statuses (replaced|live) = %s", got)
	}
}

// TestDeploymentStatusesLinkTheEnvironmentAndTheCheckRun: every status but inactive carries the
// app's environment_url on the stage (GitHub's "View deployment"), and log_url is the deploy's
// check run, its details; a stage without environment_url sends none. The check run links the
// environment too.
func TestDeploymentStatusesLinkTheEnvironmentAndTheCheckRun(t *testing.T) {
	w := newWorld(t, withEnvironmentURL())
	first := w.succeed(t, commit(1))
	second := w.succeed(t, commit(2))
	onAlpha := commit(3)
	onAlpha.Stage = "alpha"
	alpha := w.succeed(t, onAlpha)
	for _, id := range []int64{first, second, alpha} {
		d, err := w.st.Deploy(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		wantEnv := helloTestURL
		if d.Stage == "alpha" {
			wantEnv = ""
		}
		wantLog := fmt.Sprintf("https://github.com/acme/hello/runs/%d", d.CheckRunID)
		for _, run := range w.gh.CheckRuns("acme/hello") {
			if run.ID == d.CheckRunID && strings.Contains(run.Summary, "[Open ") != (wantEnv != "") {
				t.Errorf("deploy %d's check run on %s, with environment_url %q:\n%s", id, d.Stage, wantEnv, run.Summary)
			}
			if run.ID == d.CheckRunID && wantEnv != "" && !strings.Contains(run.Summary, "[Open test](<"+helloTestURL+">)") {
				t.Errorf("deploy %d's check run does not link %s:\n%s", id, helloTestURL, run.Summary)
			}
		}
		for _, s := range w.ghDeployment(t, id).Statuses {
			env, log := wantEnv, wantLog
			if s.State == "inactive" { // retired by the second deploy: it links to that one
				env, log = "", fmt.Sprintf("https://github.com/acme/hello/runs/%d", mustDeploy(t, w, second).CheckRunID)
			}
			if s.EnvironmentURL != env || s.LogURL != log {
				t.Errorf("deploy %d on %s, status %s: environment_url %q log_url %q, want %q and %q", id, d.Stage, s.State, s.EnvironmentURL, s.LogURL, env, log)
			}
		}
	}
}

func mustDeploy(t *testing.T, w *progressWorld, id int64) deploy.Deploy {
	t.Helper()
	d, err := w.st.Deploy(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSuccessRetiresOnlyItsOwnAppsDeploymentOnEveryStage: where GitHub's auto_inactive would
// leave prod's previous Deployment active (a production environment) and retire another app's
// Deployment of the same stage, a success retires exactly its own app's previous one, on prod too.
func TestSuccessRetiresOnlyItsOwnAppsDeploymentOnEveryStage(t *testing.T) {
	w := newWorld(t, withEnvironmentURL())
	worker := commit(0)
	worker.App = "worker"
	workerID := w.succeed(t, worker)
	first := w.succeed(t, commit(1))
	onProd := func(n int) deploy.Request {
		r := commit(n)
		r.Stage = "prod"
		return r
	}
	prod1 := w.succeed(t, onProd(2))
	prod2 := w.succeed(t, onProd(3))
	if got := states(w.ghDeployment(t, workerID)); got != "queued,in_progress,success" {
		t.Errorf("worker's Deployment on test = %s: hello's success retired another app's", got)
	}
	if got := states(w.ghDeployment(t, first)); got != "queued,in_progress,success" {
		t.Errorf("hello's on test = %s: a prod deploy retired another stage's", got)
	}
	if got := states(w.ghDeployment(t, prod1)); got != "queued,in_progress,success,inactive" {
		t.Errorf("the replaced prod Deployment = %s, want it inactive", got)
	}
	if d := w.ghDeployment(t, prod2); d.Production == nil || !*d.Production || states(d) != "queued,in_progress,success" {
		t.Errorf("the live prod Deployment = %s (production %v)", states(d), d.Production)
	}
}

// TestKilledAfterRetiringSendsNoSecondInactive: a replica posts the inactive status of the
// deploy a success replaced and dies before recording it; the replica that takes the report
// over finds that status on GitHub instead of sending another, and the environment ends with the
// new deploy live and the old one inactive once.
func TestKilledAfterRetiringSendsNoSecondInactive(t *testing.T) {
	r := newReplicas(t, 1)
	var dead atomic.Bool
	victim := r.runner(deadStore{r.open(), &dead}, "victim")
	run := func(req deploy.Request, delivery string) int64 {
		id := r.request(req, delivery)
		l := r.claim(id)
		r.step(l, deploy.Preflight, "Preflight")
		r.step(l, deploy.Building, "Preflight", "Build")
		r.step(l, deploy.Succeeded, "Preflight", "Build", "Rollout")
		return id
	}
	id1 := run(mergedPR, "merge-1")
	r.drain()
	second := mergedPR
	second.SHA, second.Trigger.PR = "d00dfeed00000000000000000000000000000000", 3
	id2 := run(second, "merge-2")
	r.gh.BeforeAnswer(func(req githubtest.Request) {
		if req.Operation == "repos/create-deployment-status" && strings.Contains(string(req.Body), `"inactive"`) {
			dead.Store(true)
		}
	})
	for !dead.Load() {
		if worked, err := victim.RunOne(context.Background()); !worked || (err != nil && !errors.Is(err, errKilled)) {
			t.Fatalf("the victim's run: %v %v", worked, err)
		}
	}
	r.gh.BeforeAnswer(nil)
	r.advanceClock(2 * time.Minute)
	r.drain()
	byDeploy := map[int64]string{}
	for _, d := range r.gh.Deployments("acme/hello") {
		for _, id := range []int64{id1, id2} {
			if strings.Contains(d.Payload, fmt.Sprintf(`"stagecoach_deploy":%d}`, id)) || strings.Contains(d.Payload, fmt.Sprintf(`"stagecoach_deploy":%d,`, id)) {
				byDeploy[id] = states(d)
			}
		}
	}
	if byDeploy[id1] != "queued,in_progress,success,inactive" || byDeploy[id2] != "queued,in_progress,success" {
		t.Errorf("statuses: deploy %d %s, deploy %d %s", id1, byDeploy[id1], id2, byDeploy[id2])
	}
	if d := r.deploy(id1); d.GitHubDeploymentStatus != "inactive" {
		t.Errorf("the store has deploy %d %q, want inactive", id1, d.GitHubDeploymentStatus)
	}
}
