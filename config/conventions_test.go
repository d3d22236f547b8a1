package config

import (
	"strings"
	"testing"
)

const conventionsApp = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
  pr: {role_arn: "arn:aws:iam::123456789012:role/pr"}
apps:
  - name: web
    repo: acme/web
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    pr_build: PRBUILD
    stages:
      test: {secret_id: web/test, deployments: [{name: web, containers: [web]}], environment_url: URL}
`

// TestConventionRules covers environment_url and pr_build.merge_queue: each file breaks only
// the rule named, or is close to breaking it and valid.
func TestConventionRules(t *testing.T) {
	const enabled = "{enabled: true, codebuild_project: web-pr}"
	tests := []struct {
		name, prBuild, url string
		want               string // "" for valid, else "field: message" of the only problem, up to "…"
	}{
		{"an https URL", enabled, `"https://test.web.acme.dev/"`, ""},
		{"with a port and path", enabled, `"https://web.acme.dev:8443/test/?tab=1"`, ""},
		{"none", enabled, `""`, ""},
		{"plain http", enabled, `"http://test.web.acme.dev/"`, `apps[0].stages.test.environment_url: want an https URL (GitHub links it on every Deployment), got scheme "http"…`},
		{"javascript", enabled, `"javascript:alert(1)"`, `apps[0].stages.test.environment_url: want an https URL (GitHub links it on every Deployment), got scheme "javascript"…`},
		{"no scheme", enabled, `"test.web.acme.dev"`, `apps[0].stages.test.environment_url: want an https URL (GitHub links it on every Deployment), got scheme ""…`},
		{"no host", enabled, `"https:///test"`, `apps[0].stages.test.environment_url: want an absolute https URL with a host, got "https:///test"`},
		{"credentials in it", enabled, `"https://u:secret@test.web.acme.dev/"`, `apps[0].stages.test.environment_url: must not carry a user name or password: everyone who can read the repository sees it`},
		{"a fragment", enabled, `"https://test.web.acme.dev/#top"`, `apps[0].stages.test.environment_url: want a URL without a #fragment…`},
		{"a quote", enabled, `"https://test.web.acme.dev/\"><b>"`, `apps[0].stages.test.environment_url: want a URL without spaces, quotes or angle brackets…`},
		{"too long", enabled, `"https://test.web.acme.dev/` + strings.Repeat("a", 2000) + `"`, `apps[0].stages.test.environment_url: want at most 2000 characters…`},
		{"merge queue builds", "{enabled: true, codebuild_project: web-pr, merge_queue: true}", `""`, ""},
		{"merge queue without pr builds", "{merge_queue: true}", `""`, `apps[0].pr_build.merge_queue: builds merge groups as pull requests are built: it needs pr_build.enabled…`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := strings.NewReplacer("PRBUILD", tt.prBuild, "URL", tt.url).Replace(conventionsApp)
			_, err := Parse("conventions.yaml", []byte(yaml))
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
			if prefix, cut := strings.CutSuffix(tt.want, "…"); !(cut && strings.HasPrefix(got, prefix)) && got != tt.want {
				t.Errorf("problem = %s\nwant      %s", got, tt.want)
			}
			if ps[0].Line == 0 {
				t.Errorf("problem without its line: %s", ps[0])
			}
		})
	}
}

// TestEnvironmentURLPasswordIsNeverEchoed: check-config prints its problems to a terminal and
// CI logs; a password someone put in environment_url must not be printed with them.
func TestEnvironmentURLPasswordIsNeverEchoed(t *testing.T) {
	yaml := strings.NewReplacer("PRBUILD", "{}", "URL", `"https://deploy:hunter2@test.web.acme.dev/"`).Replace(conventionsApp)
	_, err := Parse("conventions.yaml", []byte(yaml))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("problems = %v; want one that does not repeat the password", err)
	}
}

// TestStageOnAMergeQueueBranchIsRefused: a branch under gh-readonly-queue/ holds a merge group
// the queue is still testing; a stage deploying from it would deploy what was never merged.
func TestStageOnAMergeQueueBranchIsRefused(t *testing.T) {
	for _, branch := range []string{"gh-readonly-queue/main/pr-7-" + strings.Repeat("a", 40), "gh-readonly-queue/main"} {
		_, err := Parse("q.yaml", []byte("stages: [{name: qa, branch: \""+branch+"\", trigger: push, credentials: nonprod}]"))
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Field != "stages[0].branch" || !strings.Contains(ps[0].Message, "merge queue") {
			t.Errorf("branch %s: problems = %v", branch, ps)
		}
	}
	if MergeQueueBranch("main") || MergeQueueBranch("gh-readonly-queued") || !MergeQueueBranch("refs/heads/gh-readonly-queue/main/pr-1-a") {
		t.Error("MergeQueueBranch misjudges a branch")
	}
}
