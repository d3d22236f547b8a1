package awstest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Phases are CodeBuild's build phases in order.
var Phases = []string{"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD",
	"BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"}

// Script says how a build will go: each phase takes PhaseDuration; with FailIn set, that phase
// ends with Status (FAILED by default) and Message, and the build ends there.
type Script struct {
	PhaseDuration time.Duration
	FailIn        string
	Status        string
	Message       string
}

// CodeBuild is the fake CodeBuild.
type CodeBuild struct {
	env *Env

	mu      sync.Mutex
	builds  map[string]*build
	order   []string
	tokens  map[string]string // idempotencyToken -> build id
	numbers map[string]int64  // project -> last build number
	next    *Script           // the script of the next builds (default: 1 s phases, success)
}

type build struct {
	ID, Project, SourceVersion, Buildspec string
	Number                                int64
	Env                                   []EnvVar
	Started                               time.Time
	Script                                Script
	Stopped                               time.Time
	pushed                                bool
}

// EnvVar is an environment variable override of a build.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Type  string `json:"type"`
}

// SetScript sets how the following builds go.
func (c *CodeBuild) SetScript(s Script) { c.mu.Lock(); c.next = &s; c.mu.Unlock() }

// StartBuildCalls counts StartBuild calls that started or returned a build.
func (c *CodeBuild) StartBuildCalls() int {
	n := 0
	for _, call := range c.env.Calls("StartBuild") {
		if call.Status == 200 {
			n++
		}
	}
	return n
}

// Builds returns the builds started, oldest first.
func (c *CodeBuild) Builds() []Build {
	c.mu.Lock()
	ids := append([]string(nil), c.order...)
	c.mu.Unlock()
	var out []Build
	for _, id := range ids {
		out = append(out, c.view(id))
	}
	return out
}

// Build is a build as a test sees it.
type Build struct {
	ID, Project, SourceVersion, Buildspec, Status, Phase string
	Env                                                  []EnvVar
	Ended                                                time.Time // when it ended (zero while it runs)
}

func (c *CodeBuild) view(id string) Build {
	now := c.env.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.builds[id]
	st := b.state(now)
	out := Build{ID: b.ID, Project: b.Project, SourceVersion: b.SourceVersion, Buildspec: b.Buildspec, Status: st.status, Phase: st.current, Env: b.Env}
	if st.status != "IN_PROGRESS" {
		out.Ended = st.end
	}
	return out
}

func (c *CodeBuild) handle(op string, body []byte) (any, *apiError) {
	switch op {
	case "StartBuild":
		return c.start(body)
	case "BatchGetBuilds":
		var in struct {
			IDs []string `json:"ids"`
		}
		_ = json.Unmarshal(body, &in)
		now := c.env.clock()
		var found []any
		var missing []string
		for _, id := range in.IDs {
			c.mu.Lock()
			b, ok := c.builds[id]
			var j any
			if ok {
				j = c.render(b, now)
			}
			c.mu.Unlock()
			if ok {
				found = append(found, j)
			} else {
				missing = append(missing, id)
			}
		}
		out := map[string]any{"builds": orEmpty(found)}
		if len(missing) > 0 { // the model wants at least one id when the member is present
			out["buildsNotFound"] = missing
		}
		return out, nil
	case "StopBuild":
		var in struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &in)
		now := c.env.clock()
		c.mu.Lock()
		defer c.mu.Unlock()
		b, ok := c.builds[in.ID]
		if !ok {
			return nil, &apiError{"ResourceNotFoundException", "Build not found: " + in.ID}
		}
		if b.Stopped.IsZero() && b.state(now).status == "IN_PROGRESS" {
			b.Stopped = now
		}
		return map[string]any{"build": c.render(b, now)}, nil
	case "ListBuildsForProject":
		var in struct {
			ProjectName string `json:"projectName"`
		}
		_ = json.Unmarshal(body, &in)
		c.mu.Lock()
		defer c.mu.Unlock()
		ids := []string{}
		for i := len(c.order) - 1; i >= 0; i-- {
			if c.builds[c.order[i]].Project == in.ProjectName {
				ids = append(ids, c.order[i])
			}
		}
		return map[string]any{"ids": ids}, nil
	}
	return nil, &apiError{"InvalidInputException", "unsupported operation " + op}
}

func (c *CodeBuild) start(body []byte) (any, *apiError) {
	var in struct {
		ProjectName       string   `json:"projectName"`
		SourceVersion     string   `json:"sourceVersion"`
		BuildspecOverride string   `json:"buildspecOverride"`
		IdempotencyToken  string   `json:"idempotencyToken"`
		Env               []EnvVar `json:"environmentVariablesOverride"`
	}
	_ = json.Unmarshal(body, &in)
	now := c.env.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.IdempotencyToken != "" {
		if id, ok := c.tokens[in.IdempotencyToken]; ok {
			b := c.builds[id]
			if b.Project != in.ProjectName || b.SourceVersion != in.SourceVersion {
				return nil, &apiError{"InvalidInputException", "idempotencyToken reused with different parameters"}
			}
			return map[string]any{"build": c.render(b, now)}, nil
		}
	}
	c.numbers[in.ProjectName]++
	script := Script{PhaseDuration: time.Second}
	if c.next != nil {
		script = *c.next
	}
	if script.FailIn != "" && script.Status == "" {
		script.Status = "FAILED"
	}
	b := &build{ID: fmt.Sprintf("%s:%s", in.ProjectName, requestID()), Project: in.ProjectName, SourceVersion: in.SourceVersion,
		Buildspec: in.BuildspecOverride, Env: in.Env, Started: now, Number: c.numbers[in.ProjectName], Script: script}
	c.builds[b.ID] = b
	c.order = append(c.order, b.ID)
	if in.IdempotencyToken != "" {
		c.tokens[in.IdempotencyToken] = b.ID
	}
	return map[string]any{"build": c.render(b, now)}, nil
}

// buildState is where a build stands at a moment.
type buildState struct {
	status  string
	current string
	phases  []map[string]any
	end     time.Time
}

// state computes the build's phases at now from its start, script and any stop.
func (b *build) state(now time.Time) buildState {
	d := b.Script.PhaseDuration
	if d <= 0 {
		d = time.Second
	}
	st := buildState{status: "IN_PROGRESS"}
	t := b.Started
	for _, name := range Phases {
		if name == "COMPLETED" {
			st.current = name
			st.phases = append(st.phases, map[string]any{"phaseType": name, "startTime": epoch(t)})
			st.end = t
			if st.status == "IN_PROGRESS" {
				st.status = "SUCCEEDED"
			}
			return st
		}
		failedBefore := st.status != "IN_PROGRESS"
		if failedBefore && name != "FINALIZING" {
			continue // after a failure CodeBuild goes straight to finalizing
		}
		end := t.Add(d)
		stopped := !b.Stopped.IsZero() && b.Stopped.Before(end)
		if stopped {
			end = b.Stopped
		}
		if now.Before(end) {
			st.current = name
			// A running phase has no status yet, as in CodeBuild's answers.
			st.phases = append(st.phases, map[string]any{"phaseType": name, "startTime": epoch(t)})
			return st
		}
		p := map[string]any{"phaseType": name, "phaseStatus": "SUCCEEDED", "startTime": epoch(t), "endTime": epoch(end),
			"durationInSeconds": int64(end.Sub(t).Seconds())}
		switch {
		case stopped:
			p["phaseStatus"], st.status = "STOPPED", "STOPPED"
		case name == b.Script.FailIn && !failedBefore:
			p["phaseStatus"], st.status = b.Script.Status, b.Script.Status
			p["contexts"] = []any{map[string]any{"statusCode": "COMMAND_EXECUTION_ERROR", "message": b.Script.Message}}
		}
		st.phases = append(st.phases, p)
		t = end
	}
	return st
}

// render is the Build shape of the API, pushing the image to ECR when the build has succeeded.
func (c *CodeBuild) render(b *build, now time.Time) map[string]any {
	st := b.state(now)
	if st.status == "SUCCEEDED" && !b.pushed {
		b.pushed = true
		repo, tag := "", ""
		for _, v := range b.Env {
			switch v.Name {
			case "IMAGE_REPOSITORY":
				repo = v.Value
			case "IMAGE_TAG":
				tag = v.Value
			}
		}
		if repo != "" && tag != "" {
			c.env.ECR.push(repo, tag, b.ID, st.end)
		}
	}
	group, stream := "/aws/codebuild/"+b.Project, strings.SplitN(b.ID, ":", 2)[1]
	out := map[string]any{
		"id": b.ID, "arn": "arn:aws:codebuild:eu-west-1:123456789012:build/" + b.ID, "buildNumber": b.Number,
		"startTime": epoch(b.Started), "currentPhase": st.current, "buildStatus": st.status,
		"sourceVersion": b.SourceVersion, "resolvedSourceVersion": b.SourceVersion, "projectName": b.Project,
		"phases": st.phases, "buildComplete": st.status != "IN_PROGRESS", "initiator": "stagecoach",
		"timeoutInMinutes": 60, "queuedTimeoutInMinutes": 480,
		"logs": map[string]any{"groupName": group, "streamName": stream,
			"deepLink": "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/" + group + "/log-events/" + stream},
	}
	if st.status != "IN_PROGRESS" {
		out["endTime"] = epoch(st.end)
	}
	return out
}

func orEmpty(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// digest is a stable fake image digest.
func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}
