package githubtest

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// zeroSHA is the before of a created ref in a push.
const zeroSHA = "0000000000000000000000000000000000000000"

// push is a ref change to deliver as a push event.
type push struct {
	repo, ref     string // ref in full: refs/heads/x or refs/tags/x
	before, after string // before is zeroSHA for a new ref; after may be a tag object
	sender        string
	forced        bool
	merge         bool // a pull request's merge: the activity log calls it pr_merge
}

// refChangeLocked delivers what GitHub delivers for a ref change: a create event for a new
// branch or tag, then the push.
func (s *Server) refChangeLocked(ready <-chan struct{}, p push) {
	s.recordActivityLocked(p)
	if p.before == zeroSHA {
		kind, short := "branch", strings.TrimPrefix(p.ref, "refs/heads/")
		if strings.HasPrefix(p.ref, "refs/tags/") {
			kind, short = "tag", strings.TrimPrefix(p.ref, "refs/tags/")
		}
		s.emitLocked(ready, "create", s.createEventLocked(p.repo, short, kind, p.sender))
	}
	s.emitLocked(ready, "push", s.pushEventLocked(p))
}

// pushEventLocked renders a push as GitHub does: commits are those after has that before did
// not (for a new branch: that no other branch had), oldest first; a tag push lists none.
// head_commit is the commit after names (through its tag object for an annotated tag).
func (s *Server) pushEventLocked(p push) map[string]any {
	tag := strings.HasPrefix(p.ref, "refs/tags/")
	name := "push/example-4.json"
	if tag {
		name = "push/example-0.json"
	}
	m := s.payloadLocked(name, p.repo)
	head := s.peelLocked(p.repo, p.after)
	others := map[string]bool{} // reachable from the other branches
	for ref, sha := range s.refs[p.repo] {
		if ref != p.ref && strings.HasPrefix(ref, "refs/heads/") {
			for x := range s.ancestorsLocked(p.repo, s.peelLocked(p.repo, sha)) {
				others[x] = true
			}
		}
	}
	commits := []any{}
	if !tag {
		seen := others
		if p.before != zeroSHA {
			seen = s.ancestorsLocked(p.repo, s.peelLocked(p.repo, p.before))
		}
		for _, cm := range s.topoLocked(p.repo, head, func(x string) bool { return !seen[x] }) {
			commits = append(commits, s.hookCommitLocked(p.repo, cm, !others[cm.SHA]))
		}
	}
	web := "https://github.com/" + p.repo
	compare := fmt.Sprintf("%s/compare/%.12s...%.12s", web, p.before, p.after)
	if p.before == zeroSHA {
		compare = web + "/compare/" + strings.TrimPrefix(strings.TrimPrefix(p.ref, "refs/heads/"), "refs/tags/")
	}
	var baseRef any
	if tag { // GitHub names the branch whose head the tag is on
		var on []string
		for ref, sha := range s.refs[p.repo] {
			if strings.HasPrefix(ref, "refs/heads/") && s.peelLocked(p.repo, sha) == head {
				on = append(on, ref)
			}
		}
		if sort.Strings(on); len(on) > 0 {
			baseRef = on[0]
		}
	}
	m["ref"], m["before"], m["after"], m["base_ref"], m["compare"] = p.ref, p.before, p.after, baseRef, compare
	m["created"], m["deleted"], m["forced"] = p.before == zeroSHA, false, p.forced
	m["commits"], m["head_commit"] = commits, nil
	if cm := s.commits[p.repo][head]; cm != nil {
		m["head_commit"] = s.hookCommitLocked(p.repo, cm, !others[head])
	}
	m["pusher"], m["sender"] = pusher(p.sender), s.hookUser(m["sender"], p.sender)
	return m
}

// hookCommitLocked is a commit as a push lists it.
func (s *Server) hookCommitLocked(repo string, cm *Commit, distinct bool) map[string]any {
	author := map[string]any{"name": "The Octocat", "email": "octocat@github.com", "username": "octocat"}
	added, modified, removed := s.changesLocked(repo, cm)
	return map[string]any{
		"id": cm.SHA, "tree_id": cm.SHA, "distinct": distinct, "message": cm.Message, "timestamp": stamp(cm.At),
		"url": "https://github.com/" + repo + "/commit/" + cm.SHA, "author": author, "committer": author,
		"added": append([]any{}, added...), "removed": append([]any{}, removed...), "modified": append([]any{}, modified...),
	}
}

// createEventLocked renders the creation of a branch or tag (kind), named short.
func (s *Server) createEventLocked(repo, short, kind, sender string) map[string]any {
	m := s.payloadLocked("create/example-3.json", repo)
	m["ref"], m["ref_type"], m["master_branch"], m["description"] = short, kind, s.defaultBranchLocked(repo), nil
	m["pusher_type"], m["sender"] = "user", s.hookUser(m["sender"], sender)
	return m
}

// pullEventTemplates are the examples each pull_request action is built on.
var pullEventTemplates = map[string]string{
	"opened": "pull_request/example-12.json", "synchronize": "pull_request/example-22.json", "closed": "pull_request/example-3.json",
}

// pullEventLocked renders a pull_request event: the pull request as pulls/get shows it, its
// head and base in the webhook's form. before is the old head, for synchronize.
func (s *Server) pullEventLocked(repo string, p *Pull, action, sender, before string) map[string]any {
	m := s.payloadLocked(pullEventTemplates[action], repo)
	pr := object(m["pull_request"])
	for k, v := range s.pullDetailLocked(repo, p) {
		if k != "head" && k != "base" {
			pr[k] = v
		}
	}
	pr["assignees"], pr["requested_reviewers"], pr["requested_teams"], pr["active_lock_reason"] = []any{}, []any{}, []any{}, nil
	pr["updated_at"] = stamp(time.Now())
	pr["head"] = s.hookEndLocked(pr["head"], repo, p.headRepo(repo), p.HeadRef, p.HeadSHA)
	pr["base"] = s.hookEndLocked(pr["base"], repo, repo, p.BaseRef, s.baseSHALocked(repo, p))
	m["pull_request"], m["action"], m["number"] = pr, action, p.Number
	m["sender"] = s.hookUser(m["sender"], sender)
	if action == "synchronize" {
		m["before"], m["after"] = before, p.HeadSHA
	}
	return m
}

// hookEndLocked renders a pull request's head or base; its repo in the example already names
// repo, and is made to name onRepo (a fork, for the head of a pull request from one).
func (s *Server) hookEndLocked(v any, repo, onRepo, ref, sha string) map[string]any {
	m := object(v)
	owner, _, _ := strings.Cut(onRepo, "/")
	m["label"], m["ref"], m["sha"] = owner+":"+ref, ref, sha
	m["user"], m["repo"] = s.hookUser(m["user"], owner), s.hookRepoLocked(m["repo"], repo, onRepo)
	return m
}

// commentEventLocked renders an issue_comment event; from is the body before an edit.
func (s *Server) commentEventLocked(cm *Comment, action, sender, from string) map[string]any {
	name := "issue_comment/example-3.json"
	if action == "edited" {
		name = "issue_comment/example-7.json"
	}
	m := s.payloadLocked(name, cm.Repo)
	issue, comment := object(m["issue"]), object(m["comment"])
	is := s.issueOrPullLocked(cm.Repo, cm.Issue)
	if is == nil { // a number the test never seeded (createComment allows that): a bare issue
		is = s.issueJSONLocked(&Issue{Number: cm.Issue, Repo: cm.Repo, Title: fmt.Sprintf("#%d", cm.Issue), State: "open", User: "octocat"})
	}
	for k, v := range is {
		issue[k] = v
	}
	object(issue["reactions"])["url"] = issue["url"].(string) + "/reactions"
	for k, v := range s.commentJSONLocked(cm) {
		comment[k] = v
	}
	object(comment["reactions"])["url"] = comment["url"].(string) + "/reactions"
	m["action"], m["issue"], m["comment"], m["sender"] = action, issue, comment, s.hookUser(m["sender"], sender)
	if action == "edited" {
		m["changes"] = map[string]any{"body": map[string]any{"from": from}}
	}
	return m
}

// checkRunEventLocked renders a check_run event: requested_action (a button, identifier) or
// rerequested.
func (s *Server) checkRunEventLocked(cr *CheckRun, action, identifier, sender string) map[string]any {
	name := "check_run/example-7.json"
	if action == "requested_action" {
		name = "check_run/example-6.json"
	}
	m := s.payloadLocked(name, cr.Repo)
	run := object(m["check_run"])
	for k, v := range s.checkRunJSONLocked(cr) {
		if k != "check_suite" {
			run[k] = v
		}
	}
	prs := s.checkRunPullsLocked(cr)
	var branch, before any
	for ref, sha := range s.refs[cr.Repo] {
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok && s.peelLocked(cr.Repo, sha) == cr.HeadSHA {
			branch = b
		}
	}
	if c := s.commits[cr.Repo][cr.HeadSHA]; c != nil && len(c.Parents) > 0 {
		before = c.Parents[0]
	}
	suite := object(run["check_suite"])
	suite["id"], suite["node_id"], suite["head_sha"], suite["head_branch"] = 1, "CS_1", cr.HeadSHA, branch
	suite["before"], suite["after"], suite["status"], suite["conclusion"] = before, cr.HeadSHA, cr.Status, orNil(cr.Conclusion)
	suite["url"], suite["app"], suite["pull_requests"] = s.URL()+"repos/"+cr.Repo+"/check-suites/1", s.appJSON(), prs
	suite["created_at"], suite["updated_at"] = orNil(cr.StartedAt), stamp(time.Now())
	run["check_suite"], run["pull_requests"] = suite, prs
	m["action"], m["check_run"], m["sender"] = action, run, s.hookUser(m["sender"], sender)
	if action == "requested_action" {
		m["requested_action"] = map[string]any{"identifier": identifier}
	} else {
		delete(m, "requested_action")
	}
	return m
}

// checkRunPullsLocked are the open pull requests from repo itself whose head is the check run's
// commit, in their short form (GitHub leaves out pull requests from forks).
func (s *Server) checkRunPullsLocked(cr *CheckRun) []any {
	short := func(id int64, url string) map[string]any {
		_, name, _ := strings.Cut(cr.Repo, "/")
		return map[string]any{"id": id, "url": url, "name": name}
	}
	var nums []int
	for n, p := range s.pulls[cr.Repo] {
		if p.State == "open" && p.HeadSHA == cr.HeadSHA && p.headRepo(cr.Repo) == cr.Repo {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	out := []any{}
	api := s.URL() + "repos/" + cr.Repo
	for _, n := range nums {
		p := s.pulls[cr.Repo][n]
		baseSHA := s.baseSHALocked(cr.Repo, p)
		repo := short(userID(cr.Repo), api)
		out = append(out, map[string]any{"id": int64(n) * 1009, "number": n, "url": fmt.Sprintf("%s/pulls/%d", api, n),
			"head": map[string]any{"ref": p.HeadRef, "sha": p.HeadSHA, "repo": repo},
			"base": map[string]any{"ref": p.BaseRef, "sha": baseSHA, "repo": repo}})
	}
	return out
}
