package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Issue is an issue as the server keeps it.
type Issue struct {
	Number int
	Repo   string
	Title  string
	Body   string
	State  string
	Labels []string
	User   string // the author; "" means the App's bot (issues/create)
}

// Comment is an issue or pull-request comment.
type Comment struct {
	ID        int64
	Repo      string
	Issue     int
	Body      string
	User      string // the author; "" means the App's bot (issues/create-comment)
	Edits     int
	Reactions []string // reaction contents, in the order they were added

	created, updated time.Time
}

// author is the comment's author's login.
func (c *Comment) author(s *Server) string {
	if c.User == "" {
		return s.BotLogin()
	}
	return c.User
}

// Label is a repository label.
type Label struct {
	ID          int64
	Name        string
	Color       string
	Description string
}

// Issues returns copies of a repository's issues, by number.
func (s *Server) Issues(repo string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, is := range s.issues[repo] {
		c := *is
		c.Labels = slices.Clone(is.Labels)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Issue) int { return a.Number - b.Number })
	return out
}

// Comments returns copies of the comments on one issue or pull request, oldest first.
func (s *Server) Comments(repo string, issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments[repo] {
		if c.Issue == issue {
			cc := *c
			cc.Reactions = slices.Clone(c.Reactions)
			out = append(out, cc)
		}
	}
	return out
}

// AddLabel seeds a repository label.
func (s *Server) AddLabel(repo, name, color string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLabelLocked(repo, &Label{Name: name, Color: color})
}

func (s *Server) addLabelLocked(repo string, l *Label) *Label {
	if s.labels[repo] == nil {
		s.labels[repo] = map[string]*Label{}
	}
	l.ID = s.nextIDLocked()
	s.labels[repo][strings.ToLower(l.Name)] = l
	return l
}

func (s *Server) createIssue(c *call) (int, any) {
	var in struct {
		Title  any      `json:"title"` // a string or an integer, per the description
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	repo := c.repo()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Issues and pull requests share one sequence of numbers.
	n := len(s.issues[repo]) + 1
	for s.issues[repo][n] != nil || s.pulls[repo][n] != nil {
		n++
	}
	is := &Issue{Number: n, Repo: repo, Title: fmt.Sprint(in.Title), Body: in.Body, State: "open"}
	for _, l := range in.Labels {
		is.Labels = s.withLabelLocked(repo, is.Labels, l)
	}
	if s.issues[repo] == nil {
		s.issues[repo] = map[int]*Issue{}
	}
	s.issues[repo][n] = is
	return http.StatusCreated, s.issueJSONLocked(is)
}

func (s *Server) updateIssue(c *call) (int, any) {
	var in struct {
		Title  *string   `json:"title"`
		Body   *string   `json:"body"`
		State  *string   `json:"state"`
		Labels *[]string `json:"labels"`
	}
	if c.body != nil {
		if err := c.decode(&in); err != nil {
			return http.StatusBadRequest, message("Problems parsing JSON")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issues[c.repo()][int(c.id("issue_number"))]
	if is == nil {
		return notFound()
	}
	if in.Title != nil {
		is.Title = *in.Title
	}
	if in.Body != nil {
		is.Body = *in.Body
	}
	if in.State != nil {
		is.State = *in.State
	}
	if in.Labels != nil {
		is.Labels = nil
		for _, l := range *in.Labels {
			is.Labels = s.withLabelLocked(c.repo(), is.Labels, l)
		}
	}
	return http.StatusOK, s.issueJSONLocked(is)
}

// withLabelLocked adds a label name to a set, creating the repository label as GitHub does.
func (s *Server) withLabelLocked(repo string, set []string, name string) []string {
	if s.labels[repo][strings.ToLower(name)] == nil {
		s.addLabelLocked(repo, &Label{Name: name, Color: "ededed"})
	}
	if slices.Contains(set, name) {
		return set
	}
	return append(set, name)
}

func (s *Server) issueJSONLocked(is *Issue) map[string]any {
	api := fmt.Sprintf("%srepos/%s/issues/%d", s.URL(), is.Repo, is.Number)
	labels := []any{}
	for _, name := range is.Labels {
		labels = append(labels, s.labelJSON(is.Repo, s.labelLocked(is.Repo, name)))
	}
	user := is.User
	if user == "" {
		user = s.BotLogin()
	}
	comments := 0
	for _, cm := range s.comments[is.Repo] {
		if cm.Issue == is.Number {
			comments++
		}
	}
	var closedAt any
	if is.State == "closed" {
		closedAt = now()
	}
	return map[string]any{
		"id": int64(is.Number) * 1013, "node_id": fmt.Sprintf("I_%d", is.Number), "url": api,
		"repository_url": s.URL() + "repos/" + is.Repo, "labels_url": api + "/labels{/name}", "comments_url": api + "/comments",
		"events_url": api + "/events", "html_url": fmt.Sprintf("https://github.com/%s/issues/%d", is.Repo, is.Number),
		"number": is.Number, "state": is.State, "title": is.Title, "body": orNil(is.Body), "user": s.user(user),
		"labels": labels, "assignee": nil, "assignees": []any{}, "milestone": nil, "locked": false, "comments": comments,
		"closed_at": closedAt, "created_at": now(), "updated_at": now(), "author_association": s.associationLocked(is.Repo, user),
	}
}

// labelLocked is a repository label by name; a name only a seeded pull request carries gets
// the look GitHub gives a label made on the fly.
func (s *Server) labelLocked(repo, name string) *Label {
	if l := s.labels[repo][strings.ToLower(name)]; l != nil {
		return l
	}
	return &Label{ID: userID(repo + name), Name: name, Color: "ededed"}
}

// issueOrPullLocked renders issue n of repo as issues/get does: an issue, or a pull request in
// its issue form (with pull_request); nil when there is neither.
func (s *Server) issueOrPullLocked(repo string, n int) map[string]any {
	if is := s.issues[repo][n]; is != nil {
		return s.issueJSONLocked(is)
	}
	p := s.pulls[repo][n]
	if p == nil {
		return nil
	}
	out := s.issueJSONLocked(&Issue{Number: n, Repo: repo, Title: p.Title, Body: p.Body, State: p.State, Labels: p.Labels, User: p.User})
	pr := s.pullJSONLocked(repo, p)
	out["html_url"] = pr["html_url"]
	out["pull_request"] = map[string]any{"url": pr["url"], "html_url": pr["html_url"], "diff_url": pr["diff_url"],
		"patch_url": pr["patch_url"], "merged_at": pr["merged_at"]}
	if p.State == "closed" {
		out["closed_at"] = pr["closed_at"]
	}
	return out
}

func (s *Server) getIssue(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.issueOrPullLocked(c.repo(), int(c.id("issue_number")))
	if out == nil {
		return notFound()
	}
	return http.StatusOK, out
}

func (s *Server) getComment(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cm := s.findCommentLocked(c.repo(), c.id("comment_id"))
	if cm == nil {
		return notFound()
	}
	return http.StatusOK, s.commentJSONLocked(cm)
}

func (s *Server) labelJSON(repo string, l *Label) map[string]any {
	return map[string]any{
		"id": l.ID, "node_id": fmt.Sprintf("LA_%d", l.ID), "url": s.URL() + "repos/" + repo + "/labels/" + l.Name,
		"name": l.Name, "description": orNil(l.Description), "color": l.Color, "default": false,
	}
}

func (s *Server) getLabel(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.labels[c.repo()][strings.ToLower(c.params["name"])]
	if l == nil {
		return notFound()
	}
	return http.StatusOK, s.labelJSON(c.repo(), l)
}

func (s *Server) createLabel(c *call) (int, any) {
	var in struct{ Name, Color, Description string }
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.labels[c.repo()][strings.ToLower(in.Name)] != nil {
		return http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
			"errors": []any{map[string]string{"resource": "Label", "code": "already_exists", "field": "name"}}}
	}
	if in.Color == "" {
		in.Color = "ededed"
	}
	l := s.addLabelLocked(c.repo(), &Label{Name: in.Name, Color: strings.TrimPrefix(in.Color, "#"), Description: in.Description})
	return http.StatusCreated, s.labelJSON(c.repo(), l)
}

// addLabels labels an issue or a seeded pull request, answering with all its labels.
func (s *Server) addLabels(c *call) (int, any) {
	var in struct {
		Labels []any `json:"labels"` // names, or objects with a name
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	repo, n := c.repo(), int(c.id("issue_number"))
	s.mu.Lock()
	defer s.mu.Unlock()
	var set *[]string
	if is := s.issues[repo][n]; is != nil {
		set = &is.Labels
	} else if p := s.pulls[repo][n]; p != nil {
		set = &p.Labels
	} else {
		return notFound()
	}
	for _, l := range in.Labels {
		name, ok := l.(string)
		if m, isObj := l.(map[string]any); isObj {
			name, ok = m["name"].(string)
		}
		if ok {
			*set = s.withLabelLocked(repo, *set, name)
		}
	}
	out := []any{}
	for _, name := range *set {
		out = append(out, s.labelJSON(repo, s.labels[repo][strings.ToLower(name)]))
	}
	return http.StatusOK, out
}

// createComment comments on an issue or pull request. The number need not be seeded: the
// code under test comments on pull requests that tests have no other reason to seed.
func (s *Server) createComment(c *call) (int, any) {
	var in struct {
		Body string `json:"body"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := time.Now()
	cm := &Comment{ID: s.nextIDLocked(), Repo: c.repo(), Issue: int(c.id("issue_number")), Body: in.Body, created: t, updated: t}
	s.comments[cm.Repo] = append(s.comments[cm.Repo], cm)
	s.emitLocked(c.answered, "issue_comment", s.commentEventLocked(cm, "created", s.BotLogin(), ""))
	return http.StatusCreated, s.commentJSONLocked(cm)
}

func (s *Server) updateComment(c *call) (int, any) {
	var in struct {
		Body string `json:"body"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cm := s.findCommentLocked(c.repo(), c.id("comment_id"))
	if cm == nil {
		return notFound()
	}
	from := cm.Body
	cm.Body, cm.updated = in.Body, time.Now()
	cm.Edits++
	s.emitLocked(c.answered, "issue_comment", s.commentEventLocked(cm, "edited", s.BotLogin(), from))
	return http.StatusOK, s.commentJSONLocked(cm)
}

func (s *Server) findCommentLocked(repo string, id int64) *Comment {
	for _, x := range s.comments[repo] {
		if x.ID == id {
			return x
		}
	}
	return nil
}

// listComments pages through an issue's comments, oldest first, with GitHub's Link header.
func (s *Server) listComments(c *call) (int, any) {
	n := int(c.id("issue_number"))
	s.mu.Lock()
	var all []any
	for _, cm := range s.comments[c.repo()] {
		if cm.Issue == n {
			all = append(all, s.commentJSONLocked(cm))
		}
	}
	s.mu.Unlock()
	return http.StatusOK, c.page(all)
}

// page cuts one page out of items by the per_page and page parameters and sets the Link header
// go-github follows.
func (c *call) page(items []any) []any {
	q := c.r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max((len(items)+per-1)/per, 1)
	var links []string
	link := func(p int, rel string) {
		u := *c.r.URL
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		u.RawQuery = q.Encode()
		links = append(links, fmt.Sprintf("<%s%s>; rel=%q", strings.TrimSuffix(c.s.URL(), "/"), u.RequestURI(), rel))
	}
	if page < last {
		link(page+1, "next")
		link(last, "last")
	}
	if page > 1 {
		link(1, "first")
		link(page-1, "prev")
	}
	if len(links) > 0 {
		c.header.Set("Link", strings.Join(links, ", "))
	}
	out := []any{}
	for i := (page - 1) * per; i < len(items) && i < page*per; i++ {
		out = append(out, items[i])
	}
	return out
}

func (s *Server) commentJSONLocked(cm *Comment) map[string]any {
	kind := "issues"
	if s.pulls[cm.Repo][cm.Issue] != nil {
		kind = "pull"
	}
	var app any // a comment the App made through the API says so
	if cm.User == "" {
		app = s.appJSON()
	}
	created, updated := cm.created, cm.updated
	if created.IsZero() {
		created, updated = time.Now(), time.Now()
	}
	return map[string]any{
		"id": cm.ID, "node_id": fmt.Sprintf("IC_%d", cm.ID), "body": cm.Body, "user": s.user(cm.author(s)),
		"url":        fmt.Sprintf("%srepos/%s/issues/comments/%d", s.URL(), cm.Repo, cm.ID),
		"html_url":   fmt.Sprintf("https://github.com/%s/%s/%d#issuecomment-%d", cm.Repo, kind, cm.Issue, cm.ID),
		"issue_url":  fmt.Sprintf("%srepos/%s/issues/%d", s.URL(), cm.Repo, cm.Issue),
		"created_at": stamp(created), "updated_at": stamp(updated),
		"author_association": s.associationLocked(cm.Repo, cm.author(s)), "performed_via_github_app": app,
	}
}

// createReaction reacts to a comment: 201 for a new reaction, 200 when it was already there.
func (s *Server) createReaction(c *call) (int, any) {
	var in struct {
		Content string `json:"content"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cm := s.findCommentLocked(c.repo(), c.id("comment_id"))
	if cm == nil {
		return notFound()
	}
	status := http.StatusOK
	if !slices.Contains(cm.Reactions, in.Content) {
		cm.Reactions = append(cm.Reactions, in.Content)
		status = http.StatusCreated
	}
	id := cm.ID*10 + int64(slices.Index(cm.Reactions, in.Content))
	return status, map[string]any{"id": id, "node_id": fmt.Sprintf("REA_%d", id), "user": s.user(s.BotLogin()),
		"content": in.Content, "created_at": stamp(time.Now())}
}

// listIssues answers issues/list-for-repo: a repository's issues, newest first, filtered by
// state (default open), labels (all of them) and creator. Pull requests, which GitHub lists
// too, are left out: nothing in the test server labels them the way the callers filter.
func (s *Server) listIssues(c *call) (int, any) {
	q := c.r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	s.mu.Lock()
	var list []*Issue
	for _, is := range s.issues[c.repo()] {
		list = append(list, is)
	}
	slices.SortFunc(list, func(a, b *Issue) int { return b.Number - a.Number })
	all := []any{}
	for _, is := range list {
		user := is.User
		if user == "" {
			user = s.BotLogin()
		}
		if (state != "all" && is.State != state) || (q.Get("creator") != "" && !strings.EqualFold(q.Get("creator"), user)) {
			continue
		}
		ok := true
		for _, l := range want {
			ok = ok && slices.ContainsFunc(is.Labels, func(x string) bool { return strings.EqualFold(x, strings.TrimSpace(l)) })
		}
		if ok {
			all = append(all, s.issueJSONLocked(is))
		}
	}
	s.mu.Unlock()
	return http.StatusOK, c.page(all)
}
