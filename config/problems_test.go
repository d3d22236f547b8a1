package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProblems checks the exact report for each bad file in testdata against its golden file
// (go test ./config/ -update rewrites them).
func TestProblems(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, noEnv)
			ps := problemsOf(t, err)
			got := ps.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
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
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
			for _, p := range ps {
				if p.Line == 0 || p.File != f {
					t.Errorf("problem without its file and line: %s", p)
				}
			}
		})
	}
}

// TestRules covers each validation rule with a file that breaks only it, and files that are
// close to breaking it but valid.
func TestRules(t *testing.T) {
	const creds = "credentials: {nonprod: {role_arn: \"arn:aws:iam::123456789012:role/n\"}, prod: {role_arn: \"arn:aws:iam::123456789012:role/p\"}}\n"
	const app = creds + `apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    stages:
      test: {secret_id: web/test, deployments: [{name: web, containers: [web]}]}
`
	tests := []struct {
		name, yaml string
		want       string // "" for valid, else "field: message" of the only problem, up to its end or "…"
	}{
		{"listen host and port", `listen: "127.0.0.1:9000"`, ""},
		{"listen IPv6", `listen: "[::1]:9000"`, ""},
		{"listen without colon", `listen: "9000"`, `listen: want host:port (e.g. ":8080"), got "9000"`},
		{"listen bad port", `listen: ":99999"`, `listen: port "99999" is not a number from 0 to 65535`},
		{"internal listen", `internal_listen: ":9090"`, ""},
		{"internal listen without colon", `internal_listen: "9090"`, `internal_listen: want host:port (e.g. "127.0.0.1:9090"), got "9090"`},
		{"internal listen on the public address", "listen: \":8080\"\ninternal_listen: \":8080\"", `internal_listen: must differ from listen (":8080")…`},
		{"unverified cap", `webhook: {max_unverified_mib: 256}`, ""},
		{"unverified cap too small", `webhook: {max_unverified_mib: 25}`, `webhook.max_unverified_mib: want at least 48…`},
		{"log level", `log_level: debug`, ""},
		{"bad log level", `log_level: verbose`, `log_level: want debug, info, warn or error, got "verbose"`},
		{"GHE api url", `github: {api_url: "https://ghe.example.com/api/v3/"}`, ""},
		{"relative api url", `github: {api_url: "/api/v3"}`, `github.api_url: want an absolute http(s) URL…`},
		{"app id without key", `github: {app_id: 5}`, `github: app_id and private_key_file go together…`},
		{"key without app id", `github: {private_key_file: /k.pem}`, `github: app_id and private_key_file go together…`},
		{"negative app id", `github: {app_id: -5, private_key_file: /k.pem}`, `github.app_id: must be positive, got -5`},
		{"postgres", `store: {postgres: "postgresql://u@db/x"}`, ""},
		{"postgres not a URL", `store: {postgres: "host=db user=u"}`, `store.postgres: want a postgres:// URL`},
		{"both stores", `store: {sqlite: a.db, postgres: "postgres://db/x"}`, `store: set sqlite or postgres, not both`},
		{"a URL for sqlite", `store: {sqlite: "mysql://db/x"}`, `store.sqlite: want a file path, got "mysql://db/x", which looks like a URL…`},
		{"china and govcloud roles", `credentials: {nonprod: {role_arn: "arn:aws-cn:iam::123456789012:role/a/b"}, prod: {role_arn: "arn:aws-us-gov:iam::123456789012:role/p"}}`, ""},
		{"user ARN", `credentials: {prod: {role_arn: "arn:aws:iam::123456789012:user/p"}}`, `credentials.prod.role_arn: want an IAM role ARN…`},
		{"external id without role", `credentials: {pr: {external_id: x}}`, `credentials.pr.external_id: an external_id needs a role_arn`},
		{"no roles without apps", `stages: [{name: qa, credentials: prod}]`, ""},
		{"role for a used tier", "stages: [{name: qa, credentials: prod}]\napps: [{name: web, repo: acme/web}]", `credentials.prod.role_arn: required: the prod tier is used by stage(s) qa`},
		{"stage name", `stages: [{name: qa_1, credentials: nonprod}]`, `stages[0].name: want lower-case letters…`},
		{"trigger", `stages: [{name: qa, branch: qa, trigger: tag, credentials: nonprod}]`, `stages[0].trigger: want merge, push or nothing…`},
		{"trigger without branch", `stages: [{name: qa, trigger: push, credentials: nonprod}]`, `stages[0].branch: a stage with trigger "push" needs a branch`},
		{"branch without trigger", `stages: [{name: qa, branch: qa, credentials: nonprod}]`, ""},
		{"shared branch", `stages: [{name: a, branch: main, credentials: nonprod}, {name: b, branch: main, credentials: prod}]`, `stages[1].branch: branch "main" is already stage "a"'s`},
		{"pr tier", `stages: [{name: qa, credentials: pr}]`, `stages[0].credentials: the pr tier is for pull-request builds only…`},
		{"unknown tier", `stages: [{name: qa, credentials: staging}]`, `stages[0].credentials: want nonprod or prod, got "staging"`},
		{"namespace", `stages: [{name: qa, credentials: nonprod, kubernetes: {namespace: QA}}]`, `stages[0].kubernetes.namespace: "QA" is not a valid Kubernetes namespace`},
		{"in cluster and kubeconfig", `stages: [{name: qa, credentials: nonprod, kubernetes: {in_cluster: true, kubeconfig: /k}}]`, `stages[0].kubernetes.in_cluster: in_cluster excludes kubeconfig and context`},
		{"team slug", `stages: [{name: qa, credentials: nonprod, promoters: {teams: [acme/leads, leads]}}]`, `stages[0].promoters.teams[1]: want org/team-slug, got "leads"`},
		{"login", `stages: [{name: qa, credentials: nonprod, promoters: {users: ["@alice"]}}]`, `stages[0].promoters.users[0]: want a GitHub login, got "@alice"`},
		{"app", app, ""},
		{"app without stages", creds + `apps: [{name: web, repo: acme/web}]`, ""},
		{"duplicate app", creds + `apps: [{name: web, repo: acme/web}, {name: web, repo: acme/web2}]`, `apps[1].name: app "web" is already defined at apps[0]`},
		{"repo", creds + `apps: [{name: web, repo: "https://github.com/acme/web"}]`, `apps[0].repo: want owner/name…`},
		{"ECR in China", strings.Replace(app, "eu-west-1.amazonaws.com", "cn-north-1.amazonaws.com.cn", 1), ""},
		{"image reference", strings.Replace(app, "repo: acme/web", "repo: acme/web\n    image_reference: latest", 1), `apps[0].image_reference: want digest or tag, got "latest"`},
		{"undefined stage", strings.Replace(app, "test:", "qa:", 1), `apps[0].stages.qa: no stage "qa" is defined (stages: dev, test, alpha, prod)`},
		{"deployment twice", strings.Replace(app, "{name: web, containers: [web]}", "{name: web, containers: [web]}, {name: web, containers: [x]}", 1), `apps[0].stages.test.deployments[1].name: Deployment "web" is listed twice`},
		{"container name", strings.Replace(app, "containers: [web]", "containers: [Web]", 1), `apps[0].stages.test.deployments[0].containers[0]: want a container name, got "Web"`},
		{"env key secret", strings.Replace(app, "secret_id:", "env_key_secret: Key, secret_id:", 1), `apps[0].stages.test.env_key_secret: want a Kubernetes Secret name, got "Key"`},
		{"promote from", `stages: [{name: a, credentials: nonprod}, {name: b, credentials: prod, promote_from: a}]`, ""},
		{"windows and a freeze", `stages: [{name: qa, credentials: nonprod, time_zone: Asia/Kolkata, windows: [{days: Fri-Mon, hours: "22:00-02:00"}, {days: daily, hours: "00:00-24:00"}], freezes: [{from: "2025-12-22T18:00:00+01:00", until: 2026-01-05, reason: holidays}]}]`, ""},
		{"time zone", `stages: [{name: qa, credentials: nonprod, time_zone: Mars/Olympus}]`, `stages[0].time_zone: unknown time zone "Mars/Olympus": want an IANA name…`},
		{"the host's zone", `stages: [{name: qa, credentials: nonprod, time_zone: Local}]`, `stages[0].time_zone: unknown time zone "Local"…`},
		{"window days", `stages: [{name: qa, credentials: nonprod, windows: [{days: weekdays, hours: "09:00-17:00"}]}]`, `stages[0].windows[0].days: unknown day "weekdays"…`},
		{"freeze without reason", `stages: [{name: qa, credentials: nonprod, freezes: [{from: 2025-12-22, until: 2025-12-23}]}]`, `stages[0].freezes[0].reason: required…`},
		{"freeze backwards", `stages: [{name: qa, credentials: nonprod, freezes: [{from: 2025-12-22, until: "2025-12-22 00:00", reason: x}]}]`, `stages[0].freezes[0].until: must be after from (2025-12-22), got 2025-12-22 00:00`},
		{"min soak", `stages: [{name: a, credentials: nonprod, min_soak: 90m}, {name: b, credentials: prod, promote_from: a}]`, ""},
		{"min soak with nothing after", `stages: [{name: a, credentials: nonprod, min_soak: 90m}]`, `stages[0].min_soak: no stage promotes from a…`},
		{"promote from nowhere", `stages: [{name: a, credentials: nonprod, promote_from: z}]`, `stages[0].promote_from: no stage "z" is defined (stages: a)`},
		{"promote from itself", `stages: [{name: a, credentials: nonprod, promote_from: a}]`, `stages[0].promote_from: a stage cannot promote from itself`},
		{"promotion circle", `stages: [{name: a, credentials: nonprod, promote_from: b}, {name: b, credentials: nonprod, promote_from: a}]`, `stages[0].promote_from: the promotion order goes round in a circle through a`},
		{"permission team", `stages: [{name: qa, credentials: nonprod, permissions: {rollback: {teams: [sre]}}}]`, `stages[0].permissions.rollback.teams[0]: want org/team-slug, got "sre"`},
		{"two slots", `stages: [{name: qa, credentials: nonprod, slots: [blue, green]}]`, ""},
		{"one slot", `stages: [{name: qa, credentials: nonprod, slots: [blue]}]`, `stages[0].slots: want two slots (the live one and the one to switch to), got 1`},
		{"same slot twice", `stages: [{name: qa, credentials: nonprod, slots: [blue, blue]}]`, `stages[0].slots[1]: slot "blue" is listed twice`},
		{"slot name", `stages: [{name: qa, credentials: nonprod, slots: [blue, Green]}]`, `stages[0].slots[1]: want a Kubernetes label value…`},
		{"slots need a service", strings.Replace(app, "credentials:", "stages: [{name: test, credentials: nonprod, slots: [a, b]}]\ncredentials:", 1), `apps[0].stages.test.deployments[0].service: required: stage test has slots (a, b)…`},
		{"slots with a service", strings.Replace(strings.Replace(app, "credentials:", "stages: [{name: test, credentials: nonprod, slots: [a, b]}]\ncredentials:", 1), "containers: [web]", "containers: [web], service: web", 1), ""},
		{"release tag pattern", `release: {tags: ["v[1-"]}`, `release.tags[0]: want a tag pattern such as v* or sprint-*, got "v[1-"`},
		{"release stage", `release: {stage: live}`, `release.stage: no stage "live" is defined (stages: dev, test, alpha, prod)`},
		{"release stage without an order", `stages: [{name: prod, credentials: prod}]` + "\n" + `release: {stage: prod}`, `release.stage: stage "prod" has no promote_from…`},
		{"pr builds need the pr tier", strings.Replace(app, "repo: acme/web", "repo: acme/web\n    pr_build: {enabled: true, codebuild_project: web-pr}", 1), `credentials.pr.role_arn: required: app web builds pull requests…`},
		{"pr builds with the pr tier", strings.Replace(strings.Replace(app, "repo: acme/web", "repo: acme/web\n    pr_build: {enabled: true, codebuild_project: web-pr}", 1), "credentials: {", `credentials: {pr: {role_arn: "arn:aws:iam::123456789012:role/pr"}, `, 1), ""},
		{"unknown author association", `commands: {author_associations: [OWNER, member]}`, `commands.author_associations[1]: want one of OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, FIRST_TIMER, MANNEQUIN, NONE, got "member"`},
		{"recovery interval", `recovery: {interval: 1s}`, `recovery.interval: want between 10s and 24h, got 1s`},
		{"recovery max age", `recovery: {max_age: 96h}`, `recovery.max_age: want a positive duration of at most 72h…`},
		{"recovery off", `recovery: {enabled: false, interval: 1m, max_age: 6h}`, ""},
		{"recovery enabled", `recovery: {enabled: maybe}`, `recovery.enabled: want true or false…`},
		{"retry budget", `pipeline: {retry_budget: 5s}`, `pipeline.retry_budget: must be at least 1m0s, got 5s: a shorter budget fails deploys on a brief outage`},
		{"short lease", `pipeline: {lease: 1s}`, `pipeline.lease: must be at least 2s, got 1s…`},
		{"long lease", `pipeline: {lease: 1h}`, `pipeline.lease: must be at most 10m0s, got 1h0m0s…`},
		{"durability set", `pipeline: {retry_budget: 1h, lease: 5s}` + "\n" + `retention: {deliveries: 168h, jobs: 24h, commands: 87600h}`, ""},
		{"deliveries kept too briefly", `retention: {deliveries: 24h}`, `retention.deliveries: must be at least 72h0m0s, got 24h0m0s: GitHub redelivers for three days…`},
		{"negative job retention", `retention: {jobs: -1h}`, `retention.jobs: must be at least 1h0m0s, got -1h0m0s`},
		{"negative rollout timeout", strings.Replace(app, "secret_id:", "rollout_timeout: -1m, secret_id:", 1), `apps[0].stages.test.rollout_timeout: must be positive, got -1m0s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("rules.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("want one problem, got:\n%v", ps)
			}
			got := ps[0].Field + ": " + ps[0].Message
			if prefix, cut := strings.CutSuffix(tt.want, "…"); cut && strings.HasPrefix(got, prefix) {
				return
			}
			if got != tt.want {
				t.Errorf("problem = %s\nwant      %s", got, tt.want)
			}
			if ps[0].Line != 1 && !strings.Contains(tt.yaml, "\n") {
				t.Errorf("problem on line %d of a one-line file", ps[0].Line)
			}
		})
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c := mustParse(t, `
stages:
  - &base {name: test, branch: master, trigger: merge, credentials: prod, kubernetes: &k {context: nonprod}}
  - <<: *base
    name: alpha
    branch: alpha
    kubernetes: *k
`)
	alpha := c.Stage("alpha")
	if alpha == nil || alpha.Credentials != "prod" || alpha.Trigger != TriggerMerge || alpha.Kubernetes.Context != "nonprod" || alpha.Kubernetes.Namespace != "alpha" {
		t.Errorf("alpha = %+v, want test's settings merged in", alpha)
	}

	_, err := Parse("merge.yaml", []byte(`
stages:
  - <<: {name: test,
         credentails: prod}
`))
	ps := problemsOf(t, err)
	if got := ps.Error(); !strings.Contains(got, `merge.yaml:4: stages[0]: unknown field "credentails" (did you mean "credentials"?)`) {
		t.Errorf("unknown key in a merged mapping:\n%s", got)
	}
}

// TestAliasBomb checks a file of nested aliases is refused, not expanded.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("stages: &a0 [{name: a}, {name: b}]\napps:\n")
	for i := 1; i <= 9; i++ {
		prev := strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9)
		fmt.Fprintf(&b, "  - &a%d [%s*a%d]\n", i, prev, i-1)
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	problemsOf(t, err)
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "c.yaml", Line: 3, Field: "stages[2].trigger", Message: "bad"}, "c.yaml:3: stages[2].trigger: bad"},
		{Problem{File: "c.yaml", Field: "stages", Message: "bad"}, "c.yaml: stages: bad"},
		{Problem{File: "c.yaml", Line: 1, Message: "bad"}, "c.yaml:1: bad"},
		{Problem{Field: "listen", Message: "bad"}, "listen: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
	ps := Problems{{File: "f", Line: 9, Message: "c"}, {File: "f", Line: 2, Message: "a"}, {File: "f", Line: 9, Message: "d"}, {File: "f", Line: 5, Message: "b"}}
	if got, want := ps.Error(), "f:2: a\nf:5: b\nf:9: c\nf:9: d"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if ps[0].Line != 9 {
		t.Error("Error() reordered the problems it was called on")
	}
}

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	if err := Check("example.yaml", noEnv, &out); err != nil || out.String() != "ok\n" {
		t.Errorf("Check(example.yaml) = %v, printed %q", err, out.String())
	}
	out.Reset()
	err := Check("testdata/many-problems.yaml", noEnv, &out)
	want, rerr := os.ReadFile("testdata/many-problems.golden")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil || out.String() != string(want) {
		t.Errorf("Check(many-problems.yaml) = %v, printed:\n%s\nwant:\n%s", err, out.String(), want)
	}
	out.Reset()
	if err := Check("testdata/nonexistent.yaml", noEnv, &out); err == nil || !strings.HasPrefix(out.String(), "testdata/nonexistent.yaml: reading configuration: ") {
		t.Errorf("Check(nonexistent) = %v, printed %q", err, out.String())
	}
}

// FuzzParse checks Parse never panics and returns either a configuration that validates or
// Problems, each with a message.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range append(seeds, "example.yaml", "local.yaml") {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("stages: [{name: x, trigger: push}]"))
	f.Add([]byte("stages: [&a {name: x}, *a, {<<: *a, name: y}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config Validate rejects: %v", verr)
			}
			return
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("Parse error is not Problems: %v", err)
		}
		for _, p := range ps {
			if p.Message == "" {
				t.Fatalf("problem without a message: %+v", p)
			}
		}
	})
}

// TestPullRequestBuildUnderTheDeployProjectIsRefused: a pull request's own code and buildspec
// must never run under the deploy project's service role (which reads the stage secrets and
// pushes release images), neither by default nor by naming it; check-config says why.
func TestPullRequestBuildUnderTheDeployProjectIsRefused(t *testing.T) {
	const base = `credentials:
  pr: {role_arn: "arn:aws:iam::123456789012:role/pr"}
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    pr_build: %s
`
	for _, tt := range []struct{ name, prBuild, want string }{
		{"no project of its own", "{enabled: true}", "apps[0].pr_build.codebuild_project: required: a pull request's build runs its own, unreviewed code"},
		{"the deploy project named", "{enabled: true, codebuild_project: web}", `apps[0].pr_build.codebuild_project: must differ from codebuild_project "web": the deploy project's role reads the stage secrets`},
		{"a project of its own", "{enabled: true, codebuild_project: web-pr}", ""},
		{"disabled", "{enabled: false}", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("pr.yaml", []byte(fmt.Sprintf(base, tt.prBuild)))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if app := cfg.App("web"); app.PRBuild.Enabled && app.PRBuild.CodeBuildProject == app.CodeBuildProject {
					t.Fatal("the pull-request build falls back to the deploy project")
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].Field+": "+ps[0].Message, tt.want) || ps[0].Line != 10 {
				t.Fatalf("problems = %v, want one on line 10 starting %q", ps, tt.want)
			}
		})
	}
}
