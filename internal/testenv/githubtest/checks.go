package githubtest

import (
	"fmt"
	"net/http"
)

// CheckRun is a check run as the server keeps it.
type CheckRun struct {
	ID          int64
	Repo        string
	Name        string
	HeadSHA     string
	Status      string
	Conclusion  string
	ExternalID  string
	DetailsURL  string
	Title       string
	Summary     string
	Text        string
	Actions     []CheckRunAction
	Annotations []CheckRunAnnotation // every one sent, in order (GitHub adds each request's to the run's)
	StartedAt   string
	CompletedAt string
	Updates     int // PATCHes received
}

// CheckRunAction is a button on a check run.
type CheckRunAction struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

// CheckRunAnnotation marks lines of a file on a check run.
type CheckRunAnnotation struct {
	Path            string `json:"path"`
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	AnnotationLevel string `json:"annotation_level"`
	Message         string `json:"message"`
}

// CheckRuns returns copies of a repository's check runs, oldest first.
func (s *Server) CheckRuns(repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, cr := range s.checkRuns[repo] {
		c := *cr
		c.Annotations = append([]CheckRunAnnotation(nil), cr.Annotations...)
		out = append(out, c)
	}
	return out
}

type checkRunBody struct {
	Name        *string `json:"name"`
	HeadSHA     string  `json:"head_sha"`
	DetailsURL  *string `json:"details_url"`
	ExternalID  *string `json:"external_id"`
	Status      *string `json:"status"`
	Conclusion  *string `json:"conclusion"`
	StartedAt   *string `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	Output      *struct {
		Title       string               `json:"title"`
		Summary     string               `json:"summary"`
		Text        string               `json:"text"`
		Annotations []CheckRunAnnotation `json:"annotations"`
	} `json:"output"`
	Actions []CheckRunAction `json:"actions"`
}

func (b checkRunBody) apply(cr *CheckRun) {
	if b.Name != nil {
		cr.Name = *b.Name
	}
	if b.DetailsURL != nil {
		cr.DetailsURL = *b.DetailsURL
	}
	if b.ExternalID != nil {
		cr.ExternalID = *b.ExternalID
	}
	if b.Status != nil {
		cr.Status = *b.Status
	}
	// As on GitHub, a conclusion completes the run.
	if b.Conclusion != nil {
		cr.Conclusion, cr.Status = *b.Conclusion, "completed"
	}
	if b.StartedAt != nil {
		cr.StartedAt = *b.StartedAt
	}
	if b.CompletedAt != nil {
		cr.CompletedAt = *b.CompletedAt
	}
	if cr.Status == "completed" && cr.CompletedAt == "" {
		cr.CompletedAt = now()
	}
	if b.Output != nil {
		cr.Title, cr.Summary, cr.Text = b.Output.Title, b.Output.Summary, b.Output.Text
		cr.Annotations = append(cr.Annotations, b.Output.Annotations...)
	}
	if b.Actions != nil {
		cr.Actions = b.Actions
	}
}

func (s *Server) createCheckRun(c *call) (int, any) {
	var b checkRunBody
	if err := c.decode(&b); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	cr := &CheckRun{ID: s.newID(), Repo: c.repo(), HeadSHA: b.HeadSHA, Status: "queued", StartedAt: now()}
	b.apply(cr)
	s.mu.Lock()
	s.checkRuns[cr.Repo] = append(s.checkRuns[cr.Repo], cr)
	s.mu.Unlock()
	return http.StatusCreated, s.checkRunJSON(cr)
}

func (s *Server) updateCheckRun(c *call) (int, any) {
	id := c.id("check_run_id")
	var b checkRunBody
	if err := c.decode(&b); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	s.mu.Lock()
	var cr *CheckRun
	for _, x := range s.checkRuns[c.repo()] {
		if x.ID == id {
			cr = x
		}
	}
	if cr != nil {
		b.apply(cr)
		cr.Updates++
	}
	s.mu.Unlock()
	if cr == nil {
		return notFound()
	}
	return http.StatusOK, s.checkRunJSON(cr)
}

func (s *Server) getCheckRun(c *call) (int, any) {
	cr := s.findCheckRun(c.repo(), c.id("check_run_id"))
	if cr == nil {
		return notFound()
	}
	return http.StatusOK, s.checkRunJSON(cr)
}

func (s *Server) findCheckRun(repo string, id int64) *CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkRunLocked(repo, id)
}

func (s *Server) checkRunLocked(repo string, id int64) *CheckRun {
	for _, x := range s.checkRuns[repo] {
		if x.ID == id {
			return x
		}
	}
	return nil
}

func (s *Server) checkRunJSON(cr *CheckRun) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkRunJSONLocked(cr)
}

func (s *Server) checkRunJSONLocked(cr *CheckRun) map[string]any {
	url := fmt.Sprintf("%srepos/%s/check-runs/%d", s.URL(), cr.Repo, cr.ID)
	return map[string]any{
		"id": cr.ID, "node_id": fmt.Sprintf("CR_%d", cr.ID), "head_sha": cr.HeadSHA, "name": cr.Name,
		"external_id": cr.ExternalID, "url": url, "html_url": fmt.Sprintf("https://github.com/%s/runs/%d", cr.Repo, cr.ID),
		"details_url": orNil(cr.DetailsURL), "status": cr.Status, "conclusion": orNil(cr.Conclusion),
		"started_at": orNil(cr.StartedAt), "completed_at": orNil(cr.CompletedAt),
		"output": map[string]any{"title": orNil(cr.Title), "summary": orNil(cr.Summary), "text": orNil(cr.Text),
			"annotations_count": 0, "annotations_url": url + "/annotations"},
		"check_suite": map[string]any{"id": 1}, "app": s.appJSON(), "pull_requests": []any{},
	}
}

// listCheckRunsForRef answers checks/list-for-ref: a commit's check runs, newest first, filtered
// by check_name and status as GitHub filters them (filter=latest, the default, keeps the newest
// run of each name; filter=all keeps every run).
func (s *Server) listCheckRunsForRef(c *call) (int, any) {
	q := c.r.URL.Query()
	repo := c.repo()
	s.mu.Lock()
	sha, ok := s.resolveLocked(repo, c.params["ref"])
	if !ok {
		sha = c.params["ref"]
	}
	var runs []*CheckRun
	seen := map[string]bool{}
	list := s.checkRuns[repo]
	for i := len(list) - 1; i >= 0; i-- {
		cr := list[i]
		if cr.HeadSHA != sha || (q.Get("check_name") != "" && q.Get("check_name") != cr.Name) ||
			(q.Get("status") != "" && q.Get("status") != cr.Status) {
			continue
		}
		if q.Get("filter") != "all" {
			if seen[cr.Name] {
				continue
			}
			seen[cr.Name] = true
		}
		runs = append(runs, cr)
	}
	all := make([]any, 0, len(runs))
	for _, cr := range runs {
		all = append(all, s.checkRunJSONLocked(cr))
	}
	s.mu.Unlock()
	return http.StatusOK, map[string]any{"total_count": len(all), "check_runs": c.page(all)}
}
