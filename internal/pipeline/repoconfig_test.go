package pipeline

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// repoConfigWorld is a world whose app's repository may set its buildspecs and Deployments.
func repoConfigWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	cfg, err := config.Parse("pipeline_test.yaml", []byte(w.cfgText+"    allowed_overrides: [stages.*.buildspec, stages.*.deployments]\n"))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	return w
}

// setRepoFile puts the repository's own file in force, as package repoconfig does.
func (w *world) setRepoFile(text string) {
	w.t.Helper()
	apps, err := w.cfg.ParseRepoFile("acme/hello", config.RepoFilePath, []byte(text))
	if err != nil {
		w.t.Fatal(err)
	}
	w.cfg.SetRepoApps("acme/hello", apps)
}

// A deploy runs to its end with the app configuration it started with: a repository's file
// that changes the buildspec and drops a Deployment while the deploy runs changes neither its
// build nor which Deployments it rolls out to (nor, on a failure, rolls back); the next deploy
// uses the new file.
func TestDeployKeepsTheConfigurationItStartedWith(t *testing.T) {
	w := repoConfigWorld(t)
	r := w.runner(w.st, "p1")
	first := w.request("d1", sha1)
	for range 2 { // queued -> preflight (pinned) -> building
		if _, err := r.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	w.setRepoFile(`apps:
  - name: hello
    stages:
      test:
        buildspec: ci/other.yml
        deployments: [{name: api, containers: [api]}]
`)
	d := w.drive(r, 90*time.Second, first)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	if b := w.aws.CodeBuild.Builds()[0]; b.Buildspec != "buildspec-eks.yaml" {
		t.Errorf("the running deploy built with %s, want the buildspec it started with", b.Buildspec)
	}
	for _, name := range []string{"api", "worker"} {
		if got := w.images(name); got != cp.Image {
			t.Errorf("%s runs %s, want %s: the running deploy rolled out to the Deployments it started with", name, got, cp.Image)
		}
	}

	second := w.request("d2", "2222222222222222222222222222222222222222")
	d = w.drive(r, 90*time.Second, second)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("second deploy = %s: %s", d.State, d.Error)
	}
	cp2, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	if b := w.aws.CodeBuild.Builds()[1]; b.Buildspec != "ci/other.yml" {
		t.Errorf("the next deploy built with %s, want the file's ci/other.yml", b.Buildspec)
	}
	if got := w.images("api"); got != cp2.Image {
		t.Errorf("api runs %s, want the next deploy's %s", got, cp2.Image)
	}
	if got := w.images("worker"); got != cp.Image {
		t.Errorf("worker runs %s: the next deploy changed a Deployment the file dropped", got)
	}
}

// readiness answers Ready from a switch.
type readiness struct {
	ready atomic.Bool
	asked atomic.Int32
}

func (f *readiness) Ready(_ context.Context, repo string) (bool, error) {
	f.asked.Add(1)
	return f.ready.Load() && repo == "acme/hello", nil
}

// While the repository's file is being read, a deploy does not start (nor pin anything); once
// the read is done it starts with what the read put in force.
func TestDeployWaitsWhileTheRepoFileIsRead(t *testing.T) {
	w := repoConfigWorld(t)
	rc := &readiness{}
	r := w.runner(w.st, "p1")
	r.o.RepoConfigs = rc
	r.o.Now = func() time.Time { return time.Now().Add(-time.Hour) } // each look again is due at once
	id := w.request("d1", sha1)
	for range 3 {
		if worked, err := r.RunOnce(context.Background()); err != nil || !worked {
			t.Fatalf("RunOnce: %v, %v", worked, err)
		}
	}
	d, err := w.st.Deploy(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	if d.State != deploy.Queued || len(cp.App) != 0 || rc.asked.Load() == 0 {
		t.Fatalf("while the file is read: %s, pinned %q, asked %d times", d.State, cp.App, rc.asked.Load())
	}
	w.setRepoFile("apps:\n  - name: hello\n    stages: {test: {buildspec: ci/merged.yml}}\n")
	rc.ready.Store(true)
	r.o.Now = time.Now
	d = w.drive(r, 90*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	if b := w.aws.CodeBuild.Builds()[0]; b.Buildspec != "ci/merged.yml" {
		t.Errorf("built with %s, want the file the read put in force", b.Buildspec)
	}
	if cp, _ := deploy.DecodeCheckpoint(d.Checkpoint); !strings.Contains(string(cp.App), "ci/merged.yml") {
		t.Errorf("pinned %s", cp.App)
	}
}
