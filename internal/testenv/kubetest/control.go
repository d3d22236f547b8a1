package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

//go:embed stages.yaml
var stages []byte

// adminToken is a static bearer token in system:masters. It guards a loopback-only throwaway
// cluster, so a constant is fine (and makes kept logs and kubeconfigs easy to reuse by hand).
const adminToken = "stagecoach-kubetest-admin"

// Nodes is how many fake nodes the cluster has.
const Nodes = 2

// errPortTaken marks a start that lost a race for a free port with another process.
var errPortTaken = errors.New("port taken")

// start brings the control plane up, retrying with fresh ports if another process took one of
// the ports picked (they are free when picked, but not reserved).
func start(ctx context.Context) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	for attempt := 1; ; attempt++ {
		c, err := startOnce(ctx, bin)
		if errors.Is(err, errPortTaken) && attempt < 3 {
			continue
		}
		return c, err
	}
}

func startOnce(ctx context.Context, bin string) (c *Cluster, err error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", fmt.Sprintf("stagecoach-kube-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("making the cluster directory: %w", err)
	}
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			// Keep the logs of a failed start for whoever reads the error, except after a lost
			// port race, which start retries.
			if c.keep = !errors.Is(err, errPortTaken) && ctx.Err() == nil; c.keep {
				err = fmt.Errorf("%w (component logs kept in %s)", err, c.dir)
			}
			c.stop()
			c = nil
		}
	}()
	// etcd's data lives in memory when it can: with --unsafe-no-fsync it never waits on a disk.
	shm := "/dev/shm"
	if st, err := os.Stat(shm); err != nil || !st.IsDir() {
		shm = dir
	}
	if c.etcdData, err = os.MkdirTemp(shm, fmt.Sprintf("stagecoach-etcd-%d-", os.Getpid())); err != nil {
		return c, fmt.Errorf("making etcd's data directory: %w", err)
	}
	saKey := filepath.Join(dir, "sa.key")
	if err := writeServiceAccountKey(saKey); err != nil {
		return c, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+",admin,admin,system:masters\n"), 0o600); err != nil {
		return c, fmt.Errorf("writing the token file: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return c, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := c.run(bin, "etcd", "--data-dir", c.etcdData,
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return c, err
	}
	certs := filepath.Join(dir, "certs")
	if err := c.run(bin, "kube-apiserver", "--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", fmt.Sprint(ports[2]),
		"--cert-dir", certs, // no certificate given: it self-signs one for the advertise address
		"--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		// No kubelets, so nothing would ever serve the kubernetes Service's endpoints.
		"--endpoint-reconciler-type", "none",
		// Flow control only slows a single-tenant test cluster down.
		"--enable-priority-and-fairness=false"); err != nil {
		return c, err
	}
	host := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	ca, err := c.waitReady(ctx, host, filepath.Join(certs, "apiserver.crt"), 60*time.Second)
	if err != nil {
		return c, err
	}
	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.kubeconfig, host, ca); err != nil {
		return c, err
	}
	stagesFile := filepath.Join(dir, "stages.yaml")
	if err := os.WriteFile(stagesFile, stages, 0o600); err != nil {
		return c, fmt.Errorf("writing kwok's stages: %w", err)
	}
	if err := c.run(bin, "kube-controller-manager", "--kubeconfig", c.kubeconfig,
		"--secure-port", "0", "--leader-elect=false",
		"--service-account-private-key-file", saKey, "--root-ca-file", filepath.Join(certs, "apiserver.crt"),
		// Controllers for things a kwok cluster does not have (pod CIDRs, bootstrap tokens).
		"--controllers", "*,-nodeipam,-ttl,-bootstrapsigner,-tokencleaner"); err != nil {
		return c, err
	}
	if err := c.run(bin, "kube-scheduler", "--kubeconfig", c.kubeconfig, "--secure-port", "0", "--leader-elect=false"); err != nil {
		return c, err
	}
	if err := c.run(bin, "kwok", "--kubeconfig", c.kubeconfig, "--config", stagesFile,
		"--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake"); err != nil {
		return c, err
	}
	if err := c.addNodes(ctx, Nodes); err != nil {
		return c, err
	}
	if err := c.waitNodesReady(ctx, 30*time.Second); err != nil {
		return c, err
	}
	c.startup = time.Since(began)
	return c, nil
}

// freePorts picks n distinct ports free on 127.0.0.1, holding each open until all are picked.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeServiceAccountKey makes the RSA key that signs (and verifies) service-account tokens.
func writeServiceAccountKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating the service-account key: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return fmt.Errorf("writing the service-account key: %w", err)
	}
	return nil
}

func writeKubeconfig(path, host string, ca []byte) error {
	data := fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]q
    certificate-authority-data: %[3]s
users:
- name: admin
  user:
    token: %[4]q
contexts:
- name: %[1]s
  context: {cluster: %[1]s, user: admin}
current-context: %[1]s
`, Context, host, base64.StdEncoding.EncodeToString(ca), adminToken)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}

// waitReady waits for the apiserver's self-signed certificate, then for its /readyz, failing
// early if a component has exited. It sets up the admin client and returns the CA bundle.
func (c *Cluster) waitReady(ctx context.Context, host, certFile string, limit time.Duration) ([]byte, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		if err := c.exited(); err != nil {
			return nil, err
		}
		// Reconnect each time: a certificate read while being written would fail for good.
		if last = c.connect(host, certFile); last == nil {
			var body []byte
			body, last = c.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			if last == nil && string(body) == "ok" {
				return c.rest.CAData, nil
			}
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return nil, fmt.Errorf("waiting for kube-apiserver: %w", err)
			}
			return nil, fmt.Errorf("kube-apiserver not ready after %s: %v\n%s", limit, last, c.logTail("kube-apiserver", 2000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// connect makes the admin client once the apiserver has written its certificate (the file
// holds the serving certificate followed by the CA that signed it).
func (c *Cluster) connect(host, certFile string) error {
	ca, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("reading the apiserver's self-signed certificate: %w", err)
	}
	cfg := &rest.Config{Host: host, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS: 200, Burst: 400} // client-go's default 5 QPS throttles tests that poll
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("making the admin client: %w", err)
	}
	c.rest, c.cs = cfg, cs
	return nil
}

func (c *Cluster) addNodes(ctx context.Context, n int) error {
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
		}}
		if _, err := c.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
	}
	return nil
}

// waitNodesReady waits for kwok to mark every node Ready, so the first pods schedule at once
// instead of waiting in the scheduler's backoff.
func (c *Cluster) waitNodesReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := c.exited(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for the nodes: %w", err)
		}
		nodes, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing nodes: %w", err)
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready == len(nodes.Items) && ready > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes Ready after %s\n%s", ready, len(nodes.Items), limit, c.logTail("kwok", 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeStale deletes what an earlier test binary left when it was killed before Main could
// clean up (a go test timeout, say); its processes died with it (Pdeathsig). Directories are
// named with the owner's pid; those of live processes, and kept ones, are left alone.
func removeStale() {
	for _, pattern := range []string{
		filepath.Join(os.TempDir(), "stagecoach-kube-*"),
		filepath.Join("/dev/shm", "stagecoach-etcd-*"),
	} {
		matches, _ := filepath.Glob(pattern)
		for _, dir := range matches {
			if _, err := os.Stat(filepath.Join(dir, keepMarker)); err == nil {
				continue
			}
			if pid, ok := ownerPID(dir); ok && !alive(pid) {
				_ = os.RemoveAll(dir)
			}
		}
	}
}

func ownerPID(dir string) (int, bool) {
	parts := strings.Split(filepath.Base(dir), "-")
	if len(parts) < 4 {
		return 0, false
	}
	var pid int
	if _, err := fmt.Sscanf(parts[2], "%d", &pid); err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}
