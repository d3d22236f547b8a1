package awstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// idempotencyWindow is how long CodeBuild honours a StartBuild idempotencyToken.
const idempotencyWindow = 5 * time.Minute

// CodeBuild is the fake CodeBuild. Builds follow their Script on the servers' clock; a build
// whose POST_BUILD succeeds pushes an image to the fake ECR, named by the build's environment
// (IMAGE_REPOSITORY, or the project name, and IMAGE_TAG unless SetImageEnv says otherwise).
type CodeBuild struct {
	env *Env

	mu             sync.Mutex
	builds         map[string]*build
	order          []string
	tokens         map[string]token
	numbers        map[string]int64 // project -> last build number
	script         Script           // for builds the queue does not script
	queue          []Script         // scripts of the next builds, in order
	projects       []string         // when not empty, the only projects that exist
	repoVar        string
	tagVar         string
	resolveSecrets bool
}

// token is an idempotencyToken's build and the request it came with.
type token struct {
	build   string
	request string
	at      time.Time
}

type build struct {
	id, project, sourceVersion, buildspec, token string
	number                                       int64
	env                                          []EnvVar
	started, stopped                             time.Time
	timeout, queuedTimeout                       int
	script                                       Script
	pushed                                       bool
}

// EnvVar is an environment variable override of a build; Value is the secret's id, never its
// value, when Type is SECRETS_MANAGER.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Type  string `json:"type"`
}

func newCodeBuild(e *Env) *CodeBuild {
	return &CodeBuild{env: e, builds: map[string]*build{}, tokens: map[string]token{}, numbers: map[string]int64{},
		repoVar: "IMAGE_REPOSITORY", tagVar: "IMAGE_TAG"}
}

// SetScript sets how the builds go that Queue does not script.
func (c *CodeBuild) SetScript(s Script) {
	if err := s.check(); err != nil {
		c.env.problem("%v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.script = s
}

// Queue scripts the next builds, one script each, in the order they start.
func (c *CodeBuild) Queue(scripts ...Script) {
	for _, s := range scripts {
		if err := s.check(); err != nil {
			c.env.problem("%v", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, scripts...)
}

// Advance moves the servers' clock on by d (see Env.Advance).
func (c *CodeBuild) Advance(d time.Duration) { c.env.Advance(d) }

// SetImageEnv names the build variables that give the image's repository and tag.
func (c *CodeBuild) SetImageEnv(repositoryVar, tagVar string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.repoVar, c.tagVar = repositoryVar, tagVar
}

// SetProjects makes only these projects exist; builds of others are refused as CodeBuild
// refuses them. Without it every project exists.
func (c *CodeBuild) SetProjects(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.projects = names
}

// ResolveSecrets makes builds resolve their SECRETS_MANAGER variables as CodeBuild does when
// it provisions the build: one naming a secret that Secrets Manager does not hold fails the
// build in PROVISIONING.
func (c *CodeBuild) ResolveSecrets() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resolveSecrets = true
}

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

// Build is a build as a test sees it.
type Build struct {
	ID, Project, SourceVersion, Buildspec, Status, Phase string
	Env                                                  []EnvVar
	Ended                                                time.Time // when it ended (zero while it runs)
	Number                                               int64
	IdempotencyToken                                     string
	Started                                              time.Time
	TimeoutMinutes                                       int
}

// Builds returns the builds started, oldest first.
func (c *CodeBuild) Builds() []Build {
	now := c.env.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Build
	for _, id := range c.order {
		b := c.builds[id]
		st := c.advance(b, now)
		v := Build{ID: b.id, Project: b.project, SourceVersion: b.sourceVersion, Buildspec: b.buildspec, Status: st.status,
			Phase: st.current(), Env: b.env, Number: b.number, IdempotencyToken: b.token, Started: b.started, TimeoutMinutes: b.timeout}
		if st.status != "IN_PROGRESS" {
			v.Ended = st.end
		}
		out = append(out, v)
	}
	return out
}

// settle pushes the images of builds that got that far by now.
func (c *CodeBuild) settle() {
	now := c.env.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.builds {
		c.advance(b, now)
	}
}

// advance computes a build's state and pushes its image once it is due. c.mu is held.
func (c *CodeBuild) advance(b *build, now time.Time) buildState {
	st := b.state(now)
	if !st.pushed.IsZero() && !b.pushed {
		b.pushed = true
		repo, tag := b.project, ""
		for _, v := range b.env {
			switch v.Name {
			case c.repoVar:
				repo = v.Value
			case c.tagVar:
				tag = v.Value
			}
		}
		if tag != "" {
			if _, refused := c.env.ECR.push(repo, tag, b.id, st.pushed); refused != "" {
				// docker push failed in POST_BUILD: nobody saw the phase end yet (every look
				// advances the build first), so the build is that failure from the start.
				b.script.FailIn, b.script.Status, b.script.StatusCode, b.script.Message = "POST_BUILD", "FAILED", "COMMAND_EXECUTION_ERROR",
					"Error while executing command: docker push "+repo+":"+tag+". Reason: "+refused
				st = b.state(now)
			}
		}
	}
	return st
}

func (c *CodeBuild) handle(op string, body []byte) (any, *apiError) {
	now := c.env.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch op {
	case "StartBuild":
		return c.start(body, now)
	case "BatchGetBuilds":
		var in struct {
			IDs []string `json:"ids"`
		}
		_ = json.Unmarshal(body, &in)
		found := []any{}
		var missing []string
		for _, id := range in.IDs {
			if b, ok := c.builds[id]; ok {
				found = append(found, c.render(b, now))
			} else {
				missing = append(missing, id)
			}
		}
		out := map[string]any{"builds": found}
		if len(missing) > 0 { // the model wants at least one id when the member is present
			out["buildsNotFound"] = missing
		}
		return out, nil
	case "StopBuild":
		var in struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &in)
		b, ok := c.builds[in.ID]
		if !ok {
			return nil, &apiError{code: "ResourceNotFoundException", msg: "Build not found: " + in.ID}
		}
		if st := c.advance(b, now); b.stopped.IsZero() && st.status == "IN_PROGRESS" && st.current() != "FINALIZING" {
			b.stopped = now
		}
		return map[string]any{"build": c.render(b, now)}, nil
	case "ListBuildsForProject":
		return c.list(body)
	case "BatchGetProjects":
		return c.projectsOf(body, now)
	}
	return nil, &apiError{code: "InvalidInputException", msg: "unsupported operation " + op}
}

// projectsOf answers BatchGetProjects: the projects that exist, and the names of those that do
// not (CodeBuild answers 200 either way).
func (c *CodeBuild) projectsOf(body []byte, now time.Time) (any, *apiError) {
	var in struct {
		Names []string `json:"names"`
	}
	_ = json.Unmarshal(body, &in)
	found, missing := []any{}, []string{}
	for _, name := range in.Names {
		if !c.exists(name) {
			missing = append(missing, name)
			continue
		}
		found = append(found, map[string]any{"name": name, "arn": "arn:aws:codebuild:" + Region + ":" + Account + ":project/" + name,
			"created": epoch(now), "lastModified": epoch(now), "serviceRole": "arn:aws:iam::" + Account + ":role/codebuild-" + name,
			"timeoutInMinutes": 60, "queuedTimeoutInMinutes": 480})
	}
	out := map[string]any{"projects": found}
	if len(missing) > 0 { // the model wants at least one name when the member is present
		out["projectsNotFound"] = missing
	}
	return out, nil
}

func (c *CodeBuild) exists(project string) bool {
	return len(c.projects) == 0 || slices.Contains(c.projects, project)
}

func projectNotFound(project string) *apiError {
	return &apiError{code: "ResourceNotFoundException", msg: "Project cannot be found: arn:aws:codebuild:" + Region + ":" + Account + ":project/" + project}
}

func (c *CodeBuild) start(body []byte, now time.Time) (any, *apiError) {
	var in struct {
		ProjectName       string   `json:"projectName"`
		SourceVersion     string   `json:"sourceVersion"`
		BuildspecOverride string   `json:"buildspecOverride"`
		IdempotencyToken  string   `json:"idempotencyToken"`
		Env               []EnvVar `json:"environmentVariablesOverride"`
		Timeout           int      `json:"timeoutInMinutesOverride"`
		QueuedTimeout     int      `json:"queuedTimeoutInMinutesOverride"`
	}
	_ = json.Unmarshal(body, &in)
	if !c.exists(in.ProjectName) {
		return nil, projectNotFound(in.ProjectName)
	}
	request := canonical(body)
	if in.IdempotencyToken != "" {
		if tok, ok := c.tokens[in.IdempotencyToken]; ok && now.Sub(tok.at) < idempotencyWindow {
			if tok.request != request {
				return nil, &apiError{code: "InvalidInputException", msg: "Idempotency token " + in.IdempotencyToken + " was reused with different parameters"}
			}
			return map[string]any{"build": c.render(c.builds[tok.build], now)}, nil
		}
	}
	script := c.script
	if len(c.queue) > 0 {
		script, c.queue = c.queue[0], c.queue[1:]
	}
	script = script.withDefaults()
	if c.resolveSecrets && script.FailIn == "" {
		for _, v := range in.Env {
			if v.Type == "SECRETS_MANAGER" && c.env.Secrets.find(secretID(v.Value)) == nil {
				script.FailIn, script.Status, script.StatusCode = "PROVISIONING", "FAILED", "CLIENT_ERROR"
				script.Message = "Secrets Manager Error Message: ResourceNotFoundException: Secrets Manager can't find the specified secret. for secret: " + v.Value
				break
			}
		}
	}
	c.numbers[in.ProjectName]++
	b := &build{id: in.ProjectName + ":" + requestID(), project: in.ProjectName, sourceVersion: in.SourceVersion,
		buildspec: in.BuildspecOverride, token: in.IdempotencyToken, env: in.Env, started: now,
		number: c.numbers[in.ProjectName], script: script, timeout: orDefault(in.Timeout, 60), queuedTimeout: orDefault(in.QueuedTimeout, 480)}
	c.builds[b.id] = b
	c.order = append(c.order, b.id)
	if in.IdempotencyToken != "" {
		c.tokens[in.IdempotencyToken] = token{build: b.id, request: request, at: now}
	}
	return map[string]any{"build": c.render(b, now)}, nil
}

// list answers ListBuildsForProject: newest first unless sortOrder is ASCENDING, 100 a page.
func (c *CodeBuild) list(body []byte) (any, *apiError) {
	var in struct {
		ProjectName string `json:"projectName"`
		SortOrder   string `json:"sortOrder"`
		NextToken   string `json:"nextToken"`
	}
	_ = json.Unmarshal(body, &in)
	if !c.exists(in.ProjectName) {
		return nil, projectNotFound(in.ProjectName)
	}
	var ids []string
	for _, id := range c.order {
		if c.builds[id].project == in.ProjectName {
			ids = append(ids, id)
		}
	}
	if in.SortOrder != "ASCENDING" {
		slices.Reverse(ids)
	}
	from := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil || n < 0 || n > len(ids) {
			return nil, &apiError{code: "InvalidInputException", msg: "Invalid nextToken"}
		}
		from = n
	}
	out := map[string]any{}
	if to := min(from+100, len(ids)); to > from { // the model wants at least one id when present
		out["ids"] = ids[from:to]
		if to < len(ids) {
			out["nextToken"] = strconv.Itoa(to)
		}
	}
	return out, nil
}

// render is the Build shape of the API. c.mu is held.
func (c *CodeBuild) render(b *build, now time.Time) map[string]any {
	st := c.advance(b, now)
	var phases []any
	for _, p := range st.phases {
		j := map[string]any{"phaseType": p.name, "startTime": epoch(p.start)}
		if p.status != "" && p.name != "COMPLETED" { // a running phase has no status yet
			j["phaseStatus"], j["endTime"], j["durationInSeconds"] = p.status, epoch(p.end), int64(p.end.Sub(p.start).Seconds())
		}
		if p.code != "" || p.message != "" {
			j["contexts"] = []any{map[string]any{"statusCode": p.code, "message": p.message}}
		}
		phases = append(phases, j)
	}
	group, stream := "/aws/codebuild/"+b.project, b.id[strings.Index(b.id, ":")+1:]
	out := map[string]any{
		"id": b.id, "arn": "arn:aws:codebuild:" + Region + ":" + Account + ":build/" + b.id, "buildNumber": b.number,
		"startTime": epoch(b.started), "currentPhase": st.current(), "buildStatus": st.status,
		"projectName": b.project, "phases": phases, "buildComplete": st.status != "IN_PROGRESS",
		"initiator": "stagecoach", "timeoutInMinutes": b.timeout, "queuedTimeoutInMinutes": b.queuedTimeout,
		"logs": map[string]any{"groupName": group, "streamName": stream,
			"deepLink":          "https://console.aws.amazon.com/cloudwatch/home?region=" + Region + "#logEvent:group=" + group + ";stream=" + stream,
			"cloudWatchLogsArn": "arn:aws:logs:" + Region + ":" + Account + ":log-group:" + group + ":log-stream:" + stream},
	}
	if b.sourceVersion != "" {
		out["sourceVersion"], out["resolvedSourceVersion"] = b.sourceVersion, b.sourceVersion
	}
	if len(b.env) > 0 {
		out["environment"] = map[string]any{"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
			"computeType": "BUILD_GENERAL1_SMALL", "environmentVariables": b.env}
	}
	if st.status != "IN_PROGRESS" {
		out["endTime"] = epoch(st.end)
	}
	return out
}

// canonical is a JSON request in a form that compares equal for equal parameters.
func canonical(body []byte) string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return string(body)
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v) // map keys sorted
	return buf.String()
}

func orDefault(n, d int) int {
	if n == 0 {
		return d
	}
	return n
}

// digest is a stable fake image digest.
func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}
