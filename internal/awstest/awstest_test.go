package awstest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	cbtypes "github.com/aws/aws-sdk-go-v2/service/codebuild/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newEnv(t *testing.T) (*Env, *testClock) {
	e := New(t)
	clk := &testClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	e.SetClock(clk.now)
	return e, clk
}

func startBuild(t *testing.T, cb *codebuild.Client, token string) *cbtypes.Build {
	t.Helper()
	out, err := cb.StartBuild(context.Background(), &codebuild.StartBuildInput{
		ProjectName: aws.String("hello"), SourceVersion: aws.String("c4295bd74fb0f4fda03689c3df3f2803b658fd85"),
		BuildspecOverride: aws.String("buildspec-eks.yaml"), IdempotencyToken: aws.String(token),
		EnvironmentVariablesOverride: []cbtypes.EnvironmentVariable{
			{Name: aws.String("IMAGE_REPOSITORY"), Value: aws.String("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"), Type: cbtypes.EnvironmentVariableTypePlaintext},
			{Name: aws.String("IMAGE_TAG"), Value: aws.String("c4295bd"), Type: cbtypes.EnvironmentVariableTypePlaintext},
			{Name: aws.String("DOTENV"), Value: aws.String("hello/test"), Type: cbtypes.EnvironmentVariableTypeSecretsManager},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Build
}

func getBuild(t *testing.T, cb *codebuild.Client, id string) cbtypes.Build {
	t.Helper()
	out, err := cb.BatchGetBuilds(context.Background(), &codebuild.BatchGetBuildsInput{Ids: []string{id}})
	if err != nil || len(out.Builds) != 1 {
		t.Fatalf("BatchGetBuilds: %v %+v", err, out)
	}
	return out.Builds[0]
}

func TestBuildLifecycleAndImage(t *testing.T) {
	e, clk := newEnv(t)
	cb := codebuild.NewFromConfig(e.Config())
	b := startBuild(t, cb, "deploy-7")
	if again := startBuild(t, cb, "deploy-7"); aws.ToString(again.Id) != aws.ToString(b.Id) {
		t.Fatalf("idempotencyToken ignored: %s then %s", aws.ToString(b.Id), aws.ToString(again.Id))
	}
	if len(e.CodeBuild.Builds()) != 1 {
		t.Fatalf("builds = %d, want 1", len(e.CodeBuild.Builds()))
	}
	var seen []string
	for range 12 {
		got := getBuild(t, cb, aws.ToString(b.Id))
		seen = append(seen, aws.ToString(got.CurrentPhase))
		if got.BuildStatus != cbtypes.StatusTypeInProgress {
			if got.BuildStatus != cbtypes.StatusTypeSucceeded || !got.BuildComplete || got.EndTime == nil {
				t.Fatalf("final build = %+v", got)
			}
			break
		}
		clk.add(time.Second)
	}
	if strings.Join(seen, ",") != strings.Join(Phases, ",") {
		t.Errorf("phases seen = %v", seen)
	}
	imgs, err := ecr.NewFromConfig(e.Config()).DescribeImages(context.Background(), &ecr.DescribeImagesInput{
		RepositoryName: aws.String("hello"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("c4295bd")}}})
	if err != nil || len(imgs.ImageDetails) != 1 || !strings.HasPrefix(aws.ToString(imgs.ImageDetails[0].ImageDigest), "sha256:") {
		t.Fatalf("pushed image: %+v %v", imgs, err)
	}
	env := e.CodeBuild.Builds()[0].Env
	if len(env) != 3 || env[2].Type != "SECRETS_MANAGER" || env[2].Value != "hello/test" {
		t.Errorf("environment overrides = %+v", env)
	}
}

func TestFailingBuild(t *testing.T) {
	e, clk := newEnv(t)
	e.CodeBuild.SetScript(Script{PhaseDuration: time.Second, FailIn: "BUILD", Message: "Error while executing command: docker build . Reason: exit status 1"})
	cb := codebuild.NewFromConfig(e.Config())
	b := startBuild(t, cb, "deploy-8")
	clk.add(time.Minute)
	got := getBuild(t, cb, aws.ToString(b.Id))
	if got.BuildStatus != cbtypes.StatusTypeFailed || aws.ToString(got.CurrentPhase) != "COMPLETED" {
		t.Fatalf("build = %s in %s", got.BuildStatus, aws.ToString(got.CurrentPhase))
	}
	var failed *cbtypes.BuildPhase
	for i := range got.Phases {
		if got.Phases[i].PhaseStatus == cbtypes.StatusTypeFailed {
			failed = &got.Phases[i]
		}
	}
	if failed == nil || failed.PhaseType != cbtypes.BuildPhaseTypeBuild || !strings.Contains(aws.ToString(failed.Contexts[0].Message), "docker build") {
		t.Errorf("failed phase = %+v", failed)
	}
	if !strings.Contains(aws.ToString(got.Logs.DeepLink), "/aws/codebuild/hello") {
		t.Errorf("deep link = %q", aws.ToString(got.Logs.DeepLink))
	}
	if _, err := ecr.NewFromConfig(e.Config()).DescribeImages(context.Background(), &ecr.DescribeImagesInput{
		RepositoryName: aws.String("hello"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("c4295bd")}}}); err == nil {
		t.Error("a failed build pushed an image")
	}
}

func TestSecretsAreDescribedNeverRead(t *testing.T) {
	e, _ := newEnv(t)
	e.Secrets.Add("hello/test")
	sm := secretsmanager.NewFromConfig(e.Config())
	out, err := sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("hello/test")})
	if err != nil || aws.ToString(out.Name) != "hello/test" {
		t.Fatalf("describe = %+v %v", out, err)
	}
	_, err = sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("hello/prod")})
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("missing secret: %v, want ResourceNotFoundException", err)
	}
	// GetSecretValue is not in the model subset: asking for a value is a test failure.
	sink := &collector{TB: t}
	e2 := New(sink)
	_, err = secretsmanager.NewFromConfig(e2.Config()).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
	if err == nil || len(e2.Problems()) == 0 {
		t.Errorf("GetSecretValue was answered: %v", err)
	}
}

type collector struct {
	testing.TB
}

func (c *collector) Errorf(string, ...any) {}

func TestAssumeRole(t *testing.T) {
	e, _ := newEnv(t)
	const role = "arn:aws:iam::123456789012:role/stagecoach-nonprod"
	e.STS.Allow(role, "")
	provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(e.Config()), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "stagecoach-hello-test-c4295bd"
	})
	creds, err := provider.Retrieve(context.Background())
	if err != nil || !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" {
		t.Fatalf("credentials = %+v %v", creds, err)
	}
	calls := e.STS.AssumeRoleCalls()
	if len(calls) != 1 || calls[0].Get("RoleSessionName") != "stagecoach-hello-test-c4295bd" {
		t.Errorf("calls = %v", calls)
	}
	denied := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(e.Config()), "arn:aws:iam::123456789012:role/other")
	if _, err := denied.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("unknown role: %v", err)
	}
	id, err := sts.NewFromConfig(e.Config()).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != "123456789012" {
		t.Errorf("caller identity = %+v %v", id, err)
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	e, _ := newEnv(t)
	e.Throttle("codebuild", 2)
	cb := codebuild.NewFromConfig(e.Config())
	startBuild(t, cb, "deploy-9")
	calls := e.Calls("StartBuild")
	if len(calls) != 3 || calls[0].Status != 400 || calls[2].Status != 200 {
		t.Errorf("calls = %+v, want two throttled then one answered", calls)
	}
}

func TestValidatorCatchesBadShapes(t *testing.T) {
	m, err := loadModel("codebuild")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		v    map[string]any
		want string
	}{
		{map[string]any{"sourceVersion": "x"}, "projectName is required"},
		{map[string]any{"projectName": "p", "bogus": 1}, `unknown member "bogus"`},
		{map[string]any{"projectName": "p", "environmentVariablesOverride": []any{map[string]any{"name": "A", "value": "b", "type": "SECRET"}}}, `"SECRET" is not a`},
		{map[string]any{"projectName": "p", "timeoutInMinutesOverride": "5"}, "want an integer"},
	} {
		probs := strings.Join(m.validate("StartBuildInput", tt.v, "in"), "; ")
		if !strings.Contains(probs, tt.want) {
			t.Errorf("%v: problems %q, want %q", tt.v, probs, tt.want)
		}
	}
	if probs := m.validate("Build", map[string]any{"startTime": "2026-11-24T12:00:00Z"}, "b"); len(probs) == 0 {
		t.Error("a string timestamp passed: aws-sdk-go-v2 would reject it")
	}
}
