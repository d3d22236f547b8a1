package admission

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// succeeded is a store that knows one successful deploy per stage, or fails.
type succeeded struct {
	by  map[string]deploy.Deploy
	err error
}

func (s succeeded) Succeeded(_ context.Context, _, stage, _ string) (deploy.Deploy, bool, error) {
	d, ok := s.by[stage]
	return d, ok, s.err
}

// TestPromotionOfAnUntestedImageIsRefusedByTheGate: with artifact: promote a later stage takes
// only the image the commit ran on the stage before, built once for promotion; everything else
// is refused with the reason, and the first stage of the order and apps that build per stage are
// not asked at all.
func TestPromotionOfAnUntestedImageIsRefusedByTheGate(t *testing.T) {
	cfg, err := config.Parse("gate.yaml", []byte(`
credentials: {nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}, prod: {role_arn: "arn:aws:iam::210987654321:role/p"}}
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    artifact: promote
    stages:
      test: {env_secret: web-test-env, deployments: [{name: web, containers: [web]}]}
      alpha: {env_secret: web-alpha-env, deployments: [{name: web, containers: [web]}]}
      prod: {env_secret: web-prod-env, image_repository: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/web, deployments: [{name: web, containers: [web]}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	const sha = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
	digest := "sha256:" + strings.Repeat("9", 64)
	image := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@" + digest
	ran := func(id int64, image string, a *deploy.Artifact) deploy.Deploy {
		return deploy.Deploy{ID: id, Checkpoint: (&deploy.Checkpoint{Image: image, Artifact: a}).Encode()}
	}
	web := cfg.App("web")
	for _, tt := range []struct {
		name  string
		stage string
		st    succeeded
		want  string // the refusal, or "" with the artifact promoted (or none for a stage that builds)
		from  string
	}{
		{name: "the first stage builds", stage: "test"},
		{name: "tested on alpha", stage: "prod", st: succeeded{by: map[string]deploy.Deploy{"alpha": ran(4, image, &deploy.Artifact{From: "test"})}}, from: "alpha"},
		{name: "never on alpha", stage: "prod", want: "artifact: promote: prod builds nothing, it runs the image tested on alpha, and c4295bd was never built and tested there: deploy it to alpha first"},
		{name: "built for alpha alone", stage: "prod", st: succeeded{by: map[string]deploy.Deploy{"alpha": ran(4, image, nil)}}, want: "deploy #4 there ran an image built for alpha alone"},
		{name: "by tag", stage: "prod", st: succeeded{by: map[string]deploy.Deploy{"alpha": ran(4, "web:v1", &deploy.Artifact{Built: true})}}, want: `ran "web:v1", not an image by digest`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, why, err := TestedImage(context.Background(), tt.st, web, cfg.Stage(tt.stage), sha)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" {
				if !strings.Contains(why, tt.want) || a != nil {
					t.Errorf("TestedImage = %+v, %q, want a refusal saying %q", a, why, tt.want)
				}
				return
			}
			switch {
			case why != "":
				t.Errorf("refused: %s", why)
			case tt.from == "" && a != nil:
				t.Errorf("a stage that builds got %+v", a)
			case tt.from != "" && (a == nil || a.From != tt.from || a.Digest != digest || a.FromDeploy != 4 ||
				a.Target != "210987654321.dkr.ecr.eu-west-1.amazonaws.com/web" || !a.Copy()):
				t.Errorf("artifact = %+v, want alpha's digest copied to prod's registry", a)
			}
		})
	}
	if _, _, err := TestedImage(context.Background(), succeeded{err: errors.New("down")}, web, cfg.Stage("prod"), sha); err == nil {
		t.Error("a store failure is no decision")
	}
	build := *web
	build.Artifact = config.ArtifactBuild
	if a, why, _ := TestedImage(context.Background(), succeeded{}, &build, cfg.Stage("prod"), sha); a != nil || why != "" {
		t.Errorf("an app that builds per stage: %+v, %q", a, why)
	}
}
