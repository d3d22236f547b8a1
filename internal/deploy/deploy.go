// Package deploy owns what a deploy is: the request that asks for one, the states it moves
// through and the record the store keeps of it. It has no I/O; the store persists these values
// and the pipeline advances them.
package deploy

import (
	"fmt"
	"time"
)

// State is where a deploy stands. The values are stored as text, so they never change.
type State string

// The states of a deploy. Queued is the only state a new deploy has; Preflight, Building and
// RollingOut are running states; the rest are final.
const (
	Queued     State = "queued"
	Preflight  State = "preflight"
	Building   State = "building"
	RollingOut State = "rolling_out"
	Succeeded  State = "succeeded"
	Failed     State = "failed"
	RolledBack State = "rolled_back"
	Superseded State = "superseded"
	Cancelled  State = "cancelled"
)

// States lists every state in the order a deploy moves through them.
var States = []State{Queued, Preflight, Building, RollingOut, Succeeded, Failed, RolledBack, Superseded, Cancelled}

// Running reports whether a deploy in this state has started and not finished.
func (s State) Running() bool {
	return s == Preflight || s == Building || s == RollingOut
}

// Final reports whether a deploy in this state will never change again.
func (s State) Final() bool {
	switch s {
	case Succeeded, Failed, RolledBack, Superseded, Cancelled:
		return true
	}
	return false
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Trigger says what asked for a deploy: the webhook event and delivery, the pull request if
// there was one, and the GitHub user who caused it.
type Trigger struct {
	Event    string `json:"event"`
	Delivery string `json:"delivery"`
	PR       int    `json:"pr,omitempty"`
	Actor    string `json:"actor"`
}

// Request asks for one commit of one app to be deployed to one stage.
type Request struct {
	App            string  `json:"app"`
	Stage          string  `json:"stage"`
	Repo           string  `json:"repo"` // owner/name
	SHA            string  `json:"sha"`
	Ref            string  `json:"ref,omitempty"` // the branch or tag that pointed at SHA, e.g. "master"
	InstallationID int64   `json:"installation_id,omitempty"`
	Trigger        Trigger `json:"trigger"`
}

// Key identifies the work a request implies: a second request with the same key is the same
// deploy (a merged PR and the push of its merge commit, or a redelivered webhook).
func (r Request) Key() string {
	return fmt.Sprintf("%s/%s/%s", r.App, r.Stage, r.SHA)
}

// Deploy is the stored record of a request and how far it got.
type Deploy struct {
	ID int64 `json:"id"`
	Request
	State        State `json:"state"`
	SupersededBy int64 `json:"superseded_by,omitempty"`
	CheckRunID   int64 `json:"check_run_id,omitempty"`
	// GitHubDeploymentID, GitHubDeploymentStatus and PRCommentID are what reporting made on
	// GitHub for this deploy.
	GitHubDeploymentID     int64     `json:"github_deployment_id,omitempty"`
	GitHubDeploymentStatus string    `json:"github_deployment_status,omitempty"`
	PRCommentID            int64     `json:"pr_comment_id,omitempty"`
	Error                  string    `json:"error,omitempty"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
	StartedAt              time.Time `json:"started_at,omitzero"`
	FinishedAt             time.Time `json:"finished_at,omitzero"`
	// Checkpoint is the pipeline's record of what it has started (build id, replaced images),
	// stored as-is so a restarted process resumes instead of starting over.
	Checkpoint []byte `json:"-"`
}
