// Package deploy holds the manifests that run Stagecoach in a cluster; its test applies them to a
// real control plane.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
// them without storing them.
func apply(t *testing.T, kc *kubetest.Cluster, objs []*unstructured.Unstructured, dryRun bool) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(kc.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kc.Clientset().Discovery()))
	opts := metav1.ApplyOptions{FieldManager: "stagecoach-test", Force: true}
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
		if _, err := res.Apply(context.Background(), o.GetName(), o, opts); err != nil {
			t.Errorf("applying %s %s/%s (dry run %v): %v", gvk.Kind, o.GetNamespace(), o.GetName(), dryRun, err)
		}
	}
}

func TestManifestsApply(t *testing.T) {
	kc := kubetest.Start(t)
	for _, ns := range []string{"stagecoach", "test", "alpha", "prod", "default-other"} {
		if _, err := kc.Clientset().CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	all := append(objects(t, "stagecoach.yaml"), objects(t, "rbac.yaml")...)
	if len(all) != 7 {
		t.Fatalf("%d objects in the manifests, want 7", len(all))
	}
	apply(t, kc, all, true)

	// Apply the RBAC for real and ask the apiserver what the ServiceAccount may do.
	apply(t, kc, objects(t, "rbac.yaml"), false)
	sa := "system:serviceaccount:stagecoach:stagecoach"
	for _, tt := range []struct {
		ns, group, resource, verb string
		allowed                   bool
	}{
		{"test", "apps", "deployments", "patch", true},
		{"prod", "apps", "deployments", "watch", true},
		{"alpha", "", "services", "patch", true},
		{"prod", "", "secrets", "get", true},
		{"prod", "", "secrets", "list", false},
		{"prod", "apps", "deployments", "delete", false},
		{"prod", "apps", "deployments", "create", false},
		{"prod", "", "pods", "get", false},
		{"default-other", "apps", "deployments", "patch", false},
	} {
		review := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{User: sa,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:stagecoach"},
			ResourceAttributes: &authv1.ResourceAttributes{Namespace: tt.ns, Group: tt.group, Resource: tt.resource, Verb: tt.verb}}}
		got, err := kc.Clientset().AuthorizationV1().SubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed != tt.allowed {
			t.Errorf("%s %s/%s in %s: allowed %v, want %v", tt.verb, tt.group, tt.resource, tt.ns, got.Status.Allowed, tt.allowed)
		}
	}
}
