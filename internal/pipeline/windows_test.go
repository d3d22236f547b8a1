package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// The windows tests never reach AWS or a cluster: what they check happens before the
// pipeline's first call to either (a deploy that waits, or a preflight that refuses).
const windowsConfig = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test, min_soak: 1h}
  - name: prod
    branch: prod
    trigger: push
    credentials: prod
    promote_from: alpha
    promoters: {users: [po]}
    time_zone: Europe/Berlin
    windows: [{days: Mon-Thu, hours: "09:00-16:00"}]
    freezes: [{from: 2025-12-22, until: 2026-01-05, reason: Year-end freeze}]
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      alpha: {secret_id: hello/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: hello/prod, deployments: [{name: api, containers: [api]}]}
`

// fakeClock is the tests' clock: it moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// noCloud answers every AWS call with an error, as a network that cannot be reached would: a
// deploy that gets that far is retried, never failed.
type noCloud struct{}

var errNoCloud = errors.New("no AWS in this test")

func (noCloud) SecretExists(context.Context, amazon.Session, string) error { return errNoCloud }
func (noCloud) StartBuild(context.Context, amazon.Session, amazon.BuildInput) (string, error) {
	return "", errNoCloud
}
func (noCloud) GetBuild(context.Context, amazon.Session, string) (amazon.Build, error) {
	return amazon.Build{}, errNoCloud
}
func (noCloud) FindBuild(context.Context, amazon.Session, amazon.BuildQuery) (string, bool, error) {
	return "", false, errNoCloud
}
func (noCloud) ImageDigest(context.Context, amazon.Session, string, string) (string, error) {
	return "", errNoCloud
}

type noClusters struct{}

func (noClusters) For(*config.Stage) (Cluster, error) {
	return nil, errors.New("no cluster in this test")
}

type windowsWorld struct {
	t      *testing.T
	cfg    *config.Config
	clock  *fakeClock
	dbPath string
	st     *store.Store
}

func newWindowsWorld(t *testing.T, at string) *windowsWorld {
	t.Helper()
	cfg, err := config.Parse("windows.yaml", []byte(windowsConfig))
	if err != nil {
		t.Fatal(err)
	}
	w := &windowsWorld{t: t, cfg: cfg, clock: &fakeClock{now: berlin(t, at)}, dbPath: filepath.Join(t.TempDir(), "w.db")}
	w.st = w.open()
	return w
}

// berlin reads "2025-01-17 17:00" as Berlin time.
func berlin(t *testing.T, s string) time.Time {
	t.Helper()
	zone, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.ParseInLocation("2006-01-02 15:04", s, zone)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func (w *windowsWorld) open() *store.Store {
	st, err := store.Open(context.Background(), "sqlite:"+w.dbPath)
	if err != nil {
		w.t.Fatal(err)
	}
	st.Now = w.clock.Now
	w.t.Cleanup(func() { st.Close() })
	return st
}

func (w *windowsWorld) runner(st *store.Store) *Runner {
	return New(st, w.cfg, noCloud{}, noClusters{}, Options{Owner: "r", Now: w.clock.Now}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// push records a deploy of sha to stage as the push executor does once the gate admitted it.
func (w *windowsWorld) push(stage, sha, delivery string) int64 {
	w.t.Helper()
	rd, err := w.st.RequestDeploys(context.Background(), []deploy.Request{{App: "hello", Stage: stage, Repo: "acme/hello", SHA: sha,
		Ref: stage, InstallationID: 1, Trigger: deploy.Trigger{Event: "push", Delivery: delivery, Actor: "po"}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return rd[0].ID
}

// succeed makes sha live on stage, as a deploy that ended well at the clock's time.
func (w *windowsWorld) succeed(stage, sha string) {
	w.t.Helper()
	ctx := context.Background()
	id := w.push(stage, sha, "live-"+stage+"-"+sha)
	for _, state := range []deploy.State{deploy.Preflight, deploy.Succeeded} {
		d, l, err := w.st.ClaimDeploy(ctx, "setup", time.Minute)
		if err != nil || d.ID != id {
			w.t.Fatalf("claiming deploy %d to make it live: %v (got %d)", id, err, d.ID)
		}
		if err := w.st.Advance(ctx, l, store.Update{State: state, Release: true}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// step runs the runner once and reports whether it found a deploy due.
func (w *windowsWorld) step(r *Runner) bool {
	w.t.Helper()
	worked, err := r.RunOnce(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return worked
}

func (w *windowsWorld) deploy(id int64) (deploy.Deploy, deploy.Checkpoint) {
	w.t.Helper()
	d, err := w.st.Deploy(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	cp, err := deploy.DecodeCheckpoint(d.Checkpoint)
	if err != nil {
		w.t.Fatal(err)
	}
	return d, cp
}

// waitsUntil checks deploy id is queued, waiting until want, and that nothing runs it sooner.
func (w *windowsWorld) waitsUntil(r *Runner, id int64, want time.Time) {
	w.t.Helper()
	d, cp := w.deploy(id)
	if d.State != deploy.Queued || cp.Wait == nil || !cp.Wait.Until.Equal(want) {
		w.t.Fatalf("deploy %d is %s with wait %+v; want queued, waiting until %s", id, d.State, cp.Wait, want)
	}
	for _, early := range []time.Duration{-time.Hour, -time.Minute, -time.Second} {
		if now := want.Add(early); now.After(w.clock.Now()) {
			w.clock.Set(now)
			if w.step(r) {
				if d, _ := w.deploy(id); d.State != deploy.Queued {
					w.t.Fatalf("deploy %d started at %s, before %s", id, now, want)
				}
			}
		}
	}
}

// TestPushToGuardedStageOutsideTheWindowWaits: a push to prod admitted on a Friday evening
// (prod deploys Mon-Thu 09:00-16:00 Berlin) does not start: it waits, queued, reported as
// waiting for the window at Monday 09:00, and starts then.
func TestPushToGuardedStageOutsideTheWindowWaits(t *testing.T) {
	w := newWindowsWorld(t, "2025-01-17 17:00") // a Friday
	r := w.runner(w.st)
	id := w.push("prod", sha1, "p1")
	if !w.step(r) {
		t.Fatal("the pushed deploy was not looked at")
	}
	monday := berlin(t, "2025-01-20 09:00")
	d, cp := w.deploy(id)
	if cp.Wait == nil || cp.Wait.At != "Mon Jan 20 09:00 CET" || cp.Wait.Windows != "Mon-Thu 09:00-16:00 Europe/Berlin" || cp.Wait.Freeze != "" {
		t.Fatalf("wait = %+v", cp.Wait)
	}
	if got := cp.Wait.Text(); got != "waiting for the window at Mon Jan 20 09:00 CET" {
		t.Errorf("the wait reads %q", got)
	}
	if d.ReportSeq == 0 {
		t.Error("the wait was not reported")
	}
	seq := d.ReportSeq
	w.waitsUntil(r, id, monday)
	if d, _ := w.deploy(id); d.ReportSeq != seq {
		t.Errorf("looking again while it waits reported it %d more times: once is enough", d.ReportSeq-seq)
	}
	w.clock.Set(monday)
	if !w.step(r) {
		t.Fatal("at Monday 09:00 the deploy was not due")
	}
	if d, cp := w.deploy(id); d.State != deploy.Preflight || cp.Wait != nil {
		t.Fatalf("at Monday 09:00 the deploy is %s with wait %+v; want it started", d.State, cp.Wait)
	}
}

// TestRetryButtonDuringFreezeWaits: a Retry pressed during the year-end freeze records a new
// deploy (held, then released, as the button does); it waits for the freeze to end and the
// next window, saying why, instead of starting. Forced by an admin, it starts at once.
func TestRetryButtonDuringFreezeWaits(t *testing.T) {
	w := newWindowsWorld(t, "2025-12-23 10:00") // a Tuesday, in the window, but frozen
	r := w.runner(w.st)
	ctx := context.Background()
	retry := func(nonce, force string) int64 {
		rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "hello", Stage: "prod", Repo: "acme/hello", SHA: sha1, Ref: "v1.0.0",
			InstallationID: 1, Trigger: deploy.Trigger{Event: "check_run", Delivery: nonce, Actor: "po", Issue: 5}, Nonce: nonce, Held: true, Force: force}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.st.ReleaseDeploy(ctx, rd[0].ID); err != nil {
			t.Fatal(err)
		}
		return rd[0].ID
	}
	id := retry("button:1", "")
	w.step(r)
	_, cp := w.deploy(id)
	if cp.Wait == nil || cp.Wait.Freeze != "Year-end freeze" || !strings.Contains(cp.Wait.Text(), "frozen (Year-end freeze): waiting until Mon Jan 5 09:00 CET") {
		t.Fatalf("wait = %+v", cp.Wait)
	}
	w.waitsUntil(r, id, berlin(t, "2026-01-05 09:00"))

	forced := retry("button:2", "INC-42: the fix must ship")
	w.step(r)
	if d, cp := w.deploy(forced); d.State != deploy.Preflight || cp.Wait != nil {
		t.Fatalf("the forced retry is %s with wait %+v; an admin's --force passes a freeze", d.State, cp.Wait)
	}
	if d, _ := w.deploy(id); d.State != deploy.Superseded {
		t.Errorf("the waiting retry is %s; the newer deploy supersedes it (newest wins)", d.State)
	}
}

// TestHeldDeployWhoseWindowOpensWhileTheProcessIsDown: the process that made a deploy wait is
// gone when the window opens; the next process to start runs it at once, from what the store
// kept, without anyone asking again.
func TestHeldDeployWhoseWindowOpensWhileTheProcessIsDown(t *testing.T) {
	w := newWindowsWorld(t, "2025-01-16 16:30") // Thursday, just after the window closed
	id := w.push("prod", sha1, "p1")
	w.step(w.runner(w.st))
	if _, cp := w.deploy(id); cp.Wait == nil {
		t.Fatal("the deploy did not wait")
	}
	if err := w.st.Close(); err != nil {
		t.Fatal(err)
	}
	// Down over the weekend; up again on Monday at 11:00.
	w.clock.Set(berlin(t, "2025-01-20 11:00"))
	w.st = w.open()
	r := w.runner(w.st)
	if !w.step(r) {
		t.Fatal("after the restart the waiting deploy was not due")
	}
	if d, _ := w.deploy(id); d.State != deploy.Preflight {
		t.Fatalf("after the restart the deploy is %s, want started", d.State)
	}
}

// TestRollbackDuringFreezeDoesNotWait: `/rollback prod` (an earlier image, or a slot switch) in
// a freeze or outside the windows starts at once: it only puts back what ran before, and an
// emergency rollback must not wait for Monday.
func TestRollbackDuringFreezeDoesNotWait(t *testing.T) {
	for _, mode := range []deploy.Mode{deploy.ModeImage, deploy.ModeSwitch} {
		t.Run(string(mode), func(t *testing.T) {
			w := newWindowsWorld(t, "2025-12-27 03:00") // a Saturday night in the freeze
			rd, err := w.st.RequestDeploys(context.Background(), []deploy.Request{{App: "hello", Stage: "prod", Repo: "acme/hello", SHA: sha1,
				InstallationID: 1, Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "c1", Actor: "po"}, Nonce: "c1", Mode: mode,
				Image: "repo@sha256:1", Slot: "prod-backup"}})
			if err != nil {
				t.Fatal(err)
			}
			w.step(w.runner(w.st))
			if d, cp := w.deploy(rd[0].ID); d.State != deploy.Preflight || cp.Wait != nil {
				t.Fatalf("the rollback is %s with wait %+v; want started", d.State, cp.Wait)
			}
		})
	}
}

// TestNewerPushSupersedesTheWaitingDeploy: newest wins still holds for waiting deploys: a
// second push outside the window replaces the first, which never starts, and waits itself.
func TestNewerPushSupersedesTheWaitingDeploy(t *testing.T) {
	w := newWindowsWorld(t, "2025-01-18 12:00") // Saturday
	r := w.runner(w.st)
	first := w.push("prod", sha1, "p1")
	w.step(r)
	second := w.push("prod", "d4a8e1f0a1b2c3d4e5f60718293a4b5c6d7e8f90", "p2")
	if d, _ := w.deploy(first); d.State != deploy.Superseded || d.SupersededBy != second {
		t.Fatalf("the first push's deploy is %s (by %d), want superseded by %d", d.State, d.SupersededBy, second)
	}
	w.step(r)
	w.waitsUntil(r, second, berlin(t, "2025-01-20 09:00"))
	pending, _ := w.st.PendingJobs(context.Background())
	if pending[jobs.KindDeployEnded] != 1 {
		t.Errorf("pending deploy.ended jobs = %d, want the superseded deploy's", pending[jobs.KindDeployEnded])
	}
}

// TestWaitLooksAgainAfterAConfigurationChange: a deploy waiting a weekend is looked at again
// within maxWait, so a configuration that lifted the wait (restarted with other windows) is
// heard, and starts it, without waiting for the old opening.
func TestWaitLooksAgainAfterAConfigurationChange(t *testing.T) {
	w := newWindowsWorld(t, "2025-01-17 17:00") // Friday evening
	id := w.push("prod", sha1, "p1")
	w.step(w.runner(w.st))
	text := strings.Replace(windowsConfig, `windows: [{days: Mon-Thu, hours: "09:00-16:00"}]`, `windows: [{days: daily, hours: "00:00-24:00"}]`, 1)
	cfg, err := config.Parse("windows.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	r := w.runner(w.st)
	w.clock.Set(w.clock.Now().Add(maxWait - time.Second))
	if w.step(r) {
		t.Fatal("looked again before maxWait")
	}
	w.clock.Set(w.clock.Now().Add(time.Second))
	if !w.step(r) {
		t.Fatal("not looked at again after maxWait")
	}
	if d, _ := w.deploy(id); d.State != deploy.Preflight {
		t.Fatalf("under the new windows the deploy is %s, want started", d.State)
	}
}

// TestUnsoakedPromotionFailsPreflight: a deploy to prod of a commit that has run on alpha
// 10 minutes (alpha's min_soak is 1h), however it was recorded, fails at preflight saying when
// it will be ready; once it has run an hour, preflight lets it on (to the cloud, which this
// test does not have).
func TestUnsoakedPromotionFailsPreflight(t *testing.T) {
	w := newWindowsWorld(t, "2025-01-13 10:00") // Monday, in the window
	w.succeed("alpha", sha1)
	w.clock.Set(berlin(t, "2025-01-13 10:10"))
	r := w.runner(w.st)
	id := w.push("prod", sha1, "p1")
	w.step(r) // queued → preflight
	w.step(r) // preflight
	d, _ := w.deploy(id)
	if d.State != deploy.Failed || !strings.Contains(d.Error, "soak time: c4295bd has run on alpha for 10m") ||
		!strings.Contains(d.Error, "ready at Mon Jan 13 11:00 CET") {
		t.Fatalf("the unsoaked promotion is %s: %q", d.State, d.Error)
	}
	w.clock.Set(berlin(t, "2025-01-13 11:00"))
	again, err := w.st.RequestDeploys(context.Background(), []deploy.Request{{App: "hello", Stage: "prod", Repo: "acme/hello", SHA: sha1,
		Ref: "prod", InstallationID: 1, Trigger: deploy.Trigger{Event: "issue_comment", Delivery: "c2", Actor: "po"}, Nonce: "c2"}})
	if err != nil {
		t.Fatal(err)
	}
	w.step(r)
	w.step(r)
	if d, _ := w.deploy(again[0].ID); d.State != deploy.Preflight || d.Error != "" {
		t.Fatalf("the soaked promotion is %s: %q; want it past the soak check (retrying the cloud)", d.State, d.Error)
	}
}
