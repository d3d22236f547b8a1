// Package kubetest runs a real Kubernetes control plane for tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (simulated nodes and pod lifecycles), as
// processes on loopback, from binaries scripts/k8s/build.sh builds and caches. It starts once per
// test binary. Without the binaries a test fails under CI=true and skips otherwise, naming the
// command that builds them.
package kubetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

//go:embed stages.yaml
var stages []byte

// Cluster is a running control plane.
type Cluster struct {
	dir        string
	etcdData   string
	kubeconfig string
	rest       *rest.Config
	cs         *kubernetes.Clientset
	procs      []*exec.Cmd // in start order
}

var (
	once    sync.Once
	cluster *Cluster
	err     error
	nsCount atomic.Int64
)

// Start returns the shared cluster, starting it on first use.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	once.Do(func() { cluster, err = start() })
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("the Kubernetes test cluster is required under CI=true: %v", err)
		}
		tb.Skipf("no Kubernetes test cluster (run scripts/k8s/build.sh): %v", err)
	}
	return cluster
}

// Main runs the tests, then stops the cluster. Use it as TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the cluster if it was started; for a TestMain that also stops other things.
func Stop() {
	if cluster != nil {
		cluster.stop()
		cluster = nil
	}
}

// RestConfig is an admin client configuration.
func (c *Cluster) RestConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Kubeconfig is the path of a kubeconfig whose context "kubetest" is the admin.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// Clientset is an admin clientset.
func (c *Cluster) Clientset() *kubernetes.Clientset { return c.cs }

// Namespace creates a fresh namespace and waits for its default ServiceAccount (pods need it).
func (c *Cluster) Namespace(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d-%d", os.Getpid()%100000, nsCount.Add(1))
	ctx := context.Background()
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return name
		}
		if time.Now().After(deadline) {
			tb.Fatalf("namespace %s has no default ServiceAccount after 30s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BinDir is where scripts/k8s/build.sh puts the binaries of the pinned version set.
func BinDir() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	envFile := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "k8s", "versions.env")
	f, err := os.Open(envFile)
	if err != nil {
		return "", err
	}
	defer f.Close()
	v := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, val, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			v[k] = val
		}
	}
	root := os.Getenv("STAGECOACH_K8S_CACHE")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "stagecoach", "k8s")
	}
	dir := filepath.Join(root, fmt.Sprintf("kube-%s_etcd-%s_kwok-%s", v["KUBE_VERSION"], v["ETCD_VERSION"], v["KWOK_VERSION"]))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		return "", fmt.Errorf("binaries not built in %s", dir)
	}
	return filepath.Join(dir, "bin"), nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const adminToken = "stagecoach-kubetest-admin"

func start() (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "stagecoach-kube-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	fail := func(err error) (*Cluster, error) { c.stop(); return nil, err }
	shm := "/dev/shm"
	if _, err := os.Stat(shm); err != nil {
		shm = dir
	}
	etcdData, err := os.MkdirTemp(shm, "stagecoach-etcd-")
	if err != nil {
		return fail(err)
	}
	c.etcdData = etcdData
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fail(err)
	}
	saKey := filepath.Join(dir, "sa.key")
	_ = os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	tokens := filepath.Join(dir, "tokens.csv")
	_ = os.WriteFile(tokens, []byte(adminToken+",admin,admin,system:masters\n"), 0o600)
	etcdPort, peerPort, apiPort := freePort(), freePort(), freePort()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	if err := c.run(bin, "etcd", "--data-dir", etcdData, "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peerPort), "--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return fail(err)
	}
	certs := filepath.Join(dir, "certs")
	if err := c.run(bin, "kube-apiserver", "--etcd-servers", etcdURL, "--bind-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(apiPort), "--cert-dir", certs, "--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", saKey,
		"--service-account-signing-key-file", saKey, "--service-cluster-ip-range", "10.96.0.0/16",
		"--endpoint-reconciler-type", "none", "--enable-priority-and-fairness=false"); err != nil {
		return fail(err)
	}
	c.rest = &rest.Config{Host: fmt.Sprintf("https://127.0.0.1:%d", apiPort), BearerToken: adminToken,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400}
	if c.cs, err = kubernetes.NewForConfig(c.rest); err != nil {
		return fail(err)
	}
	if err := c.waitReady(60 * time.Second); err != nil {
		return fail(err)
	}
	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	_ = os.WriteFile(c.kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %q}
contexts:
- name: kubetest
  context: {cluster: kubetest, user: admin}
current-context: kubetest
`, c.rest.Host, adminToken), 0o600)
	stagesFile := filepath.Join(dir, "stages.yaml")
	_ = os.WriteFile(stagesFile, stages, 0o600)
	if err := c.run(bin, "kube-controller-manager", "--kubeconfig", c.kubeconfig, "--secure-port", "0", "--leader-elect=false",
		"--service-account-private-key-file", saKey, "--root-ca-file", filepath.Join(certs, "apiserver.crt"),
		"--controllers", "*,-nodeipam,-ttl,-bootstrapsigner,-tokencleaner"); err != nil {
		return fail(err)
	}
	if err := c.run(bin, "kube-scheduler", "--kubeconfig", c.kubeconfig, "--secure-port", "0", "--leader-elect=false"); err != nil {
		return fail(err)
	}
	if err := c.run(bin, "kwok", "--kubeconfig", c.kubeconfig, "--manage-all-nodes=true", "--config", stagesFile); err != nil {
		return fail(err)
	}
	if err := c.addNodes(2); err != nil {
		return fail(err)
	}
	return c, nil
}

// run starts one component with its output in the cluster directory.
func (c *Cluster) run(bin, name string, args ...string) error {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

func (c *Cluster) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		body, err := c.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		if err == nil && string(body) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(c.dir, "kube-apiserver.log"))
			return fmt.Errorf("kube-apiserver not ready after %s: %v\n%s", limit, err, tail(log, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) addNodes(n int) error {
	for i := range n {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("kwok-node-%d", i),
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": fmt.Sprintf("kwok-node-%d", i)},
		}}
		if _, err := c.cs.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node: %w", err)
		}
	}
	return nil
}

// stop ends every component, the others before etcd (the apiserver hangs without it).
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if c.etcdData != "" {
		_ = os.RemoveAll(c.etcdData)
	}
	if os.Getenv("STAGECOACH_KUBETEST_KEEP") != "" {
		fmt.Fprintln(os.Stderr, "kubetest: component logs kept in", c.dir)
		return
	}
	_ = os.RemoveAll(c.dir)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
