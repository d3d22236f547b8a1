package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// runnerWith is the world's runner with its own AWS configuration, store, clusters and tuning.
func (w *world) runnerWith(st Store, awsCfg aws.Config, clusters Clusters, tune func(*Options)) *Runner {
	o := Options{Owner: "p1", LeaseTTL: 3 * time.Second, Poll: 20 * time.Millisecond, MinPoll: 100 * time.Millisecond,
		EndPoll: 100 * time.Millisecond, MaxPoll: 500 * time.Millisecond, FollowBudget: 2 * time.Second, ReportEvery: time.Second}
	if tune != nil {
		tune(&o)
	}
	return New(st, w.cfg, amazon.New(awsCfg, w.cfg.Credentials), clusters, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// admissionPolicy makes the API server refuse, in the world's namespace, every update of a
// resource ("deployments" in apps, or "services") for which the CEL expression is false, as a
// policy of the cluster's owners would (a ValidatingAdmissionPolicy and its binding). It
// returns once the policy refuses what refused says it must.
func (w *world) admissionPolicy(group, resource, expression string, refused func(ctx context.Context) error) {
	w.t.Helper()
	ctx, cs := context.Background(), w.kc.Clientset()
	name := "stagecoach-test-" + w.ns
	fail := admissionv1.Fail
	policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{Operations: []admissionv1.OperationType{admissionv1.Update},
					Rule: admissionv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: []string{resource}}}}}},
			Validations: []admissionv1.Validation{{Expression: expression, Message: "refused by the cluster's policy"}},
		}}
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": w.ns}}}}}
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// The API server loads new policies in the background: wait until this one refuses.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return refused(ctx) != nil, nil
	})
	if err != nil {
		w.t.Fatalf("the admission policy never took effect: %v", err)
	}
}

// dryRunImage tries, without changing anything, to set the first container of Deployment name
// to image, and returns the API server's answer.
func (w *world) dryRunImage(ctx context.Context, name, image string) error {
	d, err := w.kc.Clientset().AppsV1().Deployments(w.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	d.Spec.Template.Spec.Containers[0].Image = image
	_, err = w.kc.Clientset().AppsV1().Deployments(w.ns).Update(ctx, d, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// TestSecondDeploymentRejectedEndsRolledBackWithBothOnTheOldImage: the cluster's policy lets
// api take the new image and refuses it for worker. The deploy must not end with api on the new
// build and worker on the old: the refusal is final at once (no retries), api is put back, and
// the deploy ends rolled back with both on what they ran before.
func TestSecondDeploymentRejectedEndsRolledBackWithBothOnTheOldImage(t *testing.T) {
	w := newWorld(t)
	w.admissionPolicy("apps", "deployments",
		`object.metadata.name != 'worker' || object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example/'))`,
		func(ctx context.Context) error { return w.dryRunImage(ctx, "worker", repoURI+":probe") })
	id := w.request("d1", sha1)
	d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
	if d.State != deploy.RolledBack || !strings.Contains(d.Error, "worker") || !strings.Contains(d.Error, "refused by the cluster's policy") {
		t.Fatalf("deploy = %s: %q, want rolled back, naming worker's refusal", d.State, d.Error)
	}
	for _, name := range []string{"api", "worker"} {
		if got := w.images(name); got != "registry.example/"+name+":v1" {
			t.Errorf("%s runs %s, want its old image", name, got)
		}
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:failed", "Rollback:succeeded")
	if cp.Retries > 1 {
		t.Errorf("a refusal was retried %d times", cp.Retries)
	}
}

// TestRolloutErrorsPastTheBudgetEndRolledBack: once images changed, Kubernetes errors that do
// not pass within the step's budget end in the rollback, not in a deploy that stops halfway.
func TestRolloutErrorsPastTheBudgetEndRolledBack(t *testing.T) {
	w := newWorld(t)
	clusters := &flakyClusters{Clusters: &KubeClusters{}, failFollow: 1} // Follow fails after the first SetImages, until the second
	r := w.runnerWith(w.st, w.aws.Config(), clusters, func(o *Options) {
		o.RetryBudget, o.MaxBackoff = 500*time.Millisecond, 20*time.Millisecond
	})
	id := w.request("d1", sha1)
	d := w.drive(r, 90*time.Second, id)[0]
	if d.State != deploy.RolledBack || !strings.Contains(d.Error, "following the rollout: gave up after") {
		t.Fatalf("deploy = %s: %q, want rolled back after the budget", d.State, d.Error)
	}
	for _, name := range []string{"api", "worker"} {
		if got := w.images(name); got != "registry.example/"+name+":v1" {
			t.Errorf("%s runs %s, want its old image", name, got)
		}
	}
	if clusters.followFailures() < 3 {
		t.Errorf("Follow failed %d times: the budget was not used", clusters.followFailures())
	}
}

// TestBuildFollowedThroughCodeBuildErrorsPastNineAttempts: CodeBuild answers 15 reads of a
// running build in a row with errors. The build is followed through them (within the step's
// budget) and the deploy succeeds with that one build; it used to fail after 9 attempts while
// CodeBuild carried on and pushed the image.
func TestBuildFollowedThroughCodeBuildErrorsPastNineAttempts(t *testing.T) {
	w := newWorld(t)
	w.aws.CodeBuild.SetScript(awstest.Script{PhaseDuration: 100 * time.Millisecond})
	cfg := w.aws.Config()
	cfg.RetryMaxAttempts = 1 // every throttled call reaches the pipeline
	r := w.runnerWith(w.st, cfg, &KubeClusters{}, func(o *Options) { o.MaxBackoff = 20 * time.Millisecond })
	id := w.request("d1", sha1)
	ctx := context.Background()
	for w.checkpoint(id).BuildID == "" {
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.aws.Throttle("codebuild", 15)
	d := w.drive(r, 90*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	if n := len(w.aws.CodeBuild.Builds()); n != 1 {
		t.Errorf("%d builds, want 1", n)
	}
	throttled := 0
	for _, c := range w.aws.Calls("BatchGetBuilds") {
		if c.Status != 200 {
			throttled++
		}
	}
	if throttled < 15 {
		t.Errorf("%d reads of the build failed, want the 15 the test caused", throttled)
	}
}

// TestStoreOutageLongerThanTheIdempotencyWindowStartsNoSecondBuild: CodeBuild starts the build,
// then the store is down, so the build id never reaches the checkpoint; the outage lasts an hour,
// far past the five minutes CodeBuild honours the idempotency token for. When the store is back,
// the deploy finds its build (ListBuildsForProject, BatchGetBuilds) and follows it: one deploy,
// one build.
func TestStoreOutageLongerThanTheIdempotencyWindowStartsNoSecondBuild(t *testing.T) {
	w := newWorld(t)
	st := &downStore{Store: w.st}
	r := w.runnerWith(st, w.aws.Config(), &KubeClusters{}, func(o *Options) { o.LeaseTTL = time.Second })
	id := w.request("d1", sha1)
	ctx := context.Background()
	for d, _ := w.st.Deploy(ctx, id); d.State != deploy.Building; d, _ = w.st.Deploy(ctx, id) {
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st.goDown.Store(true) // the store goes down once the build step has its lease
	if _, err := r.RunOnce(ctx); err == nil {
		t.Fatal("the step's checkpoint was saved while the store was down")
	}
	if n := w.aws.CodeBuild.StartBuildCalls(); n != 1 || w.checkpoint(id).BuildID != "" {
		t.Fatalf("StartBuild called %d times, checkpoint build %q: want the start unrecorded", n, w.checkpoint(id).BuildID)
	}
	// An hour later on CodeBuild's clock: the build ran to its end, and the token is forgotten.
	w.aws.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
	st.down.Store(false)
	d := w.drive(r, 90*time.Second, id)[0] // claims again once the lease taken before the outage lapses
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	if n := len(w.aws.CodeBuild.Builds()); n != 1 {
		t.Errorf("%d builds for one deploy, want 1", n)
	}
	if n := w.aws.CodeBuild.StartBuildCalls(); n != 1 {
		t.Errorf("StartBuild called %d times, want 1", n)
	}
	if cp := w.checkpoint(id); cp.BuildID != w.aws.CodeBuild.Builds()[0].ID {
		t.Errorf("the deploy follows build %q, want %q", cp.BuildID, w.aws.CodeBuild.Builds()[0].ID)
	}
}

// TestRefusedBuildFailsAtOnce: a refusal (the CodeBuild project does not exist) fails the
// deploy at its first answer instead of being retried for the step's whole budget.
func TestRefusedBuildFailsAtOnce(t *testing.T) {
	w := newWorld(t)
	w.aws.CodeBuild.SetProjects("another")
	id := w.request("d1", sha1)
	d := w.drive(w.runner(w.st, "p1"), 30*time.Second, id)[0]
	if d.State != deploy.Failed || !strings.Contains(d.Error, "Project cannot be found") {
		t.Fatalf("deploy = %s: %q", d.State, d.Error)
	}
	if n := len(w.aws.Calls("ListBuildsForProject")) + w.aws.CodeBuild.StartBuildCalls(); n != 1 {
		t.Errorf("%d CodeBuild calls, want the one refused", n)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:failed")
}

// flakyClusters makes Follow fail with a transient error (the API server unavailable) while
// SetImages has been called exactly failFollow times: the rollout's watch fails, the
// rollback's works.
type flakyClusters struct {
	Clusters
	mu                  sync.Mutex
	setImages, failures int
	failFollow          int
}

func (f *flakyClusters) For(st *config.Stage) (Cluster, error) {
	c, err := f.Clusters.For(st)
	if err != nil {
		return nil, err
	}
	return &flakyCluster{Cluster: c, f: f}, nil
}

func (f *flakyClusters) followFailures() int { f.mu.Lock(); defer f.mu.Unlock(); return f.failures }

type flakyCluster struct {
	Cluster
	f *flakyClusters
}

func (c *flakyCluster) SetImages(ctx context.Context, images []kube.Image, cause, sha, deployID string) (map[string]int64, error) {
	c.f.mu.Lock()
	c.f.setImages++
	c.f.mu.Unlock()
	return c.Cluster.SetImages(ctx, images, cause, sha, deployID)
}

func (c *flakyCluster) Follow(ctx context.Context, name string, started time.Time, timeout, budget time.Duration, progress func(health.Status)) (health.Status, error) {
	c.f.mu.Lock()
	fail := c.f.setImages == c.f.failFollow
	if fail {
		c.f.failures++
	}
	c.f.mu.Unlock()
	if fail {
		return health.Status{}, fmt.Errorf("watching Deployment %s: %w", name, apierrors.NewServiceUnavailable("the API server is restarting"))
	}
	return c.Cluster.Follow(ctx, name, started, timeout, budget, progress)
}

// downStore is the store, except that while down is set it cannot be reached; with goDown set,
// it goes down right after the next claim.
type downStore struct {
	*store.Store
	down, goDown atomic.Bool
}

var errStoreDown = errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")

func (s *downStore) ClaimDeploy(ctx context.Context, owner string, ttl time.Duration) (deploy.Deploy, store.Lease, error) {
	if s.down.Load() {
		return deploy.Deploy{}, store.Lease{}, errStoreDown
	}
	d, l, err := s.Store.ClaimDeploy(ctx, owner, ttl)
	if err == nil && s.goDown.CompareAndSwap(true, false) {
		s.down.Store(true)
	}
	return d, l, err
}

func (s *downStore) Heartbeat(ctx context.Context, l store.Lease, ttl time.Duration) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.Store.Heartbeat(ctx, l, ttl)
}

func (s *downStore) Advance(ctx context.Context, l store.Lease, u store.Update) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.Store.Advance(ctx, l, u)
}
