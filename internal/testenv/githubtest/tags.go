package githubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

// Tag is an annotated tag object: what refs/tags/<name> points at for a tag made with
// `git tag -a`, as on GitHub.
type Tag struct {
	SHA     string // the tag object's own sha
	Name    string
	Message string
	Object  string // the commit it tags
	Tagger  string // login
	At      time.Time
}

// Tags returns copies of a repository's annotated tag objects.
func (s *Server) Tags(repo string) []Tag {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Tag
	for _, t := range s.tags[repo] {
		out = append(out, *t)
	}
	return out
}

// peelLocked is the commit sha names: sha itself, or what the tag object sha tags.
func (s *Server) peelLocked(repo, sha string) string {
	for range 8 { // a tag of a tag of ... is legal git; deeper chains are not worth following
		t := s.tags[repo][sha]
		if t == nil {
			break
		}
		sha = t.Object
	}
	return sha
}

// addTagLocked makes an annotated tag object of commit, with a sha of its own.
func (s *Server) addTagLocked(repo, name, commit, tagger string) *Tag {
	at := time.Now().UTC().Truncate(time.Second)
	sum := sha1.Sum(fmt.Appendf(nil, "object %s\ntype commit\ntag %s\ntagger %s %d\n", commit, name, tagger, at.UnixNano()))
	t := &Tag{SHA: hex.EncodeToString(sum[:]), Name: name, Message: name + "\n", Object: commit, Tagger: tagger, At: at}
	if s.tags[repo] == nil {
		s.tags[repo] = map[string]*Tag{}
	}
	s.tags[repo][t.SHA] = t
	return t
}

// getTag answers git/get-tag: an annotated tag object by its sha.
func (s *Server) getTag(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tags[c.repo()][c.params["tag_sha"]]
	if t == nil {
		return notFound()
	}
	api := s.URL() + "repos/" + c.repo()
	return http.StatusOK, map[string]any{
		"node_id": "TAG_" + t.SHA, "tag": t.Name, "sha": t.SHA, "url": api + "/git/tags/" + t.SHA, "message": t.Message,
		"tagger":       map[string]any{"name": t.Tagger, "email": noreply(t.Tagger), "date": stamp(t.At)},
		"object":       map[string]any{"sha": t.Object, "type": "commit", "url": api + "/git/commits/" + t.Object},
		"verification": map[string]any{"verified": false, "reason": "unsigned", "payload": nil, "signature": nil, "verified_at": nil},
	}
}
