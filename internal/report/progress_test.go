package report

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/githubtest"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/pipeline"
	"github.com/stagecoach/stagecoach/internal/store"
)

// progressWorld is a real store with one deploy that has its check run, and the executors.
type progressWorld struct {
	st       *store.Store
	gh       *githubtest.Server
	progress *Progress
	id       int64
	lease    store.Lease
}

func newProgressWorld(t *testing.T) *progressWorld {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	gh := githubtest.New(t)
	f, err := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: "d1", Event: "pull_request"},
		Deploys: []deploy.Request{{App: "hello", Stage: "test", Repo: "acme/hello", SHA: "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
			InstallationID: 1, Trigger: deploy.Trigger{Event: "pull_request", PR: 2, Actor: "octocat"}}}})
	if err != nil {
		t.Fatal(err)
	}
	w := &progressWorld{st: st, gh: gh, id: rec.Deploys[0].ID,
		progress: NewProgress(st, f, cfg, "https://github.com", slog.New(slog.NewTextHandler(io.Discard, nil)))}
	creator := NewCheckRunCreator(st, f, "https://github.com", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := creator.Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	_, w.lease, err = st.ClaimDeploy(context.Background(), "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *progressWorld) job() jobs.Job {
	b, _ := json.Marshal(jobs.CheckRunCreate{DeployID: w.id})
	return jobs.Job{Kind: jobs.KindDeployReport, Payload: b}
}

// advance moves the deploy as the pipeline would, with steps up to the given ones.
func (w *progressWorld) advance(t *testing.T, state deploy.State, steps ...string) {
	t.Helper()
	cp := pipeline.Checkpoint{}
	for _, s := range steps {
		cp.Steps = append(cp.Steps, pipeline.StepRecord{Name: s, Status: pipeline.StepSucceeded})
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

func TestDeploymentStatusesCatchUp(t *testing.T) {
	w := newProgressWorld(t)
	// The report runs late: the deploy has already succeeded.
	w.advance(t, deploy.Preflight, "Preflight")
	w.advance(t, deploy.Building, "Preflight", "Build")
	w.advance(t, deploy.RollingOut, "Preflight", "Build", "Rollout")
	w.advance(t, deploy.Succeeded, "Preflight", "Build", "Rollout")
	if err := w.progress.Run(context.Background(), w.job()); err != nil {
		t.Fatal(err)
	}
	if got := w.statuses(); got != "queued,in_progress,success" {
		t.Errorf("statuses = %s", got)
	}
	// Running the report again sends nothing more and edits the one comment.
	if err := w.progress.Run(context.Background(), w.job()); err != nil {
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

func TestPreflightFailureIsNeverInProgress(t *testing.T) {
	w := newProgressWorld(t)
	w.advance(t, deploy.Failed, "Preflight")
	if err := w.progress.Run(context.Background(), w.job()); err != nil {
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
