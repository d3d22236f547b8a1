package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// RepoConfig is how repositories describe their own apps: a file, RepoFilePath, on each
// repository's default branch, in which a repository may set the keys of its apps that the
// server's configuration allows it to (allowed_overrides), and nothing else. Who may promote,
// credentials tiers, clusters, which repositories are served and which apps each has stay the
// operators', in the server's file.
type RepoConfig struct {
	// Enabled reads every served repository's file. Default: on for the repositories of the apps
	// that allow an override (a repository whose apps allow none has nothing to set).
	Enabled *bool `yaml:"enabled"`
	// AllowedOverrides are the keys every app's repository may set, unless the app lists its
	// own (apps[].allowed_overrides). Default none.
	AllowedOverrides []string `yaml:"allowed_overrides"`
	// Refresh is how often every repository's file is read again even when no push changed it
	// (default 1h): what catches a push GitHub never delivered. A read of an unchanged file is
	// a conditional request (ETag), which GitHub does not count against the rate limit.
	Refresh time.Duration `yaml:"refresh"`
}

// RepoFilePath is where a repository's own configuration lives, on its default branch.
const RepoFilePath = ".github/stagecoach.yml"

// MaxRepoFileBytes bounds a repository's file: larger ones are refused unread.
const MaxRepoFileBytes = 64 << 10

// The keys of an app allowed_overrides may name. A key allows everything under it ("pr_build"
// allows pr_build.enabled, pr_build.codebuild_project and pr_build.buildspec); <stage> is a
// stage's name or * for every stage, and allowing stages.<stage> lets the file add the stage to
// the app. Each is a privilege: see docs/configuration.md ("What each override lets a
// repository do").
var (
	overridableApp   = []string{"codebuild_project", "image_reference", "pr_build", "pr_build.enabled", "pr_build.codebuild_project", "pr_build.buildspec", "stages"}
	overridableStage = []string{"buildspec", "secret_id", "deployments", "env_key_secret", "rollout_timeout"}
	// neverOverridable are the keys no allowed_overrides can hand a repository, and why.
	neverOverridable = map[string]string{
		"name":              "it names the app, which is the operators' to add",
		"repo":              "which repository an app is built from is the operators' choice",
		"image_repository":  "where release images are pushed is the operators' choice",
		"pr_build.forks":    "whether code from forks runs is the operators' choice",
		"allowed_overrides": "a repository cannot widen what it may set",
	}
	// serverOnly says why each top-level key of the server's file is not a repository's.
	serverOnly = map[string]string{
		"stages":      "the stages, who may promote to them, their credentials tiers and clusters are the operators'",
		"credentials": "the AWS credentials tiers are the operators'",
		"release":     "where releases go is the operators' choice",
		"commands":    "who may command Stagecoach is the operators' choice",
		"repo_config": "a repository cannot widen what it may set",
	}
	listIndex = regexp.MustCompile(`\[\d+\]`)
)

// RepoConfigOn reports whether Stagecoach reads repo's own file (RepoFilePath): repo is served,
// and repo_config.enabled says so or, unset, one of repo's apps allows an override.
func (c *Config) RepoConfigOn(repo string) bool {
	if c.RepoConfig.Enabled != nil && !*c.RepoConfig.Enabled {
		return false
	}
	served := false
	for i := range c.Apps {
		a := &c.Apps[i]
		if !strings.EqualFold(a.Repo, repo) {
			continue
		}
		served = true
		if len(c.Overrides(a)) > 0 {
			return true
		}
	}
	return served && c.RepoConfig.Enabled != nil
}

// RepoConfigRepos lists the repositories whose own file Stagecoach reads, each once, in the
// order of the server file's apps.
func (c *Config) RepoConfigRepos() []string {
	var out []string
	for _, a := range c.Apps {
		if c.RepoConfigOn(a.Repo) && !slices.ContainsFunc(out, func(r string) bool { return strings.EqualFold(r, a.Repo) }) {
			out = append(out, a.Repo)
		}
	}
	return out
}

// Overrides are the keys of app its repository's file may set: the app's allowed_overrides,
// else repo_config.allowed_overrides.
func (c *Config) Overrides(app *App) []string {
	if len(app.AllowedOverrides) > 0 {
		return app.AllowedOverrides
	}
	return c.RepoConfig.AllowedOverrides
}

// allows reports whether the override key (a dotted path of allowed_overrides) covers path, a
// key of an app in a repository's file with list positions left out.
func allows(key, path string) bool {
	k, p := strings.Split(key, "."), strings.Split(path, ".")
	if len(k) > len(p) {
		return false
	}
	for i := range k {
		if k[i] != p[i] && !(i == 1 && k[0] == "stages" && k[i] == "*") {
			return false
		}
	}
	return true
}

// repoConfig checks repo_config and every allowed_overrides.
func (v *validator) repoConfig() {
	if r := v.c.RepoConfig.Refresh; r < time.Minute || r > 24*time.Hour {
		v.add("repo_config.refresh", "want between 1m and 24h, got %s", r)
	}
	v.overrideKeys("repo_config.allowed_overrides", v.c.RepoConfig.AllowedOverrides)
	for i, a := range v.c.Apps {
		v.overrideKeys(fmt.Sprintf("apps[%d].allowed_overrides", i), a.AllowedOverrides)
	}
}

// overrideKeys checks that each key is one a repository may be allowed to set.
func (v *validator) overrideKeys(field string, keys []string) {
	for i, key := range keys {
		f := fmt.Sprintf("%s[%d]", field, i)
		if why, never := neverOverridable[key]; never {
			v.add(f, "%s can never be a repository's to set: %s", key, why)
			continue
		}
		parts := strings.Split(key, ".")
		switch {
		case slices.Contains(overridableApp, key):
		case parts[0] == "stages" && (len(parts) == 2 || len(parts) == 3 && slices.Contains(overridableStage, parts[2])):
			if parts[1] != "*" && v.c.Stage(parts[1]) == nil {
				v.add(f, "no stage %q is defined (stages: %s; * is every stage)", parts[1], v.stageNames())
			}
		default:
			v.add(f, "want one of %s, stages.<stage> or stages.<stage>.{%s} (<stage> may be *), got %q",
				strings.Join(overridableApp, ", "), strings.Join(overridableStage, ","), key)
		}
	}
}
