package githubtest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Pull is a pull request as a test seeds it.
type Pull struct {
	Number         int
	Title          string
	Body           string
	State          string // "open" or "closed"; "" means open
	Merged         bool
	MergeCommitSHA string
	HeadRef        string
	HeadSHA        string
	BaseRef        string // "" means the repository's default branch (SetDefaultBranch; main)
	HeadRepo       string // owner/name of the head's repository when it is a fork; "" means the same
	User           string // author login; "" means octocat
	MergedBy       string // who merged it; "" means User
	Labels         []string

	mergedAt time.Time // when MergePull merged it
	baseSHA  string    // the base branch's head when it was merged, as GitHub keeps it
}

// headRepo is the repository the pull request's head is in.
func (p *Pull) headRepo(repo string) string {
	if p.HeadRepo != "" {
		return p.HeadRepo
	}
	return repo
}

// AddPull seeds a pull request of repo, replacing one with the same number.
func (s *Server) AddPull(repo string, p Pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addPullLocked(repo, p)
}

func (s *Server) addPullLocked(repo string, p Pull) {
	if p.State == "" {
		p.State = "open"
	}
	if p.BaseRef == "" {
		p.BaseRef = s.defaultBranchLocked(repo)
	}
	if p.User == "" {
		p.User = "octocat"
	}
	p.Labels = append([]string(nil), p.Labels...)
	if s.pulls[repo] == nil {
		s.pulls[repo] = map[int]*Pull{}
	}
	s.pulls[repo][p.Number] = &p
}

// Pulls returns copies of a repository's pull requests, by number.
func (s *Server) Pulls(repo string) []Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	var nums []int
	for n := range s.pulls[repo] {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	var out []Pull
	for _, n := range nums {
		p := *s.pulls[repo][n]
		p.Labels = append([]string(nil), p.Labels...)
		out = append(out, p)
	}
	return out
}

func (s *Server) getPull(c *call) (int, any) {
	n := int(c.id("pull_number"))
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pulls[c.repo()][n]
	if p == nil {
		return notFound()
	}
	return http.StatusOK, s.pullDetailLocked(c.repo(), p)
}

// pullDetailLocked renders a pull request as pulls/get (and a pull_request webhook) shows it.
func (s *Server) pullDetailLocked(repo string, p *Pull) map[string]any {
	out := s.pullJSONLocked(repo, p)
	out["merged"], out["mergeable"], out["mergeable_state"] = p.Merged, nil, "unknown"
	out["merged_by"] = nil
	if p.Merged {
		by := p.MergedBy
		if by == "" {
			by = p.User
		}
		out["merged_by"] = s.user(by)
	}
	comments := 0
	for _, cm := range s.comments[repo] {
		if cm.Issue == p.Number {
			comments++
		}
	}
	out["comments"], out["review_comments"], out["maintainer_can_modify"] = comments, 0, false
	out["commits"], out["additions"], out["deletions"], out["changed_files"] = 1, 1, 0, 1
	return out
}

// pullsForCommit lists the pull requests a commit belongs to: tied to it by AddCommit, or
// whose head or merge commit it is.
func (s *Server) pullsForCommit(c *call) (int, any) {
	sha := c.params["commit_sha"]
	s.mu.Lock()
	defer s.mu.Unlock()
	var nums []int
	for n, p := range s.pulls[c.repo()] {
		cm := s.commits[c.repo()][sha]
		if (cm != nil && cm.PR == n) || p.HeadSHA == sha || p.MergeCommitSHA == sha {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	out := []any{}
	for _, n := range nums {
		out = append(out, s.pullJSONLocked(c.repo(), s.pulls[c.repo()][n]))
	}
	return http.StatusOK, out
}

// pullJSONLocked renders the fields a pull-request-simple has; pulls/get adds the rest.
func (s *Server) pullJSONLocked(repo string, p *Pull) map[string]any {
	api := fmt.Sprintf("%srepos/%s", s.URL(), repo)
	self := fmt.Sprintf("%s/pulls/%d", api, p.Number)
	web := fmt.Sprintf("https://github.com/%s/pull/%d", repo, p.Number)
	issue := fmt.Sprintf("%s/issues/%d", api, p.Number)
	created := stamp(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ended := created
	if !p.mergedAt.IsZero() {
		ended = stamp(p.mergedAt)
	}
	var closedAt, mergedAt any
	if p.State == "closed" {
		closedAt = ended
	}
	if p.Merged {
		mergedAt = ended
	}
	labels := []any{}
	for _, name := range p.Labels {
		labels = append(labels, s.labelJSON(repo, &Label{ID: userID(repo + name), Name: name, Color: "ededed"}))
	}
	baseSHA := s.baseSHALocked(repo, p)
	end := func(on, ref, sha string) map[string]any {
		owner, _, _ := strings.Cut(on, "/")
		r := s.repositoryJSONLocked(on)
		r["fork"] = on != repo
		return map[string]any{"label": owner + ":" + ref, "ref": ref, "sha": sha, "user": s.user(owner), "repo": r}
	}
	link := func(href string) map[string]any { return map[string]any{"href": href} }
	return map[string]any{
		"url": self, "id": int64(p.Number) * 1009, "node_id": fmt.Sprintf("PR_%d", p.Number), "html_url": web,
		"diff_url": web + ".diff", "patch_url": web + ".patch", "issue_url": issue, "commits_url": self + "/commits",
		"review_comments_url": self + "/comments", "review_comment_url": api + "/pulls/comments{/number}",
		"comments_url": issue + "/comments", "statuses_url": api + "/statuses/" + p.HeadSHA,
		"number": p.Number, "state": p.State, "locked": false, "title": p.Title, "user": s.user(p.User), "body": orNil(p.Body),
		"labels": labels, "milestone": nil, "created_at": created, "updated_at": created, "closed_at": closedAt,
		"merged_at": mergedAt, "merge_commit_sha": orNil(p.MergeCommitSHA), "assignee": nil, "draft": false,
		"head": end(p.headRepo(repo), p.HeadRef, p.HeadSHA), "base": end(repo, p.BaseRef, baseSHA),
		"_links": map[string]any{"self": link(self), "html": link(web), "issue": link(issue), "comments": link(issue + "/comments"),
			"review_comments": link(self + "/comments"), "review_comment": link(api + "/pulls/comments{/number}"),
			"commits": link(self + "/commits"), "statuses": link(api + "/statuses/" + p.HeadSHA)},
		"author_association": s.associationLocked(repo, p.User), "auto_merge": nil,
	}
}

// baseSHALocked is the commit a pull request's base stands at: the base branch's head, or
// where it was when the pull request was merged.
func (s *Server) baseSHALocked(repo string, p *Pull) string {
	if p.baseSHA != "" {
		return p.baseSHA
	}
	sha, _ := s.resolveLocked(repo, p.BaseRef)
	return sha
}

// repoURLs are a repository's URL fields and their paths below the repository's API URL.
var repoURLs = [][2]string{
	{"archive_url", "/{archive_format}{/ref}"}, {"assignees_url", "/assignees{/user}"}, {"blobs_url", "/git/blobs{/sha}"},
	{"branches_url", "/branches{/branch}"}, {"collaborators_url", "/collaborators{/collaborator}"},
	{"comments_url", "/comments{/number}"}, {"commits_url", "/commits{/sha}"}, {"compare_url", "/compare/{base}...{head}"},
	{"contents_url", "/contents/{+path}"}, {"contributors_url", "/contributors"}, {"deployments_url", "/deployments"},
	{"downloads_url", "/downloads"}, {"events_url", "/events"}, {"forks_url", "/forks"},
	{"git_commits_url", "/git/commits{/sha}"}, {"git_refs_url", "/git/refs{/sha}"}, {"git_tags_url", "/git/tags{/sha}"},
	{"hooks_url", "/hooks"}, {"issue_comment_url", "/issues/comments{/number}"}, {"issue_events_url", "/issues/events{/number}"},
	{"issues_url", "/issues{/number}"}, {"keys_url", "/keys{/key_id}"}, {"labels_url", "/labels{/name}"},
	{"languages_url", "/languages"}, {"merges_url", "/merges"}, {"milestones_url", "/milestones{/number}"},
	{"notifications_url", "/notifications{?since,all,participating}"}, {"pulls_url", "/pulls{/number}"},
	{"releases_url", "/releases{/id}"}, {"stargazers_url", "/stargazers"}, {"statuses_url", "/statuses/{sha}"},
	{"subscribers_url", "/subscribers"}, {"subscription_url", "/subscription"}, {"tags_url", "/tags"},
	{"teams_url", "/teams"}, {"trees_url", "/git/trees{/sha}"},
}

// repositoryJSONLocked renders a repository as GitHub does inside a pull request.
func (s *Server) repositoryJSONLocked(repo string) map[string]any {
	owner, name, _ := strings.Cut(repo, "/")
	api := s.URL() + "repos/" + repo
	out := map[string]any{
		"id": userID(repo), "node_id": "R_" + repo, "name": name, "full_name": repo, "owner": s.user(owner), "private": true,
		"html_url": "https://github.com/" + repo, "description": nil, "fork": false, "url": api,
		"clone_url": "https://github.com/" + repo + ".git", "git_url": "git://github.com/" + repo + ".git",
		"ssh_url": "git@github.com:" + repo + ".git", "svn_url": "https://github.com/" + repo, "mirror_url": nil,
		"homepage": nil, "language": "Go", "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
		"size": 100, "default_branch": s.defaultBranchLocked(repo), "open_issues": 0, "open_issues_count": 0, "has_issues": true, "has_projects": false,
		"has_wiki": false, "has_pages": false, "has_downloads": true, "archived": false, "disabled": false, "license": nil,
		"visibility": "private", "pushed_at": "2026-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
	}
	for _, u := range repoURLs {
		out[u[0]] = api + u[1]
	}
	return out
}
