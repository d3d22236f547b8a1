package kube

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// slotEnv is a namespace with the slot Deployments api-prod and api-prod-backup, a plain
// Deployment worker, and the Service api selecting {app: api, stagecoach.dev/slot: prod}. c acts
// as a user granted exactly the ClusterRole of deploy/rbac.yaml, so a verb it does not grant
// (update, create) fails the test.
type slotEnv struct {
	c     *Cluster
	admin kubernetes.Interface
	ns    string
}

func setupSlots(t *testing.T) slotEnv {
	t.Helper()
	kc := kubetest.Start(t)
	ns, admin := kc.Namespace(t), kc.Clientset()
	ctx := context.Background()
	for _, slot := range []string{"prod", "prod-backup"} {
		if _, err := admin.AppsV1().Deployments(ns).Create(ctx, slotDeployment(slot), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, kubetest.Deployment("worker", "worker"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Annotations: map[string]string{"team": "payments"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "api", SlotLabel: "prod"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := admin.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return slotEnv{c: deployerCluster(t, kc, ns), admin: admin, ns: ns}
}

// slotDeployment is kubetest's 3-replica Deployment as the slot convention has it: named
// api-<slot>, its pods labelled with their slot (and selected by it, or the two slots'
// ReplicaSets would fight over each other's pods).
func slotDeployment(slot string) *appsv1.Deployment {
	d := kubetest.Deployment("api-"+slot, "api")
	d.Spec.Selector.MatchLabels = map[string]string{"app": "api", SlotLabel: slot}
	d.Spec.Template.Labels = map[string]string{"app": "api", SlotLabel: slot}
	return d
}

// deployerCluster is a Cluster acting as a user bound, in ns, to the rules of the ClusterRole
// in deploy/rbac.yaml (read from the file, so the test and the manifest cannot disagree).
func deployerCluster(t *testing.T, kc *kubetest.Cluster, ns string) *Cluster {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile("../../deploy/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for doc := range bytes.SplitSeq(b, []byte("\n---\n")) {
		var cr rbacv1.ClusterRole
		if err := yaml.Unmarshal(doc, &cr); err != nil {
			t.Fatal(err)
		}
		if cr.Kind == "ClusterRole" {
			rules = cr.Rules
		}
	}
	if len(rules) == 0 {
		t.Fatal("no ClusterRole in deploy/rbac.yaml")
	}
	const user = "stagecoach-deployer"
	admin := kc.Clientset()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "stagecoach-deployer"}, Rules: rules}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "stagecoach-deployer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := kc.RestConfig()
	rc.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := New(rc, ns)
	if err != nil {
		t.Fatal(err)
	}
	// The authorizer reads RBAC through an informer: the grant lands a moment later.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = c.ServiceSlot(ctx, "api")
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("the deployer's grant did not land: %v", last)
	}
	return c
}

func TestSwitchService(t *testing.T) {
	e := setupSlots(t)
	ctx := context.Background()
	for _, name := range []string{"api-prod", "api-prod-backup"} {
		if s, _ := follow(t, e.c, name, time.Now()); s.Phase != health.Complete {
			t.Fatalf("initial rollout of %s: %+v", name, s)
		}
	}
	if slot, err := e.c.ServiceSlot(ctx, "api"); err != nil || slot != "prod" {
		t.Fatalf("ServiceSlot = %q, %v; want prod", slot, err)
	}
	waitEndpoints(t, e, "prod")

	if err := e.c.SwitchService(ctx, "api", "prod-backup", "stagecoach: deploy #9 of c4295bd to prod", "c4295bd", "9"); err != nil {
		t.Fatal(err)
	}
	svc, err := e.admin.CoreV1().Services(e.ns).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app": "api", SlotLabel: "prod-backup"}; !maps.Equal(svc.Spec.Selector, want) {
		t.Errorf("selector = %v, want %v", svc.Spec.Selector, want)
	}
	wantAnn := map[string]string{"team": "payments", ChangeCauseAnnotation: "stagecoach: deploy #9 of c4295bd to prod", SHAAnnotation: "c4295bd", DeployAnnotation: "9"}
	if !maps.Equal(svc.Annotations, wantAnn) {
		t.Errorf("annotations = %v, want %v", svc.Annotations, wantAnn)
	}
	if !slices.ContainsFunc(svc.ManagedFields, func(mf metav1.ManagedFieldsEntry) bool { return mf.Manager == FieldManager }) {
		t.Error("no managed fields for the stagecoach field manager")
	}
	if slot, err := e.c.ServiceSlot(ctx, "api"); err != nil || slot != "prod-backup" {
		t.Errorf("ServiceSlot after the switch = %q, %v", slot, err)
	}
	// The selector is now Stagecoach's: its owner re-applying a stale manifest (server-side)
	// gets a conflict naming stagecoach instead of silently switching the traffic back.
	stale := corev1ac.Service("api", e.ns).WithSpec(corev1ac.ServiceSpec().
		WithSelector(map[string]string{"app": "api", SlotLabel: "prod"}).
		WithPorts(corev1ac.ServicePort().WithPort(80).WithTargetPort(intstr.FromInt32(8080))))
	_, err = e.admin.CoreV1().Services(e.ns).Apply(ctx, stale, metav1.ApplyOptions{FieldManager: "team"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "spec.selector") || !strings.Contains(err.Error(), FieldManager) {
		t.Errorf("re-applying the manifest with the old slot: %v, want a conflict with %s on spec.selector", err, FieldManager)
	}

	// Switching to the live slot again writes nothing: same resourceVersion, same annotations.
	if err := e.c.SwitchService(ctx, "api", "prod-backup", "another cause", "other", "10"); err != nil {
		t.Fatal(err)
	}
	again, err := e.admin.CoreV1().Services(e.ns).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != svc.ResourceVersion || !maps.Equal(again.Annotations, wantAnn) {
		t.Errorf("a switch to the live slot changed the Service: resourceVersion %s → %s, annotations %v",
			svc.ResourceVersion, again.ResourceVersion, again.Annotations)
	}
	waitEndpoints(t, e, "prod-backup")

	// And back, as /rollback does.
	if err := e.c.SwitchService(ctx, "api", "prod", "stagecoach: rollback", "old", "11"); err != nil {
		t.Fatal(err)
	}
	if slot, _ := e.c.ServiceSlot(ctx, "api"); slot != "prod" {
		t.Errorf("ServiceSlot after switching back = %q", slot)
	}
	waitEndpoints(t, e, "prod")
}

// waitEndpoints waits until the Service's EndpointSlices list exactly the ready pods of slot.
func waitEndpoints(t *testing.T, e slotEnv, slot string) {
	t.Helper()
	var got, want []string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		eps, err := e.admin.DiscoveryV1().EndpointSlices(e.ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=api"})
		if err != nil {
			return false, err
		}
		got = nil
		for _, s := range eps.Items {
			for _, ep := range s.Endpoints {
				if ep.TargetRef != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
					got = append(got, ep.TargetRef.Name)
				}
			}
		}
		pods, err := e.admin.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: SlotLabel + "=" + slot})
		if err != nil {
			return false, err
		}
		want = nil
		for _, p := range pods.Items {
			want = append(want, p.Name)
		}
		slices.Sort(got)
		slices.Sort(want)
		return len(want) == 3 && slices.Equal(got, want), nil
	})
	if err != nil {
		t.Fatalf("endpoints of Service api = %v, want the pods of slot %s %v", got, slot, want)
	}
}

func TestSwitchServiceRefusals(t *testing.T) {
	e := setupSlots(t)
	ctx := context.Background()
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "external"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := e.admin.CoreV1().Services(e.ns).Create(ctx, headless, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	plain := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "worker"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "worker"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := e.admin.CoreV1().Services(e.ns).Create(ctx, plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var nf *NotFoundError
	if _, err := e.c.ServiceSlot(ctx, "nope"); !errors.As(err, &nf) || nf.What != "Service nope" || nf.Namespace != e.ns {
		t.Errorf("ServiceSlot of a missing Service: %v", err)
	}
	if err := e.c.SwitchService(ctx, "nope", "prod", "c", "s", "1"); !errors.As(err, &nf) || nf.What != "Service nope" {
		t.Errorf("SwitchService of a missing Service: %v", err)
	}
	if slot, err := e.c.ServiceSlot(ctx, "worker"); err != nil || slot != "" {
		t.Errorf("ServiceSlot of a Service without %s = %q, %v; want \"\"", SlotLabel, slot, err)
	}
	if err := e.c.SwitchService(ctx, "api", "", "c", "s", "1"); err == nil {
		t.Error("switching to slot \"\" succeeded")
	}
	if err := e.c.SwitchService(ctx, "external", "prod", "c", "s", "1"); err == nil || !strings.Contains(err.Error(), "no selector") {
		t.Errorf("switching a Service without a selector: %v", err)
	}
	svc, err := e.admin.CoreV1().Services(e.ns).Get(ctx, "external", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Selector) != 0 {
		t.Errorf("the refused switch wrote a selector: %v", svc.Spec.Selector)
	}
}

func TestSlotLabelOf(t *testing.T) {
	e := setupSlots(t)
	ctx := context.Background()
	var nf *NotFoundError
	for _, tt := range []struct{ deployment, want string }{
		{"api-prod", "prod"}, {"api-prod-backup", "prod-backup"}, {"worker", ""},
	} {
		t.Run(tt.deployment, func(t *testing.T) {
			if got, err := e.c.SlotLabelOf(ctx, tt.deployment); err != nil || got != tt.want {
				t.Errorf("SlotLabelOf(%s) = %q, %v; want %q", tt.deployment, got, err, tt.want)
			}
		})
	}
	if _, err := e.c.SlotLabelOf(ctx, "api-staging"); !errors.As(err, &nf) || nf.What != "Deployment api-staging" {
		t.Errorf("SlotLabelOf a missing Deployment: %v", err)
	}
}

func TestStatus(t *testing.T) {
	e := setupSlots(t)
	ctx := context.Background()
	var nf *NotFoundError
	if _, err := e.c.Status(ctx, "nope"); !errors.As(err, &nf) || nf.What != "Deployment nope" {
		t.Errorf("Status of a missing Deployment: %v", err)
	}
	if _, err := e.c.Follow(ctx, "nope", time.Now(), time.Minute, time.Second, nil); !errors.As(err, &nf) || nf.What != "Deployment nope" {
		t.Errorf("Follow of a missing Deployment: %v", err)
	}
	follow(t, e.c, "api-prod-backup", time.Now())
	if s, err := e.c.Status(ctx, "api-prod-backup"); err != nil || s.Phase != health.Complete {
		t.Fatalf("Status of a complete Deployment = %+v, %v", s, err)
	}

	broken := []Image{{Deployment: "api-prod-backup", Container: "api", Image: "registry.example/api:" + kubetest.BrokenTag}}
	if _, err := e.c.SetImages(ctx, broken, "bad", "bad", "12"); err != nil {
		t.Fatal(err)
	}
	if s, err := e.c.Status(ctx, "api-prod-backup"); err != nil || s.Phase != health.Progressing {
		t.Errorf("Status right after a new image = %+v, %v; want progressing", s, err)
	}
	// The Deployment's own progress deadline (8 s) decides, with no timeout of ours.
	var last health.Status
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := e.c.Status(ctx, "api-prod-backup")
		last = s
		return s.Phase == health.Failed, err
	})
	if err != nil {
		t.Fatalf("a broken rollout did not fail: %+v (%v)", last, err)
	}
	if !strings.HasPrefix(last.Message, "progress deadline exceeded") {
		t.Errorf("failure = %q, want the progress deadline", last.Message)
	}
}
