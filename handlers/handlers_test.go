package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// testConfig configures the fixtures' repository with the seed's stages.
const testConfig = `
github:
  app_id: 42
  private_key_file: /nonexistent/app.pem
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-prod"}
apps:
  - name: hello
    repo: Codertocat/Hello-World
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: hello/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: hello/prod, deployments: [{name: api, containers: [api]}]}
`

// TestConfig returns the configuration handler tests run against.
func mustConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("handlers_test.yaml", []byte(testConfig))
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	mergeSHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85" // pull_request_closed_merged.json
	pushSHA  = "6113728f27ae82c7b1a177c8d03f9e96e0adf246" // push.json
)

func TestHandlers(t *testing.T) {
	cfg := mustConfig(t)
	routes := map[string]Handler{}
	for _, h := range All(cfg) {
		for _, e := range h.Handles() {
			routes[e] = h
		}
	}
	tests := []struct {
		file, event string
		deploys     []deploy.Request
		jobKinds    []string
		jobKey      string // the first job's key, when jobs are expected
		ignored     string // substring of the reason, when nothing is expected
	}{
		{file: "pull_request_closed_merged.json", event: "pull_request", deploys: []deploy.Request{{
			App: "hello", Stage: "test", Repo: "Codertocat/Hello-World", SHA: mergeSHA, Ref: "master", InstallationID: 1,
			Trigger: deploy.Trigger{Event: "pull_request", Delivery: "d1", PR: 2, Actor: "Codertocat"},
		}}},
		{file: "pull_request_closed.json", event: "pull_request", ignored: "not merged"},
		{file: "pull_request_opened.json", event: "pull_request", ignored: "no app of Codertocat/Hello-World builds pull requests"},
		{file: "pull_request_synchronize.json", event: "pull_request", ignored: "no app of Codertocat/Hello-World builds pull requests"},
		{file: "pull_request_closed_merged_feature_branch.json", event: "pull_request", ignored: "no stage deploys on merge into feature-x"},
		{file: "push.json", event: "push", deploys: []deploy.Request{{
			App: "hello", Stage: "test", Repo: "Codertocat/Hello-World", SHA: pushSHA, Ref: "master", InstallationID: 1,
			Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "Codertocat"},
		}}},
		{file: "push_master_merge_commit.json", event: "push", deploys: []deploy.Request{{
			App: "hello", Stage: "test", Repo: "Codertocat/Hello-World", SHA: mergeSHA, Ref: "master", InstallationID: 1,
			Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "Codertocat"},
		}}},
		// alpha is guarded (promote_from test): the push is for the admission gate, not a deploy.
		{file: "push_alpha_forced.json", event: "push", jobKinds: []string{jobs.KindPush}, jobKey: jobs.PushKey("Codertocat/Hello-World", "alpha", pushSHA, "d1")},
		{file: "push_alpha_deleted.json", event: "push", ignored: "deleted"},
		{file: "push_tag.json", event: "push", jobKinds: []string{jobs.KindTagCreated}, jobKey: "tag:Codertocat/Hello-World:simple-tag:" + pushSHA},
		{file: "push_tag_release.json", event: "push", jobKinds: []string{jobs.KindTagCreated}, jobKey: "tag:Codertocat/Hello-World:v1.2.0:" + pushSHA},
		{file: "push_tag_deleted.json", event: "push", ignored: "deleted"},
		{file: "create_tag.json", event: "create", jobKinds: []string{jobs.KindTagCreated}, jobKey: "tag:Codertocat/Hello-World:simple-tag:create:d1"},
		{file: "issue_comment_created.json", event: "issue_comment", jobKinds: []string{jobs.KindComment}},
		{file: "issue_comment_created_on_pr.json", event: "issue_comment", jobKinds: []string{jobs.KindComment}},
		{file: "issue_comment_edited.json", event: "issue_comment", ignored: "only new comments"},
		{file: "issue_comment_created_by_bot.json", event: "issue_comment", ignored: "bot stagecoach[bot]"},
		{file: "check_run_requested_action_stagecoach.json", event: "check_run", jobKinds: []string{jobs.KindCheckRunAction}, jobKey: "check_run:d1"},
		{file: "check_run_rerequested_stagecoach.json", event: "check_run", jobKinds: []string{jobs.KindCheckRunAction}},
		{file: "check_run_requested_action.json", event: "check_run", ignored: "electron/electron is not configured"},
		{file: "installation_created.json", event: "installation", jobKinds: []string{jobs.KindInstallation}, jobKey: "installation:957387:d1"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := routes[tt.event].Handle(context.Background(), Event{Name: tt.event, Delivery: "d1", Payload: fixture(t, tt.file)})
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if !reflect.DeepEqual(res.Deploys, tt.deploys) {
				t.Errorf("deploys:\n got %+v\nwant %+v", res.Deploys, tt.deploys)
			}
			var kinds []string
			for _, j := range res.Jobs {
				kinds = append(kinds, j.Kind)
				if !json.Valid(j.Payload) {
					t.Errorf("job %s payload is not JSON: %s", j.Kind, j.Payload)
				}
			}
			if !reflect.DeepEqual(kinds, tt.jobKinds) {
				t.Errorf("job kinds = %v, want %v", kinds, tt.jobKinds)
			}
			if tt.jobKey != "" && (len(res.Jobs) == 0 || res.Jobs[0].Key != tt.jobKey) {
				t.Errorf("job key = %v, want %q", res.Jobs, tt.jobKey)
			}
			if tt.ignored != "" {
				if !res.Empty() || !strings.Contains(res.Ignored, tt.ignored) {
					t.Errorf("want ignored with %q, got %+v", tt.ignored, res)
				}
			} else if res.Empty() {
				t.Errorf("unexpectedly ignored: %s", res.Ignored)
			}
		})
	}
}

// TestPushToGuardedStageRecordsNoDeployBeforeItIsAdmitted: a push to alpha or prod is a job
// carrying who pushed what over what, for the admission gate; the handler asks for no deploy,
// so nothing queued for the stage can be superseded by it. Unguarded stages deploy at once.
func TestPushToGuardedStageRecordsNoDeployBeforeItIsAdmitted(t *testing.T) {
	h := &Push{cfg: mustConfig(t)}
	res, err := h.Handle(context.Background(), Event{Name: "push", Delivery: "d7", Payload: fixture(t, "push_alpha_forced.json")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deploys) != 0 || len(res.Jobs) != 1 {
		t.Fatalf("result = %+v, want one job and no deploy", res)
	}
	var p jobs.Push
	if err := json.Unmarshal(res.Jobs[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := jobs.Push{Repo: "Codertocat/Hello-World", InstallationID: 1, Stage: "alpha", Branch: "alpha", Before: p.Before, After: pushSHA,
		Forced: true, Pusher: "Codertocat", PusherType: "User", Event: "push", Delivery: "d7"}
	if p != want || len(p.Before) != 40 {
		t.Errorf("push job = %+v, want %+v", p, want)
	}
	merged, err := (&PullRequest{cfg: mustConfig(t)}).Handle(context.Background(),
		Event{Name: "pull_request", Delivery: "d8", Payload: fixture(t, "pull_request_closed_merged.json")})
	if err != nil || len(merged.Deploys) != 1 || len(merged.Jobs) != 0 {
		t.Errorf("a merge into master (test is not guarded) = %+v, %v; want its deploy", merged, err)
	}
	// A merge into a guarded merge stage's branch is decided by the gate too, as its merger's push.
	guarded, err := config.Parse("guarded.yaml", []byte(strings.Replace(testConfig, "apps:",
		"stages:\n  - {name: test, branch: master, trigger: merge, credentials: nonprod, promoters: {users: [qa-lead]}}\n"+
			"  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod}\n  - {name: prod, branch: prod, trigger: push, credentials: prod}\napps:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	merged, err = (&PullRequest{cfg: guarded}).Handle(context.Background(),
		Event{Name: "pull_request", Delivery: "d9", Payload: fixture(t, "pull_request_closed_merged.json")})
	if err != nil || len(merged.Deploys) != 0 || len(merged.Jobs) != 1 || merged.Jobs[0].Kind != jobs.KindPush {
		t.Fatalf("a merge into a guarded stage = %+v, %v; want one push job", merged, err)
	}
	var m jobs.Push
	if err := json.Unmarshal(merged.Jobs[0].Payload, &m); err != nil || m.Event != "pull_request" || m.PR != 2 || m.After != mergeSHA ||
		m.Pusher != "Codertocat" || m.Stage != "test" {
		t.Errorf("merge job = %+v, %v", m, err)
	}
}

func TestCommentPayload(t *testing.T) {
	h := &IssueComment{cfg: mustConfig(t)}
	res, err := h.Handle(context.Background(), Event{Name: "issue_comment", Delivery: "d9", Payload: fixture(t, "issue_comment_created_on_pr.json")})
	if err != nil {
		t.Fatal(err)
	}
	var c jobs.Comment
	if err := json.Unmarshal(res.Jobs[0].Payload, &c); err != nil {
		t.Fatal(err)
	}
	want := jobs.Comment{Repo: "Codertocat/Hello-World", InstallationID: 1, Issue: 1, IsPullRequest: true,
		CommentID: c.CommentID, Body: "/deploy alpha", Author: "Codertocat", AuthorType: "User", Association: "OWNER", Delivery: "d9"}
	if c.CommentID == 0 || c != want {
		t.Errorf("comment payload = %+v, want %+v", c, want)
	}
}

func TestUnconfiguredRepoIsIgnored(t *testing.T) {
	cfg := config.Default()
	for _, h := range All(cfg) {
		for _, tt := range []struct{ event, file string }{
			{"pull_request", "pull_request_closed_merged.json"}, {"merge_group", "merge_group_checks_requested.json"},
			{"push", "push.json"}, {"create", "create_tag.json"},
			{"issue_comment", "issue_comment_created.json"}, {"check_run", "check_run_rerequested_stagecoach.json"},
		} {
			if h.Handles()[0] != tt.event {
				continue
			}
			res, err := h.Handle(context.Background(), Event{Name: tt.event, Delivery: "d", Payload: fixture(t, tt.file)})
			if err != nil || !res.Empty() || !strings.Contains(res.Ignored, "not configured") {
				t.Errorf("%s: got %+v, %v; want ignored as not configured", tt.event, res, err)
			}
		}
	}
}

func TestMalformed(t *testing.T) {
	cfg := mustConfig(t)
	for _, h := range All(cfg) {
		for _, body := range []string{`{"action":`, `[]`, `{"installation":{"id":"x"}}`, `{"installation":{"id":1.5}}`} {
			t.Run(h.Handles()[0]+"/"+body, func(t *testing.T) {
				_, err := h.Handle(context.Background(), Event{Name: h.Handles()[0], Delivery: "d", Payload: []byte(body)})
				var m *MalformedError
				if !errors.As(err, &m) {
					t.Fatalf("got %v, want a *MalformedError", err)
				}
			})
		}
	}
}

func TestRegistrationIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, h := range All(mustConfig(t)) {
		for _, e := range h.Handles() {
			if seen[e] {
				t.Errorf("event %s registered twice", e)
			}
			seen[e] = true
		}
	}
	for _, e := range []string{"pull_request", "merge_group", "push", "create", "issue_comment", "check_run", "installation"} {
		if !seen[e] {
			t.Errorf("no handler for %s", e)
		}
	}
}

// TestPullRequestBuilds covers pull-request builds: asked for on opened, reopened and synchronize
// for apps that build pull requests, recorded under the pull request's own stage with the
// pr_build mode; a fork's pull request only where forks are allowed.
func TestPullRequestBuilds(t *testing.T) {
	const prSHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	build := []deploy.Request{{App: "hello", Stage: "pr#2", Repo: "Codertocat/Hello-World", SHA: prSHA, Ref: "changes",
		InstallationID: 1, Mode: deploy.ModePRBuild, Trigger: deploy.Trigger{Event: "pull_request", Delivery: "d1", PR: 2, Actor: "Codertocat"}}}
	fromFork := func(b []byte) []byte {
		return []byte(strings.Replace(string(b), `"full_name": "Codertocat/Hello-World"`, `"full_name": "mallory/Hello-World"`, 1))
	}
	reopened := func(b []byte) []byte {
		return []byte(strings.Replace(string(b), `"action": "opened"`, `"action": "reopened"`, 1))
	}
	same := func(b []byte) []byte { return b }
	tests := []struct {
		name, file string
		edit       func([]byte) []byte
		forks      bool
		want       []deploy.Request
		ignored    string
	}{
		{"opened", "pull_request_opened.json", same, false, build, ""},
		{"reopened", "pull_request_opened.json", reopened, false, build, ""},
		{"pushed to", "pull_request_synchronize.json", same, false, build, ""},
		{"from a fork", "pull_request_opened.json", fromFork, false, nil, "comes from the fork mallory/Hello-World, and hello does not build forks"},
		{"from a fork, allowed", "pull_request_opened.json", fromFork, true, build, ""},
		{"closed unmerged", "pull_request_closed.json", same, false, nil, "not merged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := strings.Replace(testConfig, "    codebuild_project: hello\n",
				fmt.Sprintf("    codebuild_project: hello\n    pr_build: {enabled: true, codebuild_project: hello-pr, forks: %v}\n", tt.forks), 1)
			yaml = strings.Replace(yaml, "credentials:\n", "credentials:\n  pr: {role_arn: \"arn:aws:iam::123456789012:role/stagecoach-pr\"}\n", 1)
			cfg, err := config.Parse("pr.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			h := &PullRequest{cfg: cfg}
			res, err := h.Handle(context.Background(), Event{Name: "pull_request", Delivery: "d1", Payload: tt.edit(fixture(t, tt.file))})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Deploys, tt.want) {
				t.Errorf("deploys:\n got %+v\nwant %+v", res.Deploys, tt.want)
			}
			if !strings.Contains(res.Ignored, tt.ignored) || (tt.ignored == "") != (res.Ignored == "") {
				t.Errorf("ignored = %q, want %q", res.Ignored, tt.ignored)
			}
		})
	}
}
