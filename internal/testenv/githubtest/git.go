package githubtest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Commit is a commit of the seeded history. SHAs are 40 hex digits, as GitHub's are: the
// description requires that length in refs.
type Commit struct {
	SHA     string
	Parents []string
	Message string
	PR      int // the pull request the commit belongs to, 0 for none
	At      time.Time
	files   map[string]fileChange // what the commit changed (contents.go)
}

// SetRef points ref at sha in repo. The ref may be a branch name ("main"), or start with
// "heads/", "tags/" or "refs/". A sha not seeded yet becomes a commit without parents.
//
// SetRef delivers no webhook: it seeds what GitHub already holds (PushBranch and CreateTag
// are pushes, with their webhooks).
func (s *Server) SetRef(repo, ref, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tags[repo][sha] == nil {
		s.ensureCommitLocked(repo, sha)
	}
	if s.refs[repo] == nil {
		s.refs[repo] = map[string]string{}
	}
	s.refs[repo][fullRef(ref)] = sha
}

// Ref returns the sha ref points at in repo (for an annotated tag, its tag object), and whether
// the ref exists.
func (s *Server) Ref(repo, ref string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.refs[repo][fullRef(ref)]
	return sha, ok
}

// AddCommit seeds a commit of repo. A non-zero prNumber ties it to that pull request, which
// is created as merged (with this commit as its merge commit) if AddPull has not seeded it.
func (s *Server) AddCommit(repo, sha string, parents []string, message string, prNumber int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ensureCommitLocked(repo, sha)
	c.Parents, c.Message, c.PR = append([]string(nil), parents...), message, prNumber
	for _, p := range parents {
		s.ensureCommitLocked(repo, p)
	}
	if prNumber != 0 && s.pulls[repo][prNumber] == nil {
		title, _, _ := strings.Cut(message, "\n")
		s.addPullLocked(repo, Pull{Number: prNumber, Title: title, State: "closed", Merged: true,
			HeadRef: fmt.Sprintf("pr-%d", prNumber), HeadSHA: sha, MergeCommitSHA: sha, User: "octocat"})
	}
}

func (s *Server) ensureCommitLocked(repo, sha string) *Commit {
	if s.commits[repo] == nil {
		s.commits[repo] = map[string]*Commit{}
	}
	c := s.commits[repo][sha]
	if c == nil {
		c = &Commit{SHA: sha, Message: "commit " + sha, At: time.Now().UTC().Truncate(time.Second)}
		s.commits[repo][sha] = c
	}
	return c
}

// fullRef turns a branch name or "heads/x" into "refs/heads/x".
func fullRef(ref string) string {
	switch {
	case strings.HasPrefix(ref, "refs/"):
		return ref
	case strings.HasPrefix(ref, "heads/"), strings.HasPrefix(ref, "tags/"):
		return "refs/" + ref
	}
	return "refs/heads/" + ref
}

// resolveLocked finds the commit a sha, branch, tag or ref names, as GitHub resolves a
// commitish; a tag name is peeled to its commit. The sha of a tag object is not a commitish
// here: GitHub's commit endpoints do not take one, so code that gets one from a push must peel
// it with git/get-tag.
func (s *Server) resolveLocked(repo, name string) (string, bool) {
	if _, ok := s.commits[repo][name]; ok {
		return name, true
	}
	for _, r := range []string{fullRef(name), "refs/" + name, "refs/tags/" + name} {
		if sha, ok := s.refs[repo][r]; ok {
			return s.peelLocked(repo, sha), true
		}
	}
	// An abbreviated sha names the one commit it starts, as git and GitHub resolve it.
	if len(name) >= 7 && len(name) < 40 && strings.Trim(strings.ToLower(name), "0123456789abcdef") == "" {
		var found string
		for sha := range s.commits[repo] {
			if strings.HasPrefix(sha, strings.ToLower(name)) {
				if found != "" {
					return "", false // ambiguous
				}
				found = sha
			}
		}
		return found, found != ""
	}
	return "", false
}

func (s *Server) refJSONLocked(repo, ref, sha string) map[string]any {
	kind, path := "commit", "/git/commits/"
	if s.tags[repo][sha] != nil {
		kind, path = "tag", "/git/tags/"
	}
	return map[string]any{
		"ref": ref, "node_id": "REF_" + strings.ReplaceAll(ref, "/", "_"), "url": s.URL() + "repos/" + repo + "/git/" + ref,
		"object": map[string]any{"type": kind, "sha": sha, "url": s.URL() + "repos/" + repo + path + sha},
	}
}

func (s *Server) getRef(c *call) (int, any) {
	ref := "refs/" + c.params["ref"]
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.refs[c.repo()][ref]
	if !ok {
		return notFound()
	}
	return http.StatusOK, s.refJSONLocked(c.repo(), ref, sha)
}

// listMatchingRefs answers git/list-matching-refs: every ref that starts with refs/<ref>, sorted,
// in one answer. GitHub pages nothing here although the description lists a Link header, and
// go-github v88 sends no paging parameters (it dropped them for that reason).
func (s *Server) listMatchingRefs(c *call) (int, any) {
	prefix := "refs/" + c.params["ref"]
	repo := c.repo()
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for ref := range s.refs[repo] {
		if strings.HasPrefix(ref, prefix) {
			names = append(names, ref)
		}
	}
	sort.Strings(names)
	out := []any{}
	for _, ref := range names {
		out = append(out, s.refJSONLocked(repo, ref, s.refs[repo][ref]))
	}
	return http.StatusOK, out
}

func (s *Server) createRef(c *call) (int, any) {
	var in struct{ Ref, SHA string }
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	if !strings.HasPrefix(in.Ref, "refs/") || strings.Count(in.Ref, "/") < 2 {
		return http.StatusUnprocessableEntity, message("Reference name must start with 'refs/' and have at least two slashes.")
	}
	repo := c.repo()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commits[repo][in.SHA] == nil && s.tags[repo][in.SHA] == nil {
		return http.StatusUnprocessableEntity, message("Object does not exist")
	}
	if _, ok := s.refs[repo][in.Ref]; ok {
		return http.StatusUnprocessableEntity, message("Reference already exists")
	}
	if s.refs[repo] == nil {
		s.refs[repo] = map[string]string{}
	}
	s.refs[repo][in.Ref] = in.SHA
	if pushed(in.Ref) {
		s.refChangeLocked(c.answered, push{repo: repo, ref: in.Ref, before: zeroSHA, after: in.SHA, sender: s.BotLogin()})
	}
	return http.StatusCreated, s.refJSONLocked(repo, in.Ref, in.SHA)
}

// pushed reports whether a change of ref is a push GitHub delivers: branches and tags.
func pushed(ref string) bool {
	return strings.HasPrefix(ref, "refs/heads/") || strings.HasPrefix(ref, "refs/tags/")
}

// updateRef moves a ref; without force only forward, as GitHub checks.
func (s *Server) updateRef(c *call) (int, any) {
	var in struct {
		SHA   string `json:"sha"`
		Force bool   `json:"force"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	repo, ref := c.repo(), "refs/"+c.params["ref"]
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.refs[repo][ref]
	ff := ok && s.fastForwardLocked(repo, old, in.SHA)
	switch {
	case !ok:
		return http.StatusUnprocessableEntity, message("Reference does not exist")
	case s.commits[repo][in.SHA] == nil && s.tags[repo][in.SHA] == nil:
		return http.StatusUnprocessableEntity, message("Object does not exist")
	case !in.Force && !ff:
		return http.StatusUnprocessableEntity, message("Update is not a fast forward")
	}
	s.refs[repo][ref] = in.SHA
	if pushed(ref) && old != in.SHA {
		s.refChangeLocked(c.answered, push{repo: repo, ref: ref, before: old, after: in.SHA, sender: s.BotLogin(), forced: !ff})
	}
	return http.StatusOK, s.refJSONLocked(repo, ref, in.SHA)
}

// fastForwardLocked reports whether moving a ref from old to sha keeps old's history.
func (s *Server) fastForwardLocked(repo, old, sha string) bool {
	return s.ancestorsLocked(repo, s.peelLocked(repo, sha))[s.peelLocked(repo, old)]
}

// topoLocked lists the commits reachable from sha that keep accepts, parents before children,
// as GitHub lists a comparison's commits.
func (s *Server) topoLocked(repo, sha string, keep func(string) bool) []*Commit {
	var out []*Commit
	seen := map[string]bool{}
	var visit func(string)
	visit = func(x string) {
		if seen[x] || !keep(x) {
			return
		}
		seen[x] = true
		cm := s.commits[repo][x]
		if cm == nil {
			return
		}
		for _, p := range cm.Parents {
			visit(p)
		}
		out = append(out, cm)
	}
	visit(sha)
	return out
}

// mergeBaseLocked is the best common ancestor: reachable from both sides and not an ancestor of
// another common one (the smallest sha if several, to be deterministic).
func (s *Server) mergeBaseLocked(repo string, fromBase, fromHead map[string]bool) string {
	var common []string
	for sha := range fromHead {
		if fromBase[sha] && s.commits[repo][sha] != nil {
			common = append(common, sha)
		}
	}
	sort.Strings(common)
	for _, c := range common {
		best := true
		for _, d := range common {
			if d != c && s.ancestorsLocked(repo, d)[c] {
				best = false
				break
			}
		}
		if best {
			return c
		}
	}
	return ""
}

// ancestorsLocked is every commit reachable from sha, sha included.
func (s *Server) ancestorsLocked(repo, sha string) map[string]bool {
	seen := map[string]bool{}
	queue := []string{sha}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if seen[x] {
			continue
		}
		seen[x] = true
		if c := s.commits[repo][x]; c != nil {
			queue = append(queue, c.Parents...)
		}
	}
	return seen
}

func (s *Server) getCommit(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.resolveLocked(c.repo(), c.params["ref"])
	if !ok {
		// GitHub answers an unknown commitish with 422, not 404.
		return http.StatusUnprocessableEntity, message("No commit found for SHA: " + c.params["ref"])
	}
	return http.StatusOK, s.commitJSONLocked(c.repo(), s.commits[c.repo()][sha])
}

// compare answers both compare forms from the seeded commit graph.
func (s *Server) compare(c *call) (int, any) {
	base, head := c.params["base"], c.params["head"]
	if bh, ok := c.params["basehead"]; ok {
		var found bool
		if base, head, found = strings.Cut(bh, "..."); !found {
			return notFound()
		}
	}
	repo := c.repo()
	s.mu.Lock()
	defer s.mu.Unlock()
	baseSHA, ok1 := s.resolveLocked(repo, base)
	headSHA, ok2 := s.resolveLocked(repo, head)
	if !ok1 || !ok2 {
		return notFound()
	}
	fromBase, fromHead := s.ancestorsLocked(repo, baseSHA), s.ancestorsLocked(repo, headSHA)
	ahead := s.topoLocked(repo, headSHA, func(sha string) bool { return !fromBase[sha] })
	behind := s.topoLocked(repo, baseSHA, func(sha string) bool { return !fromHead[sha] })
	status := "identical"
	switch {
	case len(ahead) > 0 && len(behind) > 0:
		status = "diverged"
	case len(ahead) > 0:
		status = "ahead"
	case len(behind) > 0:
		status = "behind"
	}
	mergeBase := s.commits[repo][s.mergeBaseLocked(repo, fromBase, fromHead)]
	if mergeBase == nil {
		return http.StatusNotFound, message("No common ancestor between " + base + " and " + head + ".")
	}
	commits := []any{}
	for _, cm := range ahead {
		commits = append(commits, s.commitJSONLocked(repo, cm))
	}
	web := "https://github.com/" + repo + "/compare/" + base + "..." + head
	return http.StatusOK, map[string]any{
		"url": s.URL() + "repos/" + repo + "/compare/" + base + "..." + head, "html_url": web,
		"permalink_url": "https://github.com/" + repo + "/compare/" + baseSHA + "..." + headSHA,
		"diff_url":      web + ".diff", "patch_url": web + ".patch",
		"base_commit": s.commitJSONLocked(repo, s.commits[repo][baseSHA]), "merge_base_commit": s.commitJSONLocked(repo, mergeBase),
		"status": status, "ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead), "commits": commits, "files": []any{},
	}
}

func (s *Server) commitJSONLocked(repo string, cm *Commit) map[string]any {
	api := s.URL() + "repos/" + repo
	parents := []any{}
	for _, p := range cm.Parents {
		parents = append(parents, map[string]any{"sha": p, "url": api + "/commits/" + p, "html_url": "https://github.com/" + repo + "/commit/" + p})
	}
	person := map[string]any{"name": "The Octocat", "email": "octocat@github.com", "date": stamp(cm.At)}
	return map[string]any{
		"url": api + "/commits/" + cm.SHA, "sha": cm.SHA, "node_id": "C_" + cm.SHA, "html_url": "https://github.com/" + repo + "/commit/" + cm.SHA,
		"comments_url": api + "/commits/" + cm.SHA + "/comments",
		"commit": map[string]any{
			"url": api + "/git/commits/" + cm.SHA, "author": person, "committer": person, "message": cm.Message, "comment_count": 0,
			"tree":         map[string]any{"sha": cm.SHA, "url": api + "/git/trees/" + cm.SHA},
			"verification": map[string]any{"verified": false, "reason": "unsigned", "payload": nil, "signature": nil, "verified_at": nil},
		},
		"author": s.user("octocat"), "committer": s.user("web-flow"), "parents": parents,
	}
}
