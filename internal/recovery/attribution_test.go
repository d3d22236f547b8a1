package recovery

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// The faults of a reconciled push to a guarded stage (found by the chaos benchmark): the push
// GitHub failed to deliver was made up by reconciliation without a pusher, and the admission
// gate refused it ("GitHub does not say who pushed it"), leaving a refused check run on a
// commit a promoter had pushed. GitHub's activity log names the pusher; these tests take the
// recovered push on through the real admission gate.

// decide runs the admission gate's push executor on every push recorded for it, as the job
// runner would (an earlier decision is not taken again: the audit trail keys it).
func (w *world) decide() {
	w.t.Helper()
	p := admission.NewPushes(w.st, w.clients, admission.PushOptions{Config: w.cfg, Gate: admission.New(w.st, w.cfg, "https://github.com"),
		Identity: &admission.AppLogin{App: w.clients.App}, WebURL: "https://github.com", Log: quiet()})
	for _, push := range w.pushes() {
		if err := p.Decide(context.Background(), jobs.Job{}, push); err != nil {
			w.t.Fatalf("deciding the push of %.7s to %s: %v", push.After, push.Stage, err)
		}
	}
}

// succeeded records a deploy of sha to stage that succeeded (the stage order asks for it).
func (w *world) succeeded(stage, sha string) {
	w.t.Helper()
	ctx := context.Background()
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "web", Stage: stage, Repo: repo, SHA: sha, Ref: stage, InstallationID: 1,
		Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "seed-" + stage + sha, Actor: "lena"}}})
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
}

// refusals are the check runs that report a refused push of sha.
func (w *world) refusals(sha string) []githubtest.CheckRun {
	var out []githubtest.CheckRun
	for _, r := range w.gh.CheckRuns(repo) {
		if r.HeadSHA == sha && strings.HasPrefix(r.ExternalID, "refused:") {
			out = append(out, r)
		}
	}
	return out
}

// deploysOf are the recorded deploys of sha to stage.
func (w *world) deploysOf(stage, sha string) []deploy.Deploy {
	var out []deploy.Deploy
	for _, d := range w.deploys() {
		if d.Stage == stage && d.SHA == sha {
			out = append(out, d)
		}
	}
	return out
}

func (w *world) audit() []store.CommandRecord {
	w.t.Helper()
	cs, err := w.st.Commands(context.Background(), repo, 100)
	if err != nil {
		w.t.Fatal(err)
	}
	return cs
}

// missedPush is a push to branch by pusher whose webhook GitHub never sent, and a pass that
// finds it on GitHub.
func missedPush(w *world, r *Runner, branch, sha, pusher string) {
	w.t.Helper()
	w.gh.SetWebhook("", nil)
	w.gh.PushBranch(repo, branch, sha, pusher)
	w.gh.SetWebhook(w.hookURL, secret)
	w.pass(r)
}

// TestRecoveredPushByAPromoterDeploysWithoutARefusal is the chaos benchmark's fault: lena, who
// may promote to alpha, pushed a commit that ran on test to alpha while its webhook was lost.
// Reconciliation found it; the push it made named nobody, and the gate refused it with a check
// run although the push was lena's to make. Now recovery reads who pushed from the activity
// log, and the gate admits it as it admits the delivered push: one deploy, no refusal, and the
// audit trail says the push was recovered.
func TestRecoveredPushByAPromoterDeploysWithoutARefusal(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	w.succeeded("test", sha('a'))
	missedPush(w, r, "alpha", sha('a'), "lena")
	ps := w.pushes()
	if len(ps) != 1 || ps[0].Pusher != "lena" || ps[0].PusherType != "User" || ps[0].Delivery != RecoveredDelivery(repo, "refs/heads/alpha", sha('a')) {
		t.Fatalf("recovered pushes = %+v, want alpha's, by lena, marked recovered", ps)
	}
	w.decide()
	if rs := w.refusals(sha('a')); len(rs) != 0 {
		t.Errorf("check run %q on a promoter's push: %s", rs[0].Title, rs[0].Summary)
	}
	ds := w.deploysOf("alpha", sha('a'))
	if len(ds) != 1 || ds[0].Trigger.Actor != "lena" || ds[0].Trigger.Delivery != ps[0].Delivery {
		t.Fatalf("alpha deploys of a = %+v, want one, by lena, from the recovered push", ds)
	}
	a := w.audit()[0]
	if a.Verb != "push" || a.Actor != "lena" || a.Outcome != "accepted" || !strings.Contains(a.Args, "recovered") ||
		!strings.Contains(a.Args, "activity log") {
		t.Errorf("audit = %+v, want lena's push accepted and marked recovered", a)
	}
	if n := w.gh.Count("repos/list-activities"); n != 1 {
		t.Errorf("%d activity log reads, want 1 (one bounded call per recovered guarded push)", n)
	}
}

// TestRecoveredPushByANonPromoterIsRefusedNamingThem: mallory, no promoter, pushed prod while its
// webhook was lost. The recovered push names mallory, and the refusal says who pushed and why,
// as for a delivered push, instead of "someone".
func TestRecoveredPushByANonPromoterIsRefusedNamingThem(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	missedPush(w, r, "prod", sha('p'), "mallory")
	w.decide()
	if ds := w.deploysOf("prod", sha('p')); len(ds) != 0 {
		t.Errorf("mallory's push deployed: %+v", ds)
	}
	rs := w.refusals(sha('p'))
	if len(rs) != 1 || !strings.Contains(rs[0].Title, "by @mallory was refused") || !strings.Contains(rs[0].Summary, "@mallory may not") {
		t.Fatalf("refusals = %+v, want one naming mallory", rs)
	}
	if a := w.audit()[0]; a.Actor != "mallory" || a.Outcome != "refused" || !strings.Contains(a.Args, "recovered") {
		t.Errorf("audit = %+v", a)
	}
}

// TestRecoveredPushWithNoActivityIsRefusedAsBefore: when the activity log does not say who moved
// the branch to its head (the move is older than the log, GitHub refuses the App the log, the
// newest move is someone else's or went elsewhere), the recovered push names nobody and is
// refused as before, saying why. A failure worth retrying (502) is no refusal: the pass fails,
// and the next one attributes the push.
func TestRecoveredPushWithNoActivityIsRefusedAsBefore(t *testing.T) {
	tests := []struct {
		name  string
		fault func(w *world)
	}{
		{"log forgotten", func(w *world) { w.gh.ForgetActivity(repo) }},
		{"403", func(w *world) { w.gh.FailNext("repos/list-activities", 1, http.StatusForbidden) }},
		{"404", func(w *world) { w.gh.FailNext("repos/list-activities", 1, http.StatusNotFound) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r := w.runner("replica-1", nil, nil)
			w.pass(r)
			w.succeeded("test", sha('a'))
			w.gh.SetWebhook("", nil)
			w.gh.PushBranch(repo, "alpha", sha('a'), "lena")
			w.gh.SetWebhook(w.hookURL, secret)
			tt.fault(w)
			w.pass(r)
			if ps := w.pushes(); len(ps) != 1 || ps[0].Pusher != "" {
				t.Fatalf("recovered pushes = %+v, want one naming nobody", ps)
			}
			w.decide()
			rs := w.refusals(sha('a'))
			if len(rs) != 1 || !strings.Contains(rs[0].Summary, "does not say who pushed it") || !strings.Contains(rs[0].Summary, "activity log") {
				t.Fatalf("refusals = %+v", rs)
			}
			if ds := w.deploysOf("alpha", sha('a')); len(ds) != 0 {
				t.Errorf("deployed a push nobody can be said to have made: %+v", ds)
			}
		})
	}

	t.Run("502 is tried again", func(t *testing.T) {
		w := newWorld(t)
		r := w.runner("replica-1", nil, nil)
		w.pass(r)
		w.succeeded("test", sha('a'))
		w.gh.SetWebhook("", nil)
		w.gh.PushBranch(repo, "alpha", sha('a'), "lena")
		w.gh.SetWebhook(w.hookURL, secret)
		w.gh.FailNext("repos/list-activities", 1, http.StatusBadGateway)
		if _, err := r.Pass(context.Background(), true); err == nil {
			t.Fatal("a pass whose activity read failed reported no error")
		}
		if ps := w.pushes(); len(ps) != 0 {
			t.Fatalf("recorded %+v while GitHub could not say who pushed", ps)
		}
		w.pass(r)
		if ps := w.pushes(); len(ps) != 1 || ps[0].Pusher != "lena" {
			t.Fatalf("after GitHub answered again: %+v", ps)
		}
	})
}

// TestRecoveredPushIsCreditedToWhoeverMovedTheBranchLast: the activity log lends a recovered
// push only the pusher of the branch's newest move, and only when that move ended at the head
// recovery found, after recovery last saw the branch elsewhere: paula's older push of the same
// commit, or a log that lags behind the branch, never makes mallory's move paula's.
func TestRecoveredPushIsCreditedToWhoeverMovedTheBranchLast(t *testing.T) {
	w := newWorld(t)
	w.gh.SetWebhook("", nil)
	w.gh.PushBranch(repo, "prod", sha('p'), "paula")
	w.gh.PushBranch(repo, "prod", sha('q'), "mallory")
	w.gh.PushBranch(repo, "prod", sha('p'), "mallory")
	gh := mustInstallation(t, w)
	got, why, err := pusherOf(context.Background(), gh, repo, "refs/heads/prod", sha('p'), time.Now().Add(-time.Hour))
	if err != nil || got.login != "mallory" {
		t.Errorf("pusher of prod at p = %+v (%s, %v), want mallory", got, why, err)
	}
	got, why, err = pusherOf(context.Background(), gh, repo, "refs/heads/prod", sha('q'), time.Now().Add(-time.Hour))
	if err != nil || got.login != "" || !strings.Contains(why, "not to its head") {
		t.Errorf("pusher of prod at q (an older move) = %+v (%s, %v), want nobody", got, why, err)
	}
	got, why, err = pusherOf(context.Background(), gh, repo, "refs/heads/prod", sha('p'), time.Now().Add(time.Hour))
	if err != nil || got.login != "" || !strings.Contains(why, "older than") {
		t.Errorf("pusher of prod at p, moved before recovery last saw it = %+v (%s, %v), want nobody", got, why, err)
	}
}

// TestRedeliveryAfterRecoveryDeploysOnce is the race itself: reconciliation finds lena's push
// to alpha before its failed delivery is redelivered (here: the delivery is too old for the
// delivery step, so no redelivery is in flight to hold reconciliation back). The recovered push
// deploys; when the real delivery arrives afterwards (another replica, or a person, redelivers
// it), its push is recorded and admitted again, but it is the same deploy: one deploy, one
// check run, no refusal.
func TestRedeliveryAfterRecoveryDeploysOnce(t *testing.T) {
	w := newWorld(t)
	r, err := New(w.st, w.clients, w.cfg, handlers.All(w.cfg), Options{Owner: "replica-1", MaxAge: time.Nanosecond, Observer: w.seen}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	w.pass(r)
	w.succeeded("test", sha('a'))
	w.up.Store(false)
	w.gh.PushBranch(repo, "alpha", sha('a'), "lena")
	w.flush()
	w.up.Store(true)
	w.pass(r)
	if n := w.gh.Count("apps/redeliver-webhook-delivery"); n != 0 {
		t.Fatalf("%d redeliveries: the race needs reconciliation first", n)
	}
	w.decide()
	if ds := w.deploysOf("alpha", sha('a')); len(ds) != 1 {
		t.Fatalf("after recovery: %d deploys of a to alpha, want 1", len(ds))
	}
	var failed string
	for _, d := range w.gh.Deliveries() {
		if d.Event == "push" && d.Failed() {
			failed = d.ID
		}
	}
	if err := w.gh.Redeliver(failed); err != nil {
		t.Fatal(err)
	}
	w.flush()
	if ps := w.pushes(); len(ps) != 2 || ps[1].Pusher != "lena" || strings.HasPrefix(ps[1].Delivery, "recovered:") {
		t.Fatalf("pushes = %+v, want the recovered one and the real delivery's", ps)
	}
	w.decide()
	w.pass(r)
	ds := w.deploysOf("alpha", sha('a'))
	if len(ds) != 1 {
		t.Errorf("%d deploys of a to alpha after the real delivery arrived, want 1", len(ds))
	}
	if rs := w.refusals(sha('a')); len(rs) != 0 {
		t.Errorf("refused: %q", rs[0].Title)
	}
	var outcomes []string
	for _, a := range w.audit() {
		outcomes = append(outcomes, a.Outcome)
		if a.Outcome == "accepted" && !strings.Contains(a.Reason, "#"+itoa(ds[0].ID)) {
			t.Errorf("audit %+v names another deploy than #%d", a, ds[0].ID)
		}
	}
	if strings.Join(outcomes, ",") != "accepted,accepted" {
		t.Errorf("audit outcomes %v, want both pushes accepted, as one deploy", outcomes)
	}
}

func mustInstallation(t *testing.T, w *world) *github.Client {
	t.Helper()
	gh, err := w.clients.Installation(1)
	if err != nil {
		t.Fatal(err)
	}
	return gh
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRecoveredOwnMoveIsStagecoachsThroughTheActivityLog: Stagecoach's own /promote moved alpha
// (git/update-ref with its token) while its webhook was lost. The activity log names the App's
// bot, so the recovered push is decided as Stagecoach's own: matched to the move the command
// recorded, whose held deploy is the deploy. Nothing new is recorded and nothing refused.
func TestRecoveredOwnMoveIsStagecoachsThroughTheActivityLog(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	ctx := context.Background()
	w.gh.AddCommit(repo, sha('a'), []string{sha('e')}, "Add a page", 0)
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "web", Stage: "alpha", Repo: repo, SHA: sha('a'), Ref: "alpha", InstallationID: 1,
		Held: true, Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "promote-alpha", Actor: "lena", Issue: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.st.RecordBranchMove(ctx, store.BranchMove{Repo: repo, Branch: "alpha", SHA: sha('a'), CommandKey: "comment:acme/web:78",
		DeployIDs: []int64{rd[0].ID}}); err != nil {
		t.Fatal(err)
	}
	w.gh.SetWebhook("", nil)
	if _, _, err := mustInstallation(t, w).Git.UpdateRef(ctx, "acme", "web", "heads/alpha", github.UpdateRef{SHA: sha('a')}); err != nil {
		t.Fatal(err)
	}
	w.gh.SetWebhook(w.hookURL, secret)
	w.pass(r)
	ps := w.pushes()
	if len(ps) != 1 || ps[0].Pusher != w.gh.BotLogin() || ps[0].PusherType != "Bot" {
		t.Fatalf("recovered pushes = %+v, want the App's bot's", ps)
	}
	w.decide()
	if ds := w.deploysOf("alpha", sha('a')); len(ds) != 1 || ds[0].ID != rd[0].ID {
		t.Errorf("alpha deploys of a = %+v, want only the promotion's held deploy #%d", ds, rd[0].ID)
	}
	if rs := w.refusals(sha('a')); len(rs) != 0 {
		t.Errorf("refused Stagecoach's own move: %s", rs[0].Summary)
	}
	if a := w.audit()[0]; a.Outcome != "accepted" || !strings.Contains(a.Reason, "Stagecoach's own move for comment:acme/web:78") {
		t.Errorf("audit = %+v", a)
	}
}
