package chaos

import (
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to read the store's tables
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// target is one app on one stage: what the pushes and commands aim at.
type target struct {
	app, repo, stage, branch string
}

func (t target) String() string { return t.app + "/" + t.stage }

// The four targets: two apps, each in a repository of its own (so each environment, a
// repository's stage, is one target), on two stages deployed by pushes.
var targets = []target{
	{"web", "acme/web", "test", "master"},
	{"web", "acme/web", "alpha", "alpha"},
	{"api", "acme/api", "test", "master"},
	{"api", "acme/api", "alpha", "alpha"},
}

// The person who pushes and gives commands: a promoter of both stages.
const person = "lena"

// nonprodRole is the credentials tier every stage uses.
const nonprodRole = "arn:aws:iam::123456789012:role/stagecoach-nonprod"

// buildPhase is how long each of a build's phases takes on the AWS test servers (a build takes
// eleven of them).
const buildPhase = 100 * time.Millisecond

// world is one run: the test servers, the cluster's namespaces, the replicas and the front, and
// everything the workload did, for the checks.
type world struct {
	o    Options
	rng  *rand.Rand // the workload's choices; only play's goroutine uses it
	gh   *githubtest.Server
	aws  *awstest.Env
	db   *sql.DB // the store's tables, read-only
	dsn  string
	ns   map[string]string // stage -> namespace
	cfg  string            // the configuration file
	env  []string          // the replicas' environment
	reps []*replica
	fr   *front
	rd   *redeliverer
	// closing stops replicas that end by themselves from being started again.
	closing atomic.Bool

	mu       sync.Mutex
	pushes   map[string][]string // target -> shas pushed, in order
	last     map[string]string   // target -> the last round's sha
	commands []command
	kills    []kill
	exits    int // replicas that ended by themselves after they listened: crashes
	// startFailures are replicas that ended before they listened (the store unreachable
	// while PostgreSQL restarted): a supervisor starts them again, as the harness does.
	startFailures int
	pgRestarts    int
	faults        []string // what was injected, for the figures
	violations    []string
	prNumber      int
	cluster       map[string][]clusterChange // target -> changes the cluster saw, in order
	handOvers     []handOver
}

// command is a `/deploy` given on pull request pr.
type command struct {
	t    target
	repo string
	pr   int
	sha  string
	at   time.Time
}

func newWorld(ctx context.Context, o Options) (w *world, err error) {
	w = &world{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)), ns: map[string]string{},
		pushes: map[string][]string{}, last: map[string]string{}, cluster: map[string][]clusterChange{}}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if w.gh, err = githubtest.Start(githubtest.WithAppSlug("stagecoach")); err != nil {
		return nil, fmt.Errorf("chaos: starting the GitHub test server: %w", err)
	}
	if w.aws, err = awstest.Start(); err != nil {
		return nil, fmt.Errorf("chaos: starting the AWS test servers: %w", err)
	}
	if w.dsn, err = o.Postgres.NewDatabase(); err != nil {
		return nil, err
	}
	if w.db, err = sql.Open("pgx", w.dsn); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	w.seedGitHub()
	if o.GitHubLatency > 0 {
		w.gh.BeforeAnswer(func(githubtest.Request) { time.Sleep(o.GitHubLatency) }) // a latency, not a synchronization
	}
	w.seedAWS()
	if err := w.seedCluster(ctx); err != nil {
		return nil, err
	}
	if err := w.writeConfig(); err != nil {
		return nil, err
	}
	w.rd = newRedeliverer(w.gh)
	return w, nil
}

// commit is a workload commit's sha: 40 hex digits derived from its name.
func commit(name string) string {
	h := sha1.Sum([]byte("stagecoach chaos: " + name))
	return hex.EncodeToString(h[:])
}

func (w *world) seedGitHub() {
	for _, repo := range []string{"acme/web", "acme/api"} {
		root := commit(repo + " initial")
		w.gh.AddCommit(repo, root, nil, "Initial commit", 0)
		w.gh.SetDefaultBranch(repo, "master")
		for _, b := range []string{"master", "alpha"} {
			w.gh.SetRef(repo, "refs/heads/"+b, root)
		}
		w.gh.SetPermission(repo, person, "admin")
	}
}

func (w *world) seedAWS() {
	w.aws.CodeBuild.SetScript(awstest.Script{PhaseDuration: buildPhase})
	for _, t := range targets {
		w.aws.Secrets.Add(t.app + "/" + t.stage)
	}
	w.aws.STS.Allow(nonprodRole, "")
}

// seedCluster makes a namespace per stage with both apps' Deployments (one pod each, rolled
// one at a time) and the Secrets holding their .env keys.
func (w *world) seedCluster(ctx context.Context) error {
	cs := w.o.Kube.Clientset()
	var suffix [3]byte
	_, _ = crand.Read(suffix[:])
	for _, stage := range []string{"test", "alpha"} {
		ns := fmt.Sprintf("chaos-%s-%s", stage, hex.EncodeToString(suffix[:]))
		if err := w.o.Kube.CreateNamespace(ctx, ns); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		w.ns[stage] = ns
		for _, app := range []string{"web", "api"} {
			if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(app), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("chaos: creating Deployment %s/%s: %w", ns, app, err)
			}
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: app + "-env-key"}, Data: map[string][]byte{"key": []byte("chaos")}}
			if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("chaos: creating Secret %s/%s: %w", ns, secret.Name, err)
			}
		}
	}
	return nil
}

func deployment(app string) *appsv1.Deployment {
	n, deadline := int32(1), int32(60)
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	labels := map[string]string{"app": app}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n, ProgressDeadlineSeconds: &deadline,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &zero}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: imageRepository(app) + ":initial"}}}},
		},
	}
}

func imageRepository(app string) string { return "123456789012.dkr.ecr.eu-west-1.amazonaws.com/" + app }

// writeConfig writes the App's key, the webhook secret and the configuration every replica
// runs on; the environment points the AWS SDK at the test servers.
func (w *world) writeConfig() error {
	dir := w.o.Dir
	key, secretFile := filepath.Join(dir, "github-app.pem"), filepath.Join(dir, "webhook-secret")
	var raw [24]byte
	_, _ = crand.Read(raw[:])
	secret := hex.EncodeToString(raw[:])
	if err := os.WriteFile(key, w.gh.PrivateKeyPEM(), 0o600); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	kube := func(stage string) string {
		return fmt.Sprintf("{kubeconfig: %q, context: %q, namespace: %s}", w.o.Kube.Kubeconfig(), kubetest.Context, w.ns[stage])
	}
	var apps strings.Builder
	for _, app := range []string{"web", "api"} {
		fmt.Fprintf(&apps, `  - name: %[1]s
    repo: acme/%[1]s
    codebuild_project: %[1]s
    image_repository: %[2]s
    stages:
      test: {secret_id: %[1]s/test, deployments: [{name: %[1]s, containers: [%[1]s]}], rollout_timeout: 2m}
      alpha: {secret_id: %[1]s/alpha, deployments: [{name: %[1]s, containers: [%[1]s]}], rollout_timeout: 2m}
`, app, imageRepository(app))
	}
	text := fmt.Sprintf(`# Written by the chaos harness: every replica runs on it.
log_level: info
github: {app_id: %d, private_key_file: %q, webhook_secret_file: %q, api_url: %q}
store: {postgres: %q}
credentials:
  nonprod: {role_arn: %q}
stages:
  - {name: test, branch: master, trigger: push, credentials: nonprod, promoters: {users: [%s]}, kubernetes: %s}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promoters: {users: [%s]}, kubernetes: %s}
release: {stage: ""}
apps:
%s`, w.gh.AppID(), key, secretFile, w.gh.URL(), w.dsn, nonprodRole, person, kube("test"), person, kube("alpha"), apps.String())
	w.cfg = filepath.Join(dir, "stagecoach.yaml")
	if err := os.WriteFile(w.cfg, []byte(text), 0o600); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	w.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_ENDPOINT_URL=" + w.aws.URL(), "AWS_REGION=" + awstest.Region,
		"AWS_ACCESS_KEY_ID=" + awstest.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + awstest.SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		// Where the service has an internal listener for probes and metrics, each replica
		// takes a free port for it; older binaries ignore the variable.
		"STAGECOACH_INTERNAL_LISTEN=127.0.0.1:0",
	}
	w.fr = newFront([]byte(secret))
	return nil
}

// close stops the replicas, the front and the test servers and removes the namespaces.
func (w *world) close() {
	w.closing.Store(true)
	for _, r := range w.reps {
		r.stop()
	}
	if w.fr != nil {
		w.fr.close()
	}
	if w.gh != nil {
		w.gh.Close()
	}
	if w.aws != nil {
		w.aws.Close()
	}
	if w.db != nil {
		w.db.Close()
	}
	if len(w.ns) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, ns := range w.ns {
			_ = w.o.Kube.Clientset().CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}
	}
}

func (w *world) logf(format string, args ...any) {
	fmt.Fprintf(w.o.Log, format+"\n", args...)
}

// violation records a broken invariant.
func (w *world) violation(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

func (w *world) fault(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.mu.Lock()
	w.faults = append(w.faults, msg)
	w.mu.Unlock()
	w.logf("chaos: %s", msg)
}
