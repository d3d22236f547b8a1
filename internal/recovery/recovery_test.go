package recovery

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

// describe names deploys "stage:sha-initial:event", oldest first.
func describe(ds []deploy.Deploy) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s:%s:%s", d.Stage, d.SHA[:1], d.Trigger.Event))
	}
	return strings.Join(out, " ")
}

// outage does, while every replica answers 503, what people do: a pull request merged into
// master, a push to alpha, a release tag and a /promote comment. GitHub records each delivery
// as failed and never sends it again by itself.
func outage(w *world) {
	w.up.Store(false)
	w.gh.MergePull(repo, githubtest.Pull{Number: 7, Title: "Add a health endpoint", HeadRef: "alice/health", HeadSHA: sha('f')}, sha('m'), "alice")
	w.gh.PushBranch(repo, "alpha", sha('a'), "lena")
	w.gh.CreateTag(repo, "v1.0.0", sha('a'), "lena", true)
	w.gh.Comment(repo, 7, "lena", "/promote alpha")
	w.flush()
	w.up.Store(true)
}

// TestWorkMissedWhileDownIsRecoveredOnce is the outage the issue describes: a merge, a push, a
// tag and a /promote happen while every replica answers 503. Before recovery all of it was
// lost; the next pass redelivers each failed delivery once, the intake records its work once,
// and later passes neither redeliver again nor reconcile anything twice.
func TestWorkMissedWhileDownIsRecoveredOnce(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.pass(r) // the first look: nothing missed yet
	outage(w)
	if n := w.failed(); n != 6 {
		t.Fatalf("%d failed deliveries, want 6 (push and pull_request of the merge, push of alpha, create and push of the tag, the comment)", n)
	}
	w.pass(r)
	if n := w.gh.Count("apps/redeliver-webhook-delivery"); n != 6 {
		t.Errorf("%d redeliveries asked for, want 6", n)
	}
	if got := w.work(); got != "test:m:pull_request alpha:a:gate" {
		t.Errorf("work = %s, want the merge's deploy on test and the push on alpha for the gate, once each", got)
	}
	if d := w.deploys()[0]; d.Trigger.PR != 7 {
		t.Errorf("the merge's deploy reports to PR %d, want 7", d.Trigger.PR)
	}
	jobsAfter := w.jobs()
	if jobsAfter[jobs.KindTagCreated] != 2 || jobsAfter[jobs.KindComment] != 1 {
		t.Errorf("jobs = %v, want the tag's (from its create and its push) and the comment's", jobsAfter)
	}
	for range 2 {
		w.pass(r)
	}
	if n := w.gh.Count("apps/redeliver-webhook-delivery"); n != 6 {
		t.Errorf("%d redeliveries after more passes, want still 6", n)
	}
	if got := w.work(); got != "test:m:pull_request alpha:a:gate" {
		t.Errorf("work after more passes = %s", got)
	}
	if got := w.jobs(); fmt.Sprint(got) != fmt.Sprint(jobsAfter) {
		t.Errorf("jobs after more passes = %v, want %v", got, jobsAfter)
	}
	for k, want := range map[string]int{"redelivery requested": 6, "redelivered push": 3, "redelivered pull_request": 1,
		"redelivered create": 1, "redelivered issue_comment": 1, "reconciled push": 0, "pass done": 4, "pass failed": 0} {
		if got := w.seen.get(k); got != want {
			t.Errorf("observed %q %d times, want %d", k, got, want)
		}
	}
	for _, d := range w.gh.Deliveries()[6:] {
		if !d.Redelivery || d.Failed() {
			t.Errorf("after the outage: %s %s redelivery %v, failed %v", d.Event, d.Action, d.Redelivery, d.Failed())
		}
	}
}

// TestStaleFailedDeliveryIsNotRedelivered: a push (or merge) that failed while a later one of
// the same branch got through must not be redelivered: it would deploy the older commit over
// the newer one. Newest wins, as it does for webhooks.
func TestStaleFailedDeliveryIsNotRedelivered(t *testing.T) {
	tests := []struct {
		name         string
		failed, good func(w *world)
		want         string
		stale        int
	}{
		{"push", func(w *world) { w.gh.PushBranch(repo, "alpha", sha('a'), "lena") },
			func(w *world) { w.gh.PushBranch(repo, "alpha", sha('b'), "lena") }, "alpha:b:gate", 1},
		{"merge", func(w *world) {
			w.gh.MergePull(repo, githubtest.Pull{Number: 1, Title: "one", HeadRef: "one", HeadSHA: sha('1')}, sha('a'), "alice")
		}, func(w *world) {
			w.gh.MergePull(repo, githubtest.Pull{Number: 2, Title: "two", HeadRef: "two", HeadSHA: sha('2')}, sha('b'), "alice")
		}, "test:b:pull_request", 2}, // the merge's push and its pull_request
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r := w.runner("replica-1", nil, nil)
			w.pass(r)
			w.up.Store(false)
			tt.failed(w)
			w.flush()
			w.up.Store(true)
			tt.good(w)
			w.flush()
			w.pass(r)
			w.pass(r)
			if n := w.gh.Count("apps/redeliver-webhook-delivery"); n != 0 {
				t.Errorf("%d stale deliveries redelivered", n)
			}
			if got := w.work(); got != tt.want {
				t.Errorf("work = %s, want only %s", got, tt.want)
			}
			if got := w.seen.get("redelivery stale"); got != tt.stale {
				t.Errorf("%d deliveries left as stale, want %d", got, tt.stale)
			}
		})
	}
}

// TestRefChangesNeverDeliveredAreReconciled: GitHub sent nothing at all (the webhook was
// inactive) while prod was pushed and a release tag made. The delivery log has nothing to
// redeliver; reconciliation finds both on GitHub, makes the push GitHub would have sent,
// marked recovered, and records what the push handler makes of it, once.
func TestRefChangesNeverDeliveredAreReconciled(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.gh.SetWebhook("", nil)
	w.gh.CreateTag(repo, "v0.9.0", sha('e'), "lena", false) // there before recovery first looked
	w.pass(r)
	w.gh.PushBranch(repo, "prod", sha('p'), "paula")
	tagObject := w.gh.CreateTag(repo, "v1.0.0", sha('p'), "lena", true)
	w.gh.CreateTag(repo, "not-a-release", sha('p'), "lena", false)
	w.gh.SetWebhook(w.hookURL, secret)
	for range 3 {
		w.pass(r)
	}
	// prod is guarded: the push is the gate's to decide, as paula's: GitHub's activity log says
	// who moved the branch.
	ps := w.pushes()
	if len(ps) != 1 || len(w.deploys()) != 0 {
		t.Fatalf("work = %s, want prod's head once, for the gate", w.work())
	}
	p := ps[0]
	if p.Stage != "prod" || p.After != sha('p') || p.Event != "push" || p.Pusher != "paula" ||
		p.Delivery != RecoveredDelivery(repo, "refs/heads/prod", sha('p')) {
		t.Errorf("the recovered push = %+v, want prod at p, marked recovered, by paula", p)
	}
	if got := w.jobs()[jobs.KindTagCreated]; got != 1 {
		t.Errorf("%d tag jobs, want v1.0.0's alone (v0.9.0 was there before, not-a-release is no release tag)", got)
	}
	if ok, err := w.st.JobExists(context.Background(), "tag:"+repo+":v1.0.0:"+tagObject); err != nil || !ok {
		t.Errorf("the tag's job, as its push would make it: %v, %v", ok, err)
	}
	if got, want := w.seen.get("reconciled push"), 2; got != want {
		t.Errorf("reconciled %d ref changes, want %d", got, want)
	}
	if w.woken.Load() == 0 {
		t.Error("the runners were not woken for the recovered work")
	}
	if n := w.gh.Count("apps/redeliver-webhook-delivery"); n != 0 {
		t.Errorf("%d redeliveries, want none: nothing was sent", n)
	}
}

// TestReconcileLeavesWhatStagecoachHeard: ref changes delivered normally are not acted on again.
func TestReconcileLeavesWhatStagecoachHeard(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	w.gh.PushBranch(repo, "alpha", sha('a'), "lena")
	w.gh.CreateTag(repo, "v1.0.0", sha('a'), "lena", false)
	w.flush()
	w.pass(r)
	if got := w.work(); got != "alpha:a:gate" {
		t.Errorf("work = %s", got)
	}
	if got := w.seen.get("reconciled push"); got != 0 {
		t.Errorf("reconciled %d changes Stagecoach had heard of", got)
	}
}

// spy is a push handler that records what it is given and refuses everything, as an admission
// gate that refuses a push would.
type spy struct {
	mu  sync.Mutex
	got []handlers.Event
}

func (s *spy) Handles() []string { return []string{"push"} }

func (s *spy) Handle(_ context.Context, ev handlers.Event) (handlers.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, ev)
	return handlers.Result{Ignored: "refused"}, nil
}

// TestReconciledPushTakesThePushHandlersWord: a reconciled ref change is only what the push
// handler makes of it. A handler (or gate) that refuses it leaves nothing recorded: recovery
// has no side door that deploys without it.
func TestReconciledPushTakesThePushHandlersWord(t *testing.T) {
	w := newWorld(t)
	gate := &spy{}
	hs := []handlers.Handler{gate}
	for _, h := range handlers.All(w.cfg) {
		if h.Handles()[0] != "push" {
			hs = append(hs, h)
		}
	}
	r := w.runner("replica-1", nil, hs)
	w.pass(r)
	w.gh.SetWebhook("", nil)
	w.gh.PushBranch(repo, "prod", sha('p'), "mallory")
	w.pass(r)
	if len(gate.got) != 1 {
		t.Fatalf("the push handler saw %d events, want the recovered push", len(gate.got))
	}
	ev := gate.got[0]
	if !ev.Recovered || ev.Name != "push" || ev.Delivery != RecoveredDelivery(repo, "refs/heads/prod", sha('p')) ||
		!strings.Contains(string(ev.Payload), `"after":"`+sha('p')+`"`) || strings.Contains(string(ev.Payload), "mallory") {
		t.Errorf("the handler got %+v %s", ev, ev.Payload)
	}
	if ds := w.deploys(); len(ds) != 0 {
		t.Errorf("deploys = %s, want none: the handler refused", describe(ds))
	}
}

// TestTwoReplicasRecoverOnce: two replicas, each with its own connection to one store (SQLite,
// and PostgreSQL as replicas share it), pass at once after an outage; the lease lets one of them
// act, and each missed delivery is redelivered and recorded once.
func TestTwoReplicasRecoverOnce(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "recovery.db")
			if db == "postgres" {
				dsn = pgtest.URL(t)
			}
			w := newWorldOn(t, dsn)
			a := w.runner("replica-a", nil, nil)
			b := w.runner("replica-b", openStore(t, w.dsn), nil)
			w.pass(a)
			outage(w)
			var wg sync.WaitGroup
			for _, r := range []*Runner{a, b} {
				wg.Go(func() {
					if _, err := r.Pass(context.Background(), true); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			w.flush()
			for range 2 {
				w.pass(a)
				w.pass(b)
			}
			if n := w.gh.Count("apps/redeliver-webhook-delivery"); n != 6 {
				t.Errorf("%d redeliveries, want 6", n)
			}
			if got := w.work(); got != "test:m:pull_request alpha:a:gate" {
				t.Errorf("work = %s", got)
			}
			if got := w.seen.get("redelivered issue_comment"); got != 1 {
				t.Errorf("the comment was recovered %d times, want once", got)
			}
		})
	}
}

// TestRedeliveryStopsAfterMaxAttempts: a delivery the intake keeps failing (a wrong webhook
// secret, say) is redelivered a bounded number of times, then left.
func TestRedeliveryStopsAfterMaxAttempts(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	w.up.Store(false)
	w.gh.PushBranch(repo, "alpha", sha('a'), "lena") // no create: alpha exists
	w.flush()
	for range maxAttempts + 3 {
		w.pass(r)
	}
	if n := w.gh.Count("apps/redeliver-webhook-delivery"); n != maxAttempts {
		t.Errorf("%d redeliveries, want %d", n, maxAttempts)
	}
	if got := w.seen.get("redelivery abandoned"); got != 1 {
		t.Errorf("abandoned %d deliveries, want 1", got)
	}
}

// TestFirstLookOnlyLearns: refs that were there before recovery first looked are not work it
// missed, even never deployed ones.
func TestFirstLookOnlyLearns(t *testing.T) {
	w := newWorld(t)
	w.gh.SetWebhook("", nil)
	w.gh.PushBranch(repo, "prod", sha('p'), "paula")
	w.gh.CreateTag(repo, "v1.0.0", sha('p'), "lena", false)
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	w.pass(r)
	if ds := w.deploys(); len(ds) != 0 || len(w.jobs()) != 0 {
		t.Errorf("deploys %s, jobs %v; want none", describe(ds), w.jobs())
	}
}

// TestPassWaitsForTheLease: while another replica holds the lease a pass does nothing, and says
// how long to wait.
func TestPassWaitsForTheLease(t *testing.T) {
	w := newWorld(t)
	if _, _, ok, err := w.st.TakeRecovery(context.Background(), "other", time.Minute, false); err != nil || !ok {
		t.Fatal(ok, err)
	}
	wait, err := w.runner("replica-1", nil, nil).Pass(context.Background(), true)
	if err != nil || wait <= 0 || wait > time.Minute {
		t.Errorf("pass = %s, %v; want a wait of at most the lease", wait, err)
	}
	if n := len(w.gh.Requests()); n != 0 {
		t.Errorf("%d GitHub requests without the lease", n)
	}
}

func TestTagPrefixes(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{[]string{"v*", "sprint-*"}, []string{"sprint-", "v"}},
		{[]string{"v*", "v1.*", "release-[0-9]*"}, []string{"release-", "v"}},
		{[]string{"*"}, []string{""}},
		{[]string{"exact"}, []string{"exact"}},
	} {
		if got := tagPrefixes(tt.in); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("tagPrefixes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestConfigurationChangeOnlyLearns: a stage or release pattern added to the configuration makes
// refs that were long there part of what recovery reconciles; they are learnt, not taken for
// work missed (which would deploy a branch, or open release issues for old tags, out of the
// blue). Changes after that are reconciled.
func TestConfigurationChangeOnlyLearns(t *testing.T) {
	w := newWorld(t)
	w.gh.SetWebhook("", nil)
	w.gh.PushBranch(repo, "staging", sha('s'), "lena")
	w.gh.CreateTag(repo, "release-1", sha('s'), "lena", false)
	w.pass(w.runner("replica-1", nil, nil))
	wider, err := config.Parse("wider.yaml", []byte(strings.Replace(strings.Replace(configYAML,
		"stages:\n", "stages:\n  - {name: staging, branch: staging, trigger: push, credentials: nonprod}\n", 1),
		"      test: {", "      staging: {secret_id: web/staging, deployments: [{name: web, containers: [web]}]}\n      test: {", 1)+
		"release: {tags: [\"v*\", \"release-*\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = wider
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	if ds := w.deploys(); len(ds) != 0 || len(w.jobs()) != 0 {
		t.Fatalf("after the configuration grew: deploys %s, jobs %v; want none", describe(ds), w.jobs())
	}
	w.gh.PushBranch(repo, "staging", sha('t'), "lena")
	w.pass(r)
	if got := describe(w.deploys()); got != "staging:t:push" {
		t.Errorf("deploys = %s, want staging's new head", got)
	}
}

// TestBranchMissingForAMomentIsNotNew: GitHub answering 404 for a branch once must not make its
// head look new the next time (it would be acted on again, over whatever ran since).
func TestBranchMissingForAMomentIsNotNew(t *testing.T) {
	w := newWorld(t)
	r := w.runner("replica-1", nil, nil)
	w.pass(r)
	w.gh.FailNext("git/get-ref", 1, http.StatusNotFound) // alpha's, the first branch read
	w.pass(r)
	refs, err := w.st.RecoveryRefs(context.Background(), repo)
	if err != nil || refs["refs/heads/alpha"].SHA != sha('e') {
		t.Errorf("alpha as recovery remembers it: %+v, %v; want kept at its head", refs["refs/heads/alpha"], err)
	}
	w.pass(r)
	if ds := w.deploys(); len(ds) != 0 {
		t.Errorf("deploys = %s, want none", describe(ds))
	}
}
