package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// progressWorld is a real store with deploys that have their check runs, the GitHub test server,
// and the executors. id and lease are the newest deploy's.
type progressWorld struct {
	st       *store.Store
	gh       *githubtest.Server
	clients  *githubapp.Factory
	creator  *CheckRunCreator
	progress *Progress
	id       int64
	lease    store.Lease
	n        int // deliveries recorded
}

// mergedPR is the deploy to test of pull request #2's merge.
var mergedPR = deploy.Request{App: "hello", Stage: "test", Repo: "acme/hello", SHA: "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
	InstallationID: 1, Trigger: deploy.Trigger{Event: "pull_request", PR: 2, Actor: "octocat"}}

func newProgressWorld(t *testing.T) *progressWorld {
	t.Helper()
	w := newWorld(t, config.Default())
	w.add(t, mergedPR)
	return w
}

// newWorld is a world with no deploys yet, reporting with cfg.
func newWorld(t *testing.T, cfg *config.Config) *progressWorld {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gh := githubtest.New(t)
	f, err := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &progressWorld{st: st, gh: gh, clients: f,
		creator:  NewCheckRunCreator(st, f, "https://github.com", log),
		progress: NewProgress(st, f, cfg, "https://github.com", log)}
}

// add records r as a delivery would, gives it its check run and claims it as the pipeline would:
// it becomes the world's deploy. Earlier deploys must have ended or still hold their lease.
func (w *progressWorld) add(t *testing.T, r deploy.Request) {
	t.Helper()
	ctx := context.Background()
	w.n++
	rec, err := w.st.Record(ctx, store.Intake{Delivery: store.Delivery{ID: fmt.Sprintf("d%d", w.n), Event: r.Trigger.Event},
		Deploys: []deploy.Request{r}})
	if err != nil {
		t.Fatal(err)
	}
	w.id = rec.Deploys[0].ID
	b, _ := json.Marshal(jobs.CheckRunCreate{DeployID: w.id})
	if err := w.creator.Executor().Run(ctx, jobs.Job{Kind: jobs.KindCheckRunCreate, Payload: b}); err != nil {
		t.Fatal(err)
	}
	d, lease, err := w.st.ClaimDeploy(ctx, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != w.id {
		t.Fatalf("claimed deploy %d, want %d", d.ID, w.id)
	}
	w.lease = lease
}

// job is the report of the deploy as it stands, as the store records it with a change.
func (w *progressWorld) job() jobs.Job {
	d, _ := w.st.Deploy(context.Background(), w.id)
	b, _ := json.Marshal(jobs.DeployReport{DeployID: w.id, Seq: d.ReportSeq})
	return jobs.Job{Kind: jobs.KindDeployReport, Payload: b}
}

// advance moves the deploy as the pipeline would, with steps up to the given ones.
func (w *progressWorld) advance(t *testing.T, state deploy.State, steps ...string) {
	t.Helper()
	cp := deploy.Checkpoint{}
	for _, s := range steps {
		cp.Steps = append(cp.Steps, deploy.StepRecord{Name: s, Status: deploy.StepSucceeded})
	}
	b, _ := json.Marshal(cp)
	if err := w.st.Advance(context.Background(), w.lease, store.Update{State: state, Checkpoint: b}); err != nil {
		t.Fatal(err)
	}
}

func (w *progressWorld) statuses() string {
	var out []string
	for _, d := range w.gh.Deployments("acme/hello") {
		for _, s := range d.Statuses {
			out = append(out, s.State)
		}
	}
	return strings.Join(out, ",")
}

// TestDeploymentStatusesCatchUp proves a report that runs late still moves the GitHub Deployment
// through every status in order, and a second report sends nothing more and edits the comment.
func TestDeploymentStatusesCatchUp(t *testing.T) {
	w := newProgressWorld(t)
	// The report runs late: the deploy has already succeeded.
	w.advance(t, deploy.Preflight, "Preflight")
	w.advance(t, deploy.Building, "Preflight", "Build")
	w.advance(t, deploy.RollingOut, "Preflight", "Build", "Rollout")
	w.advance(t, deploy.Succeeded, "Preflight", "Build", "Rollout")
	if err := w.progress.Executor().Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	if got := w.statuses(); got != "queued,in_progress,success" {
		t.Errorf("statuses = %s", got)
	}
	// Running the report again sends nothing more and edits the one comment.
	if err := w.progress.Executor().Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	if got := w.statuses(); got != "queued,in_progress,success" {
		t.Errorf("statuses after a second report = %s", got)
	}
	comments := w.gh.Comments("acme/hello", 2)
	if len(comments) != 1 || comments[0].Edits != 1 || !strings.Contains(comments[0].Body, "live on **test**") {
		t.Errorf("comments = %+v", comments)
	}
	if n := len(w.gh.Deployments("acme/hello")); n != 1 {
		t.Errorf("%d GitHub Deployments, want 1", n)
	}
}

// TestPreflightFailureIsNeverInProgress proves a deploy that failed before building goes from
// queued straight to failure, never in_progress.
func TestPreflightFailureIsNeverInProgress(t *testing.T) {
	w := newProgressWorld(t)
	w.advance(t, deploy.Failed, "Preflight")
	if err := w.progress.Executor().Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	if got := w.statuses(); got != "queued,failure" {
		t.Errorf("statuses = %s, want queued,failure", got)
	}
	run := w.gh.CheckRuns("acme/hello")[0]
	if run.Status != "completed" || run.Conclusion != "failure" {
		t.Errorf("check run = %+v", run)
	}
}
