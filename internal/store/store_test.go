package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// forEachStore runs fn against a fresh SQLite store and a fresh PostgreSQL store.
func forEachStore(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			fn(t, openStore(t, dsnFor(t, name)))
		})
	}
}

func dsnFor(t *testing.T, name string) string {
	if name == "postgres" {
		return pgtest.URL(t)
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

func openStore(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable clock for leases and run_after.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func useClock(s *Store) *clock {
	c := &clock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	s.Now = c.Now
	return c
}

func req(app, stage, sha string, pr int) deploy.Request {
	return deploy.Request{App: app, Stage: stage, Repo: "acme/" + app, SHA: sha, Ref: "master", InstallationID: 7,
		Trigger: deploy.Trigger{Event: "pull_request", Delivery: "d-" + sha, PR: pr, Actor: "octocat"}}
}

func intake(delivery string, reqs ...deploy.Request) Intake {
	return Intake{Delivery: Delivery{ID: delivery, Event: "pull_request", Action: "closed", Repo: "acme/app", InstallationID: 7}, Deploys: reqs}
}

func record(t *testing.T, s *Store, in Intake) Recorded {
	t.Helper()
	rec, err := s.Record(context.Background(), in)
	if err != nil {
		t.Fatalf("Record(%s): %v", in.Delivery.ID, err)
	}
	return rec
}

func TestRecord(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// A new deploy.
		r1 := record(t, s, intake("d1", req("app", "test", "aaa", 5)))
		if r1.Duplicate || len(r1.Deploys) != 1 || !r1.Deploys[0].New {
			t.Fatalf("first record = %+v", r1)
		}
		// The same delivery again: nothing new.
		if r := record(t, s, intake("d1", req("app", "test", "bbb", 0))); !r.Duplicate || len(r.Deploys) != 0 {
			t.Errorf("redelivery = %+v, want duplicate", r)
		}
		// The same app, stage and sha from another delivery (the push of the merge commit).
		if r := record(t, s, intake("d2", req("app", "test", "aaa", 0))); r.Duplicate || r.Deploys[0].New || r.Deploys[0].ID != r1.Deploys[0].ID {
			t.Errorf("same key = %+v, want the existing deploy %d", r, r1.Deploys[0].ID)
		}
		// A newer commit supersedes the queued one; the one after supersedes it in turn.
		r3 := record(t, s, intake("d3", req("app", "test", "ccc", 6)))
		if !r3.Deploys[0].New || len(r3.Deploys[0].Superseded) != 1 || r3.Deploys[0].Superseded[0] != r1.Deploys[0].ID {
			t.Errorf("newer = %+v, want it to supersede %d", r3, r1.Deploys[0].ID)
		}
		r4 := record(t, s, intake("d4", req("app", "test", "ddd", 7), req("app", "alpha", "ddd", 7)))
		if len(r4.Deploys) != 2 || len(r4.Deploys[1].Superseded) != 0 {
			t.Errorf("two stages = %+v", r4)
		}
		old, err := s.Deploy(ctx, r1.Deploys[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if old.State != deploy.Superseded || old.SupersededBy != r3.Deploys[0].ID || old.FinishedAt.IsZero() {
			t.Errorf("superseded deploy = %+v", old)
		}
		if old.Trigger.PR != 5 || old.Trigger.Actor != "octocat" || old.Repo != "acme/app" || old.InstallationID != 7 {
			t.Errorf("fields not kept: %+v", old)
		}
		queued, _ := s.ListDeploys(ctx, Filter{App: "app", State: deploy.Queued})
		if len(queued) != 2 {
			t.Errorf("queued = %+v, want one per stage", queued)
		}
		// Every new deploy got its check-run job, and only those.
		pending, err := s.PendingJobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pending[jobs.KindCheckRunCreate] != 4 {
			t.Errorf("check run jobs = %v, want 4", pending)
		}
	})
}

func TestPullRequestNumberIsKeptWhenThePushCameFirst(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		push := req("app", "test", "aaa", 0)
		push.Trigger.Event = "push"
		r := record(t, s, intake("push", push))
		record(t, s, intake("pr", req("app", "test", "aaa", 9)))
		d, err := s.Deploy(context.Background(), r.Deploys[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Trigger.PR != 9 || d.Trigger.Event != "pull_request" {
			t.Errorf("trigger = %+v, want the pull request's", d.Trigger)
		}
	})
}

func TestJobsInIntakeAreDeduplicated(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		j := jobs.Job{Kind: jobs.KindComment, Key: "comment:acme/app:1", Payload: []byte(`{"body":"/status"}`)}
		record(t, s, Intake{Delivery: Delivery{ID: "c1", Event: "issue_comment"}, Jobs: []jobs.Job{j}})
		record(t, s, Intake{Delivery: Delivery{ID: "c2", Event: "issue_comment"}, Jobs: []jobs.Job{j}})
		pending, _ := s.PendingJobs(context.Background())
		if pending[jobs.KindComment] != 1 {
			t.Errorf("pending = %v, want one comment job", pending)
		}
	})
}

func TestListFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i := range 5 {
			record(t, s, intake(fmt.Sprint("d", i), req("app", "test", fmt.Sprint("sha", i), 0)))
		}
		record(t, s, intake("other", req("other", "prod", "x", 0)))
		tests := []struct {
			f    Filter
			want int
		}{
			{Filter{}, 6}, {Filter{App: "app"}, 5}, {Filter{Stage: "prod"}, 1}, {Filter{State: deploy.Superseded}, 4},
			{Filter{App: "app", State: deploy.Queued}, 1}, {Filter{Limit: 2}, 2}, {Filter{App: "nope"}, 0},
		}
		for _, tt := range tests {
			got, err := s.ListDeploys(ctx, tt.f)
			if err != nil || len(got) != tt.want {
				t.Errorf("ListDeploys(%+v) = %d deploys, %v; want %d", tt.f, len(got), err, tt.want)
			}
		}
		page1, _ := s.ListDeploys(ctx, Filter{Limit: 4})
		page2, _ := s.ListDeploys(ctx, Filter{Limit: 4, BeforeID: page1[3].ID})
		if len(page2) != 2 || page2[0].ID >= page1[3].ID || page1[0].ID < page1[1].ID {
			t.Errorf("paging: %d then %d", len(page1), len(page2))
		}
		if _, err := s.Deploy(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("Deploy(999) = %v, want ErrNotFound", err)
		}
		counts, err := s.CountDeploys(ctx)
		if err != nil || counts[deploy.Queued] != 2 || counts[deploy.Superseded] != 4 {
			t.Errorf("counts = %v, %v", counts, err)
		}
	})
}

func TestLeases(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := useClock(s)
		id := record(t, s, intake("d1", req("app", "test", "aaa", 0))).Deploys[0].ID
		d, l1, err := s.ClaimDeploy(ctx, "w1", time.Minute)
		if err != nil || d.ID != id || d.State != deploy.Queued {
			t.Fatalf("claim = %+v, %v", d, err)
		}
		if _, _, err := s.ClaimDeploy(ctx, "w2", time.Minute); !errors.Is(err, ErrNoWork) {
			t.Fatalf("second claim = %v, want ErrNoWork while leased", err)
		}
		if err := s.Advance(ctx, l1, Update{State: deploy.Preflight, Checkpoint: []byte(`{"step":1}`)}); err != nil {
			t.Fatal(err)
		}
		// A newer request queues behind the running deploy and cannot be claimed yet.
		record(t, s, intake("d2", req("app", "test", "bbb", 0)))
		if _, _, err := s.ClaimDeploy(ctx, "w2", time.Minute); !errors.Is(err, ErrNoWork) {
			t.Fatalf("claim while another runs = %v, want ErrNoWork", err)
		}
		if err := s.Heartbeat(ctx, l1, time.Minute); err != nil {
			t.Fatal(err)
		}
		// The lease expires without a heartbeat: another worker takes the deploy over.
		clk.Add(2 * time.Minute)
		d2, l2, err := s.ClaimDeploy(ctx, "w2", time.Minute)
		if err != nil || d2.ID != id || d2.State != deploy.Preflight || string(d2.Checkpoint) != `{"step":1}` {
			t.Fatalf("takeover = %+v, %v", d2, err)
		}
		if err := s.Advance(ctx, l1, Update{State: deploy.Building}); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("old lease advanced: %v", err)
		}
		if err := s.Heartbeat(ctx, l1, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("old lease heartbeat: %v", err)
		}
		// Step, let go until later, and be picked up again then.
		if err := s.Advance(ctx, l2, Update{State: deploy.Building, RunAfter: clk.Now().Add(30 * time.Second), Release: true}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ClaimDeploy(ctx, "w3", time.Minute); !errors.Is(err, ErrNoWork) {
			t.Errorf("claimed before run_after: %v", err)
		}
		clk.Add(31 * time.Second)
		d3, l3, err := s.ClaimDeploy(ctx, "w3", time.Minute)
		if err != nil || d3.ID != id || d3.StartedAt.IsZero() {
			t.Fatalf("claim after run_after = %+v, %v", d3, err)
		}
		if err := s.Advance(ctx, l3, Update{State: deploy.Succeeded}); err != nil {
			t.Fatal(err)
		}
		done, _ := s.Deploy(ctx, id)
		if done.State != deploy.Succeeded || done.FinishedAt.IsZero() {
			t.Errorf("finished deploy = %+v", done)
		}
		if err := s.Advance(ctx, l3, Update{State: deploy.Failed}); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("advanced a final deploy: %v", err)
		}
		// Now the queued one can run.
		next, _, err := s.ClaimDeploy(ctx, "w3", time.Minute)
		if err != nil || next.SHA != "bbb" {
			t.Errorf("next = %+v, %v", next, err)
		}
	})
}

func TestSupersededWhileLeased(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		record(t, s, intake("d1", req("app", "test", "aaa", 0)))
		_, l, err := s.ClaimDeploy(ctx, "w1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		record(t, s, intake("d2", req("app", "test", "bbb", 0))) // supersedes the claimed, still queued deploy
		if err := s.Advance(ctx, l, Update{State: deploy.Preflight}); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("advancing a superseded deploy = %v, want ErrLeaseLost", err)
		}
	})
}

func TestOneRunningPerStage(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := useClock(s)
		record(t, s, intake("d1", req("app", "test", "aaa", 0)))
		_, l1, _ := s.ClaimDeploy(ctx, "w1", time.Minute)
		// Release the lease while still queued, then let a second request arrive and run.
		if err := s.Advance(ctx, l1, Update{Release: true, RunAfter: clk.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		record(t, s, intake("d2", req("app", "test", "bbb", 0)))
		_, l2, err := s.ClaimDeploy(ctx, "w2", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Advance(ctx, l2, Update{State: deploy.Preflight}); err != nil {
			t.Fatal(err)
		}
		// Force a second running deploy past the claim rules: the database refuses it.
		id := record(t, s, intake("d3", req("app", "test", "ccc", 0))).Deploys[0].ID
		_, err = s.write.Exec("UPDATE deploys SET state = 'building' WHERE id = $1", id)
		if !isUniqueViolation(err) {
			t.Errorf("second running deploy allowed: %v", err)
		}
	})
}

func TestJobLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := useClock(s)
		id, created, err := s.EnqueueJob(ctx, jobs.Job{Kind: "k", Key: "k1", Payload: []byte(`{}`)})
		if err != nil || !created {
			t.Fatalf("enqueue = %d %v %v", id, created, err)
		}
		if _, created, _ := s.EnqueueJob(ctx, jobs.Job{Kind: "k", Key: "k1", Payload: []byte(`{}`)}); created {
			t.Error("same key enqueued twice")
		}
		if _, _, err := s.ClaimJob(ctx, "w", []string{"other"}, time.Minute); !errors.Is(err, ErrNoWork) {
			t.Errorf("claimed a job of another kind: %v", err)
		}
		j, l, err := s.ClaimJob(ctx, "w", []string{"k"}, time.Minute)
		if err != nil || j.ID != id || j.Attempts != 0 {
			t.Fatalf("claim = %+v %v", j, err)
		}
		if err := s.RetryJob(ctx, l, clk.Now().Add(time.Minute), "GitHub 502"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ClaimJob(ctx, "w", []string{"k"}, time.Minute); !errors.Is(err, ErrNoWork) {
			t.Errorf("claimed before its retry time: %v", err)
		}
		clk.Add(2 * time.Minute)
		j, l, err = s.ClaimJob(ctx, "w", []string{"k"}, time.Minute)
		if err != nil || j.Attempts != 1 {
			t.Fatalf("second claim = %+v %v", j, err)
		}
		// The worker dies; its lease expires; another takes the job over.
		clk.Add(2 * time.Minute)
		_, l2, err := s.ClaimJob(ctx, "w2", []string{"k"}, time.Minute)
		if err != nil {
			t.Fatalf("takeover: %v", err)
		}
		if err := s.FinishJob(ctx, l); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("old lease finished the job: %v", err)
		}
		if err := s.FinishJob(ctx, l2); err != nil {
			t.Fatal(err)
		}
		if p, _ := s.PendingJobs(ctx); p["k"] != 0 {
			t.Errorf("pending after finish = %v", p)
		}
		s.EnqueueJob(ctx, jobs.Job{Kind: "k", Key: "k2", Payload: []byte(`{}`)})
		_, l3, _ := s.ClaimJob(ctx, "w", []string{"k"}, time.Minute)
		if err := s.FailJob(ctx, l3, "404"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ClaimJob(ctx, "w", []string{"k"}, time.Minute); !errors.Is(err, ErrNoWork) {
			t.Errorf("failed job claimed again: %v", err)
		}
	})
}

func TestMigrationsAreIdempotent(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFor(t, name)
			a := openStore(t, dsn)
			record(t, a, intake("d1", req("app", "test", "aaa", 0)))
			a.Close()
			b := openStore(t, dsn) // migrations already applied: a no-op, data intact
			if ds, err := b.ListDeploys(context.Background(), Filter{}); err != nil || len(ds) != 1 {
				t.Errorf("after reopening: %d deploys, %v", len(ds), err)
			}
			files, _ := migrations.ReadDir("migrations")
			var n int
			if err := b.read.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != len(files) {
				t.Errorf("schema_migrations has %d rows, %v; want one per migration (%d)", n, err, len(files))
			}
		})
	}
}

// TestGroupCommit records many deliveries concurrently: each is answered with its own result.
func TestGroupCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		var wg sync.WaitGroup
		ids := make([]int64, 200)
		for i := range ids {
			wg.Go(func() {
				r, err := s.Record(context.Background(), intake(fmt.Sprint("g", i), req(fmt.Sprint("app", i), "test", "x", 0)))
				if err != nil || len(r.Deploys) != 1 || !r.Deploys[0].New {
					t.Errorf("record %d = %+v, %v", i, r, err)
					return
				}
				ids[i] = r.Deploys[0].ID
			})
		}
		wg.Wait()
		seen := map[int64]bool{}
		for _, id := range ids {
			if id == 0 || seen[id] {
				t.Fatalf("ids not unique: %v", ids)
			}
			seen[id] = true
		}
		counts, _ := s.CountDeploys(context.Background())
		if counts[deploy.Queued] != 200 {
			t.Errorf("queued = %d, want 200", counts[deploy.Queued])
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	s := openStore(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	var mu sync.Mutex
	n := 0
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			id := fmt.Sprint("bench-", n)
			mu.Unlock()
			if _, err := s.Record(context.Background(), intake(id, req("app", "test", "same-sha", 1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
