package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
	"github.com/stagecoach/stagecoach/internal/worker"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// replicas is one PostgreSQL database with several Stagecoach replicas' worth of reporting on it:
// each replica its own store handle (connection pool), GitHub client factory, executors and job
// runner, as separate processes have. The pipeline's side is played by the test through the
// store (claims and Advance), exactly as a pipeline replica writes.
type replicas struct {
	t    *testing.T
	url  string
	gh   *githubtest.Server
	cfg  *config.Config
	st   *store.Store // the test's own handle
	runs []*worker.Runner
	now  atomic.Pointer[time.Time]

	mu     sync.Mutex
	stores []*store.Store // every handle opened, whose database clock advanceClock moves
}

func newReplicas(t *testing.T, n int) *replicas {
	t.Helper()
	r := &replicas{t: t, url: pgtest.URL(t), gh: githubtest.New(t), cfg: withHello()}
	start := time.Now()
	r.now.Store(&start)
	r.st = r.open()
	for i := range n {
		r.runs = append(r.runs, r.runner(r.open(), fmt.Sprintf("replica-%d", i)))
	}
	return r
}

func (r *replicas) clock() time.Time { return *r.now.Load() }

// advanceClock moves this process's clock and, as every handle reads it, the database's, which
// leases are kept on.
func (r *replicas) advanceClock(d time.Duration) {
	t := r.clock().Add(d)
	r.now.Store(&t)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.stores {
		st.AdvanceDatabaseClock(d)
	}
}

func (r *replicas) open() *store.Store {
	st, err := store.Open(context.Background(), r.url)
	if err != nil {
		r.t.Fatal(err)
	}
	st.Now = r.clock
	r.t.Cleanup(func() { st.Close() })
	r.mu.Lock()
	r.stores = append(r.stores, st)
	r.mu.Unlock()
	return st
}

func (r *replicas) runner(st ProgressStore, owner string) *worker.Runner {
	f, err := githubapp.New(githubapp.Options{AppID: r.gh.AppID(), PrivateKey: r.gh.PrivateKeyPEM(), BaseURL: r.gh.URL()})
	if err != nil {
		r.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := st.(worker.Store)
	run, err := worker.New(ws, []worker.Executor{
		NewCheckRunCreator(st, f, "https://github.com", log).Executor(),
		NewProgress(st, f, r.cfg, "https://github.com", log).Executor(),
	}, worker.Options{Owner: owner, LeaseTTL: time.Minute, Now: r.clock}, log)
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

// drain runs every due job on the replicas in turn until none has any.
func (r *replicas) drain() {
	r.t.Helper()
	for busy := true; busy; {
		busy = false
		for _, run := range r.runs {
			worked, err := run.RunOne(context.Background())
			if err != nil {
				r.t.Fatal(err)
			}
			busy = busy || worked
		}
	}
}

// request records a deploy request as the intake does, and returns its id.
func (r *replicas) request(req deploy.Request, delivery string) int64 {
	r.t.Helper()
	rec, err := r.st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: delivery, Event: req.Trigger.Event},
		Deploys: []deploy.Request{req}})
	if err != nil {
		r.t.Fatal(err)
	}
	return rec.Deploys[0].ID
}

// pipeline claims the deploy id as a pipeline replica does; steps moves it through states.
func (r *replicas) claim(id int64) store.Lease {
	r.t.Helper()
	d, l, err := r.st.ClaimDeploy(context.Background(), "pipeline", time.Hour)
	if err != nil || d.ID != id {
		r.t.Fatalf("claimed %d (%v), want %d", d.ID, err, id)
	}
	return l
}

func (r *replicas) step(l store.Lease, state deploy.State, steps ...string) {
	r.t.Helper()
	cp := deploy.Checkpoint{}
	for _, s := range steps {
		cp.Steps = append(cp.Steps, deploy.StepRecord{Name: s, Status: deploy.StepSucceeded})
	}
	if err := r.st.Advance(context.Background(), l, store.Update{State: state, Checkpoint: cp.Encode()}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *replicas) deploy(id int64) deploy.Deploy {
	d, err := r.st.Deploy(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// TestTwoReplicasNeverCreateTwoDeploymentsForOneDeploy: the preflight and building reports of
// one deploy ran at the same moment on two replicas and each posted POST /deployments; one
// Deployment stayed queued forever (the per-deploy mutex covered one process). Here, while the
// first replica waits for GitHub's answer to its POST /deployments, the second replica tries to
// run everything it can claim: before, it claimed the building report and made a second
// Deployment; now the deploy's later reports wait in its lane until the first one is done.
func TestTwoReplicasNeverCreateTwoDeploymentsForOneDeploy(t *testing.T) {
	r := newReplicas(t, 2)
	id := r.request(mergedPR, "merge-1")
	r.drain() // the check run
	l := r.claim(id)
	r.step(l, deploy.Preflight, "Preflight")
	var once sync.Once
	raced := false
	r.gh.BeforeAnswer(func(req githubtest.Request) {
		if req.Operation == "repos/create-deployment" {
			once.Do(func() {
				// The first replica is inside POST /deployments for the preflight report; the
				// pipeline moves on to building, and the second replica works meanwhile.
				raced = true
				r.step(l, deploy.Building, "Preflight", "Build")
				for {
					worked, err := r.runs[1].RunOne(context.Background())
					if err != nil {
						t.Error(err)
					}
					if !worked {
						return
					}
				}
			})
		}
	})
	if worked, err := r.runs[0].RunOne(context.Background()); !worked || err != nil {
		t.Fatal(worked, err)
	}
	r.gh.BeforeAnswer(nil)
	if !raced {
		t.Fatal("the first replica never created the Deployment")
	}
	r.step(l, deploy.RollingOut, "Preflight", "Build", "Rollout")
	r.step(l, deploy.Succeeded, "Preflight", "Build", "Rollout")
	r.drain()
	deps := r.gh.Deployments("acme/hello")
	if len(deps) != 1 {
		t.Fatalf("%d GitHub Deployments for one deploy, want 1", len(deps))
	}
	var states []string
	for _, s := range deps[0].Statuses {
		states = append(states, s.State)
	}
	if got := strings.Join(states, ","); got != "queued,in_progress,success" {
		t.Errorf("statuses = %s, want queued,in_progress,success", got)
	}
	if runs := r.gh.CheckRuns("acme/hello"); len(runs) != 1 || runs[0].Conclusion != "success" {
		t.Errorf("check runs = %+v, want one, succeeded", runs)
	}
}

// deadStore is a replica's store after its process was killed: every write fails, so what the
// replica did on GitHub is never recorded and its job keeps its lease until it expires.
type deadStore struct {
	*store.Store
	dead *atomic.Bool
}

var errKilled = errors.New("the process was killed")

func (d deadStore) check() error {
	if d.dead.Load() {
		return errKilled
	}
	return nil
}

func (d deadStore) SetGitHubDeployment(ctx context.Context, id, gid int64, s string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.SetGitHubDeployment(ctx, id, gid, s)
}

func (d deadStore) EndWrite(ctx context.Context, key string, id int64) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.EndWrite(ctx, key, id)
}

func (d deadStore) FinishJob(ctx context.Context, l store.Lease) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.FinishJob(ctx, l)
}

func (d deadStore) RetryJob(ctx context.Context, l store.Lease, at time.Time, e string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.RetryJob(ctx, l, at, e)
}

func (d deadStore) PostponeJob(ctx context.Context, l store.Lease, at time.Time, e, b string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.PostponeJob(ctx, l, at, e, b)
}

func (d deadStore) FailJob(ctx context.Context, l store.Lease, e string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.FailJob(ctx, l, e)
}

// TestAFinishedStatusIsNeverSentAgainAfterANewerDeploySucceeded: a replica posted success for a
// deploy and was killed before recording it; at lease expiry the retried job posted that old
// success again after a newer deploy of the same environment had succeeded, so GitHub showed an
// older commit than the cluster runs. Now the newer deploy's reports wait in the environment's
// lane behind the unfinished one, and its retry finds the success it sent instead of sending it
// again: GitHub's environment ends on the newer deploy, and no status is sent twice.
func TestAFinishedStatusIsNeverSentAgainAfterANewerDeploySucceeded(t *testing.T) {
	r := newReplicas(t, 1)
	var dead atomic.Bool
	victim := r.runner(deadStore{r.open(), &dead}, "victim")
	id1 := r.request(mergedPR, "merge-1")
	r.drain()
	l := r.claim(id1)
	r.step(l, deploy.Preflight, "Preflight")
	r.step(l, deploy.Building, "Preflight", "Build")
	r.drain()
	r.step(l, deploy.RollingOut, "Preflight", "Build", "Rollout")
	r.step(l, deploy.Succeeded, "Preflight", "Build", "Rollout")
	// The victim claims the final report, posts success, and dies before recording it.
	r.gh.BeforeAnswer(func(req githubtest.Request) {
		if req.Operation == "repos/create-deployment-status" && strings.Contains(string(req.Body), `"success"`) {
			dead.Store(true)
		}
	})
	for !dead.Load() {
		if worked, err := victim.RunOne(context.Background()); !worked || (err != nil && !errors.Is(err, errKilled)) {
			t.Fatalf("the victim's run: %v %v", worked, err)
		}
	}
	r.gh.BeforeAnswer(nil)
	// A newer deploy of the same app and environment runs and succeeds meanwhile.
	second := mergedPR
	second.SHA, second.Trigger.PR = "d00dfeed00000000000000000000000000000000", 3
	id2 := r.request(second, "merge-2")
	l2 := r.claim(id2)
	r.step(l2, deploy.Preflight, "Preflight")
	r.step(l2, deploy.Building, "Preflight", "Build")
	r.step(l2, deploy.RollingOut, "Preflight", "Build", "Rollout")
	r.step(l2, deploy.Succeeded, "Preflight", "Build", "Rollout")
	r.drain() // whatever can run before the victim's lease expires
	r.advanceClock(2 * time.Minute)
	r.drain() // the victim's job is taken over, then everything after it
	deps := r.gh.Deployments("acme/hello")
	if len(deps) != 2 {
		t.Fatalf("%d GitHub Deployments, want 2", len(deps))
	}
	byDeploy := map[int64]githubtest.Deployment{}
	for _, d := range deps {
		if strings.Contains(d.Payload, fmt.Sprintf(`"stagecoach_deploy":%d`, id1)) {
			byDeploy[id1] = d
		} else {
			byDeploy[id2] = d
		}
	}
	successes := 0
	for _, s := range byDeploy[id1].Statuses {
		if s.State == "success" {
			successes++
		}
	}
	if successes != 1 {
		t.Errorf("deploy %d's Deployment got %d success statuses, want exactly 1: %+v", id1, successes, byDeploy[id1].Statuses)
	}
	last := func(d githubtest.Deployment) string { return d.Statuses[len(d.Statuses)-1].State }
	if last(byDeploy[id2]) != "success" || last(byDeploy[id1]) != "inactive" {
		t.Errorf("environment test ends with deploy %d %s and deploy %d %s: GitHub shows the older commit as live",
			id1, last(byDeploy[id1]), id2, last(byDeploy[id2]))
	}
}

// TestReplyToASupersededCommandSaysByWhat: a /deploy whose deploy was superseded kept "⏳
// deploying … Progress follows in this comment." forever while its check run said skipped. Now
// its report edits the reply to say which deploy superseded it, on whichever replica runs it.
func TestReplyToASupersededCommandSaysByWhat(t *testing.T) {
	r := newReplicas(t, 2)
	ctx := context.Background()
	cmd := commandRequest("test")
	cmd.Held = true
	recs, err := r.st.RequestDeploys(ctx, []deploy.Request{cmd})
	if err != nil {
		t.Fatal(err)
	}
	id := recs[0].ID
	// The command answers, then hands the reply over with the deploy (chatops.finish).
	f, err := githubapp.New(githubapp.Options{AppID: r.gh.AppID(), PrivateKey: r.gh.PrivateKeyPEM(), BaseURL: r.gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	gh, _ := f.Installation(1)
	c, _, err := gh.Issues.CreateComment(ctx, "acme", "hello", 5, &github.IssueComment{Body: github.Ptr("@po ⏳ deploying `c4295bd` to **test**. Progress follows in this comment.")})
	if err != nil {
		t.Fatal(err)
	}
	reply := c.GetID()
	rec, err := r.st.RecordCommand(ctx, store.CommandRecord{Key: "comment:acme/hello:77", Repo: "acme/hello", Issue: 5, Actor: "po", Verb: "deploy", Stage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.st.FinishCommandWith(ctx, store.CommandDone{ID: rec.ID, Outcome: "accepted", Reply: reply, Deploys: []int64{id}}); err != nil {
		t.Fatal(err)
	}
	// Before it starts, a merge to master supersedes it.
	push := mergedPR
	push.SHA = "d00dfeed00000000000000000000000000000000"
	newer := r.request(push, "merge-2")
	r.drain()
	if d := r.deploy(id); d.State != deploy.Superseded {
		t.Fatalf("deploy %d is %s, want superseded", id, d.State)
	}
	var body string
	for _, c := range r.gh.Comments("acme/hello", 5) {
		if c.ID == reply {
			body = c.Body
		}
	}
	want := fmt.Sprintf("was superseded by deploy #%d of `d00dfee`", newer)
	if !strings.Contains(body, want) || strings.Contains(body, "⏳") {
		t.Errorf("the reply reads:\n%s\nwant it final, containing %q", body, want)
	}
	if n := len(r.gh.Comments("acme/hello", 5)); n != 1 {
		t.Errorf("%d comments on the issue, want the one reply", n)
	}
}
