package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// access is one thing a SelfSubjectAccessReview asks about.
type access struct {
	verb, group, resource, subresource, name string
}

func (a access) String() string {
	kind := map[string]string{"deployments": "Deployment", "services": "Service", "secrets": "Secret", "pods": "Pod"}[a.resource]
	if kind == "" {
		kind = a.resource
	}
	switch {
	case a.resource == "*":
		return "do anything (" + a.verb + " on every resource)"
	case a.subresource != "":
		return a.verb + " " + a.resource + "/" + a.subresource
	case a.name != "":
		return a.verb + " " + kind + " " + a.name
	case a.verb == "list" || a.verb == "watch" || a.verb == "*":
		return a.verb + " " + a.resource
	}
	return a.verb + " every " + kind
}

// broader is what Stagecoach never needs and a role should not grant it: reading every Secret,
// running code in pods, deleting what it deploys.
var broader = []access{
	{verb: "list", resource: "secrets"},
	{verb: "watch", resource: "secrets"},
	{verb: "get", resource: "secrets"}, // with no name: every Secret
	{verb: "create", resource: "pods", subresource: "exec"},
	{verb: "create", resource: "pods"},
	{verb: "delete", group: "apps", resource: "deployments"},
	{verb: "create", group: "apps", resource: "deployments"},
	{verb: "*", group: "*", resource: "*"},
}

// needs is exactly what Stagecoach does in a stage's namespace: get, patch (server-side apply)
// and watch (by name) each app's Deployments, on a two-slot stage each slot's; get and patch the
// Services that select the live slot; get each app's env-key Secret.
func needs(cfg *config.Config, st *config.Stage) []access {
	var out []access
	add := func(a access) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, app := range cfg.Apps {
		as, ok := app.Stages[st.Name]
		if !ok {
			continue
		}
		for _, dep := range as.Deployments {
			names := []string{dep.Name}
			if len(st.Slots) > 0 {
				names = nil
				for _, slot := range st.Slots {
					names = append(names, dep.Name+"-"+slot)
				}
			}
			for _, n := range names {
				for _, verb := range []string{"get", "patch", "watch"} {
					add(access{verb: verb, group: "apps", resource: "deployments", name: n})
				}
			}
			if dep.Service != "" {
				for _, verb := range []string{"get", "patch"} {
					add(access{verb: verb, resource: "services", name: dep.Service})
				}
			}
		}
		add(access{verb: "get", resource: "secrets", name: app.ConfigSecret(st.Name)})
	}
	return out
}

// kubernetes checks, for each stage's cluster and namespace, that Stagecoach may do exactly
// what it needs there, and warns of anything broader.
func (d *doctor) kubernetes(ctx context.Context) {
	for _, st := range usedStages(d.cfg) {
		d.stageAccess(ctx, st)
	}
}

func (d *doctor) stageAccess(ctx context.Context, st *config.Stage) {
	const area = AreaKubernetes
	k := st.Kubernetes
	where := "context " + orDefault(k.Context, "(current)")
	if k.InCluster {
		where = "in-cluster service account"
	}
	check := fmt.Sprintf("stage %s (%s, namespace %s)", st.Name, where, k.Namespace)
	cs, err := connect(k)
	if err != nil {
		d.add(area, check, Fail, err.Error(), fmt.Sprintf("correct stages[%s].kubernetes (kubeconfig, context, in_cluster)", st.Name))
		return
	}
	who := whoAmI(ctx, cs)
	var denied, granted []string
	for _, a := range needs(d.cfg, st) {
		ok, err := allowed(ctx, cs, k.Namespace, a)
		if err != nil {
			d.add(area, check, Fail, "cannot ask the cluster: "+err.Error(), "check the cluster is reachable with that "+where)
			return
		}
		if ok {
			granted = append(granted, a.String())
		} else {
			denied = append(denied, a.String())
		}
	}
	var extra []string
	for _, a := range broader {
		if ok, err := allowed(ctx, cs, k.Namespace, a); err == nil && ok {
			extra = append(extra, a.String())
		}
	}
	bind := fmt.Sprintf("bind the ClusterRole of deploy/rbac.yaml (its Secret rule naming %s) in namespace %s to %s",
		strings.Join(secretNames(d.cfg, st), ", "), k.Namespace, who)
	switch {
	case len(denied) > 0:
		d.add(area, check, Fail, who+" may not: "+strings.Join(denied, ", "), bind)
	default:
		d.add(area, check, OK, who+" may "+strings.Join(granted, ", "), "")
	}
	if len(extra) > 0 {
		d.add(area, check+" beyond need", Warn, who+" may also "+strings.Join(extra, ", ")+", which Stagecoach never needs",
			"grant "+who+" only what deploy/rbac.yaml grants: "+bind)
	}
}

// secretNames are the Secrets a stage's pods need at start-up (config.App.ConfigSecret).
func secretNames(cfg *config.Config, st *config.Stage) []string {
	var out []string
	for _, app := range cfg.Apps {
		if _, ok := app.Stages[st.Name]; ok && !slices.Contains(out, app.ConfigSecret(st.Name)) {
			out = append(out, app.ConfigSecret(st.Name))
		}
	}
	return out
}

// connect builds a client for a stage's cluster as the service does: its kubeconfig and
// context, or the pod's service account.
func connect(k config.Kubernetes) (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	if k.InCluster {
		rc, err = rest.InClusterConfig()
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if k.Kubeconfig != "" {
			rules.ExplicitPath = k.Kubeconfig
		}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("no client configuration: %w", err)
	}
	rc.UserAgent = "stagecoach-doctor"
	// Some sixty access reviews in a burst; client-go's default of 5 a second would make a
	// one-shot command wait for its own throttle.
	rc.QPS, rc.Burst = 50, 100
	return kubernetes.NewForConfig(rc)
}

// whoAmI is the user the cluster sees (a SelfSubjectReview), or a description when it will not say.
func whoAmI(ctx context.Context, cs kubernetes.Interface) string {
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || r.Status.UserInfo.Username == "" {
		return "Stagecoach's identity"
	}
	return r.Status.UserInfo.Username
}

// allowed asks the cluster whether the caller may do a in namespace.
func allowed(ctx context.Context, cs kubernetes.Interface, namespace string, a access) (bool, error) {
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Name: a.name,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}
