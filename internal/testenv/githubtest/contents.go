package githubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Files: a commit may change files (SetFiles, PushFiles). What a path holds at a commit is what
// the nearest commit on its first-parent line that changed the path left there; the contents API
// (GET /repos/{owner}/{repo}/contents/{path}) serves it at a ref, by default the repository's
// default branch, with an ETag: a request whose If-None-Match names the answer's ETag gets 304
// and no body, as on GitHub. The commits API (GET /repos/{owner}/{repo}/commits) lists a
// branch's history, newest first, filtered by path when asked.

// fileChange is what a commit did to one path: content, or removed.
type fileChange struct {
	content string
	removed bool
}

// SetFiles makes commit sha of repo (seeded if new) change files: path -> content. It delivers
// nothing (PushFiles is a push).
func (s *Server) SetFiles(repo, sha string, files map[string]string, removed ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setFilesLocked(repo, s.ensureCommitLocked(repo, sha), files, removed)
}

func (s *Server) setFilesLocked(repo string, cm *Commit, files map[string]string, removed []string) {
	if cm.files == nil {
		cm.files = map[string]fileChange{}
	}
	for p, content := range files {
		cm.files[p] = fileChange{content: content}
	}
	for _, p := range removed {
		cm.files[p] = fileChange{removed: true}
	}
}

// PushFiles pushes a new commit sha on top of branch's head of repo as pusher, changing files
// (path -> content) and removing removed, and delivers the push (its commits list the paths
// added, modified and removed), as PushBranch does.
func (s *Server) PushFiles(repo, branch, sha, pusher string, files map[string]string, removed ...string) {
	ref := "refs/heads/" + strings.TrimPrefix(branch, "refs/heads/")
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.refs[repo][ref]
	if !had {
		old = zeroSHA
	}
	if s.commits[repo][sha] != nil {
		s.problemLocked("PushFiles(%q, %q): commit %s exists already", repo, branch, sha)
		return
	}
	s.ensureHeadLocked(repo, sha, old)
	s.setFilesLocked(repo, s.commits[repo][sha], files, removed)
	s.setRefLocked(repo, ref, sha)
	s.refChangeLocked(nil, push{repo: repo, ref: ref, before: old, after: sha, sender: pusher})
}

// File returns what path holds at ref (a branch, tag or sha) of repo, and whether it exists.
func (s *Server) File(repo, ref, path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := s.resolveLocked(repo, ref)
	if !ok {
		return "", false
	}
	return s.fileAtLocked(repo, sha, path)
}

// fileAtLocked is what path holds at commit sha: the change of the nearest commit on the
// first-parent line that made one.
func (s *Server) fileAtLocked(repo, sha, path string) (string, bool) {
	for seen := map[string]bool{}; sha != "" && !seen[sha]; {
		seen[sha] = true
		cm := s.commits[repo][sha]
		if cm == nil {
			return "", false
		}
		if ch, ok := cm.files[path]; ok {
			return ch.content, !ch.removed
		}
		sha = ""
		if len(cm.Parents) > 0 {
			sha = cm.Parents[0]
		}
	}
	return "", false
}

// changesLocked are the paths commit cm added, modified and removed, sorted, as a push lists
// them.
func (s *Server) changesLocked(repo string, cm *Commit) (added, modified, removed []any) {
	paths := make([]string, 0, len(cm.files))
	for p := range cm.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		existed := false
		if len(cm.Parents) > 0 {
			_, existed = s.fileAtLocked(repo, cm.Parents[0], p)
		}
		switch {
		case cm.files[p].removed:
			if existed {
				removed = append(removed, p)
			}
		case existed:
			modified = append(modified, p)
		default:
			added = append(added, p)
		}
	}
	return added, modified, removed
}

// blobSHA is git's name of a file's content.
func blobSHA(content string) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write([]byte(content))
	return hex.EncodeToString(h.Sum(nil))
}

// getContent answers repos/get-content for a file: base64 content in lines of 60 characters, as
// GitHub sends it, and an ETag of the answer. A directory, a symlink or a submodule is not
// modelled (404).
func (s *Server) getContent(c *call) (int, any) {
	repo, p := c.repo(), c.params["path"]
	ref := c.r.URL.Query().Get("ref")
	s.mu.Lock()
	if ref == "" {
		ref = s.defaultBranchLocked(repo)
	}
	sha, ok := s.resolveLocked(repo, ref)
	var content string
	if ok {
		content, ok = s.fileAtLocked(repo, sha, p)
	}
	s.mu.Unlock()
	if !ok {
		return notFound()
	}
	api := s.URL() + "repos/" + repo
	self := api + "/contents/" + (&url.URL{Path: p}).EscapedPath() + "?ref=" + url.QueryEscape(ref)
	blob := blobSHA(content)
	enc := base64.StdEncoding.EncodeToString([]byte(content))
	var lines strings.Builder
	for len(enc) > 60 {
		lines.WriteString(enc[:60] + "\n")
		enc = enc[60:]
	}
	lines.WriteString(enc + "\n")
	html := "https://github.com/" + repo + "/blob/" + ref + "/" + p
	git := api + "/git/blobs/" + blob
	body := map[string]any{
		"type": "file", "encoding": "base64", "size": len(content), "name": path.Base(p), "path": p,
		"content": lines.String(), "sha": blob, "url": self, "git_url": git, "html_url": html,
		"download_url": "https://raw.githubusercontent.com/" + repo + "/" + ref + "/" + p,
		"_links":       map[string]any{"self": self, "git": git, "html": html},
	}
	b, err := json.Marshal(body)
	if err != nil {
		return http.StatusInternalServerError, message(err.Error())
	}
	sum := sha256.Sum256(b)
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
	c.header.Set("ETag", etag)
	if c.r.Header.Get("If-None-Match") == etag {
		return http.StatusNotModified, nil
	}
	return http.StatusOK, body
}

// listCommits answers repos/list-commits: the history of sha (a branch, tag or sha; default the
// default branch), newest first, only the commits that changed path when it is given, paged by
// per_page and page.
func (s *Server) listCommits(c *call) (int, any) {
	repo, q := c.repo(), c.r.URL.Query()
	ref, p := q.Get("sha"), q.Get("path")
	perPage, page := 30, 1
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, 100)
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ref == "" {
		ref = s.defaultBranchLocked(repo)
	}
	head, ok := s.resolveLocked(repo, ref)
	if !ok {
		return notFound()
	}
	all := s.topoLocked(repo, head, func(string) bool { return true })
	out := []any{}
	for i := len(all) - 1; i >= 0; i-- {
		if _, changed := all[i].files[p]; p != "" && !changed {
			continue
		}
		out = append(out, s.commitJSONLocked(repo, all[i]))
	}
	from := min((page-1)*perPage, len(out))
	return http.StatusOK, out[from:min(from+perPage, len(out))]
}
