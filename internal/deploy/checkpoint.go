package deploy

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/markdown"
)

// Checkpoint is what a deploy has started and seen, stored with the deploy after every step, so
// a restarted process resumes where the last one stood instead of starting over.
type Checkpoint struct {
	Steps []StepRecord `json:"steps,omitempty"`

	// App is the app's configuration (a config.App) as the deploy found it at its first step:
	// every later step, on any replica, works from it, so a repository's own file changing
	// meanwhile cannot change a running deploy's buildspec, Deployments or Services halfway.
	App json.RawMessage `json:"app,omitempty"`

	// Build.
	BuildID       string        `json:"build_id,omitempty"`
	BuildLog      string        `json:"build_log,omitempty"`
	BuildPhase    string        `json:"build_phase,omitempty"`
	BuildStarted  time.Time     `json:"build_started,omitzero"`
	BuildEnded    time.Time     `json:"build_ended,omitzero"`
	ExpectedBuild time.Duration `json:"expected_build,omitempty"`
	Polls         int           `json:"polls,omitempty"`
	Image         string        `json:"image,omitempty"` // what is deployed: repository@sha256:... or repository:tag

	// Artifact (artifact: promote): the image was built once, or the tested image is promoted.
	Artifact *Artifact `json:"artifact,omitempty"`

	// Rollout.
	Replaced       []Image   `json:"replaced,omitempty"` // images before the change, for the rollback
	ImagesSet      bool      `json:"images_set,omitempty"`
	RolloutStarted time.Time `json:"rollout_started,omitzero"`
	Completed      []string  `json:"completed,omitempty"` // Deployments whose rollout completed
	RollingBack    bool      `json:"rolling_back,omitempty"`
	RollbackReason string    `json:"rollback_reason,omitempty"`
	Progress       string    `json:"progress,omitempty"`     // e.g. "2 of 3 pods updated"
	RolloutDone    bool      `json:"rollout_done,omitempty"` // a slot stage's rollout finished: switch next

	// Slots: where the deploy goes (the idle slot, or a switch's target) and what was live.
	Slot     string `json:"slot,omitempty"`
	FromSlot string `json:"from_slot,omitempty"`
	Switched bool   `json:"switched,omitempty"`
	// Switching: the switch began pointing Services at Slot, so a failure from then on points
	// them back at FromSlot first; SwitchedBack: the rollback did.
	Switching    bool `json:"switching,omitempty"`
	SwitchedBack bool `json:"switched_back,omitempty"`
	// The commit the Replaced images are the build of, and the deploy that set them, from the
	// slot's record ("" and 0 when unknown): a rollback restores the record with the images.
	ReplacedSHA    string `json:"replaced_sha,omitempty"`
	ReplacedDeploy int64  `json:"replaced_deploy,omitempty"`

	// Wait, when set, is why the queued deploy has not started yet: its stage is outside its
	// deploy windows, or frozen. The pipeline looks at it again at Wait.Until.
	Wait *Wait `json:"wait,omitempty"`

	// Verify is the check after the rollout (nil when there is none, or it has not begun).
	Verify *Verification `json:"verify,omitempty"`

	// Transient failures of the current step in a row, and when the first came: the step gives
	// up once they have lasted its time budget.
	Retries       int       `json:"retries,omitempty"`
	RetryingSince time.Time `json:"retrying_since,omitzero"`

	// Reporting: what was last reported and when, to update at most every 30 s while a step runs.
	ReportedKey string    `json:"reported_key,omitempty"`
	ReportedAt  time.Time `json:"reported_at,omitzero"`
}

// Image is the image one container of one Kubernetes Deployment runs: what a rollout replaces and
// a rollback puts back.
type Image struct {
	Deployment string `json:"deployment"`
	Container  string `json:"container"`
	Image      string `json:"image"`
}

// Wait is a deploy waiting, queued, for its stage's next deploy window or the end of a freeze.
type Wait struct {
	Until time.Time `json:"until"`
	At    string    `json:"at"` // Until as people read it, in the stage's time zone: "Mon Jan 5 09:00 CET"
	// Freeze is the reason of the freeze that holds the stage; "" when only its windows do.
	Freeze string `json:"freeze,omitempty"`
	// Windows are the stage's deploy windows, as configured: "Mon-Thu 09:00-16:00 Europe/Berlin".
	Windows string `json:"windows,omitempty"`
}

// Text says in a few plain words what the deploy waits for: "waiting for the window at Mon Jan 5
// 09:00 CET", or "frozen (Year-end freeze): waiting until Mon Jan 5 09:00 CET".
func (w Wait) Text() string {
	if w.Freeze != "" {
		return fmt.Sprintf("frozen (%s): waiting until %s", w.Freeze, w.At)
	}
	return "waiting for the window at " + w.At
}

// Markdown tells the people following a deploy to stage that it waits, why, until when, and
// what they can do.
func (w Wait) Markdown(stage string) string {
	why := fmt.Sprintf("**%s** takes deploys only in its windows (%s)", stage, w.Windows)
	if w.Freeze != "" {
		why = fmt.Sprintf("**%s** is frozen: %s", stage, markdown.Code(w.Freeze))
	}
	return fmt.Sprintf("⏸️ %s, so this deploy waits, queued, and starts at **%s**; a newer deploy to %s supersedes it. "+
		"`/rollback %s` does not wait, and an admin may deploy now with `--force \"the reason\"`.", why, w.At, stage, stage)
}

// StepRecord is one step as reports show it.
type StepRecord struct {
	Name     string    `json:"name"` // Preflight, Build, Rollout, Rollback, Switch
	Status   string    `json:"status"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Detail   string    `json:"detail,omitempty"`
	Link     string    `json:"link,omitempty"`
}

// Step statuses.
const (
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
)

// DecodeCheckpoint reads a stored checkpoint; empty input is an empty checkpoint.
func DecodeCheckpoint(b []byte) (Checkpoint, error) {
	var cp Checkpoint
	if len(b) == 0 {
		return cp, nil
	}
	err := json.Unmarshal(b, &cp)
	return cp, err
}

func (cp *Checkpoint) Encode() []byte {
	b, err := json.Marshal(cp)
	if err != nil {
		panic("pipeline: checkpoint does not marshal: " + err.Error()) // plain data: cannot happen
	}
	return b
}

// step returns the record of the named step, starting it at now if it is not there.
func (cp *Checkpoint) Step(name string, now time.Time) *StepRecord {
	for i := range cp.Steps {
		if cp.Steps[i].Name == name {
			return &cp.Steps[i]
		}
	}
	cp.Steps = append(cp.Steps, StepRecord{Name: name, Status: StepRunning, Started: now})
	return &cp.Steps[len(cp.Steps)-1]
}

func (s *StepRecord) Finish(status, detail string, now time.Time) {
	s.Status, s.Finished = status, now
	if detail != "" {
		s.Detail = detail
	}
}
