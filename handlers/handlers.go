// Package handlers turns GitHub webhook events into requests for durable work, and does nothing
// else: each handler decodes the few fields it needs, filters (action, branch, bot authors,
// configured repos) and returns deploy requests and jobs for the intake to record. Handlers never
// call GitHub, AWS or Kubernetes; everything they ask for runs later from the store.
package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/payload"
)

// Event is one webhook delivery as the intake received it.
type Event struct {
	Name     string // X-GitHub-Event
	Delivery string // X-GitHub-Delivery
	Payload  []byte
	// Recovered marks an event package recovery made up for a change GitHub never delivered: a
	// branch head or release tag it found on GitHub that Stagecoach never recorded. Its payload
	// names as sender only whom GitHub's activity log says moved a guarded stage's branch there,
	// and otherwise nobody (a ref read does not say), so no rule may take it for anyone else's
	// action, Stagecoach's own included.
	Recovered bool
}

// Result is the work an event implies. An empty Result (no deploys, no jobs) means the event is
// ignored, and Ignored says why.
type Result struct {
	Action         string
	Repo           string // owner/name; "" for events not about one repo
	InstallationID int64
	Deploys        []deploy.Request
	Jobs           []jobs.Job
	Ignored        string
}

// Empty reports whether the event implies no work.
func (r Result) Empty() bool { return len(r.Deploys) == 0 && len(r.Jobs) == 0 }

// Handler translates one or more webhook event types.
type Handler interface {
	// Handles lists the X-GitHub-Event names this handler takes.
	Handles() []string
	// Handle translates ev. A payload that cannot be decoded yields a *MalformedError.
	Handle(ctx context.Context, ev Event) (Result, error)
}

// All is the one registration list of handlers, each built on cfg.
func All(cfg *config.Config) []Handler {
	return []Handler{
		&PullRequest{cfg: cfg},
		&MergeGroup{cfg: cfg},
		&Push{cfg: cfg},
		&Create{cfg: cfg},
		&IssueComment{cfg: cfg},
		&CheckRun{cfg: cfg},
		&Installation{cfg: cfg},
	}
}

// MalformedError says a payload is not what its event promises: invalid JSON or a field of the
// wrong type. The intake answers it with 400 and the reason.
type MalformedError struct {
	Event string
	Err   error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed %s payload: %v", e.Event, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// fields reads typed values from picked payload values, remembering the first error so a
// handler can read all it needs and check once.
type fields struct {
	v   payload.Values
	err error
}

func (f *fields) str(path string) string {
	s, err := f.v.String(path)
	if err != nil && f.err == nil {
		f.err = err
	}
	return s
}

func (f *fields) int(path string) int64 {
	n, err := f.v.Int(path)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n
}

func (f *fields) bool(path string) bool {
	b, err := f.v.Bool(path)
	if err != nil && f.err == nil {
		f.err = err
	}
	return b
}

// pick validates the payload and reads the schema's values, wrapping failures as malformed.
func pick(ev Event, s *payload.Schema) (*fields, error) {
	v, err := s.Pick(ev.Payload)
	if err != nil {
		return nil, &MalformedError{Event: ev.Name, Err: err}
	}
	return &fields{v: v}, nil
}

func (f *fields) check(ev Event) error {
	if f.err != nil {
		return &MalformedError{Event: ev.Name, Err: f.err}
	}
	return nil
}

// deploysFor builds a deploy request for every configured app of repo that has a stage in
// stages. Apps without configuration for a stage are skipped: they do not deploy there.
func deploysFor(cfg *config.Config, repo string, stages []*config.Stage, base deploy.Request) []deploy.Request {
	var out []deploy.Request
	for _, app := range cfg.AppsForRepo(repo) {
		for _, st := range stages {
			if _, ok := app.Stages[st.Name]; !ok {
				continue
			}
			r := base
			r.App, r.Stage, r.Repo = app.Name, st.Name, repo
			out = append(out, r)
		}
	}
	return out
}

// stagesTriggered returns the stages on branch whose trigger is one of triggers.
func stagesTriggered(cfg *config.Config, branch string, triggers ...config.Trigger) []*config.Stage {
	var out []*config.Stage
	for _, st := range cfg.StagesOnBranch(branch) {
		for _, t := range triggers {
			if st.Trigger == t && t != config.TriggerNone {
				out = append(out, st)
				break
			}
		}
	}
	return out
}

// isBot reports whether a GitHub account is a bot: by type, or by the "[bot]" suffix GitHub
// gives app accounts.
func isBot(login, typ string) bool {
	return typ == "Bot" || strings.HasSuffix(login, "[bot]")
}

// zeroSHA is the "after" of a push that deleted its ref.
const zeroSHA = "0000000000000000000000000000000000000000"

// mustJSON marshals a job payload. Payloads are plain structs of strings and numbers, so
// marshaling cannot fail; a failure is a programming error.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("handlers: marshal %T: %v", v, err))
	}
	return b
}
