package pipeline

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

const (
	prodRole = "arn:aws:iam::123456789012:role/stagecoach-prod"
	prRole   = "arn:aws:iam::123456789012:role/stagecoach-pr"
	v1API    = "registry.example/api:v1" // what kubetest.Deployment runs before any deploy
)

// newReleaseWorld is a world with the release stages: alpha (nonprod) and prod (the prod tier,
// two slots prod and prod-backup, promote_from as given), and the app hello configured on both,
// with pull-request builds in their own CodeBuild project. Every tier's role may be assumed and
// both stages' secrets exist; the namespace is empty: each test creates what it needs.
func newReleaseWorld(t *testing.T, promoteFrom string) *world {
	t.Helper()
	kc := kubetest.Start(t)
	w := &world{t: t, kc: kc, ns: kc.Namespace(t)}
	w.freshAWS("hello/alpha", "hello/prod")
	order := ""
	if promoteFrom != "" {
		order = "promote_from: " + promoteFrom + ", "
	}
	w.cfgText = fmt.Sprintf(`
credentials:
  pr: {role_arn: %q}
  nonprod: {role_arn: %q}
  prod: {role_arn: %q}
stages:
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod,
     kubernetes: {kubeconfig: %[4]q, context: kubetest, namespace: %[5]q}}
  - {name: prod, branch: prod, trigger: push, credentials: prod, %[6]sslots: [prod, prod-backup],
     kubernetes: {kubeconfig: %[4]q, context: kubetest, namespace: %[5]q}}
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: %[7]s
    pr_build: {enabled: true, codebuild_project: hello-pr, buildspec: ci/pull-request.yaml}
    stages:
      alpha:
        secret_id: hello/alpha
        deployments: [{name: api, containers: [api]}]
      prod:
        buildspec: buildspec-prod.yaml
        secret_id: hello/prod
        rollout_timeout: 2m
        deployments: [{name: api, containers: [api], service: api}]
`, prRole, nonprodRole, prodRole, kc.Kubeconfig(), w.ns, order, repoURI)
	cfg, err := config.Parse("release_test.yaml", []byte(w.cfgText))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.dbPath = filepath.Join(t.TempDir(), "pipeline.db")
	w.st = w.openStore()
	return w
}

// freshAWS gives the world AWS test servers where every tier's role may be assumed, the projects
// hello and hello-pr exist, and of Secrets Manager's secrets only these.
func (w *world) freshAWS(secrets ...string) {
	w.aws = awstest.New(w.t)
	w.aws.CodeBuild.SetScript(awstest.Script{PhaseDuration: 50 * time.Millisecond})
	w.aws.CodeBuild.SetProjects("hello", "hello-pr")
	for _, role := range []string{nonprodRole, prodRole, prRole} {
		w.aws.STS.Allow(role, "")
	}
	for _, s := range secrets {
		w.aws.Secrets.Add(s)
	}
}

// slotDeployment is kubetest's 3-replica Deployment api-<slot> with its own selector (app:
// api-<slot>), its pods also labelled component: api, which the Service selects, and label as
// their slot ("" for none).
func slotDeployment(slot, label, image string) *appsv1.Deployment {
	d := kubetest.Deployment(config.SlotDeployment("api", slot), "api")
	labels := maps.Clone(d.Spec.Template.Labels) // kubetest shares the map with the selector
	labels["component"] = "api"
	if label != "" {
		labels[kube.SlotLabel] = label
	}
	d.Spec.Template.Labels = labels
	if image != "" {
		d.Spec.Template.Spec.Containers[0].Image = image
	}
	return d
}

// slotSelector is the selector of the Service api that selects slot ("" for no slot label).
func slotSelector(slot string) map[string]string {
	sel := map[string]string{"component": "api"}
	if slot != "" {
		sel[kube.SlotLabel] = slot
	}
	return sel
}

// create makes the objects in the world's namespace.
func (w *world) create(objs ...any) {
	w.t.Helper()
	cs, ctx := w.kc.Clientset(), context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(w.ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = cs.CoreV1().Services(w.ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(w.ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("cannot create a %T", o)
		}
		if err != nil {
			w.t.Fatal(err)
		}
	}
}

func slotService(selector map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: corev1.ServiceSpec{
		Selector: selector, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
}

func envKeySecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hello-env-key"}, Data: map[string][]byte{"key": []byte("k")}}
}

// twoSlots creates the slot stage as it should be: api-prod and api-prod-backup each labelled
// with its slot, the Service api selecting live, and the Secret with the .env key.
func (w *world) twoSlots(live string) {
	w.t.Helper()
	w.create(slotDeployment("prod", "prod", ""), slotDeployment("prod-backup", "prod-backup", ""),
		slotService(slotSelector(live)), envKeySecret())
}

// ask records a request as a command does (store.RequestDeploys), for the app hello.
func (w *world) ask(r deploy.Request) int64 {
	w.t.Helper()
	r.App, r.Repo, r.InstallationID = "hello", "acme/hello", 1
	if r.Trigger.Event == "" {
		r.Trigger = deploy.Trigger{Event: "issue_comment", Delivery: "cmd-" + r.Stage + "-" + r.SHA, Actor: "octocat", Issue: 7}
	}
	rds, err := w.st.RequestDeploys(context.Background(), []deploy.Request{r})
	if err != nil {
		w.t.Fatal(err)
	}
	return rds[0].ID
}

// seed records a deploy of sha to stage that ended in state, as if the pipeline had run it.
func (w *world) seed(stage, sha string, state deploy.State) int64 {
	w.t.Helper()
	return w.seedWith(stage, sha, state, deploy.Checkpoint{})
}

// seedWith is seed with the checkpoint the deploy ended with (its slot and image, say).
func (w *world) seedWith(stage, sha string, state deploy.State, cp deploy.Checkpoint) int64 {
	w.t.Helper()
	ctx := context.Background()
	id := w.ask(deploy.Request{Stage: stage, SHA: sha, Trigger: deploy.Trigger{Event: "push", Delivery: "seed-" + stage + "-" + sha, Actor: "octocat"}})
	d, lease, err := w.st.ClaimDeploy(ctx, "seed", time.Minute)
	if err != nil || d.ID != id {
		w.t.Fatalf("claiming the seeded deploy %d: got %d, %v", id, d.ID, err)
	}
	if err := w.st.Advance(ctx, lease, store.Update{State: state, Checkpoint: cp.Encode()}); err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *world) deployment(name string) *appsv1.Deployment {
	w.t.Helper()
	d, err := w.kc.Clientset().AppsV1().Deployments(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func (w *world) service(name string) *corev1.Service {
	w.t.Helper()
	s, err := w.kc.Clientset().CoreV1().Services(w.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// waitFor polls the Deployment until done says so, failing the test after a minute. It waits
// for the cluster to get somewhere (pods ready, a deadline passed); it asserts no timing.
func (w *world) waitFor(name, what string, done func(*appsv1.Deployment) bool) {
	w.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := w.kc.Clientset().AppsV1().Deployments(w.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && done(d), err
	})
	if err != nil {
		w.t.Fatalf("Deployment %s never %s: %v", name, what, err)
	}
}

// complete reports whether every replica runs the Deployment's current template and is ready.
func complete(d *appsv1.Deployment) bool {
	n, st := *d.Spec.Replicas, d.Status
	return st.ObservedGeneration >= d.Generation && st.Replicas == n && st.UpdatedReplicas == n && st.ReadyReplicas == n && st.AvailableReplicas == n
}

// deadlineExceeded reports whether Kubernetes gave up on the Deployment's rollout.
func deadlineExceeded(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return true
		}
	}
	return false
}

// setImage changes the first container's image of Deployment name, as a person would.
func (w *world) setImage(name, image string) {
	w.t.Helper()
	// The Deployment controller writes too: read again and retry on a conflict, as kubectl does.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := w.deployment(name)
		d.Spec.Template.Spec.Containers[0].Image = image
		_, err := w.kc.Clientset().AppsV1().Deployments(w.ns).Update(context.Background(), d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// untouched fails the test unless Deployment name still runs image at its first generation.
func (w *world) untouched(name, image string) {
	w.t.Helper()
	d := w.deployment(name)
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image || d.Generation != 1 {
		w.t.Errorf("Deployment %s runs %s at generation %d, want %s untouched (generation 1)", name, got, d.Generation, image)
	}
}

// stepNames lists the checkpoint's steps as name:status.
func stepNames(cp deploy.Checkpoint) []string {
	var out []string
	for _, s := range cp.Steps {
		out = append(out, s.Name+":"+s.Status)
	}
	return out
}

func wantSteps(t *testing.T, cp deploy.Checkpoint, want ...string) {
	t.Helper()
	if got := stepNames(cp); !slices.Equal(got, want) {
		t.Errorf("steps = %s, want %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}

// callsTo returns the AWS calls made to a service (codebuild, secretsmanager, ecr, sts).
func (w *world) callsTo(service string) []awstest.Call {
	var out []awstest.Call
	for _, c := range w.aws.Calls("") {
		if c.Service == service {
			out = append(out, c)
		}
	}
	return out
}
