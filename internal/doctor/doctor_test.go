package doctor

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The healthy setup passes every check, with nothing broader than needed.
func TestHealthySetupPassesEveryCheck(t *testing.T) {
	r := newWorld(t).run(t)
	for _, c := range r.Checks {
		if c.Status != OK {
			t.Errorf("%s %s: %s %s", c.Area, c.Name, c.Status, c.Detail)
		}
	}
	// Every check ran: the App's permissions and events, the installation, two guarded
	// branches; credentials, three tiers, three secrets, two projects, the repository, PR
	// builds; three stages.
	if len(r.Checks) != 5+1+3+3+2+1+1+3 {
		t.Errorf("%d checks, want %d", len(r.Checks), 5+1+3+3+2+1+1+3)
	}
	if r.Failed() {
		t.Error("the report failed")
	}
}

// Each check against one broken part of an otherwise healthy setup: the check says what is
// wrong and how to fix it, and no check that passed on the healthy setup fails for it (a check
// the broken part made impossible is left out rather than failed twice).
func TestEachCheckCatchesItsBrokenSetup(t *testing.T) {
	healthy := map[string]bool{}
	for _, tt := range []struct {
		name        string
		brk         func(t *testing.T, w *world)
		area, check string
		status      Status
		detail, fix string // substrings
	}{
		{name: "App lacks a permission", area: AreaGitHub, check: "App stagecoach permissions", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.gh.SetAppPermissions(map[string]string{"checks": "write", "contents": "read", "deployments": "write", "issues": "write",
					"pull_requests": "read", "metadata": "read"})
			},
			detail: "contents: write (has read), members: read (has none)", fix: "accept them on each installation"},
		{name: "App has more than it needs", area: AreaGitHub, check: "App stagecoach permissions", status: Warn,
			brk: func(t *testing.T, w *world) {
				w.gh.SetAppPermissions(map[string]string{"checks": "write", "contents": "write", "deployments": "write", "issues": "write",
					"pull_requests": "read", "metadata": "read", "members": "read", "merge_queues": "read", "secrets": "write"})
			},
			detail: "beyond app.yml: secrets: write"},
		{name: "App misses an event", area: AreaGitHub, check: "App stagecoach events", status: Fail,
			brk:    func(t *testing.T, w *world) { w.gh.SetAppEvents("push", "pull_request", "create", "issue_comment") },
			detail: "not subscribed to check_run", fix: "subscribe the App"},
		{name: "repository not installed", area: AreaGitHub, check: repo, status: Fail,
			brk:    func(t *testing.T, w *world) { w.gh.SetInstalledRepos("acme/other") },
			detail: "no installation of the App covers it", fix: "apps/stagecoach/installations/new"},
		{name: "installation has not accepted new permissions", area: AreaGitHub, check: repo, status: Fail,
			brk: func(t *testing.T, w *world) {
				m, _ := parseManifest(stagecoach.AppManifest)
				delete(m.Permissions, "members")
				w.gh.SetInstallationPermissions(m.Permissions)
			},
			detail: "installation 1 (Codertocat) has not accepted the App's permissions: members: read (has none)", fix: "Review request"},
		{name: "branch not protected at all", area: AreaGitHub, check: repo + " branch prod", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.gh.SetAppPermissions(withAdministration(t))
				w.gh.SetRulesets(repo, githubtest.Ruleset{ID: 8, Name: "alpha only", Include: []string{"refs/heads/alpha"}, Rules: []string{"update"}, AppBypass: true})
			},
			detail: "not protected: anyone with write access can push to it, and a push to it would deploy stage prod", fix: "Restrict updates"},
		{name: "ruleset the App cannot bypass", area: AreaGitHub, check: repo + " branch alpha", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.gh.SetRulesets(repo, stageBranches, githubtest.Ruleset{ID: 9, Name: "no force pushes", Include: []string{"refs/heads/alpha"}, Rules: []string{"non_fast_forward"}})
			},
			detail: `cannot bypass ruleset "no force pushes" (non_fast_forward)`, fix: "bypass list"},
		{name: "ruleset only evaluated, classic protection unreadable", area: AreaGitHub, check: repo + " branch alpha", status: Fail,
			brk: func(t *testing.T, w *world) {
				prodOnly := stageBranches
				prodOnly.Include = []string{"refs/heads/prod"}
				w.gh.SetRulesets(repo, prodOnly, githubtest.Ruleset{ID: 10, Name: "trial", Include: []string{"refs/heads/alpha"}, Rules: []string{"update"}, Evaluate: true, AppBypass: true})
			},
			detail: "administration: read", fix: "or grant the App administration: read"},
		{name: "classic protection that others can push past", area: AreaGitHub, check: repo + " branch alpha", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.gh.SetAppPermissions(withAdministration(t))
				w.gh.SetRulesets(repo)
				w.gh.SetBranchProtection(repo, "alpha", githubtest.Protection{Restrict: true, Users: []string{"bob"}, Teams: []string{"devs"}, Apps: []string{"stagecoach"}})
				w.gh.SetBranchProtection(repo, "prod", classicHealthy)
			},
			detail: "also pushable by user bob, team devs; administrators can push past it; force pushes are refused"},
		{name: "classic protection without the App", area: AreaGitHub, check: repo + " branch prod", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.gh.SetAppPermissions(withAdministration(t))
				w.gh.SetRulesets(repo)
				w.gh.SetBranchProtection(repo, "alpha", classicHealthy)
				w.gh.SetBranchProtection(repo, "prod", githubtest.Protection{Restrict: true, EnforceAdmins: true, AllowForcePushes: true,
					RequirePullRequest: true})
			},
			detail: "the App may not push: /promote would be refused; it requires pull requests"},
		{name: "role not assumable", area: AreaAWS, check: "tier prod", status: Fail,
			brk:    func(t *testing.T, w *world) { w.aws.STS.Allow(roleARN+"prod", "another-external-id") },
			detail: "cannot assume arn:aws:iam::123456789012:role/stagecoach-prod: AccessDenied", fix: "sts:ExternalId"},
		{name: "stage secret missing", area: AreaAWS, check: "maas-backend alpha secret", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.cfg.Apps[0].Stages["alpha"] = withSecret(w.cfg.Apps[0].Stages["alpha"], "maas-backend/alpah")
			},
			detail: "no secret maas-backend/alpah in Secrets Manager", fix: "secret_id"},
		{name: "CodeBuild project missing", area: AreaAWS, check: "maas-backend CodeBuild project maas-backend", status: Fail,
			brk:    func(t *testing.T, w *world) { w.aws.CodeBuild.SetProjects("maas-backend-pr") },
			detail: "no project maas-backend in CodeBuild"},
		{name: "ECR repository missing", area: AreaAWS, check: "maas-backend ECR repository maas-backnd", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.cfg.Apps[0].ImageRepository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/maas-backnd"
			},
			detail: "no repository maas-backnd in registry 123456789012"},
		{name: "PR builds in the deploy project", area: AreaAWS, check: "maas-backend pull-request builds", status: Fail,
			brk:    func(t *testing.T, w *world) { w.cfg.Apps[0].PRBuild.CodeBuildProject = "maas-backend" },
			detail: "they run in the deploy project maas-backend", fix: "pr_build.codebuild_project"},
		{name: "no role in the prod namespace", area: AreaKubernetes, check: "prod", status: Fail,
			brk:    func(t *testing.T, w *world) { w.unbind(t, "prod", deployerRole) },
			detail: "may not: get Deployment api-prod, patch Deployment api-prod, watch Deployment api-prod, get Deployment api-prod-backup",
			fix:    "bind the ClusterRole of deploy/rbac.yaml (its Secret rule naming maas-backend-env-key) in namespace"},
		{name: "role names other Secrets", area: AreaKubernetes, check: "alpha", status: Fail,
			brk: func(t *testing.T, w *world) {
				w.unbind(t, "alpha", deployerRole)
				w.clusterRole(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "stagecoach-wrong-secret"}, Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "patch", "watch"}},
					{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"other-env-key"}, Verbs: []string{"get"}}}})
				w.bind(t, "alpha", "stagecoach-wrong-secret")
				w.waitAllowed(t, w.ns["alpha"], authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Name: "other-env-key"})
			},
			detail: "may not: get Secret maas-backend-env-key"},
		{name: "role that lists Secrets", area: AreaKubernetes, check: "test beyond need", status: Warn,
			brk: func(t *testing.T, w *world) {
				w.clusterRole(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "stagecoach-secret-reader"}, Rules: []rbacv1.PolicyRule{
					{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}}})
				w.bind(t, "test", "stagecoach-secret-reader")
				w.waitAllowed(t, w.ns["test"], authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"})
			},
			detail: "may also list secrets, get every Secret, which Stagecoach never needs", fix: "grant system:serviceaccount:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if len(healthy) == 0 {
				for _, c := range w.run(t).Checks {
					healthy[c.Area+"/"+c.Name] = c.Status == OK
				}
			}
			tt.brk(t, w)
			r := w.run(t)
			c, ok := findCheck(r, tt.area, tt.check)
			if !ok {
				t.Fatalf("no %s check %q", tt.area, tt.check)
			}
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) || !strings.Contains(c.Fix, tt.fix) {
				t.Errorf("%s: %s %q (fix %q); want %s with %q (fix with %q)", c.Name, c.Status, c.Detail, c.Fix, tt.status, tt.detail, tt.fix)
			}
			if r.Failed() != (tt.status == Fail) {
				t.Errorf("Failed() = %v for a %s", r.Failed(), tt.status)
			}
			for _, other := range r.Checks {
				if other.Name != c.Name && other.Status == Fail && healthy[other.Area+"/"+other.Name] {
					t.Errorf("%s also failed: %s", other.Name, other.Detail)
				}
			}
		})
	}
}

// withSecret is an app's stage with another secret id.
func withSecret(s config.AppStage, id string) config.AppStage {
	s.SecretID = id
	return s
}

// classicHealthy is classic branch protection that lets only the App push.
var classicHealthy = githubtest.Protection{Restrict: true, Apps: []string{"stagecoach"}, EnforceAdmins: true, AllowForcePushes: true}

// Classic branch protection restricted to the App passes, when the App may read it.
func TestClassicProtectionOfTheAppAlonePasses(t *testing.T) {
	w := newWorld(t)
	w.gh.SetAppPermissions(withAdministration(t))
	w.gh.SetRulesets(repo)
	w.gh.SetBranchProtection(repo, "alpha", classicHealthy)
	w.gh.SetBranchProtection(repo, "prod", classicHealthy)
	r := w.run(t)
	for _, b := range []string{"alpha", "prod"} {
		if c, _ := findCheck(r, AreaGitHub, repo+" branch "+b); c.Status != OK {
			t.Errorf("branch %s: %s %s", b, c.Status, c.Detail)
		}
	}
	if r.Failed() {
		t.Error("the report failed")
	}
}

// findCheck finds a check by area and name, or, for Kubernetes, by the stage its name starts with.
func findCheck(r Report, area, name string) (Check, bool) {
	if c, ok := r.Find(area, name); ok {
		return c, true
	}
	for _, c := range r.Checks {
		if c.Area == area && area == AreaKubernetes && strings.HasPrefix(c.Name, "stage "+strings.TrimSuffix(name, " beyond need")+" ") &&
			strings.HasSuffix(c.Name, "beyond need") == strings.HasSuffix(name, "beyond need") {
			return c, true
		}
	}
	return Check{}, false
}

// withAdministration is app.yml's permissions and administration: read.
func withAdministration(t *testing.T) map[string]string {
	t.Helper()
	m, err := parseManifest(stagecoach.AppManifest)
	if err != nil {
		t.Fatal(err)
	}
	m.Permissions["administration"] = "read"
	return m.Permissions
}

// The report reads the same to people and machines.
func TestReportTextAndJSON(t *testing.T) {
	r := Report{Checks: []Check{
		{Area: AreaGitHub, Name: "App stagecoach events", Status: OK, Detail: "subscribed to push"},
		{Area: AreaAWS, Name: "tier prod", Status: Fail, Detail: "cannot assume it", Fix: "trust Stagecoach"},
		{Area: AreaKubernetes, Name: "stage prod beyond need", Status: Warn, Detail: "may also list secrets", Fix: "grant less"},
	}}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := `GitHub
  ✓ App stagecoach events: subscribed to push

AWS
  ✗ tier prod: cannot assume it
      fix: trust Stagecoach

Kubernetes
  ⚠ stage prod beyond need: may also list secrets
      fix: grant less

3 checks: 1 ok, 1 failed, 1 warnings.
`
	if text.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", text.String(), want)
	}
	var js strings.Builder
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var out struct {
		OK               bool
		Failed, Warnings int
		Checks           []Check
	}
	if err := json.Unmarshal([]byte(js.String()), &out); err != nil {
		t.Fatal(err)
	}
	if out.OK || out.Failed != 1 || out.Warnings != 1 || len(out.Checks) != 3 || out.Checks[1].Fix != "trust Stagecoach" {
		t.Errorf("JSON = %s", js.String())
	}
}
