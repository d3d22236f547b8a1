package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// call is one request being answered.
type call struct {
	s      *Server
	r      *http.Request
	params map[string]string
	body   any         // the decoded JSON body, nil when there was none
	header http.Header // the answer's headers, for handlers that add some (Link)
	// answered is closed once the answer is written; the webhooks the call causes wait for it.
	answered <-chan struct{}
}

func (c *call) repo() string { return c.params["owner"] + "/" + c.params["repo"] }

// id is a numeric path parameter; the matcher has already checked it is an integer.
func (c *call) id(name string) int64 {
	n, _ := strconv.ParseInt(c.params[name], 10, 64)
	return n
}

// decode reads the (already validated) body into v.
func (c *call) decode(v any) error {
	b, err := json.Marshal(c.body)
	if err != nil {
		return fmt.Errorf("re-encoding the body: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding the body: %w", err)
	}
	return nil
}

// routes maps every operation of the subset to its handler (a test checks none is missing).
func (s *Server) routes() map[string]func(*call) (int, any) {
	routes := map[string]func(*call) (int, any){
		"apps/create-installation-access-token":               s.createToken,
		"apps/get-authenticated":                              func(*call) (int, any) { return http.StatusOK, s.appJSON() },
		"apps/list-installations":                             func(*call) (int, any) { return http.StatusOK, []any{s.installation(s.installationID)} },
		"apps/get-repo-installation":                          s.repoInstallation,
		"apps/create-from-manifest":                           s.convertManifest,
		"rate-limit/get":                                      s.rateLimit,
		"checks/create":                                       s.createCheckRun,
		"checks/update":                                       s.updateCheckRun,
		"checks/get":                                          s.getCheckRun,
		"checks/list-for-ref":                                 s.listCheckRunsForRef,
		"repos/create-deployment":                             s.createDeployment,
		"repos/list-deployments":                              s.listDeployments,
		"repos/create-deployment-status":                      s.createDeploymentStatus,
		"repos/list-deployment-statuses":                      s.listDeploymentStatuses,
		"issues/create":                                       s.createIssue,
		"issues/list-for-repo":                                s.listIssues,
		"issues/update":                                       s.updateIssue,
		"issues/list-comments":                                s.listComments,
		"issues/create-comment":                               s.createComment,
		"issues/update-comment":                               s.updateComment,
		"issues/get":                                          s.getIssue,
		"issues/get-comment":                                  s.getComment,
		"git/get-tag":                                         s.getTag,
		"reactions/create-for-issue-comment":                  s.createReaction,
		"issues/get-label":                                    s.getLabel,
		"issues/create-label":                                 s.createLabel,
		"issues/add-labels":                                   s.addLabels,
		"git/get-ref":                                         s.getRef,
		"git/update-ref":                                      s.updateRef,
		"git/create-ref":                                      s.createRef,
		"repos/get-commit":                                    s.getCommit,
		"repos/compare-commits-with-basehead":                 s.compare,
		"repos/list-pull-requests-associated-with-commit":     s.pullsForCommit,
		"pulls/get":                                           s.getPull,
		"teams/get-membership-for-user-in-org":                s.teamMembership,
		"repos/get-collaborator-permission-level":             s.collaboratorPermission,
		"repos/get-branch-rules":                              s.branchRules,
		"repos/get-repo-ruleset":                              s.getRuleset,
		"repos/get-branch-protection":                         s.branchProtection,
		"users/get-authenticated":                             s.authenticatedUser,
		"apps/list-installations-for-authenticated-user":      s.userInstallations,
		"apps/list-installation-repos-for-authenticated-user": s.userInstallationRepos,
		"apps/delete-token":                                   s.deleteUserToken,
		"apps/list-webhook-deliveries":                        s.listHookDeliveries,
		"apps/get-webhook-delivery":                           s.getHookDelivery,
		"apps/redeliver-webhook-delivery":                     s.redeliverHookDelivery,
		"git/list-matching-refs":                              s.listMatchingRefs,
		"repos/list-activities":                               s.listActivities,
		"repos/get-content":                                   s.getContent,
		"repos/list-commits":                                  s.listCommits,
	}
	return routes
}

// notImplemented answers an operation of the subset that has no handler, and records it so
// the test fails.
func (s *Server) notImplemented(op string) (int, any) {
	s.mu.Lock()
	s.problemLocked("%s is in the description subset but the test server does not implement it", op)
	s.mu.Unlock()
	return http.StatusNotImplemented, message("not implemented by the test server")
}

func notFound() (int, any) { return http.StatusNotFound, message("Not Found") }

// nextIDLocked hands out ids; the caller holds s.mu.
func (s *Server) nextIDLocked() int64 {
	s.nextID++
	return s.nextID
}

func (s *Server) newID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextIDLocked()
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func now() string { return stamp(time.Now()) }

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) rateLimit(*call) (int, any) {
	s.mu.Lock()
	used := s.used
	s.mu.Unlock()
	core := map[string]any{"limit": s.limit, "remaining": max(s.limit-used, 0), "reset": s.reset.Unix(), "used": used}
	search := map[string]any{"limit": 30, "remaining": 30, "reset": s.reset.Unix(), "used": 0}
	return http.StatusOK, map[string]any{"resources": map[string]any{"core": core, "search": search}, "rate": core}
}

func (s *Server) appJSON() map[string]any {
	return map[string]any{
		"id": s.appID, "slug": s.slug, "node_id": "A_kwDO" + s.slug, "owner": s.user("acme"), "name": "Stagecoach",
		"description": "Runs the release pipeline from GitHub", "external_url": "https://github.com/stagecoach/stagecoach",
		"html_url": "https://github.com/apps/" + s.slug, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"permissions": s.appPermissions(),
		"events":      s.appEvents(),
	}
}

func (s *Server) installation(id int64) map[string]any {
	// The description of apps/list-installations has the account as allOf [simple-user,
	// enterprise] (elsewhere anyOf), so the account carries the enterprise's required fields
	// too; they are fields a user object may have anyway.
	account := s.user("Codertocat")
	account["name"], account["slug"] = "Codertocat", "codertocat"
	account["created_at"], account["updated_at"] = "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
	return map[string]any{
		"id": id, "account": account, "repository_selection": "all",
		"access_tokens_url": fmt.Sprintf("%sapp/installations/%d/access_tokens", s.URL(), id),
		"repositories_url":  s.URL() + "installation/repositories", "html_url": fmt.Sprintf("https://github.com/settings/installations/%d", id),
		"app_id": s.appID, "target_id": 1, "target_type": "User", "permissions": s.installationPermissions(),
		"events": s.appEvents(), "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"single_file_name": nil, "app_slug": s.slug, "suspended_by": nil, "suspended_at": nil,
	}
}

// user is a simple-user object as GitHub renders one.
func (s *Server) user(login string) map[string]any {
	u := s.URL() + "users/" + login
	kind, web := "User", "https://github.com/"+login
	if slug, ok := strings.CutSuffix(login, "[bot]"); ok {
		kind, web = "Bot", "https://github.com/apps/"+slug
	}
	return map[string]any{
		"login": login, "id": userID(login), "node_id": "U_" + login, "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
		"gravatar_id": "", "url": u, "html_url": web, "followers_url": u + "/followers",
		"following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}", "starred_url": u + "/starred{/owner}{/repo}",
		"subscriptions_url": u + "/subscriptions", "organizations_url": u + "/orgs", "repos_url": u + "/repos",
		"events_url": u + "/events{/privacy}", "received_events_url": u + "/received_events", "type": kind, "site_admin": false,
	}
}

// userID gives each login a stable id, so a client comparing ids sees the same user twice.
func userID(login string) int64 {
	var h int64 = 7
	for _, r := range login {
		h = (h*31 + int64(r)) % 1_000_000_007
	}
	return h + 1
}
