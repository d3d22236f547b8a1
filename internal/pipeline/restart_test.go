package pipeline

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKilledAndRestarted runs the pipeline in a real child process, kills it with SIGKILL in the
// middle of a deploy, and lets a fresh runner (another process's worth of state: a new store
// handle, a new owner) finish: exactly one build is started and the image changes once.
func TestKilledAndRestarted(t *testing.T) {
	if os.Getenv("STAGECOACH_PIPELINE_CHILD") != "" {
		t.Skip("child process")
	}
	for _, tt := range []struct {
		name       string
		killed     func(w *world, id int64) bool
		startCalls int
	}{
		{"during the build", func(w *world, id int64) bool { return w.checkpoint(id).BuildID != "" }, 1},
		// Killed after CodeBuild answered but before the build id was saved: the restarted
		// runner calls StartBuild again with the same idempotency token and gets the same build.
		{"between StartBuild and its checkpoint", func(w *world, _ int64) bool { return w.aws.CodeBuild.StartBuildCalls() == 1 }, 2},
		{"during the rollout", func(w *world, _ int64) bool { return w.generation("api") == 2 }, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			// A build long enough to be killed in, short enough for a test.
			w.aws.CodeBuild.SetScript(awstest.Script{PhaseDuration: 200 * time.Millisecond})
			id := w.request("d1", sha1)
			cfgFile := filepath.Join(t.TempDir(), "stagecoach.yaml")
			if err := os.WriteFile(cfgFile, []byte(w.cfgText), 0o600); err != nil {
				t.Fatal(err)
			}
			child := exec.Command(os.Args[0], "-test.run=^TestPipelineChildProcess$", "-test.count=1")
			child.Env = append(os.Environ(), "STAGECOACH_PIPELINE_CHILD=1", "STAGECOACH_PIPELINE_DB="+w.dbPath,
				"STAGECOACH_PIPELINE_CONFIG="+cfgFile, "STAGECOACH_PIPELINE_AWS="+w.aws.URL())
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for !tt.killed(w, id) {
				if time.Now().After(deadline) {
					child.Process.Kill()
					t.Fatal("the child never reached the point to kill it at")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = child.Wait()
			before, _ := w.st.Deploy(context.Background(), id)
			t.Logf("killed with the deploy %s", before.State)
			if before.State.Final() {
				t.Fatalf("the deploy ended before the kill: %s", before.State)
			}
			d := w.drive(w.runner(w.openStore(), "restarted"), 90*time.Second, id)[0]
			if d.State != deploy.Succeeded {
				t.Fatalf("after the restart: %s: %s", d.State, d.Error)
			}
			if n := len(w.aws.CodeBuild.Builds()); n != 1 {
				t.Errorf("%d builds, want exactly 1", n)
			}
			if n := w.aws.CodeBuild.StartBuildCalls(); n > tt.startCalls {
				t.Errorf("StartBuild called %d times, want at most %d", n, tt.startCalls)
			}
			for _, name := range []string{"api", "worker"} {
				if g := w.generation(name); g != 2 {
					t.Errorf("%s at generation %d: want exactly one image change (2)", name, g)
				}
			}
		})
	}
}

func (w *world) checkpoint(id int64) deploy.Checkpoint {
	d, err := w.st.Deploy(context.Background(), id)
	if err != nil {
		return deploy.Checkpoint{}
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	return cp
}

func (w *world) generation(name string) int64 {
	d, err := w.kc.Clientset().AppsV1().Deployments(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return 0
	}
	return d.Generation
}

// TestPipelineChildProcess is the child of TestKilledAndRestarted: a runner until killed.
func TestPipelineChildProcess(t *testing.T) {
	if os.Getenv("STAGECOACH_PIPELINE_CHILD") == "" {
		t.Skip("only runs as the child of TestKilledAndRestarted")
	}
	cfg, err := config.Load(os.Getenv("STAGECOACH_PIPELINE_CONFIG"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+os.Getenv("STAGECOACH_PIPELINE_DB"))
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(os.Getenv("STAGECOACH_PIPELINE_AWS")),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSTAGECOACHTEST", "test-secret-key", "")}
	r := New(st, cfg, amazon.New(awsCfg, cfg.Credentials), &KubeClusters{},
		Options{Owner: "child", LeaseTTL: 3 * time.Second, Poll: 20 * time.Millisecond, MinPoll: 100 * time.Millisecond, EndPoll: 100 * time.Millisecond,
			MaxPoll: 500 * time.Millisecond, FollowBudget: 2 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_ = r.Run(context.Background()) // until killed
}
