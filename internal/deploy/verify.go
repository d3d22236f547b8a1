package deploy

import (
	"fmt"
	"time"
)

// Verification phases. On a stage with two slots, checks of the idle slot ({slot} in their URL)
// run before the switch; everything else runs once the deploy is what users reach.
const (
	VerifyIdle = "idle"
	VerifyLive = "live"
)

// Verification is a deploy's check after its rollout: each HTTP check's answers so far and the
// CodeBuild verify project's build, stored in the checkpoint after every round, so a process
// killed while verifying resumes the count instead of starting over or passing it.
type Verification struct {
	Phase  string        `json:"phase"` // VerifyIdle or VerifyLive
	Checks []CheckRecord `json:"checks,omitempty"`
	// The CodeBuild verify project's build (live phase only): "" until started.
	BuildProject string    `json:"build_project,omitempty"`
	BuildID      string    `json:"build_id,omitempty"`
	BuildPhase   string    `json:"build_phase,omitempty"`
	BuildLog     string    `json:"build_log,omitempty"`
	BuildStatus  string    `json:"build_status,omitempty"` // CodeBuild's final status, "" while it runs
	BuildWhy     string    `json:"build_why,omitempty"`    // why the build failed
	Started      time.Time `json:"started,omitzero"`
	// Passed: the phase passed (the next step is the switch, or the deploy's success).
	Passed bool `json:"passed,omitempty"`
}

// StepName is the step the phase is reported as.
func (v *Verification) StepName() string {
	if v.Phase == VerifyIdle {
		return "Verify idle slot"
	}
	return "Verify"
}

// CheckRecord is one HTTP check's expectation, as configured when the phase began (a
// configuration reload mid-check changes nothing), and its answers so far.
type CheckRecord struct {
	Name      string        `json:"name"`
	URL       string        `json:"url"` // with the slot filled in
	Status    int           `json:"status"`
	Body      string        `json:"body,omitempty"`
	Interval  time.Duration `json:"interval"`
	Timeout   time.Duration `json:"timeout"`
	Successes int           `json:"successes"`
	Deadline  time.Time     `json:"deadline"`

	NextAt  time.Time `json:"next_at,omitzero"` // when to ask next
	Answers int       `json:"answers,omitempty"`
	InRow   int       `json:"in_row,omitempty"` // answers as expected in a row, up to the last one
	Last    *Answer   `json:"last,omitempty"`
	Result  string    `json:"result,omitempty"` // CheckPassed, CheckFailed, or "" while it runs
	Why     string    `json:"why,omitempty"`    // why it failed
}

// Check results.
const (
	CheckPassed = "passed"
	CheckFailed = "failed"
)

// Done reports whether the check has a result.
func (c *CheckRecord) Done() bool { return c.Result != "" }

// Answer is what one request of a check got: a status code and the start of the body, or the
// error that stopped it.
type Answer struct {
	At      time.Time `json:"at"`
	Status  int       `json:"status,omitempty"`
	Excerpt string    `json:"excerpt,omitempty"` // the start of the body, on one line
	Err     string    `json:"err,omitempty"`     // no answer: why
	OK      bool      `json:"ok,omitempty"`      // as expected
	Why     string    `json:"why,omitempty"`     // not as expected: why
}

// Summary is one line of how the answer went, for errors: "status 503" or "no answer: ...".
// The body is left out: it is the app's text, which reports show only in a code span.
func (a Answer) Summary() string {
	if a.Err != "" {
		return "no answer: " + a.Err
	}
	return fmt.Sprintf("status %d", a.Status)
}

// Progress is the phase's progress for people: "3 of 5 checks passed, health 2/3 answers in a
// row (6 asked)".
// The counts are of the checks and the build together; the answers are those of the first check
// still running.
func (v *Verification) Progress() string {
	total, passed := len(v.Checks), 0
	for _, c := range v.Checks {
		if c.Result == CheckPassed {
			passed++
		}
	}
	if v.BuildProject != "" {
		total++
		if v.BuildStatus == "SUCCEEDED" {
			passed++
		}
	}
	s := fmt.Sprintf("%d of %d checks passed", passed, total)
	for _, c := range v.Checks {
		if !c.Done() {
			s += fmt.Sprintf(", %s %d/%d answers in a row (%d asked)", c.Name, c.InRow, c.Successes, c.Answers)
			return s
		}
	}
	if v.BuildProject != "" && v.BuildStatus == "" && v.BuildPhase != "" {
		s += fmt.Sprintf(", %s in phase %s", v.BuildProject, v.BuildPhase)
	}
	return s
}
