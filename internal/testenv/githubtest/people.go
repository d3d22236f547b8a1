package githubtest

import (
	"fmt"
	"net/http"
)

// SetTeamMember makes user an active member of org/team.
func (s *Server) SetTeamMember(org, team, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members == nil {
		s.members = map[string]bool{}
	}
	s.members[org+"/"+team+"/"+user] = true
}

// SetPermission sets user's permission on repo: admin, maintain, write, triage or read.
func (s *Server) SetPermission(repo, user, permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.permissions == nil {
		s.permissions = map[string]string{}
	}
	s.permissions[repo+"/"+user] = permission
}

func (s *Server) teamMembership(c *call) (int, any) {
	s.mu.Lock()
	ok := s.members[c.params["org"]+"/"+c.params["team_slug"]+"/"+c.params["username"]]
	s.mu.Unlock()
	if !ok {
		return notFound()
	}
	return http.StatusOK, map[string]any{"role": "member", "state": "active",
		"url": fmt.Sprintf("%sorgs/%s/teams/%s/memberships/%s", s.URL(), c.params["org"], c.params["team_slug"], c.params["username"])}
}

func (s *Server) collaboratorPermission(c *call) (int, any) {
	s.mu.Lock()
	p, ok := s.permissions[c.repo()+"/"+c.params["username"]]
	s.mu.Unlock()
	if !ok {
		p = "none" // as GitHub answers for a user who is not a collaborator of a public repo
	}
	// GitHub's legacy "permission" field folds maintain into write and triage into read.
	legacy := map[string]string{"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read", "none": "none"}[p]
	u := s.user(c.params["username"])
	u["role_name"] = p
	return http.StatusOK, map[string]any{"permission": legacy, "role_name": p, "user": u}
}
