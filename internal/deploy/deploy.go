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
// there was one, the GitHub user who caused it, and for a command the issue or pull request and
// the comment it was given in (progress is reported there).
type Trigger struct {
	Event    string `json:"event"`
	Delivery string `json:"delivery"`
	PR       int    `json:"pr,omitempty"`
	Actor    string `json:"actor"`
	Issue    int    `json:"issue,omitempty"`
	Comment  int64  `json:"comment,omitempty"`
}

// Command reports whether a person's command (a comment or a check-run button) asked for the
// deploy, rather than a push or a merge.
func (t Trigger) Command() bool { return t.Event == "issue_comment" || t.Event == "check_run" }

// Mode is what a deploy does. The values are stored as text, so they never change.
type Mode string

// The modes.
const (
	// ModeBuild builds the commit with CodeBuild, then rolls the image out: a normal deploy.
	ModeBuild Mode = ""
	// ModeImage rolls out an image built before (Request.Image) without building: a rollback
	// to an earlier deploy runs exactly what ran then.
	ModeImage Mode = "image"
	// ModeSwitch points the stage's Services at another slot (Request.Slot) and does nothing
	// else: rolling a two-slot stage back takes seconds.
	ModeSwitch Mode = "switch"
	// ModePRBuild builds a pull request's head with the least-privileged credentials tier and
	// deploys nothing. Its Stage is PRStage(number).
	ModePRBuild Mode = "pr_build"
)

// PRStage is the stage name a pull request's builds are recorded under. It can never be a
// configured stage's name ('#' is not allowed there), and it keeps the store's one-queued and
// one-running rules per pull request: a newer push supersedes a build still queued.
func PRStage(number int) string { return fmt.Sprintf("pr#%d", number) }

// Request asks for one commit of one app to be deployed to one stage.
type Request struct {
	App            string  `json:"app"`
	Stage          string  `json:"stage"`
	Repo           string  `json:"repo"` // owner/name
	SHA            string  `json:"sha"`
	Ref            string  `json:"ref,omitempty"` // the branch or tag that pointed at SHA, e.g. "master"
	InstallationID int64   `json:"installation_id,omitempty"`
	Trigger        Trigger `json:"trigger"`

	Mode  Mode   `json:"mode,omitempty"`
	Image string `json:"image,omitempty"` // ModeImage: the image to run
	Slot  string `json:"slot,omitempty"`  // ModeSwitch: the slot to switch to
	// Force is the reason an admin gave for --force (skipping the stage order, or dropping
	// commits the stage held that this commit lacks); "" when nobody did.
	Force string `json:"force,omitempty"`
	// Nonce makes a command's request a deploy of its own even when the same commit was
	// deployed before (a retry, a rollback); automatic requests leave it empty.
	Nonce string `json:"nonce,omitempty"`
	// Held deploys wait until released: a promotion records its deploy, then moves the branch
	// (whose push must find this deploy, not start a second), then releases it.
	Held bool `json:"held,omitempty"`
}

// ShortSHA is a commit's sha as people read it: its first seven digits.
func ShortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Key identifies the work a request implies: a second request with the same key is the same
// deploy (a merged PR and the push of its merge commit, a promotion and the push it causes, or a
// redelivered webhook).
func (r Request) Key() string {
	if r.Nonce != "" {
		return fmt.Sprintf("%s/%s/%s/%s", r.App, r.Stage, r.SHA, r.Nonce)
	}
	return fmt.Sprintf("%s/%s/%s", r.App, r.Stage, r.SHA)
}

// Deploy is the stored record of a request and how far it got.
type Deploy struct {
	ID int64 `json:"id"`
	Request
	State        State `json:"state"`
	SupersededBy int64 `json:"superseded_by,omitempty"`
	CheckRunID   int64 `json:"check_run_id,omitempty"`
	// GitHubDeploymentID, GitHubDeploymentStatus and CommentID (on the pull request, or on the
	// issue a command came from) are what reporting made on GitHub for this deploy.
	GitHubDeploymentID     int64     `json:"github_deployment_id,omitempty"`
	GitHubDeploymentStatus string    `json:"github_deployment_status,omitempty"`
	CommentID              int64     `json:"comment_id,omitempty"`
	Error                  string    `json:"error,omitempty"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
	StartedAt              time.Time `json:"started_at,omitzero"`
	FinishedAt             time.Time `json:"finished_at,omitzero"`
	// ReportSeq counts the deploy's changes worth reporting; each report job carries the one it
	// was recorded with, so a report that a later one follows leaves GitHub to it.
	ReportSeq int64 `json:"-"`
	// Checkpoint is the pipeline's record of what it has started (build id, replaced images),
	// stored as-is so a restarted process resumes instead of starting over.
	Checkpoint []byte `json:"-"`
}
