package release

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const repo = "acme/hello"

const testConfig = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test}
  - {name: prod, branch: prod, trigger: push, credentials: prod, promote_from: alpha, promoters: {users: [po], teams: [acme/product-owners]}}
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: hello/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: hello/prod, deployments: [{name: api, containers: [api]}]}
`

var (
	shaA = strings.Repeat("a", 40) // on prod
	shaB = strings.Repeat("b", 40) // merged PR #2
	shaC = strings.Repeat("c", 40) // squashed PR #3, on alpha
	shaD = strings.Repeat("d", 40) // never on alpha
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type world struct {
	t   *testing.T
	gh  *githubtest.Server
	st  *store.Store
	w   *Workflow
	now time.Time
}

func newWorld(t *testing.T) *world { t.Helper(); return newWorldWith(t, testConfig) }

// newWorldWith is newWorld on another configuration.
func newWorldWith(t *testing.T, text string) *world {
	t.Helper()
	cfg, err := config.Parse("release_test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	gh := githubtest.New(t)
	gh.AddCommit(repo, shaA, nil, "Initial release", 0)
	gh.AddCommit(repo, shaB, []string{shaA}, "Merge pull request #2 from alice/login\n\nAdd the login page", 2)
	gh.AddCommit(repo, shaC, []string{shaB}, "Fix the header on small screens (#3)", 3)
	gh.AddCommit(repo, shaD, []string{shaC}, "Work in progress", 0)
	f, err := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "release.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, gh: gh, st: st, now: t0}
	st.Now = func() time.Time { return w.now }
	w.w = New(st, f, cfg, "https://github.com", slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.w.now = func() time.Time { return w.now }
	return w
}

// ran records a deploy of sha to stage that ended in state, taking took.
func (w *world) ran(stage, sha, actor string, state deploy.State, took time.Duration, trigger deploy.Trigger) deploy.Deploy {
	w.t.Helper()
	ctx := context.Background()
	if trigger.Event == "" {
		trigger = deploy.Trigger{Event: "push", Delivery: fmt.Sprintf("seed-%s-%s", stage, sha[:3]), Actor: actor}
	}
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "hello", Stage: stage, Repo: repo, SHA: sha, Ref: stage, InstallationID: 1, Trigger: trigger}})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, st := range []deploy.State{deploy.Preflight, state} {
		if st == deploy.Preflight {
			defer func(start time.Time) { w.now = start.Add(took) }(w.now)
		}
		d, l, err := w.st.ClaimDeploy(ctx, "seed", time.Minute)
		if err != nil || d.ID != rd[0].ID {
			w.t.Fatalf("seeding: claimed %d, %v", d.ID, err)
		}
		if st != deploy.Preflight {
			w.now = w.now.Add(took)
		}
		u := store.Update{State: st, Release: true}
		if st == deploy.RolledBack {
			u.Error = "rolled back: api: progress deadline exceeded"
		}
		if err := w.st.Advance(ctx, l, u); err != nil {
			w.t.Fatal(err)
		}
	}
	d, _ := w.st.Deploy(ctx, rd[0].ID)
	return d
}

func (w *world) tag(tag, sha string, annotated bool) {
	w.t.Helper()
	w.gh.CreateTag(repo, tag, sha, "lead", annotated)
	w.heard(tag, "create")
}

// heard runs the job a tag's create or push event (how) records.
func (w *world) heard(tag, how string) {
	w.t.Helper()
	payload, _ := json.Marshal(jobs.Tag{Repo: repo, InstallationID: 1, Tag: tag, Actor: "lead", Delivery: "d-" + tag})
	j := jobs.Job{Kind: jobs.KindTagCreated, Key: "tag:" + repo + ":" + tag + ":" + how, Payload: payload}
	if err := w.w.Tags().Run(context.Background(), j); err != nil {
		w.t.Fatalf("tag %s: %v", tag, err)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".md")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestReleaseTagOpensAnIssue: a release tag on the commit that succeeded on alpha opens one
// labelled issue with the changelog against prod (the label made first) and a release check run
// with a Promote button; hearing of the tag again (its push after its create) makes nothing more.
func TestReleaseTagOpensAnIssue(t *testing.T) {
	for _, annotated := range []bool{false, true} {
		t.Run(fmt.Sprintf("annotated=%v", annotated), func(t *testing.T) {
			w := newWorld(t)
			w.ran("prod", shaA, "po", deploy.Succeeded, 4*time.Minute, deploy.Trigger{})
			w.now = w.now.Add(48 * time.Hour)
			w.ran("test", shaC, "alice", deploy.Succeeded, 3*time.Minute, deploy.Trigger{})
			w.ran("alpha", shaC, "lead", deploy.Succeeded, 3*time.Minute+12*time.Second, deploy.Trigger{})
			w.now = w.now.Add(20 * time.Minute)
			w.tag("v1.2.0", shaC, annotated)
			w.heard("v1.2.0", "push") // the push of the same tag, after its create
			issues := w.gh.Issues(repo)
			if len(issues) != 1 || issues[0].Title != "Release v1.2.0" || len(issues[0].Labels) != 1 || issues[0].Labels[0] != "release" {
				t.Fatalf("issues = %+v", issues)
			}
			if w.gh.Count("issues/create-label") != 1 {
				t.Errorf("the release label was not created once")
			}
			golden(t, "issue", issues[0].Body)
			var runs []githubtest.CheckRun
			for _, r := range w.gh.CheckRuns(repo) {
				if r.Name == CheckName {
					runs = append(runs, r)
				}
			}
			if len(runs) != 1 || runs[0].HeadSHA != shaC || runs[0].Conclusion != "success" || len(runs[0].Actions) != 1 ||
				runs[0].Actions[0].Identifier != jobs.ActionPromote || runs[0].Actions[0].Label != "Promote to prod" {
				t.Fatalf("release check runs = %+v", runs)
			}
			golden(t, "checkrun-ready", runs[0].Title+"\n\n"+runs[0].Summary)
			rel, err := w.st.ReleaseByIssue(context.Background(), repo, issues[0].Number)
			if err != nil || rel.State != store.ReleaseOpen || rel.SHA != shaC || rel.CheckRunID != runs[0].ID {
				t.Errorf("release = %+v, %v", rel, err)
			}
		})
	}
}

// TestTagsThatOpenNothing: a tag on a commit that never succeeded on alpha gets a check run
// saying why, and no issue; a tag that matches no release pattern gets nothing at all.
func TestTagsThatOpenNothing(t *testing.T) {
	w := newWorld(t)
	w.ran("alpha", shaC, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.tag("v1.3.0", shaD, false)
	w.tag("nightly-2026-12-01", shaC, false)
	if issues := w.gh.Issues(repo); len(issues) != 0 {
		t.Errorf("issues = %+v, want none", issues)
	}
	runs := w.gh.CheckRuns(repo)
	if len(runs) != 1 || runs[0].HeadSHA != shaD || runs[0].Conclusion != "failure" || len(runs[0].Actions) != 0 {
		t.Fatalf("check runs = %+v, want one failure on the untested commit", runs)
	}
	golden(t, "checkrun-refused", runs[0].Title+"\n\n"+runs[0].Summary)
}

// TestPromotionEnds: once the promotion's deploys end, the release issue is closed with a
// summary and a new release check run says the tag is live; or, when the deploy failed, the
// issue stays open with the reason and what the rollback did.
func TestPromotionEnds(t *testing.T) {
	for _, tt := range []struct {
		name  string
		state deploy.State
	}{{"shipped", deploy.Succeeded}, {"failed", deploy.RolledBack}} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.ran("alpha", shaC, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
			w.tag("v1.2.0", shaC, false)
			issue := w.gh.Issues(repo)[0].Number
			rel, _ := w.st.ReleaseByIssue(context.Background(), repo, issue)
			rel.State, rel.PromotedBy = store.ReleasePromoting, "po"
			if err := w.st.UpdateRelease(context.Background(), rel); err != nil {
				t.Fatal(err)
			}
			d := w.ran("prod", shaC, "po", tt.state, 4*time.Minute+2*time.Second,
				deploy.Trigger{Event: "issue_comment", Delivery: "promote-1", Actor: "po", Issue: issue, Comment: 77})
			payload, _ := json.Marshal(jobs.ReleaseUpdate{Repo: repo, InstallationID: 1, Issue: issue, Delivery: "promote-1", DeployID: d.ID})
			if err := w.w.Updates().Run(context.Background(), jobs.Job{Kind: jobs.KindReleaseUpdate, Payload: payload}); err != nil {
				t.Fatal(err)
			}
			comments := w.gh.Comments(repo, issue)
			if len(comments) != 1 {
				t.Fatalf("comments = %+v", comments)
			}
			golden(t, "comment-"+tt.name, comments[0].Body)
			got, _ := w.st.ReleaseByIssue(context.Background(), repo, issue)
			state := w.gh.Issues(repo)[0].State
			switch tt.state {
			case deploy.Succeeded:
				if state != "closed" || got.State != store.ReleaseShipped || got.ShippedAt.IsZero() {
					t.Errorf("issue %s, release %+v: want closed and shipped", state, got)
				}
				runs := w.gh.CheckRuns(repo)
				if last := runs[len(runs)-1]; last.Name != CheckName || last.Title != "v1.2.0 is live on prod" || len(last.Actions) != 0 || got.CheckRunID != last.ID {
					t.Errorf("newest release check run = %+v", last)
				}
			default:
				if state != "open" || got.State != store.ReleaseFailed || !strings.Contains(got.Reason, "progress deadline") {
					t.Errorf("issue %s, release %+v: want open and failed", state, got)
				}
			}
		})
	}
}

// TestTheOtherEventWaits: a tag's create and push events each bring a job, and they may run at
// once. The one that claims the release opens it; the other, finding it claimed while still
// opening, leaves it alone instead of opening a second issue.
func TestTheOtherEventWaits(t *testing.T) {
	w := newWorld(t)
	w.ran("alpha", shaC, "lead", deploy.Succeeded, time.Minute, deploy.Trigger{})
	w.gh.CreateTag(repo, "v1.2.0", shaC, "lead", false)
	rel, _, err := w.st.CreateRelease(context.Background(), store.Release{Repo: repo, Tag: "v1.2.0", SHA: shaC, InstallationID: 1, State: store.ReleaseOpening})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := w.st.ClaimRelease(context.Background(), rel.ID, "tag:"+repo+":v1.2.0:create", shaC); err != nil || !ok {
		t.Fatalf("claim = %v, %v", ok, err)
	}
	w.heard("v1.2.0", "push") // runs while the create's job is still opening it
	if issues := w.gh.Issues(repo); len(issues) != 0 {
		t.Fatalf("the push's job opened %+v while the create's job held the release", issues)
	}
	w.heard("v1.2.0", "create") // the create's job (its retry) goes on
	if issues := w.gh.Issues(repo); len(issues) != 1 {
		t.Fatalf("issues = %+v, want exactly one", issues)
	}
}
