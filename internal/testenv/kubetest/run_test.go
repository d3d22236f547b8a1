package kubetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// need skips (or, under CI=true, fails) a test that starts its own cluster without the binaries.
func need(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func TestAvailable(t *testing.T) {
	t.Setenv("STAGECOACH_K8S_BIN", "")
	t.Setenv("STAGECOACH_K8S_CACHE", t.TempDir())
	err := Available()
	if !errors.Is(err, ErrNoBinaries) || !strings.Contains(err.Error(), BuildCommand) {
		t.Errorf("Available() in an empty cache = %v; want ErrNoBinaries naming %s", err, BuildCommand)
	}
	if _, err := Run(context.Background()); !errors.Is(err, ErrNoBinaries) {
		t.Errorf("Run without binaries = %v, want ErrNoBinaries", err)
	}
}

// TestRunPrivateCluster starts a cluster of its own, as the sandbox does, uses it without a
// testing.TB, and stops it.
func TestRunPrivateCluster(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	mu.Lock()
	sh := shared
	mu.Unlock()
	if sh != nil && c.Kubeconfig() == sh.Kubeconfig() {
		t.Fatal("Run returned the shared cluster")
	}
	for range 2 { // a second call finds the namespace there and is fine with it
		if err := c.CreateNamespace(ctx, "sandbox-test"); err != nil {
			t.Fatal(err)
		}
	}
	cs := c.Clientset()
	if _, err := cs.CoreV1().ServiceAccounts("sandbox-test").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("default ServiceAccount: %v", err)
	}
	createComplete(t, cs, "sandbox-test") // pods really run (on kwok's nodes) and roll out
	dir := c.dir
	c.Stop()
	c.Stop() // twice is fine
	stopped = true
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "sandbox-test", metav1.GetOptions{}); err == nil {
		t.Error("the apiserver still answers after Stop")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster directory %s is still there: %v", dir, err)
	}
}

// TestRunCancelled gives up when ctx ends, leaving nothing behind.
func TestRunCancelled(t *testing.T) {
	need(t)
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "stagecoach-kube-*"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if c, err := Run(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		if c != nil {
			c.Stop()
		}
		t.Fatalf("Run with a 300 ms deadline = %v, want the deadline", err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "stagecoach-kube-*"))
	if len(after) != len(before) {
		t.Errorf("cluster directories: %d before, %d after a cancelled Run", len(before), len(after))
	}
}

// TestSharedClusterIgnoresStop: only Main and the package's Stop end the shared cluster.
func TestSharedClusterIgnoresStop(t *testing.T) {
	c := Start(t)
	c.Stop()
	if _, err := c.Clientset().Discovery().ServerVersion(); err != nil {
		t.Errorf("the shared cluster stopped: %v", err)
	}
}
