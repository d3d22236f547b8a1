package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// Deployment is a GitHub Deployment as the server keeps it, with its statuses in order.
type Deployment struct {
	ID          int64
	Repo        string
	Ref         string
	SHA         string // the commit Ref named when the deployment was made, or Ref if unknown
	Task        string
	Payload     string // the JSON payload as sent
	Environment string
	Description string
	AutoMerge   *bool
	Contexts    []string // required_contexts
	Production  *bool
	Created     time.Time
	Statuses    []DeploymentStatus
}

// DeploymentStatus is one status of a Deployment.
type DeploymentStatus struct {
	ID          int64
	State       string
	Description string
	LogURL      string
	// EnvironmentURL is where the environment is opened ("View deployment" on GitHub).
	EnvironmentURL string
	AutoInactive   *bool
	Environment    string
	Created        time.Time
	// ByGitHub marks a status GitHub made itself: the inactive status an earlier Deployment of
	// the environment gets when a newer one succeeds.
	ByGitHub bool
}

// Deployments returns copies of a repository's Deployments, oldest first.
func (s *Server) Deployments(repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for _, d := range s.deployments[repo] {
		c := *d
		c.Statuses = append([]DeploymentStatus(nil), d.Statuses...)
		out = append(out, c)
	}
	return out
}

func (s *Server) createDeployment(c *call) (int, any) {
	var in struct {
		Ref                   string          `json:"ref"`
		Task                  string          `json:"task"`
		Payload               json.RawMessage `json:"payload"`
		Environment           string          `json:"environment"`
		Description           string          `json:"description"`
		AutoMerge             *bool           `json:"auto_merge"`
		RequiredContexts      *[]string       `json:"required_contexts"`
		ProductionEnvironment *bool           `json:"production_environment"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	// As on GitHub: auto_merge defaults to true and merges the default branch into the ref, and
	// required_contexts defaults to every status context. Without a checkout to merge, refuse.
	if in.AutoMerge == nil || *in.AutoMerge {
		return http.StatusConflict, message("Conflict merging main into " + in.Ref + " (the test server needs auto_merge: false)")
	}
	if in.RequiredContexts == nil {
		return http.StatusConflict, message("Conflict: Commit status checks failed for " + in.Ref + " (the test server needs required_contexts: [])")
	}
	d := &Deployment{Repo: c.repo(), Ref: in.Ref, SHA: in.Ref, Task: in.Task, Environment: in.Environment,
		Description: in.Description, AutoMerge: in.AutoMerge, Contexts: *in.RequiredContexts,
		Production: in.ProductionEnvironment, Created: time.Now()}
	if d.Environment == "" {
		d.Environment = "production"
	}
	if d.Task == "" {
		d.Task = "deploy"
	}
	if len(in.Payload) > 0 {
		d.Payload = string(in.Payload)
	}
	s.mu.Lock()
	if sha, ok := s.resolveLocked(d.Repo, d.Ref); ok {
		d.SHA = sha
	}
	d.ID = s.nextIDLocked()
	s.deployments[d.Repo] = append(s.deployments[d.Repo], d)
	s.mu.Unlock()
	return http.StatusCreated, s.deploymentJSON(d)
}

// listDeployments answers with the newest deployments first, filtered as GitHub filters them.
func (s *Server) listDeployments(c *call) (int, any) {
	q := c.r.URL.Query()
	s.mu.Lock()
	var ds []*Deployment
	for _, d := range s.deployments[c.repo()] {
		if (q.Get("sha") == "" || q.Get("sha") == d.SHA) && (q.Get("ref") == "" || q.Get("ref") == d.Ref) &&
			(q.Get("task") == "" || q.Get("task") == d.Task) && (q.Get("environment") == "" || q.Get("environment") == d.Environment) {
			ds = append(ds, d)
		}
	}
	s.mu.Unlock()
	out := []any{}
	for i := len(ds) - 1; i >= 0; i-- {
		out = append(out, s.deploymentJSON(ds[i]))
	}
	return http.StatusOK, out
}

// deploymentJSON renders a deployment; its fields never change after creation.
func (s *Server) deploymentJSON(d *Deployment) map[string]any {
	url := fmt.Sprintf("%srepos/%s/deployments/%d", s.URL(), d.Repo, d.ID)
	var payload any = map[string]any{}
	if d.Payload != "" {
		_ = json.Unmarshal([]byte(d.Payload), &payload)
	}
	return map[string]any{
		"id": d.ID, "node_id": fmt.Sprintf("DE_%d", d.ID), "sha": d.SHA, "ref": d.Ref, "task": d.Task, "payload": payload,
		"original_environment": d.Environment, "environment": d.Environment, "description": orNil(d.Description),
		"creator": s.user(s.BotLogin()), "statuses_url": url + "/statuses", "repository_url": s.URL() + "repos/" + d.Repo,
		"url": url, "created_at": stamp(d.Created), "updated_at": stamp(d.Created),
		"production_environment": d.Production != nil && *d.Production, "transient_environment": false,
	}
}

func (s *Server) createDeploymentStatus(c *call) (int, any) {
	id := c.id("deployment_id")
	var in struct {
		State          string `json:"state"`
		Description    string `json:"description"`
		LogURL         string `json:"log_url"`
		TargetURL      string `json:"target_url"`
		Environment    string `json:"environment"`
		EnvironmentURL string `json:"environment_url"`
		AutoInactive   *bool  `json:"auto_inactive"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, message("Problems parsing JSON")
	}
	// The description states 140 characters in prose only; GitHub enforces it.
	if utf8.RuneCountInString(in.Description) > 140 {
		return http.StatusUnprocessableEntity, message("Validation Failed: description is too long (maximum is 140 characters)")
	}
	logURL := in.LogURL
	if logURL == "" {
		logURL = in.TargetURL
	}
	// The description gives both as "format": "uri" in the status GitHub answers with; the
	// test server refuses what would not be one, so a client sending a relative path, a bare
	// host or a javascript: link is caught here.
	for field, u := range map[string]string{"log_url": logURL, "environment_url": in.EnvironmentURL} {
		if msg := checkURI(u); msg != "" {
			return http.StatusUnprocessableEntity, message("Validation Failed: " + field + " " + msg)
		}
	}
	s.mu.Lock()
	var d *Deployment
	for _, x := range s.deployments[c.repo()] {
		if x.ID == id {
			d = x
		}
	}
	if d == nil {
		s.mu.Unlock()
		return notFound()
	}
	if in.Environment != "" {
		d.Environment = in.Environment
	}
	st := DeploymentStatus{ID: s.nextIDLocked(), State: in.State, Description: in.Description, LogURL: logURL, AutoInactive: in.AutoInactive,
		EnvironmentURL: in.EnvironmentURL, Environment: in.Environment, Created: time.Now()}
	d.Statuses = append(d.Statuses, st)
	// auto_inactive (default true), as the description states it: a success adds an inactive
	// status to the earlier deployments of the repository and environment whose last status is
	// success, except production (and transient) ones, whichever app or task made them; never
	// one made after this one.
	if in.State == "success" && (in.AutoInactive == nil || *in.AutoInactive) {
		for _, x := range s.deployments[c.repo()] {
			if x.ID < d.ID && x.Environment == d.Environment && (x.Production == nil || !*x.Production) &&
				len(x.Statuses) > 0 && x.Statuses[len(x.Statuses)-1].State == "success" {
				x.Statuses = append(x.Statuses, DeploymentStatus{ID: s.nextIDLocked(), State: "inactive", Environment: x.Environment, Created: time.Now(), ByGitHub: true})
			}
		}
	}
	out := s.statusJSONLocked(d, st)
	s.mu.Unlock()
	return http.StatusCreated, out
}

// listDeploymentStatuses answers repos/list-deployment-statuses: a Deployment's statuses, newest
// first.
func (s *Server) listDeploymentStatuses(c *call) (int, any) {
	id := c.id("deployment_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deployments[c.repo()] {
		if d.ID != id {
			continue
		}
		all := []any{}
		for i := len(d.Statuses) - 1; i >= 0; i-- {
			all = append(all, s.statusJSONLocked(d, d.Statuses[i]))
		}
		return http.StatusOK, c.page(all)
	}
	return notFound()
}

func (s *Server) statusJSONLocked(d *Deployment, st DeploymentStatus) map[string]any {
	env := st.Environment
	if env == "" {
		env = d.Environment
	}
	url := fmt.Sprintf("%srepos/%s/deployments/%d", s.URL(), d.Repo, d.ID)
	return map[string]any{
		"id": st.ID, "node_id": fmt.Sprintf("DES_%d", st.ID), "state": st.State, "creator": s.user(s.BotLogin()),
		"description": st.Description, "environment": env, "deployment_url": url, "target_url": st.LogURL, "log_url": st.LogURL,
		"environment_url": st.EnvironmentURL, "repository_url": s.URL() + "repos/" + d.Repo, "url": fmt.Sprintf("%s/statuses/%d", url, st.ID),
		"created_at": stamp(st.Created), "updated_at": stamp(st.Created),
	}
}

// checkURI says what is wrong with u as an absolute http(s) URL, or "" when it is one or empty.
func checkURI(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return "is not a URL"
	case p.Scheme != "https" && p.Scheme != "http":
		return "must be an http or https URL"
	case p.Host == "":
		return "must be an absolute URL"
	}
	return ""
}
