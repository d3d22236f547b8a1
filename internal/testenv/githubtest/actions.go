package githubtest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The methods here are what people do on GitHub, for the drivers of tests and of the sandbox.
// Each changes the server's state as GitHub would and queues the webhooks GitHub would deliver
// (when SetWebhook set one), in that order. A misuse GitHub would refuse (commenting on an
// issue that does not exist, pressing a button a check run does not have) changes nothing and
// is recorded as a problem (Problems).

// MergePull merges pull request p of repo with merge commit mergeSHA, as mergedBy: the
// commit is seeded (unless seeded already) with the base branch's head as its parent and
// "<title> (#<number>)" as its message, as a squash merge makes it; the pull request is stored
// closed and merged; the base branch moves to the commit. Then a push of the base branch and a
// pull_request closed (merged) are delivered.
func (s *Server) MergePull(repo string, p Pull, mergeSHA, mergedBy string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.pulls[repo][p.Number]; old != nil { // opened before: what p leaves out stays
		p = fillPull(p, *old)
	}
	if p.BaseRef == "" {
		p.BaseRef = s.defaultBranchLocked(repo)
	}
	if p.User == "" {
		p.User = "octocat"
	}
	p.State, p.Merged, p.MergeCommitSHA, p.MergedBy, p.mergedAt = "closed", true, mergeSHA, mergedBy, time.Now().UTC().Truncate(time.Second)
	base := "refs/heads/" + p.BaseRef
	before, had := s.refs[repo][base]
	if !had {
		before = zeroSHA
	}
	s.ensureHeadLocked(repo, p.HeadSHA, before)
	if cm, seeded := s.commits[repo][mergeSHA]; !seeded || len(cm.Parents) == 0 {
		msg := fmt.Sprintf("%s (#%d)", p.Title, p.Number)
		if p.Body != "" {
			msg += "\n\n" + p.Body
		}
		cm = s.ensureCommitLocked(repo, mergeSHA)
		cm.Message, cm.PR, cm.At = msg, p.Number, p.mergedAt
		if had {
			cm.Parents = []string{s.peelLocked(repo, before)}
		}
	}
	if had {
		p.baseSHA = s.peelLocked(repo, before)
	}
	s.addPullLocked(repo, p)
	s.setRefLocked(repo, base, mergeSHA)
	s.refChangeLocked(nil, push{repo: repo, ref: base, before: before, after: mergeSHA, sender: mergedBy,
		forced: had && !s.fastForwardLocked(repo, before, mergeSHA), merge: true})
	s.emitLocked(nil, "pull_request", s.pullEventLocked(repo, s.pulls[repo][p.Number], "closed", mergedBy, ""))
}

// fillPull fills the fields p leaves empty from old.
func fillPull(p, old Pull) Pull {
	for _, f := range []struct {
		dst *string
		src string
	}{{&p.Title, old.Title}, {&p.Body, old.Body}, {&p.HeadRef, old.HeadRef},
		{&p.HeadSHA, old.HeadSHA}, {&p.BaseRef, old.BaseRef}, {&p.HeadRepo, old.HeadRepo}, {&p.User, old.User}} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
	if p.Labels == nil {
		p.Labels = old.Labels
	}
	return p
}

// OpenPull opens pull request p of repo (its author is p.User) and delivers pull_request
// opened. A head commit not seeded yet is seeded on top of the base branch's head; the head
// branch (in repo, unless p.HeadRepo names a fork) and refs/pull/<number>/head point at it.
func (s *Server) OpenPull(repo string, p Pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.State, p.Merged, p.MergeCommitSHA = "open", false, ""
	s.addPullLocked(repo, p)
	stored := s.pulls[repo][p.Number]
	baseSHA, _ := s.resolveLocked(repo, stored.BaseRef)
	s.ensureHeadLocked(repo, p.HeadSHA, baseSHA)
	s.setRefLocked(repo, fmt.Sprintf("refs/pull/%d/head", p.Number), p.HeadSHA)
	if stored.headRepo(repo) == repo && p.HeadRef != "" {
		if _, ok := s.refs[repo]["refs/heads/"+p.HeadRef]; !ok {
			s.setRefLocked(repo, "refs/heads/"+p.HeadRef, p.HeadSHA)
		}
	}
	s.emitLocked(nil, "pull_request", s.pullEventLocked(repo, stored, "opened", stored.User, ""))
}

// PushToPull moves the head of open pull request number of repo to sha, as its author pushing
// to the head branch: sha is seeded on top of the old head if new. For a head branch in repo
// itself a push of it is delivered first; then pull_request synchronize.
func (s *Server) PushToPull(repo string, number int, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pulls[repo][number]
	if p == nil || p.State != "open" {
		s.problemLocked("PushToPull(%q, %d): no open pull request #%d", repo, number, number)
		return
	}
	before := p.HeadSHA
	s.ensureHeadLocked(repo, sha, before)
	p.HeadSHA = sha
	s.setRefLocked(repo, fmt.Sprintf("refs/pull/%d/head", number), sha)
	if p.headRepo(repo) == repo && p.HeadRef != "" {
		ref := "refs/heads/" + p.HeadRef
		old, had := s.refs[repo][ref]
		if !had {
			old = zeroSHA
		}
		s.setRefLocked(repo, ref, sha)
		s.refChangeLocked(nil, push{repo: repo, ref: ref, before: old, after: sha, sender: p.User,
			forced: had && !s.fastForwardLocked(repo, old, sha)})
	}
	s.emitLocked(nil, "pull_request", s.pullEventLocked(repo, p, "synchronize", p.User, before))
}

// PushBranch pushes sha to branch ("x" or "refs/heads/x") of repo as pusher: sha is seeded on
// top of the branch's head if new. A create is delivered for a new branch, then the push
// (forced when sha does not contain the old head).
func (s *Server) PushBranch(repo, branch, sha, pusher string) {
	ref := "refs/heads/" + strings.TrimPrefix(branch, "refs/heads/")
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.refs[repo][ref]
	if !had {
		old = zeroSHA
	}
	if had && old == sha {
		return // nothing to push: git sends nothing, GitHub delivers nothing
	}
	s.ensureHeadLocked(repo, sha, old)
	s.setRefLocked(repo, ref, sha)
	s.refChangeLocked(nil, push{repo: repo, ref: ref, before: old, after: sha, sender: pusher,
		forced: had && !s.fastForwardLocked(repo, old, sha)})
}

// CreateTag pushes tag at commit sha of repo as by: lightweight (the ref names the commit) or
// annotated (the ref names a new tag object whose object is the commit; git/get-tag serves
// it). A create (ref_type tag) and a push of refs/tags/<tag> are delivered; for an annotated
// tag the push's after is the tag object, as on GitHub. It returns what the ref points at.
func (s *Server) CreateTag(repo, tag, sha, by string, annotated bool) string {
	ref := "refs/tags/" + strings.TrimPrefix(tag, "refs/tags/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refs[repo][ref]; ok {
		s.problemLocked("CreateTag(%q, %q): the tag already exists", repo, tag)
		return ""
	}
	s.ensureCommitLocked(repo, sha)
	target := sha
	if annotated {
		target = s.addTagLocked(repo, strings.TrimPrefix(ref, "refs/tags/"), sha, by).SHA
	}
	s.setRefLocked(repo, ref, target)
	s.refChangeLocked(nil, push{repo: repo, ref: ref, before: zeroSHA, after: target, sender: by})
	return target
}

// MoveTag force-pushes an existing tag of repo to commit sha, as by (git push --force origin
// sha:refs/tags/tag): the tag becomes lightweight at sha and a forced push of refs/tags/<tag>
// is delivered.
func (s *Server) MoveTag(repo, tag, sha, by string) {
	ref := "refs/tags/" + strings.TrimPrefix(tag, "refs/tags/")
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.refs[repo][ref]
	if !ok {
		s.problemLocked("MoveTag(%q, %q): no such tag (CreateTag makes one)", repo, tag)
		return
	}
	if old == sha {
		return
	}
	s.ensureCommitLocked(repo, sha)
	s.setRefLocked(repo, ref, sha)
	s.refChangeLocked(nil, push{repo: repo, ref: ref, before: old, after: sha, sender: by, forced: true})
}

// Comment adds a comment by user to issue or pull request number issue of repo and delivers
// issue_comment created. It returns the comment's id (0 when there is no such issue).
func (s *Server) Comment(repo string, issue int, user, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issueOrPullLocked(repo, issue) == nil {
		s.problemLocked("Comment(%q, %d): no issue or pull request #%d (seed it with AddPull, OpenPull or issues/create)", repo, issue, issue)
		return 0
	}
	t := time.Now()
	cm := &Comment{ID: s.nextIDLocked(), Repo: repo, Issue: issue, Body: body, User: user, created: t, updated: t}
	s.comments[repo] = append(s.comments[repo], cm)
	s.emitLocked(nil, "issue_comment", s.commentEventLocked(cm, "created", user, ""))
	return cm.ID
}

// EditComment changes the body of comment id of repo, as editor, and delivers issue_comment
// edited with the old body in changes.body.from.
func (s *Server) EditComment(repo string, id int64, editor, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cm := s.findCommentLocked(repo, id)
	if cm == nil {
		s.problemLocked("EditComment(%q, %d): no such comment", repo, id)
		return
	}
	from := cm.Body
	cm.Body, cm.updated = body, time.Now()
	cm.Edits++
	s.emitLocked(nil, "issue_comment", s.commentEventLocked(cm, "edited", editor, from))
}

// PressButton presses the button identifier of check run checkRunID of repo, as user, and
// delivers check_run requested_action. The check run must offer the button.
func (s *Server) PressButton(repo string, checkRunID int64, identifier, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := s.checkRunLocked(repo, checkRunID)
	switch {
	case cr == nil:
		s.problemLocked("PressButton(%q, %d): no such check run", repo, checkRunID)
	case !slices.ContainsFunc(cr.Actions, func(a CheckRunAction) bool { return a.Identifier == identifier }):
		s.problemLocked("PressButton(%q, %d, %q): the check run has no such button (it has %v)", repo, checkRunID, identifier, cr.Actions)
	default:
		s.emitLocked(nil, "check_run", s.checkRunEventLocked(cr, "requested_action", identifier, user))
	}
}

// Rerequest asks for check run checkRunID of repo to run again, as user pressing "Re-run",
// and delivers check_run rerequested.
func (s *Server) Rerequest(repo string, checkRunID int64, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := s.checkRunLocked(repo, checkRunID)
	if cr == nil {
		s.problemLocked("Rerequest(%q, %d): no such check run", repo, checkRunID)
		return
	}
	s.emitLocked(nil, "check_run", s.checkRunEventLocked(cr, "rerequested", "", user))
}

// ensureHeadLocked seeds a pushed commit not seeded yet, with parent as its parent (none for
// zeroSHA or "").
func (s *Server) ensureHeadLocked(repo, sha, parent string) {
	if sha == "" || s.commits[repo][sha] != nil || s.tags[repo][sha] != nil {
		return
	}
	cm := s.ensureCommitLocked(repo, sha)
	if parent != "" && parent != zeroSHA {
		cm.Parents = []string{s.peelLocked(repo, parent)}
	}
}

func (s *Server) setRefLocked(repo, ref, sha string) {
	if s.refs[repo] == nil {
		s.refs[repo] = map[string]string{}
	}
	s.refs[repo][ref] = sha
}
