package awstest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

func TestDescribeSecret(t *testing.T) {
	e := newEnv(t)
	e.Secrets.Add("hello/test")
	sm := secretsmanager.NewFromConfig(e.Config())
	arn := func() string {
		out, err := sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("hello/test")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ARN)
	}()
	for _, tt := range []struct {
		id    string
		found bool
	}{
		{"hello/test", true},
		{arn, true},
		{strings.TrimSuffix(arn, arn[len(arn)-7:]), true}, // the ARN without its random suffix
		{"hello/prod", false},
		{"hello", false},
	} {
		t.Run(tt.id, func(t *testing.T) {
			out, err := sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(tt.id)})
			if tt.found {
				if err != nil || aws.ToString(out.Name) != "hello/test" || out.CreatedDate == nil || len(out.VersionIdsToStages) != 1 {
					t.Errorf("DescribeSecret = %+v, %v", out, err)
				}
				return
			}
			var nf *smtypes.ResourceNotFoundException
			if !errors.As(err, &nf) || nf.ErrorCode() != "ResourceNotFoundException" || !strings.Contains(nf.ErrorMessage(), "can't find the specified secret") {
				t.Errorf("DescribeSecret = %v, want ResourceNotFoundException", err)
			}
		})
	}
}

func TestSecretValuesNeverTravel(t *testing.T) {
	for _, tt := range []struct {
		name    string
		call    func(e *Env) error
		wantErr bool
		want    string
	}{
		{name: "GetSecretValue is not answered", wantErr: true, want: "GetSecretValue is not an operation",
			call: func(e *Env) error {
				_, err := secretsmanager.NewFromConfig(e.Config()).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("hello/test")})
				return err
			}},
		{name: "a value sent as a plaintext build variable", want: "the value of secret hello/test travelled in a request",
			call: func(e *Env) error {
				in := buildInput("t")
				in.EnvironmentVariablesOverride[2].Value = aws.String(e.Secrets.Value("hello/test"))
				in.EnvironmentVariablesOverride[2].Type = "PLAINTEXT"
				_, err := codebuild.NewFromConfig(e.Config()).StartBuild(context.Background(), in)
				return err
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(quiet{t})
			e.Secrets.Add("hello/test")
			if err := tt.call(e); (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want one: %v", err, tt.wantErr)
			}
			if p := strings.Join(e.Problems(), "\n"); !strings.Contains(p, tt.want) {
				t.Errorf("problems %q, want %q", p, tt.want)
			}
		})
	}
}

func TestDescribeImages(t *testing.T) {
	e := newEnv(t)
	d1 := e.ECR.Push(Account+".dkr.ecr.eu-west-1.amazonaws.com/hello", "c4295bd")
	e.Advance(time.Minute)
	d2 := e.ECR.Push("hello", "v2")
	e.ECR.Push("hello", "latest")
	client := ecr.NewFromConfig(e.Config())
	describe := func(repo string, ids ...ecrtypes.ImageIdentifier) (*ecr.DescribeImagesOutput, error) {
		return client.DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: ids})
	}
	for _, tt := range []struct {
		name    string
		repo    string
		ids     []ecrtypes.ImageIdentifier
		digests []string
		err     string
	}{
		{name: "by tag", repo: "hello", ids: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("c4295bd")}}, digests: []string{d1}},
		{name: "by digest", repo: "hello", ids: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(d2)}}, digests: []string{d2}},
		{name: "tag and digest", repo: "hello", ids: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v2"), ImageDigest: aws.String(d2)}}, digests: []string{d2}},
		{name: "missing tag", repo: "hello", ids: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("nope")}}, err: "ImageNotFoundException"},
		{name: "tag with another digest", repo: "hello", ids: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v2"), ImageDigest: aws.String(d1)}}, err: "ImageNotFoundException"},
		{name: "missing repository", repo: "web", ids: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v2")}}, err: "RepositoryNotFoundException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := describe(tt.repo, tt.ids...)
			if tt.err != "" {
				var api smithy.APIError
				if !errors.As(err, &api) || api.ErrorCode() != tt.err {
					t.Errorf("DescribeImages = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range out.ImageDetails {
				got = append(got, aws.ToString(d.ImageDigest))
				if d.ImagePushedAt == nil || d.ImagePushedAt.IsZero() || len(d.ImageTags) == 0 {
					t.Errorf("image detail = %+v", d)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.digests, ",") {
				t.Errorf("digests = %v, want %v", got, tt.digests)
			}
		})
	}
	all, err := describe("hello")
	if err != nil || len(all.ImageDetails) != 3 || !all.ImageDetails[0].ImagePushedAt.Before(*all.ImageDetails[2].ImagePushedAt) {
		t.Errorf("all images = %+v, %v", all, err)
	}
}

const nonprod = "arn:aws:iam::" + Account + ":role/stagecoach-nonprod"

func TestAssumeRole(t *testing.T) {
	for _, tt := range []struct {
		name     string
		role     string
		external string
		duration time.Duration
		err      string
	}{
		{name: "allowed role", role: nonprod},
		{name: "allowed role with its external id", role: "arn:aws:iam::" + Account + ":role/stagecoach-prod", external: "stagecoach-prod-7"},
		{name: "allowed role for 15 minutes", role: nonprod, duration: 15 * time.Minute},
		{name: "unknown role", role: "arn:aws:iam::" + Account + ":role/other", err: "AccessDenied"},
		{name: "wrong external id", role: "arn:aws:iam::" + Account + ":role/stagecoach-prod", external: "guess", err: "AccessDenied"},
		{name: "longer than the role allows", role: nonprod, duration: 2 * time.Hour, err: "ValidationError"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.STS.Allow(nonprod, "")
			e.STS.Allow("arn:aws:iam::"+Account+":role/stagecoach-prod", "stagecoach-prod-7")
			provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(e.Config()), tt.role, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "stagecoach-hello-test-c4295bd"
				if tt.external != "" {
					o.ExternalID = aws.String(tt.external)
				}
				o.Duration = tt.duration
			})
			creds, err := provider.Retrieve(context.Background())
			calls := e.STS.AssumeRoleCalls()
			if len(calls) != 1 || calls[0].Get("RoleArn") != tt.role || calls[0].Get("RoleSessionName") != "stagecoach-hello-test-c4295bd" ||
				calls[0].Get("ExternalId") != tt.external {
				t.Errorf("AssumeRole calls = %v", calls)
			}
			if tt.err != "" {
				var api smithy.APIError
				if !errors.As(err, &api) || api.ErrorCode() != tt.err {
					t.Errorf("Retrieve = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire {
				t.Fatalf("credentials = %+v, %v", creds, err)
			}
			want := stscreds.DefaultDuration // what the provider asks for unless told
			if tt.duration != 0 {
				want = tt.duration
			}
			if left := time.Until(creds.Expires); left > want || left < want-time.Minute {
				t.Errorf("credentials expire in %v, want %v", left, want)
			}
		})
	}
}

func TestCallsUnderAssumedRole(t *testing.T) {
	e := newEnv(t)
	e.STS.Allow(nonprod, "")
	e.Secrets.Add("hello/test")
	base := e.Config()
	assumed := base.Copy()
	assumed.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), nonprod, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "stagecoach-hello-test-c4295bd"
	}))
	ctx := context.Background()
	if _, err := secretsmanager.NewFromConfig(assumed).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("hello/test")}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cfg  aws.Config
		arn  string
		role string
	}{
		{base, "arn:aws:iam::" + Account + ":user/stagecoach", ""},
		{assumed, "arn:aws:sts::" + Account + ":assumed-role/stagecoach-nonprod/stagecoach-hello-test-c4295bd", nonprod},
	} {
		id, err := sts.NewFromConfig(tt.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Arn) != tt.arn || aws.ToString(id.Account) != Account {
			t.Errorf("GetCallerIdentity = %+v, %v; want %s", id, err, tt.arn)
		}
		if calls := e.Calls("GetCallerIdentity"); calls[len(calls)-1].Role != tt.role {
			t.Errorf("call recorded under role %q, want %q", calls[len(calls)-1].Role, tt.role)
		}
	}
	if c := e.Calls("DescribeSecret"); len(c) != 1 || c[0].Role != nonprod || !strings.HasPrefix(c[0].AccessKeyID, "ASIA") {
		t.Errorf("DescribeSecret calls = %+v", c)
	}
	if n := len(e.STS.AssumeRoleCalls()); n != 1 {
		t.Errorf("AssumeRole called %d times; the cache should have kept the credentials", n)
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		service, op string
		call        func(aws.Config) error
	}{
		{"codebuild", "StartBuild", func(c aws.Config) error {
			_, err := codebuild.NewFromConfig(c).StartBuild(ctx, buildInput("t"))
			return err
		}},
		{"secretsmanager", "DescribeSecret", func(c aws.Config) error {
			_, err := secretsmanager.NewFromConfig(c).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("hello/test")})
			return err
		}},
		{"ecr", "DescribeImages", func(c aws.Config) error {
			_, err := ecr.NewFromConfig(c).DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("hello")})
			return err
		}},
		{"sts", "GetCallerIdentity", func(c aws.Config) error {
			_, err := sts.NewFromConfig(c).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
	} {
		t.Run(tt.service, func(t *testing.T) {
			e := newEnv(t)
			e.Secrets.Add("hello/test")
			e.ECR.Push("hello", "v1")
			e.Throttle(tt.service, 2)
			// The standard retryer, as in production, waiting milliseconds rather than seconds.
			cfg := e.Config()
			cfg.Retryer = func() aws.Retryer {
				return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 10 * time.Millisecond })
			}
			if err := tt.call(cfg); err != nil {
				t.Fatalf("after two throttles: %v", err)
			}
			calls := e.Calls(tt.op)
			if len(calls) != 3 || calls[0].Status != http.StatusBadRequest || calls[1].Status != http.StatusBadRequest || calls[2].Status != http.StatusOK {
				t.Errorf("calls = %+v, want two throttled then one answered", calls)
			}
			// The standard retryer makes three attempts: a fourth throttle reaches the caller.
			e.Throttle(tt.service, 3)
			var api smithy.APIError
			if err := tt.call(cfg); !errors.As(err, &api) || !strings.HasPrefix(api.ErrorCode(), "Throttling") {
				t.Errorf("after three throttles: %v", err)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		creds   aws.CredentialsProvider
		region  string
		code    string
		problem string
	}{
		{name: "unknown key", creds: credentials.NewStaticCredentialsProvider("AKIDSOMEONEELSE00000", "x", ""), region: Region, code: "UnrecognizedClientException"},
		{name: "wrong secret", creds: credentials.NewStaticCredentialsProvider(AccessKeyID, "wrong", ""), region: Region, code: "InvalidSignatureException", problem: "InvalidSignatureException"},
		{name: "wrong region", creds: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""), region: "us-east-1", code: "InvalidSignatureException", problem: "scoped to a valid region"},
		{name: "temporary key without its token", creds: credentials.NewStaticCredentialsProvider("ASIAUNKNOWN000000000", "x", ""), region: Region, code: "UnrecognizedClientException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(quiet{t})
			cfg := e.Config()
			cfg.Credentials, cfg.Region = tt.creds, tt.region
			_, err := codebuild.NewFromConfig(cfg).BatchGetBuilds(ctx, &codebuild.BatchGetBuildsInput{Ids: []string{"hello:x"}})
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tt.code {
				t.Errorf("BatchGetBuilds = %v, want %s", err, tt.code)
			}
			p := strings.Join(e.Problems(), "\n")
			if (tt.problem == "") != (p == "") || !strings.Contains(p, tt.problem) {
				t.Errorf("problems %q, want %q", p, tt.problem)
			}
		})
	}
}
