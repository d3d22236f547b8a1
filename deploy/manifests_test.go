// Package deploy holds the manifests that run Stagecoach in a cluster; its test applies them to a
// real control plane.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

func objects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var o unstructured.Unstructured
		if err := dec.Decode(&o.Object); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(o.Object) > 0 {
			out = append(out, &o)
		}
	}
}

// apply applies objects with server-side apply; dryRun asks the apiserver to validate and admit
// them without storing them. It returns the objects as the apiserver answered them: admitted,
// with its defaults filled in.
func apply(t *testing.T, kc *kubetest.Cluster, objs []*unstructured.Unstructured, dryRun bool) []*unstructured.Unstructured {
	t.Helper()
	dyn, err := dynamic.NewForConfig(kc.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kc.Clientset().Discovery()))
	opts := metav1.ApplyOptions{FieldManager: "stagecoach-test", Force: true}
	var out []*unstructured.Unstructured
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, o.GetName(), err)
		}
		var res dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			res = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		got, err := res.Apply(context.Background(), o.GetName(), o, opts)
		if err != nil {
			t.Errorf("applying %s %s/%s (dry run %v): %v", gvk.Kind, o.GetNamespace(), o.GetName(), dryRun, err)
			continue
		}
		out = append(out, got)
	}
	return out
}

// namespaces creates the manifests' namespaces (and one they must not reach), once per cluster.
func namespaces(t *testing.T, kc *kubetest.Cluster) {
	t.Helper()
	for _, ns := range []string{"stagecoach", "test", "alpha", "prod", "default-other"} {
		if err := kc.CreateNamespace(context.Background(), ns); err != nil {
			t.Fatal(err)
		}
	}
}

func TestManifestsApply(t *testing.T) {
	kc := kubetest.Start(t)
	namespaces(t, kc)
	all := append(objects(t, "stagecoach.yaml"), objects(t, "rbac.yaml")...)
	if len(all) != 8 {
		t.Fatalf("%d objects in the manifests, want 8", len(all))
	}
	apply(t, kc, all, true)

	// Apply the RBAC for real and ask the apiserver what the ServiceAccount may do.
	apply(t, kc, objects(t, "rbac.yaml"), false)
	sa := "system:serviceaccount:stagecoach:stagecoach"
	awaitBindings(t, kc, sa)
	for _, tt := range []struct {
		ns, group, resource, verb string
		allowed                   bool
	}{
		{"test", "apps", "deployments", "patch", true},
		{"prod", "apps", "deployments", "watch", true},
		{"alpha", "", "services", "patch", true},
		{"prod", "", "secrets", "get", false}, // any Secret: no
		{"prod", "", "secrets", "list", false},
		{"prod", "", "secrets", "watch", false},
		{"prod", "apps", "deployments", "delete", false},
		{"prod", "apps", "deployments", "create", false},
		{"prod", "", "pods", "get", false},
		{"default-other", "apps", "deployments", "patch", false},
	} {
		if got := allowed(t, kc, sa, authv1.ResourceAttributes{Namespace: tt.ns, Group: tt.group, Resource: tt.resource, Verb: tt.verb}); got != tt.allowed {
			t.Errorf("%s %s/%s in %s: allowed %v, want %v", tt.verb, tt.group, tt.resource, tt.ns, got, tt.allowed)
		}
	}
}

// awaitBindings waits until the apiserver's RBAC authorizer has seen the RoleBindings just
// applied in every stage namespace: it reads them through an informer, so a review asked at once
// can still be refused (this failed under load). A binding never seen fails the test.
func awaitBindings(t *testing.T, kc *kubetest.Cluster, user string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, ns := range []string{"test", "alpha", "prod"} {
		for !allowed(t, kc, user, authv1.ResourceAttributes{Namespace: ns, Group: "apps", Resource: "deployments", Verb: "get"}) {
			if time.Now().After(deadline) {
				t.Fatalf("the RoleBinding in %s never took effect", ns)
			}
			time.Sleep(50 * time.Millisecond) // polling the authorizer: there is no event to wait on
		}
	}
}

// allowed asks the apiserver whether user (a ServiceAccount) may do what attrs say.
func allowed(t *testing.T, kc *kubetest.Cluster, user string, attrs authv1.ResourceAttributes) bool {
	t.Helper()
	ns, _, _ := strings.Cut(strings.TrimPrefix(user, "system:serviceaccount:"), ":")
	review := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{User: user,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
		ResourceAttributes: &attrs}}
	got, err := kc.Clientset().AuthorizationV1().SubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status.Allowed
}

// deployment is the shipped Deployment as the apiserver admits it (server-side dry run): with
// the defaults the kubelet would see, such as the volumes' defaultMode.
func deployment(t *testing.T, kc *kubetest.Cluster) *appsv1.Deployment {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, o := range objects(t, "stagecoach.yaml") {
		if o.GetKind() == "Deployment" || o.GetKind() == "ServiceAccount" {
			objs = append(objs, o)
		}
	}
	var d appsv1.Deployment
	for _, o := range apply(t, kc, objs, true) {
		if o.GetKind() == "Deployment" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
			return &d
		}
	}
	t.Fatal("no Deployment in stagecoach.yaml")
	return nil
}

func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	i := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no container %s", name)
	}
	return &pod.Containers[i]
}

// Issue 10: the key volume had defaultMode 0400 and the pod ran as 65532 without fsGroup, so the
// key was root's alone and the server could not read it: it would crash-loop. The server's
// process must be able to read every file it opens, as the kubelet would make them.
func TestNonRootServerCanReadItsKey(t *testing.T) {
	kc := kubetest.Start(t)
	namespaces(t, kc)
	d := deployment(t, kc)
	pod := &d.Spec.Template.Spec
	c := container(t, pod, "stagecoach")
	checkFilesReadable(t, pod, c)

	// The check itself sees the mistake: the manifest as issue 10 found it (no fsGroup, mode
	// 0400) leaves the key unreadable, by the model and, as root, by the kernel.
	old := pod.DeepCopy()
	old.SecurityContext.FSGroup = nil
	for i := range old.Volumes {
		if old.Volumes[i].Secret != nil {
			mode := int32(0o400)
			old.Volumes[i].Secret.DefaultMode = &mode
		}
	}
	oc := container(t, old, "stagecoach")
	id, err := processIdentity(old, oc)
	if err != nil {
		t.Fatal(err)
	}
	key, err := volumeFile(old, oc, "/etc/stagecoach/github/private-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	if canRead(id, key) {
		t.Errorf("the model lets %d read a key owned by %d:%d with mode %04o", id.uid, key.uid, key.gid, key.mode)
	}
	switch got, ok := kernelCanRead(t, id, key); {
	case !ok:
		t.Log("not root: the kernel's own answer was not asked (the model was)")
	case got:
		t.Errorf("the kernel let %d read a key owned by %d:%d with mode %04o", id.uid, key.uid, key.gid, key.mode)
	default:
		t.Logf("the kernel refused uid %d a key owned by %d:%d with mode %04o, as the model says", id.uid, key.uid, key.gid, key.mode)
	}
}

// The Deployment uses both listeners: the public one is the only port of the Service, the probes
// go to the internal one, and the flags bind each to its container port.
func TestDeploymentUsesBothListeners(t *testing.T) {
	kc := kubetest.Start(t)
	namespaces(t, kc)
	d := deployment(t, kc)
	pod := &d.Spec.Template.Spec
	c := container(t, pod, "stagecoach")
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for flag, name := range map[string]string{"--listen": "http", "--internal-listen": "internal"} {
		i := slices.Index(c.Args, flag)
		if i < 0 || i+1 >= len(c.Args) {
			t.Errorf("no %s in the container's args %v", flag, c.Args)
			continue
		}
		if want := fmt.Sprintf(":%d", ports[name]); c.Args[i+1] != want {
			t.Errorf("%s %s, but the port named %s is %d", flag, c.Args[i+1], name, ports[name])
		}
	}
	for probe, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "internal" {
			t.Errorf("the %s probe does not use the internal port: %+v", probe, p)
		}
	}
	for _, o := range objects(t, "stagecoach.yaml") {
		if o.GetKind() != "Service" {
			continue
		}
		var svc corev1.Service
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &svc); err != nil {
			t.Fatal(err)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
			t.Errorf("the Service exposes %+v; want the public port http alone", svc.Spec.Ports)
		}
	}
	// The Go heap's soft limit sits below the container's memory limit, so the collector works
	// harder before the kernel kills the process.
	limit := c.Resources.Limits.Memory().Value()
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	if i < 0 {
		t.Fatal("no GOMEMLIMIT")
	}
	soft, err := resource.ParseQuantity(strings.TrimSuffix(c.Env[i].Value, "B"))
	if err != nil || soft.Value() >= limit || soft.Value() < limit/2 {
		t.Errorf("GOMEMLIMIT %s (%v) against a limit of %d bytes: want between half and all of it", c.Env[i].Value, err, limit)
	}
}

// envKeySecrets are the env-key Secrets configuration file path names, over every app and stage.
func envKeySecrets(t *testing.T, path string) []string {
	t.Helper()
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range cfg.Apps {
		app := &cfg.Apps[i]
		for stage := range app.Stages {
			// The Secret the pods need, which Stagecoach checks exists: env_key_secret, or
			// env_secret for an app with artifact: promote.
			if name := app.ConfigSecret(stage); !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Issue 10: the ClusterRole granted get on every Secret of each stage namespace. It names the
// Secrets the configuration's pods need (env-key, or env_secret with artifact: promote), no more and no fewer, and the apiserver lets the
// ServiceAccount read those and nothing else.
func TestSecretsLimitedToTheConfiguredNames(t *testing.T) {
	var rules []rbacv1.PolicyRule
	for _, o := range objects(t, "rbac.yaml") {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		var cr rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cr); err != nil {
			t.Fatal(err)
		}
		rules = cr.Rules
	}
	want := envKeySecrets(t, "../config/example.yaml")
	for _, r := range rules {
		if !slices.Contains(r.Resources, "secrets") {
			continue
		}
		got := slices.Sorted(slices.Values(r.ResourceNames))
		if !slices.Equal(got, want) {
			t.Errorf("the Secrets rule names %v; config/example.yaml's env-key Secrets are %v", got, want)
		}
	}

	kc := kubetest.Start(t)
	namespaces(t, kc)
	apply(t, kc, objects(t, "rbac.yaml"), false)
	sa := "system:serviceaccount:stagecoach:stagecoach"
	awaitBindings(t, kc, sa)
	for _, name := range want {
		if !allowed(t, kc, sa, authv1.ResourceAttributes{Namespace: "prod", Resource: "secrets", Verb: "get", Name: name}) {
			t.Errorf("get Secret %s in prod: refused, want allowed", name)
		}
	}
	for _, name := range []string{"stagecoach", "db-password", "default-token"} {
		if allowed(t, kc, sa, authv1.ResourceAttributes{Namespace: "prod", Resource: "secrets", Verb: "get", Name: name}) {
			t.Errorf("get Secret %s in prod: allowed, want refused", name)
		}
	}
}
