package handlers

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

const (
	groupSHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"                               // merge_group_checks_requested.json
	groupRef = "gh-readonly-queue/master/pr-2-6113728f27ae82c7b1a177c8d03f9e96e0adf246" // its branch
)

// prBuildConfig is the handlers' test configuration with hello building pull requests, and
// merge groups when mergeQueue.
func prBuildConfig(t *testing.T, mergeQueue bool) *config.Config {
	t.Helper()
	yaml := strings.Replace(testConfig, "    codebuild_project: hello\n",
		fmt.Sprintf("    codebuild_project: hello\n    pr_build: {enabled: true, codebuild_project: hello-pr, merge_queue: %v}\n", mergeQueue), 1)
	yaml = strings.Replace(yaml, "credentials:\n", "credentials:\n  pr: {role_arn: \"arn:aws:iam::123456789012:role/stagecoach-pr\"}\n", 1)
	cfg, err := config.Parse("mq.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPushToAMergeQueueBranchIsIgnored: GitHub's merge queue pushes each merge group it tests
// to a gh-readonly-queue/* branch. Such a commit was never merged; deploying it, or handing it
// to the gate as a push to a guarded stage, would ship what the queue may still throw away.
// The push is ignored and says why, even under a configuration that puts a stage on the branch
// (one made before check-config refused it, or built in code).
func TestPushToAMergeQueueBranchIsIgnored(t *testing.T) {
	plain := mustConfig(t)
	onQueue := mustConfig(t)
	for i := range onQueue.Stages {
		onQueue.Stages[i].Branch = groupRef // test (merge), alpha and prod (guarded) all on it
	}
	for name, cfg := range map[string]*config.Config{"seed stages": plain, "stages on the queue's branch": onQueue} {
		t.Run(name, func(t *testing.T) {
			res, err := (&Push{cfg: cfg}).Handle(context.Background(), Event{Name: "push", Delivery: "d1", Payload: fixture(t, "push_merge_queue.json")})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Deploys) != 0 || len(res.Jobs) != 0 {
				t.Errorf("a push to %s asked for %d deploys and %d jobs: %+v", groupRef, len(res.Deploys), len(res.Jobs), res)
			}
			if !strings.Contains(res.Ignored, "merge queue") || !strings.Contains(res.Ignored, groupRef) {
				t.Errorf("ignored = %q, want the merge queue named as the reason", res.Ignored)
			}
		})
	}
}

// TestMergeGroupChecksRequestedGetsThePRBuild: with pr_build.merge_queue, merge_group
// checks_requested asks for the pull-request build of the group's head commit (the pr tier, no
// deploy), under the queued pull request's stage; anything else asks for nothing and says why.
func TestMergeGroupChecksRequestedGetsThePRBuild(t *testing.T) {
	build := []deploy.Request{{App: "hello", Stage: "pr#2", Repo: "Codertocat/Hello-World", SHA: groupSHA, Ref: groupRef,
		InstallationID: 1, Mode: deploy.ModePRBuild, Trigger: deploy.Trigger{Event: "merge_group", Delivery: "d1", PR: 2, Actor: "Codertocat"}}}
	withRef := func(ref string) func([]byte) []byte {
		return func(b []byte) []byte { return []byte(strings.Replace(string(b), "refs/heads/"+groupRef, ref, 1)) }
	}
	same := func(b []byte) []byte { return b }
	tests := []struct {
		name, file string
		cfg        *config.Config
		edit       func([]byte) []byte
		want       []deploy.Request
		ignored    string
	}{
		{"merge queue builds", "merge_group_checks_requested.json", prBuildConfig(t, true), same, build, ""},
		{"pull requests only", "merge_group_checks_requested.json", prBuildConfig(t, false), same, nil, "no app of Codertocat/Hello-World builds merge groups"},
		{"no pull-request builds", "merge_group_checks_requested.json", mustConfig(t), same, nil, "builds merge groups"},
		{"destroyed", "merge_group_destroyed.json", prBuildConfig(t, true), same, nil, "merge group destroyed"},
		{"a base with slashes", "merge_group_checks_requested.json", prBuildConfig(t, true),
			withRef("refs/heads/gh-readonly-queue/release/1.x/pr-17-6113728f27ae82c7b1a177c8d03f9e96e0adf246"),
			[]deploy.Request{{App: "hello", Stage: "pr#17", Repo: "Codertocat/Hello-World", SHA: groupSHA,
				Ref: "gh-readonly-queue/release/1.x/pr-17-6113728f27ae82c7b1a177c8d03f9e96e0adf246", InstallationID: 1, Mode: deploy.ModePRBuild,
				Trigger: deploy.Trigger{Event: "merge_group", Delivery: "d1", PR: 17, Actor: "Codertocat"}}}, ""},
		{"not a queue's ref", "merge_group_checks_requested.json", prBuildConfig(t, true), withRef("refs/heads/master"), nil, "is not a merge queue's"},
		{"no pull request in the ref", "merge_group_checks_requested.json", prBuildConfig(t, true), withRef("refs/heads/gh-readonly-queue/master/pr-x-1"), nil, "is not a merge queue's"},
		{"unconfigured repository", "merge_group_checks_requested.json", config.Default(), same, nil, "not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := (&MergeGroup{cfg: tt.cfg}).Handle(context.Background(), Event{Name: "merge_group", Delivery: "d1", Payload: tt.edit(fixture(t, tt.file))})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Deploys, tt.want) || len(res.Jobs) != 0 {
				t.Errorf("deploys:\n got %+v (jobs %v)\nwant %+v", res.Deploys, res.Jobs, tt.want)
			}
			if !strings.Contains(res.Ignored, tt.ignored) || (tt.ignored == "") != (res.Ignored == "") {
				t.Errorf("ignored = %q, want %q", res.Ignored, tt.ignored)
			}
		})
	}
}
