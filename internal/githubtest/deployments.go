package githubtest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Deployment is a GitHub Deployment as the server keeps it, with its statuses in order.
type Deployment struct {
	ID          int64
	Repo        string
	Ref         string
	Environment string
	Description string
	AutoMerge   *bool
	Contexts    []string // required_contexts; nil when not sent
	Production  *bool
	Statuses    []DeploymentStatus
}

// DeploymentStatus is one status of a Deployment.
type DeploymentStatus struct {
	State        string
	Description  string
	LogURL       string
	AutoInactive *bool
}

// Comment is an issue or pull-request comment.
type Comment struct {
	ID    int64
	Repo  string
	Issue int
	Body  string
	Edits int
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

// Comments returns copies of the comments on one issue or pull request.
func (s *Server) Comments(repo string, issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments[repo] {
		if c.Issue == issue {
			out = append(out, *c)
		}
	}
	return out
}

func (s *Server) stamp() string { return time.Now().UTC().Format(time.RFC3339) }

func (s *Server) createDeployment(c *call) (int, any) {
	var in struct {
		Ref                   string    `json:"ref"`
		Environment           string    `json:"environment"`
		Description           string    `json:"description"`
		AutoMerge             *bool     `json:"auto_merge"`
		RequiredContexts      *[]string `json:"required_contexts"`
		ProductionEnvironment *bool     `json:"production_environment"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"}
	}
	// As on GitHub: auto_merge defaults to true and merges the default branch into the ref, and
	// required_contexts defaults to every status context. Without a checkout to merge, refuse.
	if in.AutoMerge == nil || *in.AutoMerge {
		return http.StatusConflict, map[string]string{"message": "Conflict merging master into " + in.Ref + ". (set auto_merge: false)"}
	}
	if in.RequiredContexts == nil {
		return http.StatusConflict, map[string]string{"message": "Conflict: Commit status checks failed for " + in.Ref + ". (set required_contexts: [])"}
	}
	d := &Deployment{ID: s.id(), Repo: c.repo(), Ref: in.Ref, Environment: in.Environment, Description: in.Description,
		AutoMerge: in.AutoMerge, Contexts: *in.RequiredContexts, Production: in.ProductionEnvironment}
	if d.Environment == "" {
		d.Environment = "production"
	}
	s.mu.Lock()
	if s.deployments == nil {
		s.deployments = map[string][]*Deployment{}
	}
	s.deployments[d.Repo] = append(s.deployments[d.Repo], d)
	s.mu.Unlock()
	return http.StatusCreated, s.deploymentJSON(d)
}

func (s *Server) deploymentJSON(d *Deployment) map[string]any {
	url := fmt.Sprintf("%srepos/%s/deployments/%d", s.URL(), d.Repo, d.ID)
	return map[string]any{
		"id": d.ID, "node_id": fmt.Sprintf("DE_%d", d.ID), "sha": d.Ref, "ref": d.Ref, "task": "deploy", "payload": map[string]any{},
		"environment": d.Environment, "description": orNil(d.Description), "creator": s.user("stagecoach[bot]"),
		"statuses_url": url + "/statuses", "repository_url": s.URL() + "repos/" + d.Repo, "url": url,
		"created_at": s.stamp(), "updated_at": s.stamp(), "production_environment": d.Production != nil && *d.Production,
	}
}

func (s *Server) createDeploymentStatus(c *call) (int, any) {
	id, _ := strconv.ParseInt(c.params["deployment_id"], 10, 64)
	var in struct {
		State        string `json:"state"`
		Description  string `json:"description"`
		LogURL       string `json:"log_url"`
		AutoInactive *bool  `json:"auto_inactive"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"}
	}
	if len(in.Description) > 140 {
		return http.StatusUnprocessableEntity, map[string]string{"message": "description is too long (maximum is 140 characters)"}
	}
	s.mu.Lock()
	var d *Deployment
	for _, x := range s.deployments[c.repo()] {
		if x.ID == id {
			d = x
		}
	}
	if d != nil {
		d.Statuses = append(d.Statuses, DeploymentStatus{State: in.State, Description: in.Description, LogURL: in.LogURL, AutoInactive: in.AutoInactive})
		// A success makes the environment's earlier deployments inactive unless told otherwise.
		if in.State == "success" && (in.AutoInactive == nil || *in.AutoInactive) {
			for _, x := range s.deployments[c.repo()] {
				if x != d && x.Environment == d.Environment && len(x.Statuses) > 0 && x.Statuses[len(x.Statuses)-1].State == "success" {
					x.Statuses = append(x.Statuses, DeploymentStatus{State: "inactive"})
				}
			}
		}
	}
	s.mu.Unlock()
	if d == nil {
		return http.StatusNotFound, map[string]string{"message": "Not Found"}
	}
	sid := s.id()
	url := fmt.Sprintf("%srepos/%s/deployments/%d", s.URL(), d.Repo, d.ID)
	return http.StatusCreated, map[string]any{
		"id": sid, "node_id": fmt.Sprintf("DES_%d", sid), "state": in.State, "creator": s.user("stagecoach[bot]"),
		"description": in.Description, "environment": d.Environment, "deployment_url": url, "target_url": in.LogURL, "log_url": in.LogURL,
		"repository_url": s.URL() + "repos/" + d.Repo, "url": fmt.Sprintf("%s/statuses/%d", url, sid),
		"created_at": s.stamp(), "updated_at": s.stamp(),
	}
}

func (s *Server) createComment(c *call) (int, any) {
	n, _ := strconv.Atoi(c.params["issue_number"])
	var in struct {
		Body string `json:"body"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"}
	}
	cm := &Comment{ID: s.id(), Repo: c.repo(), Issue: n, Body: in.Body}
	s.mu.Lock()
	if s.comments == nil {
		s.comments = map[string][]*Comment{}
	}
	s.comments[cm.Repo] = append(s.comments[cm.Repo], cm)
	s.mu.Unlock()
	return http.StatusCreated, s.commentJSON(cm)
}

func (s *Server) updateComment(c *call) (int, any) {
	id, _ := strconv.ParseInt(c.params["comment_id"], 10, 64)
	var in struct {
		Body string `json:"body"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"}
	}
	s.mu.Lock()
	var cm *Comment
	for _, x := range s.comments[c.repo()] {
		if x.ID == id {
			cm = x
			x.Body = in.Body
			x.Edits++
		}
	}
	s.mu.Unlock()
	if cm == nil {
		return http.StatusNotFound, map[string]string{"message": "Not Found"}
	}
	return http.StatusOK, s.commentJSON(cm)
}

func (s *Server) commentJSON(cm *Comment) map[string]any {
	return map[string]any{
		"id": cm.ID, "node_id": fmt.Sprintf("IC_%d", cm.ID), "body": cm.Body, "user": s.user("stagecoach[bot]"),
		"url":        fmt.Sprintf("%srepos/%s/issues/comments/%d", s.URL(), cm.Repo, cm.ID),
		"html_url":   fmt.Sprintf("https://github.com/%s/pull/%d#issuecomment-%d", cm.Repo, cm.Issue, cm.ID),
		"issue_url":  fmt.Sprintf("%srepos/%s/issues/%d", s.URL(), cm.Repo, cm.Issue),
		"created_at": s.stamp(), "updated_at": s.stamp(), "author_association": "NONE",
	}
}
