package amazon

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stagecoach/stagecoach/config"
)

// TestFindBuildAfterTheIdempotencyWindow: an hour after a deploy's StartBuild, CodeBuild no
// longer knows its idempotency token and would start a second build; FindBuild finds the first
// one among the project's others by its environment and commit, through ListBuildsForProject
// (paged) and BatchGetBuilds, and finds none for a deploy that never started one.
func TestFindBuildAfterTheIdempotencyWindow(t *testing.T) {
	a, env := setup(t)
	clock := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	env.SetClock(func() time.Time { return clock })
	s := Session{Tier: "nonprod", Name: "stagecoach-hello-test-c4295bd"}
	ctx := context.Background()
	start := func(deployID int, sha string) string {
		t.Helper()
		id, err := a.StartBuild(ctx, s, BuildInput{Project: "hello", SourceVersion: sha, Buildspec: "b.yaml",
			IdempotencyToken: fmt.Sprintf("stagecoach-deploy-%d", deployID),
			Env:              map[string]string{"STAGECOACH_DEPLOY": fmt.Sprint(deployID), "COMMIT_SHA": sha}})
		if err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second)
		return id
	}
	before := clock
	start(1, "aaa")
	want := start(42, "c4295bd")
	for i := range 150 { // newer builds of other deploys: the one wanted is on the second page
		start(100+i, "bbb")
	}
	clock = clock.Add(time.Hour)
	q := BuildQuery{Project: "hello", SourceVersion: "c4295bd", Env: map[string]string{"STAGECOACH_DEPLOY": "42", "COMMIT_SHA": "c4295bd"}, Since: before}
	id, ok, err := a.FindBuild(ctx, s, q)
	if err != nil || !ok || id != want {
		t.Fatalf("FindBuild = %q, %v, %v; want %q", id, ok, err, want)
	}
	if n := len(env.Calls("ListBuildsForProject")); n != 2 {
		t.Errorf("ListBuildsForProject called %d times, want 2 pages", n)
	}
	for _, tt := range []struct {
		name string
		q    BuildQuery
	}{
		{"another deploy", BuildQuery{Project: "hello", SourceVersion: "c4295bd", Env: map[string]string{"STAGECOACH_DEPLOY": "43"}, Since: before}},
		{"another commit", BuildQuery{Project: "hello", SourceVersion: "ddd", Env: map[string]string{"STAGECOACH_DEPLOY": "42"}, Since: before}},
		{"started before the deploy", BuildQuery{Project: "hello", SourceVersion: "c4295bd", Env: map[string]string{"STAGECOACH_DEPLOY": "42"}, Since: clock}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if id, ok, err := a.FindBuild(ctx, s, tt.q); err != nil || ok {
				t.Errorf("FindBuild = %q, %v, %v; want none", id, ok, err)
			}
		})
	}
	if _, _, err := a.FindBuild(ctx, s, BuildQuery{Project: "hello", SourceVersion: "x", Since: before}); err != nil {
		t.Fatal(err)
	}
	if n := len(env.CodeBuild.Builds()); n != 152 {
		t.Errorf("%d builds: looking must start none", n)
	}
}

// TestPermanentTellsRefusalsFromFaults: what AWS refuses for good fails a deploy at once;
// throttling, server errors and an unreachable endpoint are retried.
func TestPermanentTellsRefusalsFromFaults(t *testing.T) {
	a, env := setup(t)
	env.CodeBuild.SetProjects("hello")
	ctx := context.Background()
	s := Session{Tier: "nonprod", Name: "stagecoach-hello-test-abc"}
	in := BuildInput{Project: "hello", SourceVersion: "abc", Buildspec: "b.yaml", IdempotencyToken: "t"}

	noRetries := env.Config()
	noRetries.RetryMaxAttempts = 1 // each fault reaches the caller
	direct := New(noRetries, config.Credentials{Nonprod: config.Tier{RoleARN: nonprodRole}})
	env.Throttle("codebuild", 1)
	_, throttled := direct.StartBuild(ctx, s, in)

	_, missing := a.StartBuild(ctx, s, BuildInput{Project: "nope", SourceVersion: "abc", Buildspec: "b.yaml", IdempotencyToken: "u"})
	denied := New(env.Config(), config.Credentials{Nonprod: config.Tier{RoleARN: "arn:aws:iam::123456789012:role/not-allowed"}})
	_, refused := denied.StartBuild(ctx, s, in)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	gone := env.Config()
	gone.BaseEndpoint, gone.RetryMaxAttempts = aws.String(closed), 1
	_, unreachable := New(gone, config.Credentials{}).StartBuild(ctx, s, in)

	for _, tt := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"throttled", throttled, false},
		{"no such project", missing, true},
		{"role not assumable", refused, true},
		{"connection refused", unreachable, false},
		{"not found", &NotFoundError{What: "image x", Where: "ECR", Tier: "nonprod"}, true},
		{"no error", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "no error" && tt.err == nil {
				t.Fatal("the call did not fail")
			}
			if got := Permanent(tt.err); got != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.permanent)
			}
		})
	}
}
