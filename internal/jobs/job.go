// Package jobs owns durable background work other than deploys: reporting to GitHub and the
// events (tags, comments, check-run buttons, installations) that later workflows act on. A job is
// recorded in the same transaction as the webhook delivery that implies it, so it is never lost,
// and is run later, with retries, by a Runner.
package jobs

import (
	"encoding/json"
	"time"
)

// Kinds of jobs. Each kind has at most one executor, registered in one list in cmd/stagecoach.
const (
	// KindCheckRunCreate creates the queued check run of a newly accepted deploy.
	// Its payload is a CheckRunCreate.
	KindCheckRunCreate = "checkrun.create"
	// KindDeployReport brings a deploy's check run, GitHub Deployment and pull-request comment
	// up to date with where the deploy stands. Its payload is a DeployReport.
	KindDeployReport = "deploy.report"
	// KindDeployEnded says a deploy reached a final state; the release workflow consumes it.
	// Payload: DeployEnded.
	KindDeployEnded = "deploy.ended"
	// KindTagCreated records a tag pushed or created in a configured repo. Payload: Tag.
	KindTagCreated = "event.tag"
	// KindComment records a new issue or pull-request comment. Payload: Comment.
	KindComment = "event.comment"
	// KindCheckRunAction records a check-run button press or re-run request. Payload: CheckRunAction.
	KindCheckRunAction = "event.check_run"
	// KindPush records a push (or a merge) to the branch of a guarded stage, which deploys only
	// once the admission gate let it: its pusher is Stagecoach moving the branch itself, or may
	// promote to the stage. Payload: Push.
	KindPush = "event.push"
	// KindInstallation records an installation of the GitHub App. Payload: Installation.
	KindInstallation = "event.installation"
	// KindReleaseReady is due when a release's commit has soaked long enough on the stage
	// releases come from (its min_soak): it gives the release check run its Promote button.
	// Payload: ReleaseReady.
	KindReleaseReady = "release.ready"
	// KindReleaseUpdate is what earlier versions recorded instead of KindDeployEnded; jobs of
	// this kind still in a store are run as KindDeployEnded. Payload: ReleaseUpdate.
	KindReleaseUpdate = "release.update"
)

// Job is one unit of durable work. Key makes it idempotent: a second job with the same key is
// not recorded again.
type Job struct {
	ID       int64           `json:"id"`
	Kind     string          `json:"kind"`
	Key      string          `json:"key"`
	Payload  json.RawMessage `json:"payload"`
	Attempts int             `json:"attempts"`
	RunAfter time.Time       `json:"run_after"`
	// DeployKey, when set, names the deploy (deploy.Request.Key) this job is about; the store
	// fills Payload's deploy_id from it once the deploy row exists.
	DeployKey string `json:"-"`
	// Lane, when set, orders the job after every earlier job of the same lane: it waits,
	// unclaimable, until they are done (or failed for good), and then runs alone in its lane.
	// A deploy's reports share its environment's lane (ReportLane), so they reach GitHub one at
	// a time and in order, from whichever replica runs them.
	Lane string `json:"-"`
}

// CheckRunCreate is the payload of KindCheckRunCreate.
type CheckRunCreate struct {
	DeployID int64 `json:"deploy_id"`
}

// DeployReport is the payload of KindDeployReport. Seq is the deploy's report sequence when the
// job was recorded: a job whose deploy has a higher one has a later job behind it in its lane and
// leaves the reporting to it.
type DeployReport struct {
	DeployID int64 `json:"deploy_id"`
	Seq      int64 `json:"seq,omitempty"`
}

// DeployEnded is the payload of KindDeployEnded. Its fields are a superset of ReleaseUpdate's.
type DeployEnded struct {
	DeployID       int64  `json:"deploy_id"`
	State          string `json:"state"`
	App            string `json:"app"`
	Stage          string `json:"stage"`
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"`
	Issue          int    `json:"issue,omitempty"` // where the command that asked for it was given
	Command        bool   `json:"command,omitempty"`
	Delivery       string `json:"delivery"` // the delivery that asked for it
}

// Tag is the payload of KindTagCreated.
type Tag struct {
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"`
	Tag            string `json:"tag"`
	SHA            string `json:"sha,omitempty"` // empty for `create` events, which carry no sha
	Actor          string `json:"actor"`
	Delivery       string `json:"delivery"`
}

// Comment is the payload of KindComment.
type Comment struct {
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"`
	Issue          int    `json:"issue"`
	IsPullRequest  bool   `json:"is_pull_request"`
	CommentID      int64  `json:"comment_id"`
	Body           string `json:"body"`
	Author         string `json:"author"`
	AuthorType     string `json:"author_type"` // "User" or "Bot"
	Association    string `json:"author_association"`
	Delivery       string `json:"delivery"`
}

// The identifiers of the buttons on Stagecoach's check runs (package report puts them on deploy
// check runs, package release puts Promote on release check runs, package chatops carries them
// out); GitHub sends them back as CheckRunAction.Identifier. At most 20 characters each.
const (
	ActionPromote  = "promote"
	ActionRetry    = "retry"
	ActionRollback = "rollback"
)

// CheckRunAction is the payload of KindCheckRunAction.
type CheckRunAction struct {
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"`
	Action         string `json:"action"` // "rerequested" or "requested_action"
	Identifier     string `json:"identifier,omitempty"`
	CheckRunID     int64  `json:"check_run_id"`
	CheckRunName   string `json:"check_run_name"`
	ExternalID     string `json:"external_id,omitempty"`
	HeadSHA        string `json:"head_sha"`
	Actor          string `json:"actor"`
	Delivery       string `json:"delivery"`
}

// Push is the payload of KindPush.
type Push struct {
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"`
	Stage          string `json:"stage"`
	Branch         string `json:"branch"`
	Before         string `json:"before,omitempty"` // what the branch held; "" for a merge
	After          string `json:"after"`
	Forced         bool   `json:"forced,omitempty"`
	Pusher         string `json:"pusher"` // sender.login: who pushed, or merged
	PusherType     string `json:"pusher_type,omitempty"`
	Event          string `json:"event"` // push, or pull_request for a merge
	PR             int    `json:"pr,omitempty"`
	Delivery       string `json:"delivery"`
}

// PushKey is the key of a push's job for one stage: the commit comes before the delivery, so
// recovery can tell whether any push of that commit to the stage was heard, by whatever delivery.
func PushKey(repo, stage, sha, delivery string) string {
	return PushKeyPrefix(repo, stage, sha) + delivery
}

// PushKeyPrefix is what every PushKey of repo, stage and sha starts with.
func PushKeyPrefix(repo, stage, sha string) string {
	return "push:" + repo + ":" + stage + ":" + sha + ":"
}

// Installation is the payload of KindInstallation.
type Installation struct {
	InstallationID int64    `json:"installation_id"`
	Action         string   `json:"action"`
	Account        string   `json:"account"`
	Repos          []string `json:"repos,omitempty"`
	Delivery       string   `json:"delivery"`
}

// ReleaseReady is the payload of KindReleaseReady: the release, and the commit whose soak it
// waits for (a tag moved since makes it moot).
type ReleaseReady struct {
	Repo      string `json:"repo"`
	ReleaseID int64  `json:"release_id"`
	SHA       string `json:"sha"`
}

// ReleaseUpdate is the payload of KindReleaseUpdate: a deploy asked for on an issue ended.
type ReleaseUpdate struct {
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"`
	Issue          int    `json:"issue"`
	Delivery       string `json:"delivery"` // the command's; every deploy it asked for has it
	DeployID       int64  `json:"deploy_id"`
}
