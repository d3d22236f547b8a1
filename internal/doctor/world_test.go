package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const (
	repo      = "acme/maas-backend"
	roleARN   = "arn:aws:iam::123456789012:role/stagecoach-"
	imageRepo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/maas-backend"
	// deployerRole is deploy/rbac.yaml's ClusterRole, as the test creates it.
	deployerRole = "stagecoach-deployer"
)

// world is a whole setup as the docs describe it, healthy until a test breaks one part: the
// GitHub App with app.yml's permissions and events, installed on the repository, whose alpha
// and prod branches a ruleset restricts to the App; the three tiers' roles, the stages'
// secrets, the projects and the repository in AWS; and in the cluster a namespace per stage in
// which deploy/rbac.yaml's ClusterRole is bound to Stagecoach's ServiceAccount.
type world struct {
	gh  *githubtest.Server
	aws *awstest.Env
	kc  *kubetest.Cluster
	cfg *config.Config
	ns  map[string]string // stage -> namespace
	sa  rbacv1.Subject
}

// stageBranches is the ruleset the docs ask for: only the App may update alpha and prod.
var stageBranches = githubtest.Ruleset{ID: 7, Name: "stage branches", Include: []string{"refs/heads/alpha", "refs/heads/prod"},
	Rules: []string{"deletion", "non_fast_forward", "update"}, AppBypass: true}

// configText is the configuration of the world: %s are the kubeconfig, then the namespaces of
// test, alpha and prod.
const configText = `
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod, kubernetes: {kubeconfig: %[1]q, context: stages, namespace: %[2]s}}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test, promoters: {users: [lead-dev]},
     kubernetes: {kubeconfig: %[1]q, context: stages, namespace: %[3]s}}
  - {name: prod, branch: prod, trigger: push, credentials: prod, promote_from: alpha, promoters: {teams: [acme/product-owners]},
     slots: [prod, prod-backup], kubernetes: {kubeconfig: %[1]q, context: stages, namespace: %[4]s}}
credentials:
  pr: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-pr"}
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-prod", external_id: stagecoach-prod}
apps:
  - name: maas-backend
    repo: acme/maas-backend
    codebuild_project: maas-backend
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/maas-backend
    pr_build: {enabled: true, codebuild_project: maas-backend-pr}
    stages:
      test: {secret_id: maas-backend/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: maas-backend/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: maas-backend/prod, deployments: [{name: api, containers: [api], service: api}]}
`

// newWorld builds a healthy world.
func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{gh: githubtest.New(t, githubtest.WithAppSlug("stagecoach")), aws: awstest.New(t), kc: kubetest.Start(t), ns: map[string]string{}}
	m, err := parseManifest(stagecoach.AppManifest)
	if err != nil {
		t.Fatal(err)
	}
	w.gh.SetAppPermissions(m.Permissions)
	w.gh.SetAppEvents(m.Events...)
	w.gh.SetRulesets(repo, stageBranches)

	for _, tier := range []string{"pr", "nonprod"} {
		w.aws.STS.Allow(roleARN+tier, "")
	}
	w.aws.STS.Allow(roleARN+"prod", "stagecoach-prod")
	for _, st := range []string{"test", "alpha", "prod"} {
		w.aws.Secrets.Add("maas-backend/" + st)
	}
	w.aws.CodeBuild.SetProjects("maas-backend", "maas-backend-pr")
	w.aws.ECR.AddRepository(imageRepo)

	for _, st := range []string{"test", "alpha", "prod"} {
		w.ns[st] = w.kc.Namespace(t)
	}
	kubeconfig := w.serviceAccount(t)
	w.deployerRole(t)
	for _, st := range []string{"test", "alpha", "prod"} {
		w.bind(t, st, deployerRole)
	}
	w.cfg, err = config.Parse("doctor_test.yaml", fmt.Appendf(nil, configText, kubeconfig, w.ns["test"], w.ns["alpha"], w.ns["prod"]))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg.GitHub.APIURL = w.gh.URL()
	// Stagecoach's grants reach the authorizer through an informer: wait until they have.
	w.waitAllowed(t, w.ns["prod"], authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Name: "maas-backend-env-key"})
	return w
}

// serviceAccount makes Stagecoach's ServiceAccount (in the test namespace) and a kubeconfig
// whose context "stages" signs in as it; it returns the kubeconfig's path.
func (w *world) serviceAccount(t *testing.T) string {
	t.Helper()
	ctx, admin := context.Background(), w.kc.Clientset()
	home := w.ns["test"]
	w.sa = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "stagecoach", Namespace: home}
	if _, err := admin.CoreV1().ServiceAccounts(home).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "stagecoach"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ttl := int64(3600)
	tok, err := admin.CoreV1().ServiceAccounts(home).CreateToken(ctx, "stagecoach",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc := w.kc.RestConfig()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	kc.AuthInfos["stagecoach"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["stages"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "stagecoach"}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// deployerRole creates deploy/rbac.yaml's ClusterRole, once per cluster.
func (w *world) deployerRole(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var cr rbacv1.ClusterRole
		if err := dec.Decode(&cr); errors.Is(err, io.EOF) {
			t.Fatal("no ClusterRole in deploy/rbac.yaml")
		} else if err != nil {
			t.Fatal(err)
		}
		if cr.Kind != "ClusterRole" {
			continue
		}
		cr.Name = deployerRole
		w.clusterRole(t, &cr)
		return
	}
}

// clusterRole creates a ClusterRole unless it exists.
func (w *world) clusterRole(t *testing.T, cr *rbacv1.ClusterRole) {
	t.Helper()
	_, err := w.kc.Clientset().RbacV1().ClusterRoles().Create(context.Background(), cr, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// bind binds a ClusterRole to Stagecoach's ServiceAccount in a stage's namespace.
func (w *world) bind(t *testing.T, stage, role string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{w.sa}}
	if _, err := w.kc.Clientset().RbacV1().RoleBindings(w.ns[stage]).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// unbind removes a stage's binding of role.
func (w *world) unbind(t *testing.T, stage, role string) {
	t.Helper()
	if err := w.kc.Clientset().RbacV1().RoleBindings(w.ns[stage]).Delete(context.Background(), role, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.waitAllowedIs(t, w.ns[stage], authorizationv1.ResourceAttributes{Verb: "patch", Group: "apps", Resource: "deployments", Name: "api-prod"}, false)
}

// waitAllowed waits until the authorizer lets Stagecoach's ServiceAccount do attrs in namespace.
func (w *world) waitAllowed(t *testing.T, namespace string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	w.waitAllowedIs(t, namespace, attrs, true)
}

func (w *world) waitAllowedIs(t *testing.T, namespace string, attrs authorizationv1.ResourceAttributes, want bool) {
	t.Helper()
	attrs.Namespace = namespace
	user := "system:serviceaccount:" + w.sa.Namespace + ":" + w.sa.Name
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := w.kc.Clientset().AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + w.sa.Namespace},
				ResourceAttributes: &attrs}}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed == want, err
	})
	if err != nil {
		t.Fatalf("the authorizer never said %v to %+v: %v", want, attrs, err)
	}
}

// run runs the doctor on the world.
func (w *world) run(t *testing.T) Report {
	t.Helper()
	gh, err := githubapp.New(githubapp.Options{AppID: w.gh.AppID(), PrivateKey: w.gh.PrivateKeyPEM(), BaseURL: w.gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := w.aws.Config()
	r := Run(context.Background(), Options{Config: w.cfg, Manifest: stagecoach.AppManifest, GitHub: gh, AWS: &awsCfg})
	var text strings.Builder
	_ = r.WriteText(&text)
	t.Logf("doctor:\n%s", text.String())
	for _, c := range w.aws.Calls("") {
		if c.Operation == "GetSecretValue" {
			t.Errorf("the doctor read a secret's value")
		}
	}
	return r
}
