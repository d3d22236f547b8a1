package config

import (
	"strings"
	"testing"
)

// TestArtifactRules: artifact is build (the default) or promote; promote runs digests, needs
// each stage's configuration Secret named and no stage secret for a build; a stage's own image
// repository only means something to promote.
func TestArtifactRules(t *testing.T) {
	const app = `credentials: {nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}, prod: {role_arn: "arn:aws:iam::210987654321:role/p"}}
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    artifact: promote
    stages:
      test: {env_secret: web-test-env, deployments: [{name: web, containers: [web]}]}
      prod: {env_secret: web-prod-env, image_repository: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/web, deployments: [{name: web, containers: [web]}]}
`
	build := strings.NewReplacer("    artifact: promote\n", "", "env_secret: web-test-env", "secret_id: web/test",
		"env_secret: web-prod-env, image_repository: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/web", "secret_id: web/prod").Replace(app)
	for _, tt := range []struct{ name, yaml, want string }{
		{"promote", app, ""},
		{"build by default", build, ""},
		{"build said", strings.Replace(build, "repo: acme/web", "repo: acme/web\n    artifact: build", 1), ""},
		{"unknown artifact", strings.Replace(app, "artifact: promote", "artifact: rebuild", 1), `apps[0].artifact: want build (each stage builds its own image) or promote (build once, promote the digest), got "rebuild"`},
		{"promote by tag", strings.Replace(app, "artifact: promote", "artifact: promote\n    image_reference: tag", 1), `apps[0].image_reference: artifact: promote runs exactly the digest that was tested…`},
		{"promote without a stage's Secret", strings.Replace(app, "env_secret: web-prod-env, ", "", 1), `apps[0].stages.prod.env_secret: required with artifact: promote…`},
		{"promote with a stage secret", strings.Replace(app, "env_secret: web-test-env", "env_secret: web-test-env, secret_id: web/test", 1), `apps[0].stages.test.secret_id: not used with artifact: promote…`},
		{"promote with a bad Secret name", strings.Replace(app, "web-test-env", "web_test_env", 1), `apps[0].stages.test.env_secret: want a Kubernetes Secret name, got "web_test_env"`},
		{"stage repository without promote", strings.Replace(build, "secret_id: web/prod", "secret_id: web/prod, image_repository: 210987654321.dkr.ecr.eu-west-1.amazonaws.com/web", 1), `apps[0].stages.prod.image_repository: only artifact: promote runs a stage's images from a repository of its own…`},
		{"bad stage repository", strings.Replace(app, "210987654321.dkr.ecr.eu-west-1.amazonaws.com/web", "docker.io/web", 1), `apps[0].stages.prod.image_repository: want an ECR repository…`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("artifact.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				if a := c.App("web"); a.Promotes() && (a.Repository("prod") != "210987654321.dkr.ecr.eu-west-1.amazonaws.com/web" || a.Repository("test") != a.ImageRepository) {
					t.Errorf("repositories: test %s, prod %s", a.Repository("test"), a.Repository("prod"))
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("want one problem, got:\n%v", ps)
			}
			got := ps[0].Field + ": " + ps[0].Message
			if prefix, cut := strings.CutSuffix(tt.want, "…"); !(cut && strings.HasPrefix(got, prefix)) && got != tt.want {
				t.Errorf("problem = %s\nwant      %s", got, tt.want)
			}
			if ps[0].Line == 0 {
				t.Errorf("problem without its line: %s", ps[0])
			}
		})
	}
}
