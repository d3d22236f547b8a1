package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoServer is the server configuration of testdata/repo: acme/web builds web and worker,
// acme/payments builds payments.
func repoServer(t *testing.T) *Config {
	t.Helper()
	c, err := Load("testdata/repo/server.yaml", noEnv)
	if err != nil {
		t.Fatalf("testdata/repo/server.yaml: %v", err)
	}
	return c
}

// readRepoFile reads testdata/repo/<name>.yml as acme/web's .github/stagecoach.yml.
func readRepoFile(t *testing.T, c *Config, name string) ([]App, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/repo", name+".yml"))
	if err != nil {
		t.Fatal(err)
	}
	return c.ParseRepoFile("acme/web", RepoFilePath, data)
}

// TestRepoFileProblems checks what each repository file in testdata/repo makes, read as acme/web's
// against testdata/repo/server.yaml, with its golden file: every problem, or "ok" and the
// effective apps (go test ./config/ -update rewrites them).
func TestRepoFileProblems(t *testing.T) {
	c := repoServer(t)
	files, err := filepath.Glob("testdata/repo/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yml")
		t.Run(name, func(t *testing.T) {
			apps, err := readRepoFile(t, c, name)
			var got string
			var ps Problems
			switch {
			case errors.As(err, &ps):
				got = ps.Error() + "\n"
				for _, p := range ps {
					if p.File != RepoFilePath || p.Line == 0 {
						t.Errorf("problem without the repository file and its line: %s", p)
					}
				}
			case err != nil:
				t.Fatal(err)
			default:
				b, err := yaml.Marshal(apps)
				if err != nil {
					t.Fatal(err)
				}
				got = "ok\n" + string(b)
			}
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// wantRefused asserts that reading the repository file refuses it with, among its problems,
// each of want (a "line: field: message" prefix after the file's name).
func wantRefused(t *testing.T, name string, want ...string) {
	t.Helper()
	apps, err := readRepoFile(t, repoServer(t), name)
	if apps != nil {
		t.Errorf("the file was taken: %+v", apps)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error = %v, want Problems", err)
	}
	for _, w := range want {
		if !slices.ContainsFunc(ps, func(p Problem) bool { return strings.HasPrefix(p.String(), RepoFilePath+":"+w) }) {
			t.Errorf("no problem %s:%s…; got:\n%s", RepoFilePath, w, ps.Error())
		}
	}
}

// A repository that names itself (or anyone) the promoters of a stage is refused where it
// tries: who may promote is the operators'.
func TestRepoFileNamingItselfPromotersIsRefused(t *testing.T) {
	wantRefused(t, "names-promoters", "2: stages: only the server's configuration sets this")
}

// A repository's file cannot configure another repository's app, nor move its own app to
// another repository.
func TestRepoFileClaimingAnotherRepositoryIsRefused(t *testing.T) {
	wantRefused(t, "another-repo",
		`3: apps[0].name: app "payments" is built from acme/payments, not acme/web`,
		"7: apps[1].repo: only the server's configuration sets this")
}

// A repository cannot give itself a credentials tier, nor read another team's prod secret
// through a key it was not allowed.
func TestRepoFileGrantingItselfProdCredentialsIsRefused(t *testing.T) {
	wantRefused(t, "prod-credentials",
		"2: credentials: only the server's configuration sets this",
		"9: apps[0].stages.prod.secret_id: not allowed")
}

// Image repositories, fork builds and the allowed overrides themselves are never a
// repository's, even under a key it may set, and a key it was not allowed is refused.
func TestRepoFileTakingOperatorKeysIsRefused(t *testing.T) {
	wantRefused(t, "operator-keys",
		"4: apps[0].image_repository: only the server's configuration sets this",
		"5: apps[0].allowed_overrides: only the server's configuration sets this",
		"6: apps[0].codebuild_project: not allowed",
		"9: apps[0].pr_build.forks: only the server's configuration sets this")
}

// Deploying an app to a stage the server's file does not deploy it to needs stages.<stage>.
func TestRepoFileAddingAStageNeedsItsOverride(t *testing.T) {
	wantRefused(t, "new-stages",
		"5: apps[0].stages.dev: app web does not deploy to dev",
		"8: apps[1].stages.alpha.secret_id: required",
		"10: apps[1].stages.staging: no stage \"staging\" is defined")
}

// What a file may set replaces the server's value; the rest stays the server's.
func TestRepoFileMergesOverTheServer(t *testing.T) {
	c := repoServer(t)
	apps, err := readRepoFile(t, c, "valid")
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].Name != "web" || apps[1].Name != "worker" {
		t.Fatalf("apps = %+v, want web and worker", apps)
	}
	web := apps[0]
	if got := web.Stages["test"]; got.Buildspec != "ci/test.yml" || got.SecretID != "web/test" || len(got.Deployments) != 2 || got.EnvKeySecret != "web-env-key" {
		t.Errorf("web test = %+v, want the file's buildspec and Deployments, the server's secret and the default env key", got)
	}
	if web.PRBuild.Buildspec != "ci/pr.yml" || web.PRBuild.CodeBuildProject != "web-pr" || !web.PRBuild.Enabled {
		t.Errorf("web pr_build = %+v", web.PRBuild)
	}
	if web.ImageRepository != c.Apps[0].ImageRepository || web.CodeBuildProject != "web" {
		t.Errorf("web's operator keys changed: %+v", web)
	}
	if s, ok := apps[1].Stages["alpha"]; !ok || s.SecretID != "worker/alpha" || s.Buildspec != "buildspec.yaml" {
		t.Errorf("worker alpha = %+v, want the stage the file adds, defaulted", s)
	}
	if c.Apps[0].Stages["test"].Buildspec != "buildspec.yaml" || len(c.Apps[0].Stages["test"].Deployments) != 1 {
		t.Errorf("reading a file changed the server's apps: %+v", c.Apps[0].Stages["test"])
	}
}

// A repository whose apps allow no override is not read, unless repo_config.enabled says
// every served repository is; an unserved repository never is.
func TestRepoConfigOn(t *testing.T) {
	const apps = `credentials: {nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}, prod: {role_arn: "arn:aws:iam::123456789012:role/p"}}
apps:
  - {name: web, repo: acme/web, allowed_overrides: ["stages.*.buildspec"]}
  - {name: api, repo: acme/web}
  - {name: payments, repo: acme/payments}
`
	tests := []struct {
		name, repoConfig string
		want             []string
	}{
		{"an app allows an override", "", []string{"acme/web"}},
		{"every app allows the default's", "repo_config: {allowed_overrides: [pr_build]}\n", []string{"acme/web", "acme/payments"}},
		{"enabled", "repo_config: {enabled: true}\n", []string{"acme/web", "acme/payments"}},
		{"disabled", "repo_config: {enabled: false}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.repoConfig+apps)
			if got := c.RepoConfigRepos(); !slices.Equal(got, tt.want) {
				t.Errorf("RepoConfigRepos = %v, want %v", got, tt.want)
			}
			if c.RepoConfigOn("acme/other") {
				t.Error("an unserved repository's file would be read")
			}
			if got := c.RepoConfigOn("ACME/WEB"); got != slices.Contains(tt.want, "acme/web") {
				t.Errorf("RepoConfigOn is not case-insensitive: %v", got)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		key, path string
		want      bool
	}{
		{"stages.*.buildspec", "stages.test.buildspec", true},
		{"stages.*.buildspec", "stages.test.secret_id", false},
		{"stages.test.buildspec", "stages.prod.buildspec", false},
		{"stages.*", "stages.prod.deployments.containers", true},
		{"stages", "stages.prod", true},
		{"pr_build", "pr_build.buildspec", true},
		{"pr_build.buildspec", "pr_build", false},
		{"codebuild_project", "pr_build.codebuild_project", false},
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.path, func(t *testing.T) {
			if got := allows(tt.key, tt.path); got != tt.want {
				t.Errorf("allows(%q, %q) = %v, want %v", tt.key, tt.path, got, tt.want)
			}
		})
	}
}

// The example repository file is one the example server configuration takes.
func TestExampleRepoFile(t *testing.T) {
	c, err := Load("example.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("example-repo.yml")
	if err != nil {
		t.Fatal(err)
	}
	apps, err := c.ParseRepoFile("acme/maas-backend", RepoFilePath, data)
	if err != nil {
		t.Fatalf("example-repo.yml:\n%v", err)
	}
	if got := apps[0].Stages["test"]; len(got.Deployments) != 3 || got.Buildspec != "ci/buildspec-eks.yaml" || got.SecretID != "maas-backend/test" {
		t.Errorf("test = %+v", got)
	}
}
