package amazon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
)

const nonprodRole = "arn:aws:iam::123456789012:role/stagecoach-nonprod"

func setup(t *testing.T) (*AWS, *awstest.Env) {
	env := awstest.New(t)
	env.STS.Allow(nonprodRole, "")
	return New(env.Config(), config.Credentials{Nonprod: config.Tier{RoleARN: nonprodRole}}), env
}

func TestSessionName(t *testing.T) {
	for _, tt := range []struct{ app, stage, sha, want string }{
		{"hello", "test", "c4295bd74fb0f4fda03689c3df3f2803b658fd85", "stagecoach-hello-test-c4295bd"},
		{"a b", "prod", "1", "stagecoach-a-b-prod-1"},
		{strings.Repeat("x", 80), "prod", "abc", "stagecoach-" + strings.Repeat("x", 53)},
	} {
		if got := SessionName(tt.app, tt.stage, tt.sha); got != tt.want {
			t.Errorf("SessionName(%q) = %q, want %q", tt.app, got, tt.want)
		}
	}
}

func TestBuildUnderAssumedRole(t *testing.T) {
	a, env := setup(t)
	clock := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	env.SetClock(func() time.Time { return clock })
	s := Session{Tier: "nonprod", Name: "stagecoach-hello-test-c4295bd"}
	ctx := context.Background()
	in := BuildInput{Project: "hello", SourceVersion: "c4295bd", Buildspec: "buildspec-eks.yaml", IdempotencyToken: "stagecoach-deploy-1",
		Env:       map[string]string{"IMAGE_REPOSITORY": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello", "IMAGE_TAG": "c4295bd"},
		SecretEnv: map[string]string{"DOTENV_SECRET": "hello/test"}}
	id, err := a.StartBuild(ctx, s, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.StartBuild(ctx, s, in)
	if err != nil || again != id || env.CodeBuild.StartBuildCalls() != 2 || len(env.CodeBuild.Builds()) != 1 {
		t.Fatalf("second start = %s %v; builds %d", again, err, len(env.CodeBuild.Builds()))
	}
	b, err := a.GetBuild(ctx, s, id)
	if err != nil || b.Done() || b.Phase != "SUBMITTED" {
		t.Fatalf("build = %+v %v", b, err)
	}
	clock = clock.Add(time.Minute)
	if b, _ = a.GetBuild(ctx, s, id); b.Status != "SUCCEEDED" || b.LogURL == "" {
		t.Fatalf("build = %+v", b)
	}
	d, err := a.ImageDigest(ctx, s, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello", "c4295bd")
	if err != nil || !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("digest = %q %v", d, err)
	}
	// The registry is the repository's account, not the role's: prod's role may live elsewhere.
	if ecrCalls := env.Calls("DescribeImages"); len(ecrCalls) != 1 || !strings.Contains(string(ecrCalls[0].Body), `"registryId":"123456789012"`) {
		t.Errorf("DescribeImages = %+v, want the registry of the repository's host", ecrCalls)
	}
	var elsewhere *NotFoundError
	if _, err := a.ImageDigest(ctx, s, "210987654321.dkr.ecr.eu-west-1.amazonaws.com/hello", "c4295bd"); !errors.As(err, &elsewhere) {
		t.Errorf("an image in another registry: %v, want a NotFoundError", err)
	}
	calls := env.STS.AssumeRoleCalls()
	if len(calls) != 1 || calls[0].Get("RoleSessionName") != s.Name || calls[0].Get("RoleArn") != nonprodRole {
		t.Errorf("AssumeRole calls = %v (credentials must be assumed once and cached)", calls)
	}
	build := env.CodeBuild.Builds()[0]
	if build.Buildspec != "buildspec-eks.yaml" || build.SourceVersion != "c4295bd" {
		t.Errorf("build = %+v", build)
	}
	var secret awstest.EnvVar
	for _, e := range build.Env {
		if e.Name == "DOTENV_SECRET" {
			secret = e
		}
	}
	if secret.Type != "SECRETS_MANAGER" || secret.Value != "hello/test" {
		t.Errorf("secret env = %+v", secret)
	}
}

func TestFailedBuildAndMissingThings(t *testing.T) {
	a, env := setup(t)
	clock := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	env.SetClock(func() time.Time { return clock })
	env.CodeBuild.SetScript(awstest.Script{PhaseDuration: time.Second, FailIn: "BUILD", Message: "COMMAND_EXECUTION_ERROR: docker build exit status 1"})
	s := Session{Tier: "nonprod", Name: "stagecoach-hello-test-x"}
	ctx := context.Background()
	id, _ := a.StartBuild(ctx, s, BuildInput{Project: "hello", SourceVersion: "abc", Buildspec: "b.yaml", IdempotencyToken: "t"})
	clock = clock.Add(time.Minute)
	b, err := a.GetBuild(ctx, s, id)
	if err != nil || b.Status != "FAILED" || b.FailedPhase != "BUILD" || !strings.Contains(b.Message, "docker build") {
		t.Fatalf("failed build = %+v %v", b, err)
	}
	var nf *NotFoundError
	if err := a.SecretExists(ctx, s, "hello/prod"); !errors.As(err, &nf) || err.Error() != "secret hello/prod not found in Secrets Manager (eu-west-1) (credentials tier nonprod)" {
		t.Errorf("missing secret: %v", err)
	}
	env.Secrets.Add("hello/test")
	if err := a.SecretExists(ctx, s, "hello/test"); err != nil {
		t.Errorf("existing secret: %v", err)
	}
	env.ECR.Push("hello", "other")
	if _, err := a.ImageDigest(ctx, s, "hello", "nope"); !errors.As(err, &nf) {
		t.Errorf("missing image: %v", err)
	}
	// The prod tier has no role here, so the base credentials are used: AWS itself decides.
	if err := a.SecretExists(ctx, Session{Tier: "bogus", Name: "x"}, "x"); err == nil || !strings.Contains(err.Error(), "unknown credentials tier") {
		t.Errorf("unknown tier: %v", err)
	}
}
