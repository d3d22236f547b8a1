package githubtest

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// webhookFiles are real payloads GitHub sent (testdata/webhooks/README.md): every delivery is
// one of them with the fields that matter replaced.
//
//go:embed testdata/webhooks
var webhookFiles embed.FS

// loadTemplates reads every payload example, by its path below testdata/webhooks.
func loadTemplates() (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	err := fs.WalkDir(webhookFiles, "testdata/webhooks", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := webhookFiles.ReadFile(path)
		if err != nil {
			return err
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // ids stay exactly as GitHub wrote them
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("reading webhook example %s: %w", path, err)
		}
		if _, ok := m["repository"].(map[string]any); !ok {
			return fmt.Errorf("webhook example %s has no repository", path)
		}
		out[strings.TrimPrefix(path, "testdata/webhooks/")] = m
		return nil
	})
	return out, err
}

// payloadLocked copies a payload example for repo: every URL points at this server and at repo,
// and the repository and installation are this server's. The caller replaces the rest.
func (s *Server) payloadLocked(name, repo string) map[string]any {
	t := s.templates[name]
	from, _ := t["repository"].(map[string]any)["full_name"].(string)
	m := rewrite(t, strings.NewReplacer("https://api.github.com/", s.URL(), from, repo)).(map[string]any)
	m["repository"] = s.hookRepoLocked(m["repository"], repo, repo)
	id := s.installationID
	m["installation"] = map[string]any{"id": id,
		"node_id": base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "023:IntegrationInstallation%d", id))}
	// The repositories are rendered as owned by a user, whose events carry no organization.
	delete(m, "organization")
	return m
}

// rewrite deep-copies a decoded JSON value, replacing text in every string.
func rewrite(v any, r *strings.Replacer) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = rewrite(x, r)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = rewrite(x, r)
		}
		return out
	case string:
		return r.Replace(t)
	}
	return v
}

// object is v as a JSON object, or a new empty one.
func object(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

// hookRepoLocked makes a payload's repository object (already pointing at from) name repo: its
// URLs, ids, owner, default branch and timestamps. The example's other fields stay.
func (s *Server) hookRepoLocked(v any, from, repo string) map[string]any {
	m := object(v)
	if from != repo {
		m = rewrite(m, strings.NewReplacer(from, repo)).(map[string]any)
	}
	owner, name, _ := strings.Cut(repo, "/")
	m["id"], m["node_id"], m["name"], m["full_name"] = userID(repo), "R_"+repo, name, repo
	m["html_url"], m["private"], m["visibility"], m["fork"] = "https://github.com/"+repo, true, "private", from != repo
	m["description"], m["homepage"], m["language"], m["default_branch"] = nil, nil, "Go", s.defaultBranchLocked(repo)
	if _, ok := m["master_branch"]; ok {
		m["master_branch"] = s.defaultBranchLocked(repo)
	}
	m["owner"] = s.hookUser(m["owner"], owner)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for k, t := range map[string]time.Time{"created_at": created, "updated_at": time.Now(), "pushed_at": time.Now()} {
		switch m[k].(type) {
		case json.Number, float64: // push payloads keep the older epoch-second form
			m[k] = t.Unix()
		case string:
			m[k] = stamp(t)
		}
	}
	return m
}

// hookUser makes a payload's user object (v, from the example) login's.
func (s *Server) hookUser(v any, login string) map[string]any {
	m := object(v)
	for k, x := range s.user(login) {
		m[k] = x
	}
	if _, ok := m["email"]; ok { // a push's repository owner has a name and an email too
		m["name"], m["email"] = login, noreply(login)
	}
	return m
}

// pusher is a push's pusher, as GitHub names a person (or bot) there.
func pusher(login string) map[string]any {
	return map[string]any{"name": login, "email": noreply(login)}
}

func noreply(login string) string {
	return fmt.Sprintf("%d+%s@users.noreply.github.com", userID(login), login)
}

// BotLogin is the login of the App's bot user, "<slug>[bot]": the author of everything the App
// does through the API.
func (s *Server) BotLogin() string { return s.slug + "[bot]" }

// SetDefaultBranch sets repo's default branch (default "main"), as repositories and pull
// requests name it.
func (s *Server) SetDefaultBranch(repo, branch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.branches[repo] = branch
}

func (s *Server) defaultBranchLocked(repo string) string {
	if b := s.branches[repo]; b != "" {
		return b
	}
	return "main"
}

// AuthorAssociation is login's author_association on repo, as the comments it writes carry it.
func (s *Server) AuthorAssociation(repo, login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.associationLocked(repo, login)
}

// associationLocked is login's author_association on repo, as GitHub derives it: OWNER for
// the repository's owner, MEMBER for a member of one of the owner's teams, COLLABORATOR for
// someone with a permission seeded by SetPermission, CONTRIBUTOR for the author of a merged
// pull request, NONE otherwise (the App's bot too).
func (s *Server) associationLocked(repo, login string) string {
	owner, _, _ := strings.Cut(repo, "/")
	switch {
	case login == owner:
		return "OWNER"
	case s.memberLocked(owner, login):
		return "MEMBER"
	case s.permissions[repo+"/"+login] != "" && s.permissions[repo+"/"+login] != "none":
		return "COLLABORATOR"
	}
	for _, p := range s.pulls[repo] {
		if p.Merged && p.User == login {
			return "CONTRIBUTOR"
		}
	}
	return "NONE"
}

func (s *Server) memberLocked(org, login string) bool {
	for k := range s.members {
		if strings.HasPrefix(k, org+"/") && strings.HasSuffix(k, "/"+login) {
			return true
		}
	}
	return false
}
