package doctor

import (
	"slices"
	"testing"

	"github.com/stagecoach/stagecoach/config"
)

// TestPromotingAppNeedsItsConfigurationSecret: a stage of an app with artifact: promote reads its
// configuration from env_secret, which preflight checks: that Secret is what Stagecoach needs to
// get there (and deploy/rbac.yaml's resourceNames must name), not the .env key.
func TestPromotingAppNeedsItsConfigurationSecret(t *testing.T) {
	cfg, err := config.Parse("doctor.yaml", []byte(`
credentials: {nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}, prod: {role_arn: "arn:aws:iam::123456789012:role/p"}}
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    artifact: promote
    stages:
      alpha: {env_secret: web-alpha-env, deployments: [{name: web, containers: [web]}]}
  - name: api
    repo: acme/api
    codebuild_project: api
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api
    stages:
      alpha: {secret_id: api/alpha, deployments: [{name: api, containers: [api]}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Stage("alpha")
	var secrets []string
	for _, a := range needs(cfg, st) {
		if a.resource == "secrets" {
			secrets = append(secrets, a.verb+" "+a.name)
		}
	}
	if want := []string{"get web-alpha-env", "get api-env-key"}; !slices.Equal(secrets, want) {
		t.Errorf("secrets needed = %v, want %v", secrets, want)
	}
	if got := secretNames(cfg, st); !slices.Equal(got, []string{"web-alpha-env", "api-env-key"}) {
		t.Errorf("secretNames = %v", got)
	}
}
