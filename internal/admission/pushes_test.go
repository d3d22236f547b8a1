package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

const repo = "acme/hello"

const testConfig = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
stages:
  - {name: dev, credentials: nonprod}
  - {name: test, branch: master, trigger: merge, credentials: nonprod}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test, promoters: {users: [lead]}}
  - {name: prod, branch: prod, trigger: push, credentials: prod, promote_from: alpha, promoters: {teams: [acme/product-owners]}, slots: [prod, prod-backup]}
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

var (
	shaA = strings.Repeat("a", 40) // live on prod
	shaB = strings.Repeat("b", 40) // ran on test and alpha
	shaX = strings.Repeat("9", 40) // a developer's commit: deployed to test by /deploy, never approved
)

// world is the real path of a push: the push handler, the store's intake, the job it records and
// the push executor, against the GitHub test server.
type world struct {
	t        *testing.T
	gh       *githubtest.Server
	st       *store.Store
	cfg      *config.Config
	push     handlers.Handler
	p        *Pushes
	n        int
	woken    atomic.Int32 // commits that made deploys due while the executor decided a push
	deciding atomic.Bool
}

func newWorld(t *testing.T) *world { t.Helper(); return newWorldWith(t, testConfig, time.Now) }

// newWorldWith is newWorld on another configuration, with the store and the gate on clock now.
func newWorldWith(t *testing.T, text string, now func() time.Time) *world {
	t.Helper()
	cfg, err := config.Parse("admission_test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	gh := githubtest.New(t)
	gh.AddCommit(repo, shaA, nil, "first", 0)
	gh.AddCommit(repo, shaB, []string{shaA}, "Add the login page (#2)", 2)
	gh.AddCommit(repo, shaX, []string{shaB}, "Try something unreviewed", 0)
	for _, b := range []string{"master", "alpha", "prod"} {
		gh.SetRef(repo, b, shaA)
	}
	gh.SetPermission(repo, "dev", "write")
	gh.SetPermission(repo, "lead", "maintain")
	gh.SetTeamMember("acme", "product-owners", "po")
	f, err := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "admission.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Now = now
	w := &world{t: t, gh: gh, st: st, cfg: cfg}
	st.OnCommit(store.WakeDeploys, func() {
		if w.deciding.Load() {
			w.woken.Add(1)
		}
	})
	for _, h := range handlers.All(cfg) {
		if h.Handles()[0] == "push" {
			w.push = h
		}
	}
	w.p = NewPushes(st, f, PushOptions{Config: cfg, Gate: New(st, cfg, "https://github.com").WithClock(now), WebURL: "https://github.com",
		Identity: &AppLogin{App: f.App}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.live("test", shaB)
	w.live("alpha", shaB)
	w.live("prod", shaA)
	w.live("test", shaX) // `/deploy test <sha>`: write access is enough for test
	return w
}

// live records a successful deploy of sha to stage.
func (w *world) live(stage, sha string) deploy.Deploy {
	w.t.Helper()
	ctx := context.Background()
	w.n++
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "hello", Stage: stage, Repo: repo, SHA: sha, Ref: stage, InstallationID: 1,
		Trigger: deploy.Trigger{Event: "issue_comment", Delivery: fmt.Sprintf("seed-%d", w.n), Actor: "lead"}}})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, state := range []deploy.State{deploy.Preflight, deploy.Succeeded} {
		d, l, err := w.st.ClaimDeploy(ctx, "seed", time.Minute)
		if err != nil || d.ID != rd[0].ID {
			w.t.Fatalf("seeding %s: claimed %d, %v", stage, d.ID, err)
		}
		if err := w.st.Advance(ctx, l, store.Update{State: state, Release: true}); err != nil {
			w.t.Fatal(err)
		}
	}
	d, _ := w.st.Deploy(ctx, rd[0].ID)
	return d
}

// pushed delivers a push of sha to branch by sender as GitHub would, records what the handler
// makes of it with the delivery (as the intake does), then runs the jobs it recorded.
func (w *world) pushed(branch, sha, sender, senderType string) string {
	w.t.Helper()
	w.n++
	delivery := fmt.Sprintf("push-%d", w.n)
	before, _ := w.gh.Ref(repo, branch)
	w.gh.SetRef(repo, branch, sha) // the push landed on GitHub
	body, _ := json.Marshal(map[string]any{"ref": "refs/heads/" + branch, "before": before, "after": sha, "deleted": false, "forced": true,
		"repository": map[string]any{"full_name": repo}, "installation": map[string]any{"id": 1},
		"sender": map[string]any{"login": sender, "type": senderType}})
	res, err := w.push.Handle(context.Background(), handlers.Event{Name: "push", Delivery: delivery, Payload: body})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: delivery, Event: "push", Repo: repo, InstallationID: 1},
		Deploys: res.Deploys, Jobs: res.Jobs}); err != nil {
		w.t.Fatal(err)
	}
	w.deciding.Store(true)
	defer w.deciding.Store(false)
	for _, j := range res.Jobs {
		if j.Kind != jobs.KindPush {
			w.t.Fatalf("the push recorded a %s job", j.Kind)
		}
		if err := w.p.Executor().Run(context.Background(), j); err != nil {
			w.t.Fatal(err)
		}
	}
	return delivery
}

func (w *world) deploys(stage string) []deploy.Deploy {
	ds, err := w.st.ListDeploys(context.Background(), store.Filter{Stage: stage})
	if err != nil {
		w.t.Fatal(err)
	}
	return ds
}

// refusal is the check run `stagecoach/<stage>` on sha that reports a refused push.
func (w *world) refusal(stage, sha string) githubtest.CheckRun {
	for _, r := range w.gh.CheckRuns(repo) {
		if r.Name == "stagecoach/"+stage && r.HeadSHA == sha {
			return r
		}
	}
	w.t.Fatalf("no check run stagecoach/%s on %s", stage, deploy.ShortSHA(sha))
	return githubtest.CheckRun{}
}

func (w *world) lastAudit() store.CommandRecord {
	cs, err := w.st.Commands(context.Background(), repo, 1)
	if err != nil || len(cs) != 1 {
		w.t.Fatalf("audit trail: %v %v", cs, err)
	}
	return cs[0]
}

// TestPushToAlphaAndProdByNonPromoterDeploysNothing is the attack of issue 9: a developer who is
// no promoter deploys any commit to test (/deploy test <sha>: write access is enough), then
// pushes it to alpha, then to prod. The stage order is satisfied at each step, but nobody
// approved anything: neither push deploys; each commit gets a check run naming the pusher, who
// may deploy and the command to use; the audit trail keeps the refusal; the stage keeps running
// what it ran.
func TestPushToAlphaAndProdByNonPromoterDeploysNothing(t *testing.T) {
	w := newWorld(t)
	alphaBefore, prodBefore := len(w.deploys("alpha")), len(w.deploys("prod"))
	w.pushed("alpha", shaX, "dev", "User")
	if n := len(w.deploys("alpha")); n != alphaBefore {
		t.Fatalf("the push to alpha recorded %d deploy(s)", n-alphaBefore)
	}
	run := w.refusal("alpha", shaX)
	for _, want := range []string{"@dev pushed `9999999` to `alpha`, and nothing was deployed.",
		"@dev may not deploy to alpha by pushing to `alpha`: only @lead may.", "**alpha** keeps running `bbbbbbb`",
		"@lead may promote: `/promote alpha`", "`/deploy alpha 9999999`"} {
		if !strings.Contains(run.Summary, want) {
			t.Errorf("the alpha check run lacks %q:\n%s", want, run.Summary)
		}
	}
	if run.Conclusion != "failure" || !strings.Contains(run.Title, "by @dev was refused") {
		t.Errorf("check run %q %s", run.Title, run.Conclusion)
	}
	if a := w.lastAudit(); a.Verb != "push" || a.Actor != "dev" || a.Outcome != "refused" || !strings.Contains(a.Reason, "only @lead may") {
		t.Errorf("audit = %+v", a)
	}

	// A commit that succeeded on alpha (shaB) pushed to prod by the same developer: the stage
	// order holds, and still nothing deploys.
	w.pushed("prod", shaB, "dev", "User")
	if n := len(w.deploys("prod")); n != prodBefore {
		t.Fatalf("the push to prod recorded %d deploy(s)", n-prodBefore)
	}
	run = w.refusal("prod", shaB)
	for _, want := range []string{"only members of @acme/product-owners may", "`/promote prod` on the commit's release issue", "**prod** keeps running `aaaaaaa`"} {
		if !strings.Contains(run.Summary, want) {
			t.Errorf("the prod check run lacks %q:\n%s", want, run.Summary)
		}
	}
	if w.woken.Load() != 0 {
		t.Errorf("refused pushes woke the pipeline %d time(s)", w.woken.Load())
	}
}

// TestPushToProdDoesNotSupersedeAQueuedPromotion: a push to prod used to become a deploy at
// intake, superseding the deploy the product owner's promotion had queued. Now nothing is
// recorded for the push until it is admitted, and a refused one records none.
func TestPushToProdDoesNotSupersedeAQueuedPromotion(t *testing.T) {
	w := newWorld(t)
	rd, err := w.st.RequestDeploys(context.Background(), []deploy.Request{{App: "hello", Stage: "prod", Repo: repo, SHA: shaB, Ref: "v1.0.0",
		InstallationID: 1, Held: true, Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "promotion", Actor: "po", Issue: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	w.pushed("prod", shaX, "dev", "User")
	d, _ := w.st.Deploy(context.Background(), rd[0].ID)
	if d.State != deploy.Queued || d.SupersededBy != 0 {
		t.Fatalf("the queued promotion is %s (superseded by %d)", d.State, d.SupersededBy)
	}
	for _, x := range w.deploys("prod") {
		if x.SHA == shaX {
			t.Errorf("the push recorded deploy %d of its commit", x.ID)
		}
	}
}

// TestStagecoachsOwnMoveDeploysOnce: a promotion records its deploy held and the branch move,
// then moves the branch; the push GitHub sends for it is matched to the move and deploys nothing
// more. A push by Stagecoach's credentials that no command asked for deploys nothing at all.
func TestStagecoachsOwnMoveDeploysOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "hello", Stage: "alpha", Repo: repo, SHA: shaX, Ref: "alpha", InstallationID: 1,
		Held: true, Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "promote-alpha", Actor: "lead", Issue: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.st.RecordBranchMove(ctx, store.BranchMove{Repo: repo, Branch: "alpha", SHA: shaX, CommandKey: "comment:acme/hello:77",
		DeployIDs: []int64{rd[0].ID}}); err != nil {
		t.Fatal(err)
	}
	before := len(w.deploys("alpha"))
	w.pushed("alpha", shaX, w.gh.BotLogin(), "Bot")
	if n := len(w.deploys("alpha")); n != before {
		t.Errorf("Stagecoach's own move recorded %d more deploy(s)", n-before)
	}
	if a := w.lastAudit(); a.Outcome != "accepted" || !strings.Contains(a.Reason, fmt.Sprintf("Stagecoach's own move for comment:acme/hello:77: deploy #%d", rd[0].ID)) {
		t.Errorf("audit = %+v", a)
	}
	// The App's token moving prod with no command behind it: nothing deploys.
	w.pushed("prod", shaB, w.gh.BotLogin(), "Bot")
	if a := w.lastAudit(); a.Outcome != "refused" || !strings.Contains(a.Reason, "no command given to Stagecoach asked for that move") {
		t.Errorf("audit = %+v", a)
	}
	if got := w.refusal("prod", shaB); !strings.Contains(got.Summary, "treat the App's credentials as leaked") {
		t.Errorf("check run = %s", got.Summary)
	}
}

// TestRecoveredPushNamingNobodyDeploysNothing: recovery (package recovery) finds a branch moved
// while every webhook was lost and makes the push GitHub would have sent, which names no pusher:
// GitHub does not say who moved a branch. Nobody can be said to have approved it, so the gate
// must not treat it as Stagecoach's or anyone's: nothing deploys, and the check run says why.
// Stagecoach's own recorded move found that way is that move, and deploys as it would have.
func TestRecoveredPushNamingNobodyDeploysNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	prodBefore := len(w.deploys("prod"))
	w.pushed("prod", shaB, "", "")
	if n := len(w.deploys("prod")); n != prodBefore {
		t.Fatalf("a push naming nobody recorded %d deploy(s) on prod", n-prodBefore)
	}
	run := w.refusal("prod", shaB)
	if !strings.Contains(run.Summary, "GitHub does not say who pushed it") || !strings.Contains(run.Title, "by someone was refused") {
		t.Errorf("check run %q:\n%s", run.Title, run.Summary)
	}
	if a := w.lastAudit(); a.Verb != "push" || a.Outcome != "refused" {
		t.Errorf("audit = %+v", a)
	}

	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "hello", Stage: "alpha", Repo: repo, SHA: shaX, Ref: "alpha", InstallationID: 1,
		Held: true, Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "promote-alpha", Actor: "lead", Issue: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.st.RecordBranchMove(ctx, store.BranchMove{Repo: repo, Branch: "alpha", SHA: shaX, CommandKey: "comment:acme/hello:78",
		DeployIDs: []int64{rd[0].ID}}); err != nil {
		t.Fatal(err)
	}
	alphaBefore := len(w.deploys("alpha"))
	w.pushed("alpha", shaX, "", "")
	if n := len(w.deploys("alpha")); n != alphaBefore {
		t.Errorf("Stagecoach's own move, found by recovery, recorded %d more deploy(s)", n-alphaBefore)
	}
	if a := w.lastAudit(); a.Outcome != "accepted" || !strings.Contains(a.Reason, "Stagecoach's own move for comment:acme/hello:78, found by recovery") {
		t.Errorf("audit = %+v", a)
	}
}

// TestPushByPromoterPassesTheGate: a promoter's push deploys (it is the same approval as
// /promote), but the rest of the gate still holds: the stage order, and what the push would
// take off the stage.
func TestPushByPromoterPassesTheGate(t *testing.T) {
	w := newWorld(t)
	// lead may promote alpha; pushing alpha back to shaA (which ran on test) would take shaB off
	// alpha.
	w.live("test", shaA)
	w.pushed("alpha", shaA, "lead", "User")
	run := w.refusal("alpha", shaA)
	if !strings.Contains(run.Summary, "would take off it 1 commit(s)") || !strings.Contains(run.Summary, "Add the login page (#2)") {
		t.Errorf("drop refusal = %s", run.Summary)
	}
	w.pushed("prod", shaB, "po", "User")
	ds := w.deploys("prod")
	if ds[0].SHA != shaB || ds[0].State != deploy.Queued || ds[0].Trigger.Actor != "po" || ds[0].Trigger.Event != "push" || w.woken.Load() != 1 {
		t.Fatalf("the product owner's push: newest prod deploy %+v (woken %d)", ds[0], w.woken.Load())
	}
	w.pushed("prod", shaX, "po", "User") // never ran on alpha
	if run := w.refusal("prod", shaX); !strings.Contains(run.Summary, "`9999999` has not succeeded on **alpha**") {
		t.Errorf("stage order refusal = %s", run.Summary)
	}
}
