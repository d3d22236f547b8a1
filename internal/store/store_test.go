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
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
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

// clock is a settable clock for the store's times and run_after. Add moves the database's
// clock (which leases use) on by the same amount.
type clock struct {
	mu  sync.Mutex
	now time.Time
	s   *Store
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	c.s.skew.Add(d.Microseconds())
}

func useClock(s *Store) *clock {
	c := &clock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), s: s}
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
		if err := s.Heartbeat(ctx, l3, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("heartbeat of a final deploy: %v", err)
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

// TestInvariants: the database itself refuses a second queued or a second running deploy of
// one app and stage, whatever writes it. Each case moves deploys (made on three stages) by hand.
func TestInvariants(t *testing.T) {
	type move struct {
		deploy       int // 0, 1 or 2
		stage, state string
	}
	tests := []struct {
		name    string
		moves   []move
		refused bool // the last move
	}{
		{"two queued", []move{{1, "test", "queued"}}, true},
		{"two running", []move{{0, "test", "building"}, {1, "test", "rolling_out"}}, true},
		{"running and preflight", []move{{0, "test", "rolling_out"}, {1, "test", "preflight"}}, true},
		{"one running, one queued", []move{{0, "test", "building"}, {1, "test", "queued"}}, false},
		{"finished ones do not count", []move{{0, "test", "succeeded"}, {1, "test", "failed"}, {2, "test", "building"}}, false},
		{"other stages do not count", []move{{0, "test", "building"}, {1, "alpha", "building"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s *Store) {
				var ids []int64
				for i, stage := range []string{"test", "alpha", "prod"} {
					ids = append(ids, record(t, s, intake(fmt.Sprint("d", i), req("app", stage, "sha", 0))).Deploys[0].ID)
				}
				for i, m := range tt.moves {
					_, err := s.write.Exec("UPDATE deploys SET stage = $1, state = $2 WHERE id = $3", m.stage, m.state, ids[m.deploy])
					last := i == len(tt.moves)-1
					switch {
					case last && tt.refused && !isUniqueViolation(err):
						t.Errorf("move %+v allowed (%v), want it refused", m, err)
					case (!last || !tt.refused) && err != nil:
						t.Fatalf("move %+v: %v", m, err)
					}
				}
			})
		})
	}
}

// TestAdvanceConflict: a worker that got a queued deploy while another deploy of its stage
// started running elsewhere is told ErrConflict, keeps its lease, and can go on afterwards.
func TestAdvanceConflict(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		mine := record(t, s, intake("d1", req("app", "test", "aaa", 0))).Deploys[0].ID
		other := record(t, s, intake("d2", req("app", "alpha", "bbb", 0))).Deploys[0].ID
		_, l, err := s.ClaimDeploy(ctx, "w1", time.Minute)
		if err != nil || l.ID != mine {
			t.Fatalf("claim = %+v, %v", l, err)
		}
		// Another writer moves a deploy of the same stage to running first.
		if _, err := s.write.Exec("UPDATE deploys SET stage = 'test', state = 'building' WHERE id = $1", other); err != nil {
			t.Fatal(err)
		}
		if err := s.Advance(ctx, l, Update{State: deploy.Preflight}); !errors.Is(err, ErrConflict) {
			t.Fatalf("Advance = %v, want ErrConflict", err)
		}
		if err := s.Heartbeat(ctx, l, time.Minute); err != nil {
			t.Fatalf("the lease was lost with the conflict: %v", err)
		}
		if _, err := s.write.Exec("UPDATE deploys SET state = 'succeeded' WHERE id = $1", other); err != nil {
			t.Fatal(err)
		}
		if err := s.Advance(ctx, l, Update{State: deploy.Preflight}); err != nil {
			t.Fatalf("Advance after the other finished: %v", err)
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

// TestConcurrentOpen: several processes starting at once on a new database all migrate it, and
// each migration runs once.
func TestConcurrentOpen(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFor(t, name)
			stores := make([]*Store, 4)
			var wg sync.WaitGroup
			for i := range stores {
				wg.Go(func() {
					s, err := Open(context.Background(), dsn)
					if err != nil {
						t.Errorf("Open %d: %v", i, err)
						return
					}
					stores[i] = s
				})
			}
			wg.Wait()
			for _, s := range stores {
				if s != nil {
					defer s.Close()
				}
			}
			if t.Failed() {
				return
			}
			files, _ := migrations.ReadDir("migrations")
			var n int
			if err := stores[0].read.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != len(files) {
				t.Errorf("schema_migrations has %d rows, %v; want %d", n, err, len(files))
			}
		})
	}
}

// TestSQLiteIsDurable: the writer syncs every commit (an accepted webhook survives power loss)
// and uses the write-ahead log, so readers never block it.
func TestSQLiteIsDurable(t *testing.T) {
	s := openStore(t, dsnFor(t, "sqlite"))
	var synchronous int
	var mode string
	if err := s.write.QueryRow("PRAGMA synchronous").Scan(&synchronous); err != nil || synchronous != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", synchronous, err)
	}
	if err := s.write.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}
