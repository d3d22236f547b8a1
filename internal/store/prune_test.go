package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
)

// TestRetentionDeletesOldHistoryAndKeepsDeploys: Prune deletes deliveries, finished jobs and
// commands older than their retention, in batches (2,500 old deliveries take three), and keeps
// deploys, unfinished jobs and everything newer. A redelivery of a kept delivery is still a
// duplicate.
// TestBookkeepingDoesNotGrowForever: the records of GitHub creates, the branch moves matched to
// pushes and the deliveries recovery asked to be redelivered grow with every deploy and command;
// Prune deletes them with the history they belong to (finished jobs, deliveries) and keeps the
// new ones.
func TestBookkeepingDoesNotGrowForever(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := useClock(s)
		add := func(tag string) {
			t.Helper()
			if _, err := s.BeginWrite(ctx, "checkrun/"+tag); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordBranchMove(ctx, BranchMove{Repo: "acme/app", Branch: "prod", SHA: tag, CommandKey: "c-" + tag}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.write.ExecContext(ctx, `INSERT INTO recovery_deliveries (guid, event, state, created_at, updated_at)
				VALUES ($1, 'push', 'requested', $2, $2)`, "guid-"+tag, s.now()); err != nil {
				t.Fatal(err)
			}
		}
		add("old")
		clk.Add(40 * 24 * time.Hour)
		add("new")
		p, err := s.Prune(ctx, Retention{Deliveries: 30 * 24 * time.Hour, Jobs: 30 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if p.Bookkeeping != 3 {
			t.Errorf("pruned %+v, want the 3 old bookkeeping rows", p)
		}
		for _, table := range []string{"github_writes", "branch_moves", "recovery_deliveries"} {
			var n int
			if err := s.read.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil || n != 1 {
				t.Errorf("%s has %d rows (%v), want the new one", table, n, err)
			}
		}
	})
}

func TestRetentionDeletesOldHistoryAndKeepsDeploys(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := useClock(s)
		// Old: a merged PR's delivery and deploy, a finished and a pending job, a command,
		// and a long tail of deliveries.
		old := record(t, s, intake("old", req("app", "test", "aaa", 1))).Deploys[0].ID
		finishJobs(t, s, "old-done", 1)
		enqueue(t, s, "waiting", "old-pending") // a kind no worker here claims: it stays pending
		if _, err := s.RecordCommand(ctx, CommandRecord{Key: "c-old", Repo: "acme/app", Actor: "octocat", Verb: "deploy"}); err != nil {
			t.Fatal(err)
		}
		seedHistory(t, s, 2500) // 2,500 deliveries, deploys and finished jobs, 250 commands, a day and more old

		clk.Add(40 * 24 * time.Hour)
		newer := record(t, s, intake("new", req("app", "test", "bbb", 2))).Deploys[0].ID
		finishJobs(t, s, "new-done", 1)
		if _, err := s.RecordCommand(ctx, CommandRecord{Key: "c-new", Repo: "acme/app", Actor: "octocat", Verb: "deploy"}); err != nil {
			t.Fatal(err)
		}

		p, err := s.Prune(ctx, Retention{Deliveries: 30 * 24 * time.Hour, Jobs: 30 * 24 * time.Hour, Commands: 35 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// The old delivery and the seeded 2,500; the old finished job, the seeded 2,500 and
		// the check-run jobs of the two deploys are not finished, so they stay.
		if p.Deliveries != 2501 || p.Jobs != 2501 || p.Commands != 251 {
			t.Errorf("pruned %+v, want 2501 deliveries, 2501 jobs, 251 commands", p)
		}
		for _, tt := range []struct {
			q    string
			want int
		}{
			{"SELECT COUNT(*) FROM deliveries", 1},
			{"SELECT COUNT(*) FROM deploys", 2502},
			{"SELECT COUNT(*) FROM jobs WHERE state IN ('done', 'failed')", 1},
			{"SELECT COUNT(*) FROM jobs WHERE job_key = 'old-pending' AND state = 'pending'", 1},
			{"SELECT COUNT(*) FROM jobs WHERE job_key = 'new-done-0' AND state = 'done'", 1},
			{"SELECT COUNT(*) FROM commands", 1},
		} {
			var n int
			if err := s.read.QueryRow(tt.q).Scan(&n); err != nil || n != tt.want {
				t.Errorf("%s = %d, %v; want %d", tt.q, n, err, tt.want)
			}
		}
		for _, id := range []int64{old, newer} {
			if _, err := s.Deploy(ctx, id); err != nil {
				t.Errorf("deploy %d: %v", id, err)
			}
		}
		if rec := record(t, s, intake("new", req("app", "test", "bbb", 2))); !rec.Duplicate {
			t.Error("a redelivery of a kept delivery was taken as new")
		}
		// Nothing left to delete: a second run deletes nothing, and zero keeps forever.
		if p, err := s.Prune(ctx, Retention{Deliveries: 30 * 24 * time.Hour, Jobs: 30 * 24 * time.Hour}); err != nil || p != (Pruned{}) {
			t.Errorf("second prune = %+v, %v", p, err)
		}
	})
}

func enqueue(t *testing.T, s *Store, kind, key string) {
	t.Helper()
	if _, _, err := s.EnqueueJob(context.Background(), jobs.Job{Kind: kind, Key: key, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
}

// finishJobs enqueues n jobs keyed prefix-i and runs each to done.
func finishJobs(t *testing.T, s *Store, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		enqueue(t, s, "k", fmt.Sprintf("%s-%d", prefix, i))
		_, l, err := s.ClaimJob(ctx, "w", []string{"k"}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishJob(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
}
