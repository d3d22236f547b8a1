package githubtest

import (
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
)

// settings are the App's own: its permissions and events (what GET /app says, and what every
// installation has accepted), the repositories its installation covers, and the rules and
// protection of the repositories' branches. They live apart from Server's other state, behind
// their own lock, because only `stagecoach doctor` reads them.
type settings struct {
	mu          sync.Mutex
	permissions map[string]string    // nil: defaultPermissions
	accepted    map[string]string    // what the installation accepted; nil: permissions
	events      []string             // nil: defaultEvents
	covered     map[string]bool      // nil: every repository
	rulesets    map[string][]Ruleset // repo -> rulesets
	protection  map[string]Protection
}

// The App's permissions and events until SetAppPermissions and SetAppEvents change them.
var (
	defaultPermissions = map[string]string{"checks": "write", "contents": "write", "deployments": "write", "issues": "write",
		"pull_requests": "write", "metadata": "read", "members": "read", "merge_queues": "read"}
	defaultEvents = []string{"push", "pull_request", "create", "issue_comment", "check_run", "merge_group"}
)

// SetAppPermissions sets the App's permissions (GET /app), which its installation has accepted too.
func (s *Server) SetAppPermissions(perms map[string]string) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.permissions = maps.Clone(perms)
}

// SetAppEvents sets the events the App is subscribed to (GET /app).
func (s *Server) SetAppEvents(events ...string) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.events = slices.Clone(events)
}

// SetInstalledRepos makes the App's installation cover only these repositories ("owner/name"),
// as an installation on selected repositories does; without it the installation covers every
// repository.
func (s *Server) SetInstalledRepos(repos ...string) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.covered = map[string]bool{}
	for _, r := range repos {
		s.settings.covered[strings.ToLower(r)] = true
	}
}

// SetInstallationPermissions sets the permissions the App's installation has accepted, as when
// the App asked for more and nobody has accepted them yet; without it, the App's own.
func (s *Server) SetInstallationPermissions(perms map[string]string) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	s.settings.accepted = maps.Clone(perms)
}

func (s *Server) installationPermissions() map[string]string {
	s.settings.mu.Lock()
	accepted := maps.Clone(s.settings.accepted)
	s.settings.mu.Unlock()
	if accepted == nil {
		return s.appPermissions()
	}
	return accepted
}

func (s *Server) appPermissions() map[string]string {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	if s.settings.permissions == nil {
		return maps.Clone(defaultPermissions)
	}
	return maps.Clone(s.settings.permissions)
}

func (s *Server) appEvents() []string {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	if s.settings.events == nil {
		return slices.Clone(defaultEvents)
	}
	return slices.Clone(s.settings.events)
}

// repoInstallation answers GET /repos/{owner}/{repo}/installation: 404 for a repository the
// installation does not cover, as GitHub answers.
func (s *Server) repoInstallation(c *call) (int, any) {
	s.settings.mu.Lock()
	covered := s.settings.covered == nil || s.settings.covered[strings.ToLower(c.repo())]
	selection := "all"
	if s.settings.covered != nil {
		selection = "selected"
	}
	s.settings.mu.Unlock()
	if !covered {
		return notFound()
	}
	in := s.installation(s.installationID)
	in["repository_selection"] = selection
	return http.StatusOK, in
}

// Ruleset is a repository ruleset on branches, as GitHub keeps one.
type Ruleset struct {
	ID   int64
	Name string
	// Include are the refs it applies to: "refs/heads/NAME", a pattern such as
	// "refs/heads/release/*", or "~ALL".
	Include []string
	// Rules are the rules' types: "update", "non_fast_forward", "deletion", "pull_request", ...
	Rules []string
	// Evaluate puts it in evaluate mode, where GitHub reports but does not enforce it.
	Evaluate bool
	// AppBypass is whether the App is one of its bypass actors (always).
	AppBypass bool
}

// SetRulesets sets the rulesets of repo ("owner/name"); none removes them.
func (s *Server) SetRulesets(repo string, rs ...Ruleset) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	if s.settings.rulesets == nil {
		s.settings.rulesets = map[string][]Ruleset{}
	}
	s.settings.rulesets[repo] = slices.Clone(rs)
}

// Protection is a branch's classic protection.
type Protection struct {
	// Restrict limits pushes to the users, teams ("slug") and apps ("slug") named.
	Restrict                bool
	Users, Teams, Apps      []string
	EnforceAdmins           bool
	AllowForcePushes        bool
	RequirePullRequest      bool
	PullRequestBypassApps   []string
	RequiredStatusCheckCtxs []string
}

// SetBranchProtection protects a branch of repo.
func (s *Server) SetBranchProtection(repo, branch string, p Protection) {
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	if s.settings.protection == nil {
		s.settings.protection = map[string]Protection{}
	}
	s.settings.protection[repo+":"+branch] = p
}

// matches reports whether a ruleset's include list covers branch.
func (rs Ruleset) matches(branch string) bool {
	for _, inc := range rs.Include {
		if inc == "~ALL" {
			return true
		}
		if ok, _ := path.Match(inc, "refs/heads/"+branch); ok {
			return true
		}
	}
	return false
}

// branchRules answers GET /repos/{owner}/{repo}/rules/branches/{branch}: every rule of every
// active ruleset that applies to the branch (evaluate-mode rulesets are left out, as GitHub
// leaves them out).
func (s *Server) branchRules(c *call) (int, any) {
	repo, branch := c.repo(), c.params["branch"]
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	out := []any{}
	for _, rs := range s.settings.rulesets[repo] {
		if rs.Evaluate || !rs.matches(branch) {
			continue
		}
		for _, t := range rs.Rules {
			rule := map[string]any{"type": t, "ruleset_source_type": "Repository", "ruleset_source": repo, "ruleset_id": rs.ID}
			if t == "update" {
				rule["parameters"] = map[string]any{"update_allows_fetch_and_merge": false}
			}
			out = append(out, rule)
		}
	}
	return http.StatusOK, out
}

// getRuleset answers GET /repos/{owner}/{repo}/rulesets/{ruleset_id}. current_user_can_bypass
// is the App's own (always or never); bypass_actors are left out, as GitHub leaves them out for
// callers without write access to the ruleset.
func (s *Server) getRuleset(c *call) (int, any) {
	repo, id := c.repo(), c.id("ruleset_id")
	s.settings.mu.Lock()
	defer s.settings.mu.Unlock()
	for _, rs := range s.settings.rulesets[repo] {
		if rs.ID != id {
			continue
		}
		enforcement, bypass := "active", "never"
		if rs.Evaluate {
			enforcement = "evaluate"
		}
		if rs.AppBypass {
			bypass = "always"
		}
		rules := []any{}
		for _, t := range rs.Rules {
			r := map[string]any{"type": t}
			if t == "update" {
				r["parameters"] = map[string]any{"update_allows_fetch_and_merge": false}
			}
			rules = append(rules, r)
		}
		return http.StatusOK, map[string]any{
			"id": rs.ID, "name": rs.Name, "target": "branch", "source_type": "Repository", "source": repo,
			"enforcement": enforcement, "current_user_can_bypass": bypass, "node_id": "RRS_" + rs.Name,
			"conditions": map[string]any{"ref_name": map[string]any{"include": rs.Include, "exclude": []string{}}},
			"rules":      rules, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		}
	}
	return notFound()
}

// branchProtection answers GET /repos/{owner}/{repo}/branches/{branch}/protection. GitHub shows
// it to an App only with the administration permission; without, 403.
func (s *Server) branchProtection(c *call) (int, any) {
	if s.appPermissions()["administration"] == "" {
		return http.StatusForbidden, message("Resource not accessible by integration")
	}
	repo, branch := c.repo(), c.params["branch"]
	s.settings.mu.Lock()
	p, ok := s.settings.protection[repo+":"+branch]
	s.settings.mu.Unlock()
	if !ok {
		return http.StatusNotFound, message("Branch not protected")
	}
	base := s.URL() + "repos/" + repo + "/branches/" + branch + "/protection"
	out := map[string]any{
		"url":                base,
		"enforce_admins":     map[string]any{"url": base + "/enforce_admins", "enabled": p.EnforceAdmins},
		"allow_force_pushes": map[string]any{"enabled": p.AllowForcePushes},
		"allow_deletions":    map[string]any{"enabled": false},
	}
	if p.Restrict {
		users, teams, apps := []any{}, []any{}, []any{}
		for _, u := range p.Users {
			users = append(users, s.user(u))
		}
		for _, t := range p.Teams {
			teams = append(teams, s.team(t))
		}
		for _, a := range p.Apps {
			apps = append(apps, map[string]any{"id": userID(a), "slug": a, "node_id": "A_" + a, "name": a})
		}
		out["restrictions"] = map[string]any{"url": base + "/restrictions", "users_url": base + "/restrictions/users",
			"teams_url": base + "/restrictions/teams", "apps_url": base + "/restrictions/apps", "users": users, "teams": teams, "apps": apps}
	}
	if p.RequirePullRequest {
		bypass := []any{}
		for _, a := range p.PullRequestBypassApps {
			bypass = append(bypass, s.integration(a))
		}
		out["required_pull_request_reviews"] = map[string]any{"url": base + "/required_pull_request_reviews",
			"required_approving_review_count": 1, "dismiss_stale_reviews": false, "require_code_owner_reviews": false, "bypass_pull_request_allowances": map[string]any{"users": []any{}, "teams": []any{}, "apps": bypass}}
	}
	if p.RequiredStatusCheckCtxs != nil {
		out["required_status_checks"] = map[string]any{"url": base + "/required_status_checks", "strict": false,
			"contexts": p.RequiredStatusCheckCtxs, "contexts_url": base + "/required_status_checks/contexts", "checks": []any{}}
	}
	return http.StatusOK, out
}

// team is a team object as GitHub renders one.
func (s *Server) team(slug string) map[string]any {
	u := s.URL() + "teams/" + slug
	return map[string]any{"id": userID("team/" + slug), "node_id": "T_" + slug, "url": u, "members_url": u + "/members{/member}",
		"name": slug, "description": nil, "permission": "push", "html_url": "https://github.com/orgs/acme/teams/" + slug,
		"repositories_url": u + "/repos", "slug": slug, "parent": nil, "type": "organization"}
}

// integration is an App object as GitHub renders one.
func (s *Server) integration(slug string) map[string]any {
	return map[string]any{"id": userID(slug), "slug": slug, "node_id": "A_" + slug, "owner": s.user("acme"), "name": slug,
		"description": nil, "external_url": "https://example.com", "html_url": "https://github.com/apps/" + slug,
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "permissions": map[string]string{}, "events": []string{}}
}
