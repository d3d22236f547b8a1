package awstest

import (
	"fmt"
	"slices"
	"time"
)

// Phases are CodeBuild's build phases in order.
var Phases = []string{"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD",
	"BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"}

// Script says how a build will go. Each phase takes PhaseDuration (one second when zero) or its
// entry in Durations. With FailIn set, that phase ends with Status (FAILED by default, or FAULT)
// and a context with StatusCode (COMMAND_EXECUTION_ERROR by default) and Message; the build
// then goes on as CodeBuild does: POST_BUILD and UPLOAD_ARTIFACTS still run after a failed
// BUILD, UPLOAD_ARTIFACTS after a failed POST_BUILD, and any other failure goes straight to
// FINALIZING. A phase still running when the build's timeout (timeoutInMinutesOverride, 60
// minutes by default, counted from PROVISIONING) or queued timeout passes ends TIMED_OUT.
type Script struct {
	PhaseDuration time.Duration
	Durations     map[string]time.Duration
	FailIn        string
	Status        string
	StatusCode    string
	Message       string
}

// check says what is wrong with a script.
func (s Script) check() error {
	if s.FailIn != "" && (!slices.Contains(Phases, s.FailIn) || s.FailIn == "COMPLETED") {
		return fmt.Errorf("script: FailIn %q is not a phase that can fail", s.FailIn)
	}
	if s.Status != "" && s.Status != "FAILED" && s.Status != "FAULT" {
		return fmt.Errorf("script: Status %q: a phase fails with FAILED or FAULT (use Durations for TIMED_OUT, StopBuild for STOPPED)", s.Status)
	}
	for p, d := range s.Durations {
		if !slices.Contains(Phases, p) || d < 0 {
			return fmt.Errorf("script: duration %v for %q", d, p)
		}
	}
	return nil
}

// withDefaults fills in what a script leaves out.
func (s Script) withDefaults() Script {
	if s.PhaseDuration <= 0 {
		s.PhaseDuration = time.Second
	}
	if s.FailIn != "" && s.Status == "" {
		s.Status = "FAILED"
	}
	if s.FailIn != "" && s.StatusCode == "" {
		s.StatusCode = "COMMAND_EXECUTION_ERROR"
	}
	return s
}

func (s Script) duration(phase string) time.Duration {
	if d, ok := s.Durations[phase]; ok {
		return d
	}
	return s.PhaseDuration
}

// phase is one phase of a build as BatchGetBuilds shows it.
type phase struct {
	name, status  string // status is "" while the phase runs
	start, end    time.Time
	code, message string // the context of a phase that did not succeed
}

// buildState is where a build stands at a moment.
type buildState struct {
	status string // IN_PROGRESS until COMPLETED
	phases []phase
	end    time.Time // when COMPLETED began
	pushed time.Time // when the image was pushed (POST_BUILD succeeded on a healthy build); zero if not
}

func (st buildState) current() string { return st.phases[len(st.phases)-1].name }

// state computes a build's phases at now from its start, script, timeouts and any stop.
func (b *build) state(now time.Time) buildState {
	s := b.script
	st := buildState{status: "IN_PROGRESS"}
	failed := "" // the first phase outcome other than SUCCEEDED
	t := b.started
	var deadline time.Time
	for i := 0; ; {
		name := Phases[i]
		if name == "COMPLETED" {
			st.phases = append(st.phases, phase{name: name, start: t})
			st.end, st.status = t, "SUCCEEDED"
			if failed != "" {
				st.status = failed
			}
			return st
		}
		switch name {
		case "QUEUED":
			deadline = t.Add(time.Duration(b.queuedTimeout) * time.Minute)
		case "PROVISIONING":
			deadline = t.Add(time.Duration(b.timeout) * time.Minute)
		case "SUBMITTED", "FINALIZING":
			deadline = time.Time{} // no timeout applies
		}
		p := phase{name: name, status: "SUCCEEDED", start: t, end: t.Add(s.duration(name))}
		if failed == "" && name == s.FailIn {
			p.status, p.code, p.message = s.Status, s.StatusCode, s.Message
		}
		if !deadline.IsZero() && deadline.Before(p.end) {
			p.status, p.end, p.code, p.message = "TIMED_OUT", deadline, "BUILD_TIMED_OUT", "Build has timed out. "
		}
		// StopBuild cuts short the phase it finds running; it cannot stop FINALIZING.
		if !b.stopped.IsZero() && b.stopped.Before(p.end) && name != "FINALIZING" {
			p.status, p.end, p.code, p.message = "STOPPED", maxTime(b.stopped, t), "", ""
		}
		if now.Before(p.end) {
			st.phases = append(st.phases, phase{name: name, start: t})
			return st
		}
		st.phases = append(st.phases, p)
		t = p.end
		if name == "POST_BUILD" && p.status == "SUCCEEDED" && failed == "" {
			st.pushed = t
		}
		if p.status == "SUCCEEDED" {
			i++
			continue
		}
		if failed == "" {
			failed = p.status
		}
		i = slices.Index(Phases, next(name, p.status))
	}
}

// next is the phase after one that did not succeed.
func next(name, status string) string {
	switch {
	case name == "BUILD" && status == "FAILED":
		return "POST_BUILD"
	case name == "POST_BUILD" && status == "FAILED":
		return "UPLOAD_ARTIFACTS"
	case name == "FINALIZING", name == "QUEUED" && status == "TIMED_OUT":
		return "COMPLETED"
	}
	return "FINALIZING"
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
