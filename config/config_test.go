package config

import (
	"errors"
	"flag"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// mustParse parses a configuration the test expects to be valid.
func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return c
}

// problemsOf returns the Problems err holds, failing the test when it holds none.
func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		t.Fatalf("error = %v, want Problems", err)
	}
	return ps
}

func TestExample(t *testing.T) {
	c, err := Load("example.yaml", noEnv)
	if err != nil {
		t.Fatalf("example.yaml:\n%v", err)
	}
	// The example's stages are the seed's, in order.
	seed := SeedStages()
	if len(c.Stages) != len(seed) {
		t.Fatalf("example has %d stages, the seed %d", len(c.Stages), len(seed))
	}
	for i, s := range seed {
		got := c.Stages[i]
		if got.Name != s.Name || got.Branch != s.Branch || got.Trigger != s.Trigger || got.Credentials != s.Credentials || got.Kubernetes.Namespace != s.Name {
			t.Errorf("example stage %d = %+v, want the seed's %+v", i, got, s)
		}
	}
	apps := c.AppsForRepo("acme/maas-backend")
	if len(c.Apps) != 2 || len(apps) != 1 || apps[0].Name != "maas-backend" || !c.App("maas-api").Promotes() {
		t.Fatalf("example apps = %+v, want maas-backend from acme/maas-backend, and maas-api promoting its digest", c.Apps)
	}
	for _, stage := range []string{"test", "alpha", "prod"} {
		as, ok := apps[0].Stages[stage]
		if !ok {
			t.Errorf("maas-backend has no stage %s", stage)
			continue
		}
		var deps []string
		for _, d := range as.Deployments {
			deps = append(deps, d.Name)
		}
		if as.Buildspec != "buildspec-eks.yaml" || as.SecretID != "maas-backend/"+stage || !slices.Equal(deps, []string{"api", "worker"}) {
			t.Errorf("maas-backend on %s = %+v", stage, as)
		}
	}
}

// TestExampleShowsEveryKey keeps example.yaml complete: every yaml key of the Go types, at its
// place in the tree, must be a key in the example (a mention in a comment does not count).
func TestExampleShowsEveryKey(t *testing.T) {
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	shownKeys(doc.Content[0], reflect.TypeFor[Config](), "", shown)
	want := map[string]bool{}
	schemaKeys(reflect.TypeFor[Config](), "", want)
	if len(want) < 30 {
		t.Fatalf("only %d keys found by reflection: %v", len(want), want)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		if !shown[k] {
			t.Errorf("example.yaml does not show %s", k)
		}
	}
}

// schemaKeys lists the key paths of t: a list's items are "[]", a map's values "*".
func schemaKeys(t reflect.Type, prefix string, out map[string]bool) {
	switch t.Kind() {
	case reflect.Slice:
		schemaKeys(t.Elem(), prefix+"[]", out)
	case reflect.Map:
		schemaKeys(t.Elem(), prefix+".*", out)
	case reflect.Struct:
		for name, f := range yamlFields(t) {
			out[prefix+"."+name] = true
			schemaKeys(f.Type, prefix+"."+name, out)
		}
	}
}

// shownKeys lists the key paths n has, as schemaKeys names them.
func shownKeys(n *yaml.Node, t reflect.Type, prefix string, out map[string]bool) {
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			shownKeys(item, t.Elem(), prefix+"[]", out)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			shownKeys(n.Content[i], t.Elem(), prefix+".*", out)
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := fields[n.Content[i].Value]; ok {
				out[prefix+"."+n.Content[i].Value] = true
				shownKeys(n.Content[i+1], f.Type, prefix+"."+n.Content[i].Value, out)
			}
		}
	}
}

func TestShippedConfigsAreValid(t *testing.T) {
	for _, f := range []string{"example.yaml", "local.yaml"} {
		t.Run(f, func(t *testing.T) {
			if _, err := Load(f, noEnv); err != nil {
				t.Errorf("%s:\n%v", f, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	for name, c := range map[string]*Config{"Default": Default(), "empty file": mustParse(t, ""), "comment only": mustParse(t, "# nothing\n")} {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err != nil {
				t.Fatalf("defaults invalid: %v", err)
			}
			want := []struct {
				name, branch string
				trigger      Trigger
				tier         string
			}{
				{"dev", "", TriggerNone, "nonprod"},
				{"test", "master", TriggerMerge, "nonprod"},
				{"alpha", "alpha", TriggerPush, "nonprod"},
				{"prod", "prod", TriggerPush, "prod"},
			}
			if len(c.Stages) != len(want) {
				t.Fatalf("stages = %+v", c.Stages)
			}
			for i, w := range want {
				s := c.Stages[i]
				if s.Name != w.name || s.Branch != w.branch || s.Trigger != w.trigger || s.Credentials != w.tier || s.Kubernetes.Namespace != w.name {
					t.Errorf("stage %d = %+v, want %+v", i, s, w)
				}
			}
			if c.Listen != ":8080" || c.LogLevel != "info" || c.Store.DSN() != "sqlite:stagecoach.db" ||
				c.GitHub.APIURL != "https://api.github.com/" || c.GitHub.Configured() ||
				!c.Recovery.On() || c.Recovery.Interval != 5*time.Minute || c.Recovery.MaxAge != 24*time.Hour {
				t.Errorf("defaults = %+v", c)
			}
		})
	}
}

func TestAppDefaults(t *testing.T) {
	c := mustParse(t, `
github: {api_url: "https://ghe.example.com/api/v3"}
credentials: {nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}}
stages: [{name: qa, credentials: nonprod}]
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    stages:
      qa: {secret_id: web/qa, deployments: [{name: web, containers: [web]}]}
`)
	as := c.Apps[0].Stages["qa"]
	if as.Buildspec != "buildspec.yaml" || as.EnvKeySecret != "web-env-key" || as.RolloutTimeout.String() != "10m0s" || c.Apps[0].ImageReference != "digest" {
		t.Errorf("app stage defaults = %+v", as)
	}
	if c.Stage("qa").Kubernetes.Namespace != "qa" || c.Stage("dev") != nil {
		t.Errorf("stages = %+v, want only qa, in namespace qa", c.Stages)
	}
	if c.GitHub.APIURL != "https://ghe.example.com/api/v3/" {
		t.Errorf("api_url = %q, want a trailing slash added", c.GitHub.APIURL)
	}
}

func TestLookups(t *testing.T) {
	c := mustParse(t, `
credentials: {nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}, prod: {role_arn: "arn:aws:iam::123456789012:role/p"}}
apps:
  - {name: api, repo: Acme/Monorepo}
  - {name: web, repo: acme/monorepo}
  - {name: other, repo: acme/other}
`)
	names := func(apps []*App) []string {
		var out []string
		for _, a := range apps {
			out = append(out, a.Name)
		}
		return out
	}
	if got := names(c.AppsForRepo("ACME/monorepo")); !slices.Equal(got, []string{"api", "web"}) {
		t.Errorf("AppsForRepo(ACME/monorepo) = %v", got)
	}
	if got := c.AppsForRepo("acme/none"); len(got) != 0 {
		t.Errorf("AppsForRepo(acme/none) = %v", names(got))
	}
	if c.App("web") == nil || c.App("nope") != nil {
		t.Error("App lookup")
	}
	if s := c.Stage("alpha"); s == nil || s.Branch != "alpha" {
		t.Errorf("Stage(alpha) = %+v", s)
	}
	if c.Stage("staging") != nil {
		t.Error("Stage(staging) is not nil")
	}
	for branch, want := range map[string][]string{"master": {"test"}, "prod": {"prod"}, "": nil, "feature": nil} {
		var got []string
		for _, s := range c.StagesOnBranch(branch) {
			got = append(got, s.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("StagesOnBranch(%q) = %v, want %v", branch, got, want)
		}
	}
	for _, tier := range []string{"pr", "nonprod", "prod", "staging"} {
		got, ok := c.Credentials.Tier(tier)
		want, _ := map[string]Tier{"pr": c.Credentials.PR, "nonprod": c.Credentials.Nonprod, "prod": c.Credentials.Prod}[tier]
		if ok != (tier != "staging") || got != want {
			t.Errorf("Tier(%q) = %+v, %v", tier, got, ok)
		}
	}
	if c.Credentials.Prod.RoleARN != "arn:aws:iam::123456789012:role/p" {
		t.Errorf("prod tier = %+v", c.Credentials.Prod)
	}
}
