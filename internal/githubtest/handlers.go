package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// call is one request being answered.
type call struct {
	s      *Server
	r      *http.Request
	params map[string]string
	body   []byte
}

func (c *call) repo() string { return c.params["owner"] + "/" + c.params["repo"] }

func (c *call) decode(v any) error { return json.Unmarshal(c.body, v) }

// handle answers a request that matched op and passed its checks.
func (s *Server) handle(op string, c *call) (int, any) {
	switch op {
	case "apps/create-installation-access-token":
		id, _ := strconv.ParseInt(c.params["installation_id"], 10, 64)
		tok, exp := s.issueToken(id)
		return http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.Format(time.RFC3339),
			"permissions":          map[string]string{"checks": "write", "contents": "write", "deployments": "write", "issues": "write"},
			"repository_selection": "all"}
	case "apps/get-repo-installation":
		return http.StatusOK, s.installation(1)
	case "rate-limit/get":
		reset := time.Now().Add(time.Hour).Unix()
		core := map[string]any{"limit": 5000, "remaining": 4999, "reset": reset, "used": 1}
		return http.StatusOK, map[string]any{"resources": map[string]any{"core": core, "search": core}, "rate": core}
	case "checks/create":
		return s.createCheckRun(c)
	case "checks/update":
		return s.updateCheckRun(c)
	case "repos/create-deployment":
		return s.createDeployment(c)
	case "repos/create-deployment-status":
		return s.createDeploymentStatus(c)
	case "issues/create-comment":
		return s.createComment(c)
	case "issues/update-comment":
		return s.updateComment(c)
	case "teams/get-membership-for-user-in-org":
		return s.teamMembership(c)
	case "repos/get-collaborator-permission-level":
		return s.collaboratorPermission(c)
	case "apps/create-from-manifest":
		return s.convertManifest(c)
	case "checks/get":
		id, _ := strconv.ParseInt(c.params["check_run_id"], 10, 64)
		if cr := s.findCheckRun(c.repo(), id); cr != nil {
			return http.StatusOK, s.checkRunJSON(cr)
		}
		return http.StatusNotFound, map[string]string{"message": "Not Found"}
	}
	s.mu.Lock()
	s.serverErrs = append(s.serverErrs, fmt.Sprintf("%s is in the description subset but the test server does not implement it", op))
	s.mu.Unlock()
	return http.StatusNotImplemented, map[string]string{"message": "not implemented by the test server"}
}

func (s *Server) id() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return s.nextID
}

func (s *Server) installation(id int64) map[string]any {
	return map[string]any{
		"id": id, "account": s.user("Codertocat"), "repository_selection": "all",
		"access_tokens_url": s.URL() + fmt.Sprintf("app/installations/%d/access_tokens", id),
		"repositories_url":  s.URL() + "installation/repositories", "html_url": "https://github.com/settings/installations/1",
		"app_id": s.appID, "target_id": 1, "target_type": "User", "permissions": map[string]string{"checks": "write"},
		"events": []string{"push"}, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"single_file_name": nil, "app_slug": "stagecoach", "suspended_by": nil, "suspended_at": nil,
	}
}

// user is a simple-user object as GitHub renders one.
func (s *Server) user(login string) map[string]any {
	u := "https://api.github.com/users/" + login
	return map[string]any{
		"login": login, "id": 1, "node_id": "MDQ6VXNlcjE=", "avatar_url": "https://github.com/images/error/octocat_happy.gif",
		"gravatar_id": "", "url": u, "html_url": "https://github.com/" + login, "followers_url": u + "/followers",
		"following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}", "starred_url": u + "/starred{/owner}{/repo}",
		"subscriptions_url": u + "/subscriptions", "organizations_url": u + "/orgs", "repos_url": u + "/repos",
		"events_url": u + "/events{/privacy}", "received_events_url": u + "/received_events", "type": "User", "site_admin": false,
	}
}
