package awstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	cbtypes "github.com/aws/aws-sdk-go-v2/service/codebuild/types"
)

const sha = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"

// newEnv is an Env whose clock stands still at a fixed time until the test advances it.
func newEnv(t *testing.T) *Env {
	e := New(t)
	e.SetClock(func() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) })
	e.Advance(0)
	return e
}

// quiet is a testing.TB that keeps the fake's complaints to itself, for tests that provoke
// them on purpose and read them from Problems.
type quiet struct{ testing.TB }

func (quiet) Errorf(string, ...any) {}

func buildInput(token string, env ...cbtypes.EnvironmentVariable) *codebuild.StartBuildInput {
	if env == nil {
		env = []cbtypes.EnvironmentVariable{
			{Name: aws.String("IMAGE_REPOSITORY"), Value: aws.String(Account + ".dkr.ecr.eu-west-1.amazonaws.com/hello"), Type: cbtypes.EnvironmentVariableTypePlaintext},
			{Name: aws.String("IMAGE_TAG"), Value: aws.String("c4295bd"), Type: cbtypes.EnvironmentVariableTypePlaintext},
			{Name: aws.String("DOTENV"), Value: aws.String("hello/test"), Type: cbtypes.EnvironmentVariableTypeSecretsManager},
		}
	}
	return &codebuild.StartBuildInput{ProjectName: aws.String("hello"), SourceVersion: aws.String(sha),
		BuildspecOverride: aws.String("buildspec-eks.yaml"), IdempotencyToken: aws.String(token), EnvironmentVariablesOverride: env}
}

func start(t *testing.T, cb *codebuild.Client, in *codebuild.StartBuildInput) string {
	t.Helper()
	out, err := cb.StartBuild(context.Background(), in)
	if err != nil {
		t.Fatalf("StartBuild: %v", err)
	}
	return aws.ToString(out.Build.Id)
}

func get(t *testing.T, cb *codebuild.Client, id string) cbtypes.Build {
	t.Helper()
	out, err := cb.BatchGetBuilds(context.Background(), &codebuild.BatchGetBuildsInput{Ids: []string{id}})
	if err != nil || len(out.Builds) != 1 {
		t.Fatalf("BatchGetBuilds: %v %+v", err, out)
	}
	return out.Builds[0]
}

// phaseLine summarises a build's phases as TYPE=STATUS, a running phase as TYPE.
func phaseLine(b cbtypes.Build) string {
	var parts []string
	for _, p := range b.Phases {
		s := string(p.PhaseType)
		if p.PhaseStatus != "" {
			s += "=" + string(p.PhaseStatus)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestBuildWalksEveryPhase(t *testing.T) {
	e := newEnv(t)
	cb := codebuild.NewFromConfig(e.Config())
	id := start(t, cb, buildInput("deploy-7"))
	var seen []string
	for range len(Phases) + 1 {
		b := get(t, cb, id)
		seen = append(seen, aws.ToString(b.CurrentPhase))
		if b.BuildStatus != cbtypes.StatusTypeInProgress {
			if b.BuildStatus != cbtypes.StatusTypeSucceeded || !b.BuildComplete || b.EndTime == nil {
				t.Fatalf("final build = %+v", b)
			}
			break
		}
		if b.BuildComplete || b.EndTime != nil {
			t.Fatalf("a running build is complete: %+v", b)
		}
		e.CodeBuild.Advance(time.Second)
	}
	if got, want := strings.Join(seen, ","), strings.Join(Phases, ","); got != want {
		t.Errorf("phases seen = %s, want %s", got, want)
	}
	b := get(t, cb, id)
	for _, p := range b.Phases[:len(b.Phases)-1] {
		if aws.ToInt64(p.DurationInSeconds) != 1 || p.EndTime.Sub(*p.StartTime) != time.Second {
			t.Errorf("phase %s took %ds (%v)", p.PhaseType, aws.ToInt64(p.DurationInSeconds), p.EndTime.Sub(*p.StartTime))
		}
	}
	stream := strings.TrimPrefix(id, "hello:")
	if aws.ToString(b.Logs.GroupName) != "/aws/codebuild/hello" || aws.ToString(b.Logs.StreamName) != stream ||
		!strings.Contains(aws.ToString(b.Logs.DeepLink), "group=/aws/codebuild/hello;stream="+stream) {
		t.Errorf("logs = %+v", b.Logs)
	}
	if aws.ToInt64(b.BuildNumber) != 1 || aws.ToString(b.SourceVersion) != sha || aws.ToInt32(b.TimeoutInMinutes) != 60 {
		t.Errorf("build = number %d, source %s, timeout %d", aws.ToInt64(b.BuildNumber), aws.ToString(b.SourceVersion), aws.ToInt32(b.TimeoutInMinutes))
	}
}

func TestBuildOutcomes(t *testing.T) {
	const msg = "Error while executing command: docker build . Reason: exit status 1"
	for _, tt := range []struct {
		name    string
		script  Script
		in      func(*codebuild.StartBuildInput)
		stop    time.Duration // StopBuild after this long, when not zero
		status  cbtypes.StatusType
		phases  string
		failed  cbtypes.BuildPhaseType
		context string
		image   bool
	}{
		{name: "succeeds", status: "SUCCEEDED", image: true,
			phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=SUCCEEDED DOWNLOAD_SOURCE=SUCCEEDED INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=SUCCEEDED POST_BUILD=SUCCEEDED UPLOAD_ARTIFACTS=SUCCEEDED FINALIZING=SUCCEEDED COMPLETED"},
		{name: "fails in BUILD, still runs POST_BUILD and UPLOAD_ARTIFACTS", script: Script{FailIn: "BUILD", Message: msg}, status: "FAILED",
			phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=SUCCEEDED DOWNLOAD_SOURCE=SUCCEEDED INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=FAILED POST_BUILD=SUCCEEDED UPLOAD_ARTIFACTS=SUCCEEDED FINALIZING=SUCCEEDED COMPLETED",
			failed: "BUILD", context: "COMMAND_EXECUTION_ERROR: " + msg},
		{name: "fails in INSTALL, goes to FINALIZING", script: Script{FailIn: "INSTALL", Message: "apt-get: exit status 100"}, status: "FAILED",
			phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=SUCCEEDED DOWNLOAD_SOURCE=SUCCEEDED INSTALL=FAILED FINALIZING=SUCCEEDED COMPLETED",
			failed: "INSTALL", context: "COMMAND_EXECUTION_ERROR: apt-get: exit status 100"},
		{name: "fails in POST_BUILD after pushing nothing", script: Script{FailIn: "POST_BUILD", Message: "docker push denied"}, status: "FAILED",
			phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=SUCCEEDED DOWNLOAD_SOURCE=SUCCEEDED INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=SUCCEEDED POST_BUILD=FAILED UPLOAD_ARTIFACTS=SUCCEEDED FINALIZING=SUCCEEDED COMPLETED",
			failed: "POST_BUILD", context: "COMMAND_EXECUTION_ERROR: docker push denied"},
		{name: "fails in UPLOAD_ARTIFACTS after the image was pushed", script: Script{FailIn: "UPLOAD_ARTIFACTS", StatusCode: "CLIENT_ERROR", Message: "no matching artifact paths found"},
			status: "FAILED", image: true,
			phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=SUCCEEDED DOWNLOAD_SOURCE=SUCCEEDED INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=SUCCEEDED POST_BUILD=SUCCEEDED UPLOAD_ARTIFACTS=FAILED FINALIZING=SUCCEEDED COMPLETED",
			failed: "UPLOAD_ARTIFACTS", context: "CLIENT_ERROR: no matching artifact paths found"},
		{name: "faults in PROVISIONING", script: Script{FailIn: "PROVISIONING", Status: "FAULT", StatusCode: "CLIENT_ERROR", Message: "Unable to pull customer's container image"},
			status: "FAULT", phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=FAULT FINALIZING=SUCCEEDED COMPLETED",
			failed: "PROVISIONING", context: "CLIENT_ERROR: Unable to pull customer's container image"},
		{name: "times out in BUILD", script: Script{Durations: map[string]time.Duration{"BUILD": 2 * time.Hour}},
			in:     func(in *codebuild.StartBuildInput) { in.TimeoutInMinutesOverride = aws.Int32(10) },
			status: "TIMED_OUT", phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=SUCCEEDED DOWNLOAD_SOURCE=SUCCEEDED INSTALL=SUCCEEDED PRE_BUILD=SUCCEEDED BUILD=TIMED_OUT FINALIZING=SUCCEEDED COMPLETED",
			failed: "BUILD", context: "BUILD_TIMED_OUT: Build has timed out. "},
		{name: "times out in the queue", script: Script{Durations: map[string]time.Duration{"QUEUED": 9 * time.Hour}},
			status: "TIMED_OUT", phases: "SUBMITTED=SUCCEEDED QUEUED=TIMED_OUT COMPLETED", failed: "QUEUED", context: "BUILD_TIMED_OUT: Build has timed out. "},
		{name: "stopped in PRE_BUILD", stop: 5500 * time.Millisecond, status: "STOPPED",
			phases: "SUBMITTED=SUCCEEDED QUEUED=SUCCEEDED PROVISIONING=SUCCEEDED DOWNLOAD_SOURCE=SUCCEEDED INSTALL=SUCCEEDED PRE_BUILD=STOPPED FINALIZING=SUCCEEDED COMPLETED",
			failed: "PRE_BUILD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.CodeBuild.SetScript(tt.script)
			cb := codebuild.NewFromConfig(e.Config())
			in := buildInput("t")
			if tt.in != nil {
				tt.in(in)
			}
			id := start(t, cb, in)
			if tt.stop != 0 {
				e.Advance(tt.stop)
				out, err := cb.StopBuild(context.Background(), &codebuild.StopBuildInput{Id: aws.String(id)})
				if err != nil || out.Build.BuildStatus != cbtypes.StatusTypeInProgress {
					t.Fatalf("StopBuild = %+v, %v; want the build, still finishing", out, err)
				}
			}
			e.Advance(24 * time.Hour)
			b := get(t, cb, id)
			if b.BuildStatus != tt.status || aws.ToString(b.CurrentPhase) != "COMPLETED" || !b.BuildComplete {
				t.Errorf("build = %s in %s", b.BuildStatus, aws.ToString(b.CurrentPhase))
			}
			if got := phaseLine(b); got != tt.phases {
				t.Errorf("phases\n got %s\nwant %s", got, tt.phases)
			}
			var failed cbtypes.BuildPhaseType
			var context string
			for _, p := range b.Phases {
				if p.PhaseStatus != "" && p.PhaseStatus != cbtypes.StatusTypeSucceeded {
					failed = p.PhaseType
					for _, c := range p.Contexts {
						context = aws.ToString(c.StatusCode) + ": " + aws.ToString(c.Message)
					}
				}
			}
			if failed != tt.failed || context != tt.context {
				t.Errorf("failed phase %q with %q, want %q with %q", failed, context, tt.failed, tt.context)
			}
			if got := e.ECR.Digest("hello", "c4295bd") != ""; got != tt.image {
				t.Errorf("image pushed = %v, want %v", got, tt.image)
			}
		})
	}
}

func TestScriptsPerBuild(t *testing.T) {
	e := newEnv(t)
	e.CodeBuild.SetScript(Script{PhaseDuration: 2 * time.Second})
	e.CodeBuild.Queue(Script{FailIn: "BUILD", Message: "first fails"}, Script{Durations: map[string]time.Duration{"BUILD": time.Minute}})
	cb := codebuild.NewFromConfig(e.Config())
	var ids []string
	for i := range 3 {
		ids = append(ids, start(t, cb, buildInput(fmt.Sprint("deploy-", i))))
	}
	e.Advance(10 * time.Minute)
	for i, want := range []struct {
		status cbtypes.StatusType
		build  int64 // seconds in BUILD
		queued int64
	}{{"FAILED", 1, 1}, {"SUCCEEDED", 60, 1}, {"SUCCEEDED", 2, 2}} {
		b := get(t, cb, ids[i])
		var build, queued int64
		for _, p := range b.Phases {
			switch p.PhaseType {
			case cbtypes.BuildPhaseTypeBuild:
				build = aws.ToInt64(p.DurationInSeconds)
			case cbtypes.BuildPhaseTypeQueued:
				queued = aws.ToInt64(p.DurationInSeconds)
			}
		}
		if b.BuildStatus != want.status || build != want.build || queued != want.queued || aws.ToInt64(b.BuildNumber) != int64(i+1) {
			t.Errorf("build %d: %s, BUILD %ds, QUEUED %ds, number %d; want %+v", i, b.BuildStatus, build, queued, aws.ToInt64(b.BuildNumber), want)
		}
	}
}

func TestMisuseIsReported(t *testing.T) {
	for _, tt := range []struct {
		name   string
		misuse func(*Env)
	}{
		{"FailIn not a phase", func(e *Env) { e.CodeBuild.SetScript(Script{FailIn: "COMPILE"}) }},
		{"TIMED_OUT scripted", func(e *Env) { e.CodeBuild.Queue(Script{FailIn: "BUILD", Status: "TIMED_OUT"}) }},
		{"duration of no phase", func(e *Env) { e.CodeBuild.SetScript(Script{Durations: map[string]time.Duration{"TEST": time.Second}}) }},
		{"throttling no service", func(e *Env) { e.Throttle("CodeBuild", 1) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(quiet{t})
			tt.misuse(e)
			if len(e.Problems()) != 1 {
				t.Errorf("problems %q, want one", e.Problems())
			}
		})
	}
}

func TestIdempotencyToken(t *testing.T) {
	e := newEnv(t)
	cb := codebuild.NewFromConfig(e.Config())
	first := start(t, cb, buildInput("deploy-7"))
	for _, tt := range []struct {
		name    string
		advance time.Duration
		in      *codebuild.StartBuildInput
		same    bool
		err     string
	}{
		{name: "same token and parameters", in: buildInput("deploy-7"), same: true},
		{name: "same token, other parameters", in: func() *codebuild.StartBuildInput {
			in := buildInput("deploy-7")
			in.SourceVersion = aws.String("other")
			return in
		}(), err: "InvalidInputException"},
		{name: "other token", in: buildInput("deploy-8")},
		{name: "same token after five minutes", advance: 5 * time.Minute, in: buildInput("deploy-7")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.Advance(tt.advance)
			out, err := cb.StartBuild(context.Background(), tt.in)
			if tt.err != "" {
				var invalid *cbtypes.InvalidInputException
				if !errors.As(err, &invalid) {
					t.Fatalf("StartBuild = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.Build.Id) == first; got != tt.same {
				t.Errorf("same build = %v, want %v", got, tt.same)
			}
		})
	}
	if n, builds := e.CodeBuild.StartBuildCalls(), len(e.CodeBuild.Builds()); n != 4 || builds != 3 {
		t.Errorf("StartBuildCalls = %d, builds = %d; want 4 answered calls and 3 builds", n, builds)
	}
}

func TestBuildRecordsItsRequest(t *testing.T) {
	e := newEnv(t)
	cb := codebuild.NewFromConfig(e.Config())
	start(t, cb, buildInput("deploy-7"))
	b := e.CodeBuild.Builds()[0]
	want := []EnvVar{{"IMAGE_REPOSITORY", Account + ".dkr.ecr.eu-west-1.amazonaws.com/hello", "PLAINTEXT"},
		{"IMAGE_TAG", "c4295bd", "PLAINTEXT"}, {"DOTENV", "hello/test", "SECRETS_MANAGER"}}
	if fmt.Sprint(b.Env) != fmt.Sprint(want) || b.SourceVersion != sha || b.Buildspec != "buildspec-eks.yaml" ||
		b.IdempotencyToken != "deploy-7" || b.Project != "hello" || b.Status != "IN_PROGRESS" || b.Phase != "SUBMITTED" {
		t.Errorf("build = %+v", b)
	}
}

func TestImagePush(t *testing.T) {
	plain := func(name, value string) cbtypes.EnvironmentVariable {
		return cbtypes.EnvironmentVariable{Name: aws.String(name), Value: aws.String(value), Type: cbtypes.EnvironmentVariableTypePlaintext}
	}
	for _, tt := range []struct {
		name       string
		vars       [2]string // SetImageEnv, when set
		env        []cbtypes.EnvironmentVariable
		repo, tag  string
		wantPushed bool
	}{
		{name: "IMAGE_REPOSITORY and IMAGE_TAG", env: []cbtypes.EnvironmentVariable{plain("IMAGE_REPOSITORY", "web"), plain("IMAGE_TAG", "v1")}, repo: "web", tag: "v1", wantPushed: true},
		{name: "the project's repository", env: []cbtypes.EnvironmentVariable{plain("IMAGE_TAG", "v2")}, repo: "hello", tag: "v2", wantPushed: true},
		{name: "variables named by SetImageEnv", vars: [2]string{"REPO", "TAG"}, env: []cbtypes.EnvironmentVariable{plain("REPO", "api"), plain("TAG", "v3")}, repo: "api", tag: "v3", wantPushed: true},
		{name: "no tag, no image", env: []cbtypes.EnvironmentVariable{plain("STAGE", "test")}, repo: "hello", tag: "test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.vars[0] != "" {
				e.CodeBuild.SetImageEnv(tt.vars[0], tt.vars[1])
			}
			cb := codebuild.NewFromConfig(e.Config())
			start(t, cb, buildInput("t", tt.env...))
			if d := e.ECR.Digest(tt.repo, tt.tag); d != "" {
				t.Fatalf("image %s pushed before the build ran", d)
			}
			e.Advance(time.Minute)
			d := e.ECR.Digest(tt.repo, tt.tag)
			if pushed := strings.HasPrefix(d, "sha256:") && len(d) == 71; pushed != tt.wantPushed {
				t.Errorf("digest = %q, want pushed %v", d, tt.wantPushed)
			}
		})
	}
}

func TestMissingSecretFailsProvisioning(t *testing.T) {
	e := newEnv(t)
	e.CodeBuild.ResolveSecrets()
	e.Secrets.Add("hello/test")
	cb := codebuild.NewFromConfig(e.Config())
	secretVar := func(v string) cbtypes.EnvironmentVariable {
		return cbtypes.EnvironmentVariable{Name: aws.String("DOTENV"), Value: aws.String(v), Type: cbtypes.EnvironmentVariableTypeSecretsManager}
	}
	for _, tt := range []struct {
		value  string
		status cbtypes.StatusType
	}{
		{"hello/test", "SUCCEEDED"},
		{"hello/test:DATABASE_URL:AWSCURRENT", "SUCCEEDED"},
		{"hello/prod", "FAILED"},
	} {
		t.Run(tt.value, func(t *testing.T) {
			id := start(t, cb, buildInput(tt.value, secretVar(tt.value)))
			e.Advance(time.Minute)
			b := get(t, cb, id)
			if b.BuildStatus != tt.status {
				t.Errorf("build = %s (%s)", b.BuildStatus, phaseLine(b))
			}
			if tt.status == "FAILED" && (b.Phases[2].PhaseStatus != "FAILED" || !strings.Contains(aws.ToString(b.Phases[2].Contexts[0].Message), "ResourceNotFoundException")) {
				t.Errorf("PROVISIONING = %+v", b.Phases[2])
			}
		})
	}
}

func TestListAndUnknownProjects(t *testing.T) {
	e := newEnv(t)
	e.CodeBuild.SetProjects("hello")
	cb := codebuild.NewFromConfig(e.Config())
	var ids []string
	for i := range 3 {
		ids = append(ids, start(t, cb, buildInput(fmt.Sprint(i))))
	}
	ctx := context.Background()
	desc, err := cb.ListBuildsForProject(ctx, &codebuild.ListBuildsForProjectInput{ProjectName: aws.String("hello")})
	if err != nil || strings.Join(desc.Ids, ",") != ids[2]+","+ids[1]+","+ids[0] {
		t.Errorf("newest first = %v, %v", desc.Ids, err)
	}
	asc, err := cb.ListBuildsForProject(ctx, &codebuild.ListBuildsForProjectInput{ProjectName: aws.String("hello"), SortOrder: cbtypes.SortOrderTypeAscending})
	if err != nil || strings.Join(asc.Ids, ",") != strings.Join(ids, ",") {
		t.Errorf("ascending = %v, %v", asc.Ids, err)
	}
	in := buildInput("x")
	in.ProjectName = aws.String("other")
	var nf *cbtypes.ResourceNotFoundException
	if _, err := cb.StartBuild(ctx, in); !errors.As(err, &nf) {
		t.Errorf("unknown project: %v", err)
	}
	if _, err := cb.ListBuildsForProject(ctx, &codebuild.ListBuildsForProjectInput{ProjectName: aws.String("other")}); !errors.As(err, &nf) {
		t.Errorf("unknown project: %v", err)
	}
	if _, err := cb.StopBuild(ctx, &codebuild.StopBuildInput{Id: aws.String("hello:nope")}); !errors.As(err, &nf) {
		t.Errorf("unknown build: %v", err)
	}
	out, err := cb.BatchGetBuilds(ctx, &codebuild.BatchGetBuildsInput{Ids: []string{ids[0], "hello:nope"}})
	if err != nil || len(out.Builds) != 1 || len(out.BuildsNotFound) != 1 || out.BuildsNotFound[0] != "hello:nope" {
		t.Errorf("BatchGetBuilds = %+v, %v", out, err)
	}
}

// TestWallClock runs a build on real time, as end-to-end tests do.
func TestWallClock(t *testing.T) {
	e := New(t)
	e.CodeBuild.SetScript(Script{PhaseDuration: 5 * time.Millisecond})
	cb := codebuild.NewFromConfig(e.Config())
	id := start(t, cb, buildInput("t"))
	deadline := time.Now().Add(10 * time.Second)
	for get(t, cb, id).BuildStatus == cbtypes.StatusTypeInProgress {
		if time.Now().After(deadline) {
			t.Fatal("the build never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b := get(t, cb, id); b.BuildStatus != cbtypes.StatusTypeSucceeded || len(b.Phases) != len(Phases) {
		t.Errorf("build = %s: %s", b.BuildStatus, phaseLine(b))
	}
}

// TestImmutableTagIsNeverOverwritten: in a repository with immutable tags (imageTagMutability
// IMMUTABLE) a second push of a tag fails the build in POST_BUILD with ECR's message, as docker
// push does, and the image the tag names stays; another tag pushes as usual.
func TestImmutableTagIsNeverOverwritten(t *testing.T) {
	e := newEnv(t)
	e.ECR.SetImmutable(Account + ".dkr.ecr.eu-west-1.amazonaws.com/hello")
	cb := codebuild.NewFromConfig(e.Config())
	tagged := func(token, tag string) *codebuild.StartBuildInput {
		return buildInput(token,
			cbtypes.EnvironmentVariable{Name: aws.String("IMAGE_REPOSITORY"), Value: aws.String("hello"), Type: cbtypes.EnvironmentVariableTypePlaintext},
			cbtypes.EnvironmentVariable{Name: aws.String("IMAGE_TAG"), Value: aws.String(tag), Type: cbtypes.EnvironmentVariableTypePlaintext})
	}
	first := start(t, cb, tagged("a", "c4295bd74fb0-test"))
	e.Advance(time.Hour)
	if b := get(t, cb, first); b.BuildStatus != cbtypes.StatusTypeSucceeded {
		t.Fatalf("first push: %s", b.BuildStatus)
	}
	digest := e.ECR.Digest("hello", "c4295bd74fb0-test")
	again := start(t, cb, tagged("b", "c4295bd74fb0-test"))
	other := start(t, cb, tagged("c", "c4295bd74fb0-alpha"))
	e.Advance(time.Hour)
	b := get(t, cb, again)
	want := "COMMAND_EXECUTION_ERROR: Error while executing command: docker push hello:c4295bd74fb0-test. Reason: tag invalid: " +
		"The image tag 'c4295bd74fb0-test' already exists in the 'hello' repository and cannot be overwritten because the repository is immutable."
	var failed string
	for _, p := range b.Phases {
		if p.PhaseStatus == cbtypes.StatusTypeFailed && len(p.Contexts) == 1 {
			failed = string(p.PhaseType) + " " + aws.ToString(p.Contexts[0].StatusCode) + ": " + aws.ToString(p.Contexts[0].Message)
		}
	}
	if b.BuildStatus != cbtypes.StatusTypeFailed || failed != "POST_BUILD "+want {
		t.Errorf("the second push of the tag: %s, %q", b.BuildStatus, failed)
	}
	if e.ECR.Digest("hello", "c4295bd74fb0-test") != digest {
		t.Error("the immutable tag was overwritten")
	}
	if b := get(t, cb, other); b.BuildStatus != cbtypes.StatusTypeSucceeded || e.ECR.Digest("hello", "c4295bd74fb0-alpha") == "" {
		t.Errorf("another tag in the same repository: %s", b.BuildStatus)
	}
}
