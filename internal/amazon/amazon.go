// Package amazon is the AWS adapter of the pipeline: it assumes the credentials tier of a
// deploy (STS), checks that a stage's Secrets Manager secret exists (never reading its value),
// starts and follows CodeBuild builds, resolves the digest of a pushed image and copies an image
// between registries (ECR). It uses
// aws-sdk-go-v2 with the default credential chain, so AWS_ENDPOINT_URL and region settings apply.
package amazon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
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
	"github.com/stagecoach/stagecoach/config"
)

// Session says which credentials tier a call uses and names the assumed-role session, so
// CloudTrail shows which deploy did what.
type Session struct {
	Tier string // pr, nonprod, prod
	Name string // e.g. stagecoach-hello-test-c4295bd
}

// SessionName builds a valid role session name (2-64 of [\w+=,.@-]) from app, stage and sha.
func SessionName(app, stage, sha string) string {
	if len(sha) > 7 {
		sha = sha[:7]
	}
	n := invalidSession.ReplaceAllString(fmt.Sprintf("stagecoach-%s-%s-%s", app, stage, sha), "-")
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

var invalidSession = regexp.MustCompile(`[^\w+=,.@-]`)

// AWS makes the calls. It is safe for concurrent use.
type AWS struct {
	base      aws.Config
	tiers     config.Credentials
	downloads *http.Client // layer downloads from presigned URLs (CopyImage)

	mu    sync.Mutex
	cache map[Session]aws.Config
}

// New builds the adapter on a base configuration (config.LoadDefaultConfig in production).
func New(base aws.Config, tiers config.Credentials) *AWS {
	return &AWS{base: base, tiers: tiers, downloads: newDownloads(), cache: map[Session]aws.Config{}}
}

// configFor returns the configuration of a session: the tier's role assumed through STS with
// cached credentials, or the base credentials when the tier has no role.
func (a *AWS) configFor(s Session) (aws.Config, error) {
	tier, ok := a.tiers.Tier(s.Tier)
	if !ok {
		return aws.Config{}, fmt.Errorf("unknown credentials tier %q", s.Tier)
	}
	if tier.RoleARN == "" {
		return a.base, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cfg, ok := a.cache[s]; ok {
		return cfg, nil
	}
	if len(a.cache) > 256 { // sessions are per deploy: forget old ones rather than grow
		clear(a.cache)
	}
	cfg := a.base.Copy()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.base), tier.RoleARN,
		func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = s.Name
			if tier.ExternalID != "" {
				o.ExternalID = aws.String(tier.ExternalID)
			}
		}))
	a.cache[s] = cfg
	return cfg, nil
}

// NotFoundError says what is missing, where, and with which credentials tier it was looked for.
type NotFoundError struct{ What, Where, Tier string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s not found in %s (credentials tier %s)", e.What, e.Where, e.Tier)
}

// SecretExists checks that a Secrets Manager secret exists, with DescribeSecret: its value is
// never read (CodeBuild resolves it into the build).
func (a *AWS) SecretExists(ctx context.Context, s Session, id string) error {
	cfg, err := a.configFor(s)
	if err != nil {
		return err
	}
	_, err = secretsmanager.NewFromConfig(cfg).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return &NotFoundError{What: "secret " + id, Where: "Secrets Manager (" + cfg.Region + ")", Tier: s.Tier}
	}
	if err != nil {
		return fmt.Errorf("describing secret %s (tier %s): %w", id, s.Tier, err)
	}
	return nil
}

// BuildInput is a build to start.
type BuildInput struct {
	Project          string
	SourceVersion    string // the exact commit
	Buildspec        string
	IdempotencyToken string
	Env              map[string]string // plain environment overrides
	SecretEnv        map[string]string // name -> Secrets Manager secret id, resolved by CodeBuild
}

// StartBuild starts a build and returns its id. The idempotency token makes a retried start
// return the build already started.
func (a *AWS) StartBuild(ctx context.Context, s Session, in BuildInput) (string, error) {
	cfg, err := a.configFor(s)
	if err != nil {
		return "", err
	}
	var env []cbtypes.EnvironmentVariable
	for _, k := range sortedKeys(in.Env) {
		env = append(env, cbtypes.EnvironmentVariable{Name: aws.String(k), Value: aws.String(in.Env[k]), Type: cbtypes.EnvironmentVariableTypePlaintext})
	}
	for _, k := range sortedKeys(in.SecretEnv) {
		env = append(env, cbtypes.EnvironmentVariable{Name: aws.String(k), Value: aws.String(in.SecretEnv[k]), Type: cbtypes.EnvironmentVariableTypeSecretsManager})
	}
	out, err := codebuild.NewFromConfig(cfg).StartBuild(ctx, &codebuild.StartBuildInput{
		ProjectName: aws.String(in.Project), SourceVersion: aws.String(in.SourceVersion),
		BuildspecOverride: aws.String(in.Buildspec), IdempotencyToken: aws.String(in.IdempotencyToken),
		EnvironmentVariablesOverride: env,
	})
	if err != nil {
		return "", fmt.Errorf("starting a build of %s at %s (tier %s): %w", in.Project, in.SourceVersion, s.Tier, err)
	}
	return aws.ToString(out.Build.Id), nil
}

// Build is where a build stands.
type Build struct {
	ID          string
	Status      string // IN_PROGRESS, SUCCEEDED, FAILED, FAULT, TIMED_OUT, STOPPED
	Phase       string
	Started     time.Time
	Ended       time.Time
	FailedPhase string
	Message     string
	LogURL      string
}

// Done reports whether the build ended.
func (b Build) Done() bool { return b.Status != "" && b.Status != string(cbtypes.StatusTypeInProgress) }

// GetBuild reads a build with BatchGetBuilds.
func (a *AWS) GetBuild(ctx context.Context, s Session, id string) (Build, error) {
	cfg, err := a.configFor(s)
	if err != nil {
		return Build{}, err
	}
	out, err := codebuild.NewFromConfig(cfg).BatchGetBuilds(ctx, &codebuild.BatchGetBuildsInput{Ids: []string{id}})
	if err != nil {
		return Build{}, fmt.Errorf("reading build %s: %w", id, err)
	}
	if len(out.Builds) != 1 {
		return Build{}, fmt.Errorf("build %s not found", id)
	}
	b := out.Builds[0]
	r := Build{ID: id, Status: string(b.BuildStatus), Phase: aws.ToString(b.CurrentPhase), Started: aws.ToTime(b.StartTime), Ended: aws.ToTime(b.EndTime)}
	if b.Logs != nil {
		r.LogURL = aws.ToString(b.Logs.DeepLink)
	}
	for _, p := range b.Phases {
		if p.PhaseStatus != "" && p.PhaseStatus != cbtypes.StatusTypeSucceeded && p.PhaseStatus != cbtypes.StatusTypeInProgress {
			r.FailedPhase = string(p.PhaseType)
			var msgs []string
			for _, c := range p.Contexts {
				if m := aws.ToString(c.Message); m != "" {
					msgs = append(msgs, m)
				}
			}
			r.Message = strings.Join(msgs, "; ")
		}
	}
	return r, nil
}

// ImageDigest returns the digest of repository:tag (repository as an ECR URI or a name).
func (a *AWS) ImageDigest(ctx context.Context, s Session, repository, tag string) (string, error) {
	cfg, err := a.configFor(s)
	if err != nil {
		return "", err
	}
	repo := ParseRepository(repository)
	name := repo.Name
	in := &ecr.DescribeImagesInput{ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
		RegistryId: repo.registry(), RepositoryName: aws.String(name)}
	out, err := ecr.NewFromConfig(cfg).DescribeImages(ctx, in)
	var nf *ecrtypes.ImageNotFoundException
	var rnf *ecrtypes.RepositoryNotFoundException
	if errors.As(err, &nf) || errors.As(err, &rnf) {
		return "", &NotFoundError{What: "image " + name + ":" + tag, Where: "ECR", Tier: s.Tier}
	}
	if err != nil {
		return "", fmt.Errorf("describing image %s:%s: %w", name, tag, err)
	}
	if len(out.ImageDetails) == 0 {
		return "", &NotFoundError{What: "image " + name + ":" + tag, Where: "ECR", Tier: s.Tier}
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest), nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
