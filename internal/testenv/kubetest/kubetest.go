// Package kubetest runs a real Kubernetes control plane for tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (simulated nodes and pod lifecycles), as
// processes on 127.0.0.1, from the binaries scripts/k8s/build.sh builds and caches. There is no
// kubelet: kwok plays every node's part by the Stages in stages.yaml.
//
// In tests the cluster starts once per test binary, on the first Start, and Main (or Stop) ends
// it. Every test takes its own namespace from Namespace. Without the binaries, Start fails the
// test under CI=true and skips it otherwise, naming the command that builds them.
//
// Outside tests (`stagecoach sandbox`), Available says whether the binaries are built, Run
// starts a private cluster by the same code path, CreateNamespace makes namespaces in it, and
// the caller ends it with Cluster.Stop.
//
// Pod behaviour, decided by kwok from the pod alone:
//   - a pod becomes Ready about 1 s after it is scheduled; the annotation
//     "pod-ready.stage.kwok.x-k8s.io/delay" (a Go duration, e.g. "3s") changes that per pod;
//   - a pod whose first container's image tag is "broken" or starts with "broken-" (image
//     "…:broken", "…:broken-prod-7", see BrokenTag)
//     goes into CrashLoopBackOff and never becomes Ready;
//   - a deleted pod goes away about 0.2 s later, as if its kubelet had confirmed it.
package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// Context is the name of the context (and cluster) in the file Kubeconfig returns.
	Context = "kubetest"
	// ReadyDelayAnnotation sets how long after scheduling a pod becomes Ready, as a Go duration.
	ReadyDelayAnnotation = "pod-ready.stage.kwok.x-k8s.io/delay"
	// BrokenTag is the image tag that makes a pod crash-loop and never become Ready; so does a
	// tag that starts with it and a dash, as the pipeline tags a build of a commit named "broken".
	BrokenTag = "broken"
)

// Cluster is a running control plane: the one Start shares with every test in the binary, or
// a private one from Run.
type Cluster struct {
	dir        string // logs, certificates, keys and the kubeconfig
	etcdData   string // on /dev/shm when there is one
	kubeconfig string
	rest       *rest.Config
	cs         *kubernetes.Clientset
	procs      []*proc // in start order
	startup    time.Duration
	keep       bool // keep dir when stopping (a failed start)
	shared     bool // Start's cluster, which only Main and Stop end
	stopOnce   sync.Once
}

var (
	once     sync.Once
	mu       sync.Mutex // guards shared against a Stop racing a late Start
	shared   *Cluster
	startErr error
	nsCount  atomic.Int64
)

// Start returns the shared cluster, starting it on the first call. When the binaries are
// missing it fails tb under CI=true (a CI run must never pass by skipping) and skips tb
// otherwise; any other failure to start fails tb.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	first := false
	once.Do(func() {
		first = true
		c, err := start(context.Background())
		if c != nil {
			c.shared = true
		}
		mu.Lock()
		shared, startErr = c, err
		mu.Unlock()
	})
	mu.Lock()
	c, err := shared, startErr
	mu.Unlock()
	switch {
	case errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == "true":
		tb.Fatalf("kubetest: CI=true needs the Kubernetes test control plane: %v (build it with %s)", err, BuildCommand)
	case errors.Is(err, ErrNoBinaries):
		tb.Skipf("kubetest: %v; run %s to build them (about 9 minutes, once per machine)", err, BuildCommand)
	case err != nil:
		tb.Fatalf("kubetest: starting the control plane: %v", err)
	case c == nil:
		tb.Fatal("kubetest: the control plane was already stopped")
	}
	if first {
		tb.Logf("kubetest: control plane up in %s (logs in %s)", c.startup.Round(time.Millisecond), c.dir)
	}
	return c
}

// Main runs the tests, then stops the cluster and exits. Use it as TestMain:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop ends the cluster if it was started, for a TestMain that has other things to stop too.
// Components stop before etcd, and the temporary directories are removed unless
// STAGECOACH_KUBETEST_KEEP is set (then the path of the component logs is printed).
func Stop() {
	mu.Lock()
	c := shared
	shared = nil
	mu.Unlock()
	if c != nil {
		c.stopOnce.Do(c.stop)
	}
}

// Available reports whether the control-plane binaries are built: nil when Run (and Start)
// can start a cluster, otherwise an error (wrapping ErrNoBinaries when they are missing) that
// names BuildCommand.
func Available() error {
	if _, err := BinDir(); err != nil {
		return fmt.Errorf("kubetest: %w; build them with %s (about 9 minutes, once per machine)", err, BuildCommand)
	}
	return nil
}

// Run starts a private cluster, as Start starts the shared one, for callers outside tests. It
// takes up to a minute; ctx bounds it. The caller ends the cluster with Stop (the components
// also die with the process that started them).
func Run(ctx context.Context) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	c, err := start(ctx)
	if err != nil {
		return nil, fmt.Errorf("kubetest: starting the control plane: %w", err)
	}
	return c, nil
}

// Stop ends a cluster from Run: its components stop, etcd last, and its directories are
// removed unless STAGECOACH_KUBETEST_KEEP is set. Later calls do nothing, and so does a call on
// the shared cluster of Start, which Main and the package's Stop end.
func (c *Cluster) Stop() {
	if c.shared {
		return
	}
	c.stopOnce.Do(c.stop)
}

// RestConfig is a copy of the admin client configuration (system:masters, TLS verified
// against the apiserver's self-signed CA).
func (c *Cluster) RestConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Kubeconfig is the path of a kubeconfig file whose current context, named Context, is the
// admin of this cluster.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// Clientset is an admin clientset.
func (c *Cluster) Clientset() *kubernetes.Clientset { return c.cs }

// StartupTime is how long the control plane took to start, from the first process to nodes Ready.
func (c *Cluster) StartupTime() time.Duration { return c.startup }

// Namespace creates a fresh namespace named after the test and waits for its default
// ServiceAccount, without which the apiserver refuses pods. The namespace is deleted (without
// waiting) when the test ends.
func (c *Cluster) Namespace(tb testing.TB) string {
	tb.Helper()
	name := namespaceName(tb.Name(), nsCount.Add(1))
	if err := c.CreateNamespace(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		err := c.cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			tb.Logf("kubetest: deleting namespace %s: %v", name, err)
		}
	})
	return name
}

// CreateNamespace creates namespace name (which may exist already) and waits, up to 30 s or
// until ctx ends, for its default ServiceAccount, without which the apiserver refuses pods.
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubetest: creating namespace %s: %w", name, err)
	}
	// The serviceaccount controller adds it within milliseconds; polling is simpler than a watch.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("kubetest: waiting for the default ServiceAccount of namespace %s: %w", name, err)
	}
	return nil
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9]+`)

// namespaceName makes a DNS label from a test name, unique in the binary by n and readable in
// component logs ("TestRollout/broken_image" → "testrollout-broken-image-7").
func namespaceName(testName string, n int64) string {
	suffix := fmt.Sprintf("-%d", n)
	base := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if limit := 63 - len(suffix); len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	if base == "" {
		base = "kubetest"
	}
	return base + suffix
}
