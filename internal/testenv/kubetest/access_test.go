package kubetest

import (
	"context"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The kubeconfig file works on its own, through its documented context, with TLS verified
// against the apiserver's self-signed CA, and reaches the pinned Kubernetes version.
func TestKubeconfig(t *testing.T) {
	c := Start(t)
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: c.Kubeconfig()},
		&clientcmd.ConfigOverrides{CurrentContext: Context}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Insecure || len(cfg.CAData) == 0 {
		t.Errorf("kubeconfig: insecure %v, %d bytes of CA; want a verified connection", cfg.Insecure, len(cfg.CAData))
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	versions, err := readVersions()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != versions["KUBE_VERSION"] {
		t.Errorf("server version %s, want %s (scripts/k8s/versions.env)", v.GitVersion, versions["KUBE_VERSION"])
	}
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != Nodes {
		t.Errorf("%d nodes, want %d", len(nodes.Items), Nodes)
	}
}

// Service-account tokens are signed with the generated key and RBAC decides what they may do:
// a fresh service account is refused Secrets until a RoleBinding grants them.
func TestServiceAccountTokenAndRBAC(t *testing.T) {
	c := Start(t)
	ns, admin := c.Namespace(t), c.Clientset()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ttl := int64(600)
	tok, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "deployer",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.RestConfig())
	cfg.BearerToken = tok.Status.Token
	deployer, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	listSecrets := func(ctx context.Context) error {
		_, err := deployer.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		return err
	}
	if err := listSecrets(ctx); !apierrors.IsForbidden(err) {
		t.Fatalf("listing Secrets without a grant: %v, want Forbidden", err)
	}

	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}}}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "deployer-reads-secrets"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secret-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: ns}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The authorizer reads RBAC objects through an informer, so the grant lands a moment later.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		last = listSecrets(ctx)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("listing Secrets after the RoleBinding: %v", last)
	}
	if _, err := deployer.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("creating a Secret with only get/list: %v, want Forbidden", err)
	}
}
