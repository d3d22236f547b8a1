package chatops

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

	"github.com/google/go-github/v88/github"
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
  - {name: dev, credentials: nonprod}
  - {name: test, branch: master, trigger: merge, credentials: nonprod}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test, promoters: {users: [lead]}}
  - name: prod
    branch: prod
    trigger: push
    credentials: prod
    promote_from: alpha
    promoters: {users: [po], teams: [acme/product-owners]}
    permissions: {lock: {teams: [acme/sre]}}
    slots: [prod, prod-backup]
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      dev: {secret_id: hello/dev, deployments: [{name: api, containers: [api]}]}
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: hello/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: hello/prod, deployments: [{name: api, containers: [api], service: api}]}
`

// Commits of the test repository.
var (
	shaA = strings.Repeat("a", 40)
	shaB = strings.Repeat("b", 40)
	shaC = strings.Repeat("c", 40)
)

type world struct {
	t    *testing.T
	gh   *githubtest.Server
	st   *store.Store
	cfg  *config.Config
	x    *Executor
	woke int
	now  time.Time
}

func newWorld(t *testing.T) *world { t.Helper(); return newWorldWith(t, testConfig) }

// newWorldWith is newWorld on another configuration.
func newWorldWith(t *testing.T, text string) *world {
	t.Helper()
	cfg, err := config.Parse("chatops_test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	gh := githubtest.New(t)
	gh.AddCommit(repo, shaA, nil, "first", 0)
	gh.AddCommit(repo, shaB, []string{shaA}, "Merge pull request #2 from acme/login\n\nAdd login", 2)
	gh.AddCommit(repo, shaC, []string{shaB}, "Fix the header (#3)", 3)
	gh.SetRef(repo, "master", shaC)
	gh.SetRef(repo, "alpha", shaA)
	gh.SetRef(repo, "prod", shaA)
	gh.SetTeamMember("acme", "product-owners", "pat")
	gh.SetTeamMember("acme", "sre", "sam")
	gh.SetPermission(repo, "dev", "write")
	gh.SetPermission(repo, "root", "admin")
	gh.SetPermission(repo, "guest", "read")
	gh.SetPermission(repo, "lead", "maintain")
	gh.SetPermission(repo, "po", "triage") // named a promoter, so a collaborator: commands from outside are not read
	f, err := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	// Issues #1 to #9 to comment on.
	c, _ := f.Installation(1)
	for i := 1; i <= 9; i++ {
		if _, _, err := c.Issues.Create(context.Background(), "acme", "hello", &github.IssueRequest{Title: github.Ptr(fmt.Sprintf("issue %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "chatops.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, gh: gh, st: st, cfg: cfg, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	st.Now = func() time.Time { return w.now }
	st.OnCommit(store.WakeDeploys, func() { w.woke++ }) // the store wakes the pipeline
	w.x = New(st, f, Options{Config: cfg, WebURL: "https://github.com",
		Now: func() time.Time { return w.now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return w
}

// live records a successful deploy of sha to stage, as the pipeline would leave it.
func (w *world) live(stage, sha, actor string, cp deploy.Checkpoint) deploy.Deploy {
	w.t.Helper()
	ctx := context.Background()
	r := deploy.Request{App: "hello", Stage: stage, Repo: repo, SHA: sha, Ref: stage, InstallationID: 1,
		Trigger: deploy.Trigger{Event: "push", Delivery: fmt.Sprintf("seed-%s-%s-%d", stage, sha[:3], time.Now().UnixNano()), Actor: actor}}
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{r})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, state := range []deploy.State{deploy.Preflight, deploy.Succeeded} {
		d, l, err := w.st.ClaimDeploy(ctx, "seed", time.Minute)
		if err != nil || d.ID != rd[0].ID {
			w.t.Fatalf("seeding %s on %s: claimed %d, %v", deploy.ShortSHA(sha), stage, d.ID, err)
		}
		if err := w.st.Advance(ctx, l, store.Update{State: state, Checkpoint: mustJSON(w.t, cp), Release: true}); err != nil {
			w.t.Fatal(err)
		}
	}
	d, _ := w.st.Deploy(ctx, rd[0].ID)
	return d
}

// release records an open release of sha tagged tag, whose issue is issue, and the tag on GitHub.
func (w *world) release(tag, sha string, issue int) store.Release {
	w.t.Helper()
	ctx := context.Background()
	w.gh.SetRef(repo, "tags/"+tag, sha)
	rel, _, err := w.st.CreateRelease(ctx, store.Release{Repo: repo, Tag: tag, SHA: sha, InstallationID: 1, State: store.ReleaseOpen})
	if err != nil {
		w.t.Fatal(err)
	}
	rel.Issue = issue
	if err := w.st.UpdateRelease(ctx, rel); err != nil {
		w.t.Fatal(err)
	}
	return rel
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// say has user comment body on issue and runs the comment job; it returns Stagecoach's answer.
func (w *world) say(issue int, user, body string) string {
	w.t.Helper()
	id := w.gh.Comment(repo, issue, user, body)
	payload := mustJSON(w.t, jobs.Comment{Repo: repo, InstallationID: 1, Issue: issue, CommentID: id, Body: body, Author: user,
		AuthorType: "User", Association: w.gh.AuthorAssociation(repo, user), Delivery: fmt.Sprintf("delivery-%d", id)})
	if err := w.x.Comments().Run(context.Background(), jobs.Job{Kind: jobs.KindComment, Payload: payload}); err != nil {
		w.t.Fatalf("%s %q: %v", user, body, err)
	}
	var reacted bool
	var answer string
	for _, c := range w.gh.Comments(repo, issue) {
		if c.ID == id {
			reacted = len(c.Reactions) == 1 && c.Reactions[0] == "eyes"
		}
		if c.ID > id && c.User == "" {
			answer = c.Body
		}
	}
	if !reacted && answer != "" && !strings.Contains(answer, "There is no stage") {
		w.t.Errorf("%s %q: no 👀 on the command", user, body)
	}
	return answer
}

// TestRefusals: every command Stagecoach will not carry out gets a reply that says why (and who
// may, when it is about who), and changes nothing.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world)
		user  string
		body  string
		want  string
	}{
		{"not a promoter", nil, "dev", "/promote prod",
			"@dev may not promote to prod: only @po and members of @acme/product-owners may."},
		{"a reader without named promoters", nil, "guest", "/deploy dev " + shaA,
			"@guest may not deploy to dev: only people with write access to acme/hello may."},
		{"force by a promoter who is no admin", nil, "po", `/promote prod --force "hotfix"`,
			"@po may not promote to prod with `--force`: only admins of acme/hello may skip the stage order."},
		{"nothing on test to promote", nil, "lead", "/promote alpha",
			"**test** has no successful deploy of hello yet, so there is nothing to promote to **alpha**."},
		{"promote to a first stage", nil, "dev", "/promote test",
			"Nothing is promoted to **test**: no stage comes before it (it deploys on merges to `master`)."},
		{"stage order", func(w *world) { w.live("alpha", shaA, "lead", deploy.Checkpoint{}) }, "po", "/deploy prod " + shaB,
			"`bbbbbbb` has not succeeded on **alpha**, and **prod** takes only commits that did (the stage order: test → alpha → prod)."},
		{"no branch to deploy", nil, "dev", "/deploy dev",
			"**dev** has no branch, so say what to deploy: `/deploy dev <branch, tag or sha>`."},
		{"unknown ref", nil, "dev", "/deploy test nosuchbranch", "There is no branch, tag or commit `nosuchbranch` in acme/hello, so nothing was deployed."},
		{"nothing deployed yet", nil, "dev", "/rollback dev", "Nothing was deployed to **dev** yet, so there is nothing to roll back."},
		{"nothing earlier", func(w *world) { w.live("test", shaA, "dev", deploy.Checkpoint{}) }, "dev", "/rollback test",
			"**test** has no earlier successful deploy of hello than `aaaaaaa`, so there is nothing to roll back to."},
		{"the other slot never ran", func(w *world) { w.live("prod", shaA, "po", deploy.Checkpoint{Slot: "prod"}) }, "po", "/rollback prod",
			"Slot prod-backup of **prod** has never run a successful deploy of hello, so there is nothing to switch back to."},
		{"locked by someone else", func(w *world) { w.say(1, "sam", "/lock prod migrating the database") }, "po", "/deploy prod " + shaA,
			"**prod** is locked by @sam since Dec 1 12:00 UTC: `migrating the database`, so it takes no commands but theirs."},
		{"lock held already", func(w *world) { w.say(1, "sam", "/lock prod") }, "pat", "/lock prod", "@pat may not lock prod"},
		{"not locked", nil, "sam", "/unlock prod", "**prod** is not locked."},
		{"unlock without the right", func(w *world) { w.say(1, "sam", "/lock prod") }, "po", "/unlock prod",
			"@po may not unlock prod (locked by @sam): only members of @acme/sre may."},
		{"already live", func(w *world) {
			w.live("test", shaC, "dev", deploy.Checkpoint{})
			w.live("alpha", shaC, "lead", deploy.Checkpoint{})
		}, "lead", "/promote alpha", "hello already runs `ccccccc` (live on test) on **alpha**"},
		{"unknown stage", nil, "dev", "/deploy staging", "There is no stage `staging`. The stages are `dev`, `test`, `alpha`, `prod`."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			if tt.setup != nil {
				tt.setup(w)
			}
			before, _ := w.st.ListDeploys(context.Background(), store.Filter{})
			got := w.say(7, tt.user, tt.body)
			if !strings.HasPrefix(got, "@"+tt.user+" ") || !strings.Contains(got, tt.want) {
				t.Errorf("answer = %q\nwant it to contain %q", got, tt.want)
			}
			after, _ := w.st.ListDeploys(context.Background(), store.Filter{})
			if len(after) != len(before) {
				t.Errorf("a refused command recorded %d deploy(s)", len(after)-len(before))
			}
			if sha, _ := w.gh.Ref(repo, "prod"); sha != shaA {
				t.Errorf("prod moved to %s", sha)
			}
			cmds, _ := w.st.Commands(context.Background(), repo, 1)
			if len(cmds) != 1 || cmds[0].Outcome != "refused" || cmds[0].Reason == "" {
				t.Errorf("audit trail = %+v, want the refusal and its reason", cmds)
			}
		})
	}
}

// TestPromoteAlpha: /promote alpha by a lead moves alpha to what runs on test with a forced ref
// update, records one held deploy, answers in the comment its progress will be reported in,
// and only then releases the deploy. A retry of the same job asks for nothing twice.
func TestPromoteAlpha(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	got := w.say(5, "lead", "Tested, looks good.\n/promote alpha")
	if want := "@lead ⏳ promoting `ccccccc` (live on test) to **alpha**: `alpha` now points at `ccccccc`. Progress follows in this comment.\n\n<!-- stagecoach:reply comment:acme/hello:1001 -->"; got != want {
		t.Errorf("answer = %q\nwant     %q", got, want)
	}
	if sha, _ := w.gh.Ref(repo, "alpha"); sha != shaC {
		t.Errorf("alpha points at %s, want %s", sha, shaC)
	}
	ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "alpha"})
	if len(ds) != 1 {
		t.Fatalf("alpha deploys = %+v", ds)
	}
	d := ds[0]
	if d.SHA != shaC || d.Held || d.State != deploy.Queued || d.Trigger.Event != "issue_comment" || d.Trigger.Actor != "lead" ||
		d.Trigger.Issue != 5 || d.CommentID == 0 || d.Nonce != "" {
		t.Errorf("deploy = %+v", d)
	}
	if w.woke == 0 {
		t.Error("the pipeline was not woken")
	}
	// The push GitHub sends for the moved branch finds the same deploy.
	rec, err := w.st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: "push-alpha", Event: "push"},
		Deploys: []deploy.Request{{App: "hello", Stage: "alpha", Repo: repo, SHA: shaC, Ref: "alpha", Trigger: deploy.Trigger{Event: "push", Actor: "stagecoach[bot]"}}}})
	if err != nil || rec.Deploys[0].New || rec.Deploys[0].ID != d.ID {
		t.Errorf("the promotion's push = %+v, %v; want deploy %d", rec, err, d.ID)
	}
	if n := w.gh.Count("git/update-ref"); n != 1 {
		t.Errorf("%d ref updates, want 1", n)
	}
}

// TestLockHoldsAndUnlockReleases: a lock answers with what it does, holds the stage for other
// people's commands, passes its owner's, and /unlock wakes the queue.
func TestLockHoldsAndUnlockReleases(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaC, "lead", deploy.Checkpoint{})
	w.release("v1.0.0", shaC, 1)
	if got := w.say(1, "sam", "/lock prod release freeze"); !strings.Contains(got, "🔒 locked **prod**: `release freeze`") {
		t.Errorf("lock answer = %q", got)
	}
	locks, _ := w.st.StageLocks(context.Background())
	if len(locks) != 1 || locks[0].Owner != "sam" || locks[0].Reason != "release freeze" {
		t.Fatalf("locks = %+v", locks)
	}
	if got := w.say(1, "po", "/promote prod"); !strings.Contains(got, "locked by @sam") {
		t.Errorf("promote while locked = %q", got)
	}
	w.woke = 0
	if got := w.say(1, "sam", "/unlock prod"); !strings.Contains(got, "🔓 unlocked **prod**") {
		t.Errorf("unlock answer = %q", got)
	}
	if w.woke == 0 {
		t.Error("unlocking did not wake the pipeline")
	}
	if got := w.say(1, "po", "/promote prod"); !strings.Contains(got, "promoting `v1.0.0` (`ccccccc`) to **prod**") {
		t.Errorf("promote after unlock = %q", got)
	}
}

// TestGolden pins the replies people read most: /status and /help.
func TestGolden(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaB, "lead", deploy.Checkpoint{})
	w.live("prod", shaA, "po", deploy.Checkpoint{Slot: "prod-backup"})
	w.say(1, "sam", "/lock prod db migration")
	// /help for each kind of person: the reply lists what that person may run.
	for _, tt := range []struct{ name, user, body string }{{"status", "dev", "/status"},
		{"help-reader", "guest", "/help"}, {"help-developer", "dev", "/help"}, {"help-promoter", "lead", "/help"},
		{"help-product-owner", "po", "/help"}, {"help-admin", "root", "/help"}} {
		t.Run(tt.name, func(t *testing.T) {
			w.now = w.now.Add(3 * time.Hour)
			got := w.say(9, tt.user, tt.body)
			golden := filepath.Join("testdata", tt.name+".md")
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
				t.Errorf("%s:\n%s\nwant:\n%s", tt.name, got, want)
			}
		})
	}
}

// TestAHeldDeployIsCarriedThrough: a promotion whose command never finished (its job failed for
// good after recording the deploy held) is not stuck: the same command given again carries that
// deploy through instead of answering that it is queued.
func TestAHeldDeployIsCarriedThrough(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	stuck := deploy.Request{App: "hello", Stage: "alpha", Repo: repo, SHA: shaC, Ref: "alpha", InstallationID: 1, Held: true,
		Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "the-job-that-died", Actor: "lead", Issue: 5}}
	rd, err := w.st.RequestDeploys(context.Background(), []deploy.Request{stuck})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.say(5, "lead", "/promote alpha"); !strings.Contains(got, "promoting `ccccccc` (live on test) to **alpha**") {
		t.Fatalf("the command again = %q", got)
	}
	d, _ := w.st.Deploy(context.Background(), rd[0].ID)
	if d.Held || d.CommentID == 0 {
		t.Errorf("the held deploy = %+v, want released with the answer as its comment", d)
	}
	if sha, _ := w.gh.Ref(repo, "alpha"); sha != shaC {
		t.Errorf("alpha points at %s", sha)
	}
}
