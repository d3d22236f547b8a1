package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const (
	nonprodRole = "arn:aws:iam::123456789012:role/stagecoach-nonprod"
	repoURI     = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"
	sha1        = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
)

// world is one scenario's real parts: a SQLite store, the AWS test servers and a namespace on
// the real control plane with the app's Deployments.
type world struct {
	t       *testing.T
	st      *store.Store
	aws     *awstest.Env
	cfg     *config.Config
	kc      *kubetest.Cluster
	ns      string
	dbPath  string
	cfgText string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	kc := kubetest.Start(t)
	w := &world{t: t, kc: kc, ns: kc.Namespace(t), aws: awstest.New(t)}
	w.aws.CodeBuild.SetScript(awstest.Script{PhaseDuration: 50 * time.Millisecond})
	w.aws.STS.Allow(nonprodRole, "")
	w.aws.Secrets.Add("hello/test")
	cfgText := fmt.Sprintf(`
credentials:
  nonprod: {role_arn: %q}
  prod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-prod"}
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod,
     kubernetes: {kubeconfig: %q, context: kubetest, namespace: %q}}
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: %s
    stages:
      test:
        buildspec: buildspec-eks.yaml
        secret_id: hello/test
        rollout_timeout: 2m
        deployments: [{name: api, containers: [api]}, {name: worker, containers: [worker]}]
`, nonprodRole, kc.Kubeconfig(), w.ns, repoURI)
	cfg, err := config.Parse("pipeline_test.yaml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.cfgText = cfgText
	w.dbPath = filepath.Join(t.TempDir(), "pipeline.db")
	w.st = w.openStore()
	cs := kc.Clientset()
	ctx := context.Background()
	for _, name := range []string{"api", "worker"} {
		if _, err := cs.AppsV1().Deployments(w.ns).Create(ctx, kubetest.Deployment(name, name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hello-env-key"}, Data: map[string][]byte{"key": []byte("k")}}
	if _, err := cs.CoreV1().Secrets(w.ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) openStore() *store.Store {
	st, err := store.Open(context.Background(), "sqlite:"+w.dbPath)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { st.Close() })
	return st
}

func (w *world) runner(st *store.Store, owner string) *Runner {
	return New(st, w.cfg, amazon.New(w.aws.Config(), w.cfg.Credentials), &KubeClusters{},
		Options{Owner: owner, LeaseTTL: 3 * time.Second, Poll: 20 * time.Millisecond, MinPoll: 100 * time.Millisecond, EndPoll: 100 * time.Millisecond,
			MaxPoll: 500 * time.Millisecond, FollowBudget: 2 * time.Second, ReportEvery: time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func (w *world) request(delivery, sha string) int64 {
	w.t.Helper()
	rec, err := w.st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: delivery, Event: "pull_request"},
		Deploys: []deploy.Request{{App: "hello", Stage: "test", Repo: "acme/hello", SHA: sha, Ref: "master", InstallationID: 1,
			Trigger: deploy.Trigger{Event: "pull_request", Delivery: delivery, PR: 2, Actor: "octocat"}}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return rec.Deploys[0].ID
}

// drive runs r until every deploy given has ended, or fails the test after limit.
func (w *world) drive(r *Runner, limit time.Duration, ids ...int64) []deploy.Deploy {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		var out []deploy.Deploy
		done := true
		for _, id := range ids {
			d, err := w.st.Deploy(context.Background(), id)
			if err != nil {
				w.t.Fatal(err)
			}
			out = append(out, d)
			done = done && d.State.Final()
		}
		if done {
			return out
		}
		worked, err := r.RunOnce(ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		if ctx.Err() != nil {
			w.t.Fatalf("deploys did not end within %s: %+v", limit, out)
		}
		if !worked {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (w *world) images(name string) string {
	d, err := w.kc.Clientset().AppsV1().Deployments(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

func TestDeploySucceedsPodByPod(t *testing.T) {
	w := newWorld(t)
	id := w.request("d1", sha1)
	d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	if !strings.HasPrefix(cp.Image, repoURI+"@sha256:") {
		t.Errorf("image = %q, want the digest of what was built", cp.Image)
	}
	for _, name := range []string{"api", "worker"} {
		if got := w.images(name); got != cp.Image {
			t.Errorf("%s runs %s, want %s", name, got, cp.Image)
		}
	}
	if n := w.aws.CodeBuild.StartBuildCalls(); n != 1 {
		t.Errorf("StartBuild called %d times", n)
	}
	b := w.aws.CodeBuild.Builds()[0]
	if b.SourceVersion != sha1 || b.Buildspec != "buildspec-eks.yaml" {
		t.Errorf("build = %+v", b)
	}
	if len(cp.Steps) != 3 || cp.Steps[2].Name != "Rollout" || cp.Steps[2].Status != deploy.StepSucceeded {
		t.Errorf("steps = %+v", cp.Steps)
	}
	// Every step change recorded its report with it, and the end its deploy.ended job.
	pending, err := w.st.PendingJobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("jobs recorded: %v", pending)
	if pending["deploy.report"] < 4 || pending["deploy.ended"] != 1 {
		t.Errorf("jobs = %v, want a report of each of the 4 step changes and the deploy's end", pending)
	}
}

func TestBuildFailsInBuildPhase(t *testing.T) {
	w := newWorld(t)
	w.aws.CodeBuild.SetScript(awstest.Script{PhaseDuration: 50 * time.Millisecond, FailIn: "BUILD", Message: "Error while executing command: docker build . Reason: exit status 1"})
	id := w.request("d1", sha1)
	d := w.drive(w.runner(w.st, "p1"), 60*time.Second, id)[0]
	if d.State != deploy.Failed || d.Error != "build failed in BUILD: Error while executing command: docker build . Reason: exit status 1" {
		t.Fatalf("deploy = %s: %q", d.State, d.Error)
	}
	if got := w.images("api"); got != "registry.example/api:v1" {
		t.Errorf("a failed build changed the image to %s", got)
	}
}

func TestMissingSecretFailsPreflight(t *testing.T) {
	w := newWorld(t)
	w.aws = awstest.New(t) // a fresh AWS without the stage's secret
	w.aws.STS.Allow(nonprodRole, "")
	id := w.request("d1", sha1)
	d := w.drive(w.runner(w.st, "p1"), 30*time.Second, id)[0]
	want := "preflight: secret hello/test not found in Secrets Manager (eu-west-1) (credentials tier nonprod)"
	if d.State != deploy.Failed || d.Error != want {
		t.Fatalf("deploy = %s: %q, want %q", d.State, d.Error, want)
	}
	if n := w.aws.CodeBuild.StartBuildCalls(); n != 0 {
		t.Errorf("a build started despite the missing secret")
	}
}

func TestCrashLoopIsRolledBack(t *testing.T) {
	w := newWorld(t)
	// The build pushes an image whose rollout crash-loops: its tag marks it broken.
	w.cfg.Apps[0].ImageReference = "tag"
	id := w.request("d1", "broken")
	d := w.drive(w.runner(w.st, "p1"), 120*time.Second, id)[0]
	if d.State != deploy.RolledBack || !strings.Contains(d.Error, "progress deadline exceeded") {
		t.Fatalf("deploy = %s: %q", d.State, d.Error)
	}
	for _, name := range []string{"api", "worker"} {
		if got := w.images(name); got != "registry.example/"+name+":v1" {
			t.Errorf("%s runs %s after the rollback", name, got)
		}
	}
}

func TestNewestWinsWhileADeployRuns(t *testing.T) {
	w := newWorld(t)
	first := w.request("d1", sha1)
	r := w.runner(w.st, "p1")
	// Advance the first deploy into its build, then two more merges arrive.
	for i := 0; i < 3; i++ {
		if _, err := r.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	second := w.request("d2", "2222222222222222222222222222222222222222")
	third := w.request("d3", "3333333333333333333333333333333333333333")
	ds := w.drive(r, 120*time.Second, first, second, third)
	if ds[0].State != deploy.Succeeded || ds[1].State != deploy.Superseded || ds[1].SupersededBy != third || ds[2].State != deploy.Succeeded {
		t.Fatalf("states = %s, %s (by %d), %s", ds[0].State, ds[1].State, ds[1].SupersededBy, ds[2].State)
	}
	if n := len(w.aws.CodeBuild.Builds()); n != 2 {
		t.Errorf("%d builds, want 2 (the superseded deploy never builds)", n)
	}
}

func TestPollSchedule(t *testing.T) {
	r := New(nil, nil, nil, nil, Options{}, nil)
	for _, tt := range []struct {
		elapsed, expected, want time.Duration
	}{
		{0, 0, 5 * time.Second},                                          // at first
		{20 * time.Second, 0, 5 * time.Second},                           // still early
		{2 * time.Minute, 0, 30 * time.Second},                           // no history: never slower than 30 s
		{2 * time.Minute, 10 * time.Minute, 30 * time.Second},            // far from the expected end
		{9*time.Minute + 45*time.Second, 10 * time.Minute, time.Second},  // near it
		{10*time.Minute + 20*time.Second, 10 * time.Minute, time.Second}, // just past it
		{12 * time.Minute, 10 * time.Minute, 30 * time.Second},           // long past it
		{10 * time.Second, 20 * time.Second, time.Second},                // a short build ends soon
	} {
		if got := r.nextPoll(tt.elapsed, tt.expected); got != tt.want {
			t.Errorf("nextPoll(%s, expected %s) = %s, want %s", tt.elapsed, tt.expected, got, tt.want)
		}
	}
}
