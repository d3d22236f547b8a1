package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// deploys is an in-memory Deploys.
type deploys struct {
	mu     sync.Mutex
	m      map[int64]deploy.Deploy
	writes map[string]int64
}

func (d *deploys) BeginWrite(_ context.Context, key string) (store.Write, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writes == nil {
		d.writes = map[string]int64{}
	}
	id, ok := d.writes[key]
	d.writes[key] = id
	return store.Write{Attempted: ok, ObjectID: id}, nil
}

func (d *deploys) EndWrite(_ context.Context, key string, id int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes[key] = id
	return nil
}

func (d *deploys) Deploy(_ context.Context, id int64) (deploy.Deploy, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x, ok := d.m[id]
	if !ok {
		return deploy.Deploy{}, errors.New("not found")
	}
	return x, nil
}

func (d *deploys) SetCheckRun(_ context.Context, id, cr int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	x := d.m[id]
	x.CheckRunID = cr
	d.m[id] = x
	return nil
}

func setup(t *testing.T, ds ...deploy.Deploy) (*CheckRunCreator, *githubtest.Server, *deploys) {
	t.Helper()
	gh := githubtest.New(t)
	f, err := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	ds0 := &deploys{m: map[int64]deploy.Deploy{}}
	for _, d := range ds {
		ds0.m[d.ID] = d
	}
	return NewCheckRunCreator(ds0, f, "https://github.com", slog.New(slog.NewTextHandler(io.Discard, nil))), gh, ds0
}

func job(id int64) jobs.Job {
	return jobs.Job{Kind: jobs.KindCheckRunCreate, Payload: (fmt.Appendf(nil, `{"deploy_id":%d}`, id))}
}

func testDeploy(id int64, state deploy.State) deploy.Deploy {
	return deploy.Deploy{ID: id, State: state, SupersededBy: 12, Request: deploy.Request{App: "hello", Stage: "test",
		Repo: "acme/hello", SHA: "c4295bd74fb0f4fda03689c3df3f2803b658fd85", InstallationID: 1,
		Trigger: deploy.Trigger{Event: "pull_request", PR: 2, Actor: "octocat"}}}
}

func TestCreatesQueuedCheckRun(t *testing.T) {
	c, gh, store := setup(t, testDeploy(11, deploy.Queued))
	if err := c.Executor().Run(context.Background(), job(11)); err != nil {
		t.Fatal(err)
	}
	runs := gh.CheckRuns("acme/hello")
	if len(runs) != 1 {
		t.Fatalf("check runs = %+v", runs)
	}
	r := runs[0]
	if r.Name != "stagecoach/test" || r.Status != "queued" || r.ExternalID != "11" || r.Title != "Queued for test" ||
		!strings.HasPrefix(r.Summary, "**hello** `c4295bd` → **test** · deploy #11 · requested by @octocat via #2") {
		t.Errorf("check run = %+v", r)
	}
	if d, _ := store.Deploy(context.Background(), 11); d.CheckRunID != r.ID {
		t.Errorf("deploy check run = %d, want %d", d.CheckRunID, r.ID)
	}
	// Running it again (an attempt whose success was not recorded) makes no second check run.
	if err := c.Executor().Run(context.Background(), job(11)); err != nil {
		t.Fatal(err)
	}
	if n := gh.Count("checks/create"); n != 1 {
		t.Errorf("created %d check runs, want 1", n)
	}
}

func TestSupersededBeforeReportIsSkipped(t *testing.T) {
	c, gh, _ := setup(t, testDeploy(11, deploy.Superseded))
	if err := c.Executor().Run(context.Background(), job(11)); err != nil {
		t.Fatal(err)
	}
	r := gh.CheckRuns("acme/hello")[0]
	if r.Status != "completed" || r.Conclusion != "skipped" || r.Title != "Superseded by deploy #12 before it started" {
		t.Errorf("check run = %+v", r)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name     string
		fault    func(gh *githubtest.Server)
		terminal bool
		after    time.Duration // minimum RetryAfter, 0 for plain backoff
	}{
		{"GitHub down", func(gh *githubtest.Server) { gh.SetDown(true) }, false, 0},
		{"502", func(gh *githubtest.Server) { gh.FailNext("checks/create", 1, 502) }, false, 0},
		{"422", func(gh *githubtest.Server) { gh.FailNext("checks/create", 1, 422) }, true, 0},
		{"404", func(gh *githubtest.Server) { gh.FailNext("checks/create", 1, 404) }, true, 0},
		{"secondary rate limit", func(gh *githubtest.Server) { gh.SecondaryRateLimit(2, 42*time.Second) }, false, 42 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, gh, _ := setup(t, testDeploy(11, deploy.Queued))
			tt.fault(gh)
			err := c.Executor().Run(context.Background(), job(11))
			if err == nil {
				t.Fatal("no error")
			}
			if jobs.IsTerminal(err) != tt.terminal {
				t.Errorf("terminal = %v, want %v: %v", jobs.IsTerminal(err), tt.terminal, err)
			}
			var ra *jobs.RetryAfterError
			if tt.after > 0 && (!errors.As(err, &ra) || ra.After < tt.after) {
				t.Errorf("want RetryAfter ≥ %s, got %v", tt.after, err)
			}
		})
	}
}

func TestMissingInstallationIsTerminal(t *testing.T) {
	d := testDeploy(11, deploy.Queued)
	d.InstallationID = 0
	c, _, _ := setup(t, d)
	if err := c.Executor().Run(context.Background(), job(11)); !jobs.IsTerminal(err) {
		t.Errorf("got %v, want terminal", err)
	}
}
