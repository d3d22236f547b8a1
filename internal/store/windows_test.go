package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// TestExpiredLockHoldsNothingBack: a lock taken for two hours (`/lock prod 2h`) holds the
// stage's queued deploys and is listed until then; from the moment it expires it holds nothing
// back, is no longer listed, anyone may lock the stage again, and unlocking it finds nothing.
func TestExpiredLockHoldsNothingBack(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		until := c.Now().Add(2 * time.Hour)
		l, ours, err := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "sre", Reason: "db migration", ExpiresAt: until})
		if err != nil || !ours || !l.ExpiresAt.Equal(until) {
			t.Fatalf("lock = %+v, %v, %v", l, ours, err)
		}
		queued := record(t, s, intake("p1", push("web", "prod", "aaa", "p1"))).Deploys[0]
		c.Add(2*time.Hour - time.Second)
		if _, _, err := s.ClaimDeploy(ctx, "w", time.Minute); !errors.Is(err, ErrNoWork) {
			t.Fatalf("a second before the lock expires, a deploy was claimed: %v", err)
		}
		if locks, _ := s.StageLocks(ctx); len(locks) != 1 {
			t.Fatalf("locks before expiry = %+v", locks)
		}
		// Someone else cannot take it yet; its owner may extend it.
		if held, ours, _ := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "dev"}); ours || held.Owner != "sre" {
			t.Fatalf("someone else took a live lock: %+v", held)
		}
		c.Add(time.Second)
		if locks, _ := s.StageLocks(ctx); len(locks) != 0 {
			t.Fatalf("an expired lock is still listed: %+v", locks)
		}
		d, lease, err := s.ClaimDeploy(ctx, "w", time.Minute)
		if err != nil || d.ID != queued.ID {
			t.Fatalf("after the lock expired, claimed %d (%v), want the queued deploy %d", d.ID, err, queued.ID)
		}
		if err := s.Advance(ctx, lease, Update{State: deploy.Preflight, Release: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UnlockStage(ctx, "web", "prod"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unlocking an expired lock: %v, want ErrNotFound", err)
		}
		// Anyone may lock again: the stage is free.
		held, ours, err := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "dev", Reason: "mine"})
		if err != nil || !ours || held.Owner != "dev" || !held.ExpiresAt.IsZero() || !held.CreatedAt.Equal(c.Now()) {
			t.Fatalf("locking after expiry = %+v, %v, %v; want dev's lock, from now, until unlocked", held, ours, err)
		}
	})
}

// TestLockTakenOverAfterExpiry: an expired lock is replaced whole by the next one, whoever
// takes it: no reason, issue or expiry of the old one stays behind.
func TestLockTakenOverAfterExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		if _, _, err := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "sre", Reason: "old", Issue: 3, ExpiresAt: c.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		// The owner extends it: same lock, since then, with the new expiry.
		created := c.Now()
		c.Add(30 * time.Minute)
		l, ours, _ := s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "sre", Reason: "longer", Issue: 4, ExpiresAt: c.Now().Add(time.Hour)})
		if !ours || !l.CreatedAt.Equal(created) || !l.ExpiresAt.Equal(c.Now().Add(time.Hour)) || l.Reason != "longer" {
			t.Fatalf("extended lock = %+v", l)
		}
		c.Add(2 * time.Hour)
		l, ours, _ = s.LockStage(ctx, StageLock{App: "web", Stage: "prod", Repo: "acme/web", Owner: "qa", Reason: "new", Issue: 9})
		if !ours || l.Owner != "qa" || l.Reason != "new" || l.Issue != 9 || !l.ExpiresAt.IsZero() || !l.CreatedAt.Equal(c.Now()) {
			t.Fatalf("lock after expiry = %+v, want qa's own", l)
		}
	})
}

// TestLiveSpans: when a commit ran on a stage, as its successful deploys say, for soak time.
func TestLiveSpans(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		if spans, err := s.LiveSpans(ctx, "web", "alpha", "aaa"); err != nil || len(spans) != 0 {
			t.Fatalf("spans of a commit never deployed = %+v, %v", spans, err)
		}
		at := func() time.Time { return c.Now() }
		deploy1 := func(sha, delivery string, state deploy.State) time.Time {
			t.Helper()
			id := record(t, s, intake(delivery, push("web", "alpha", sha, delivery))).Deploys[0].ID
			c.Add(time.Minute)
			finish(t, s, id, state)
			return at()
		}
		t1 := deploy1("aaa", "p1", deploy.Succeeded)
		c.Add(10 * time.Minute)
		deploy1("bbb", "p2", deploy.Failed) // a failed deploy changes nothing: aaa still runs
		c.Add(10 * time.Minute)
		t2 := deploy1("ccc", "p3", deploy.Succeeded)
		c.Add(time.Hour)
		t3 := deploy1("aaa", "p4", deploy.Succeeded) // rolled back to aaa
		spans, err := s.LiveSpans(ctx, "web", "alpha", "aaa")
		if err != nil || len(spans) != 2 || !spans[0].From.Equal(t1) || !spans[0].Until.Equal(t2) || !spans[1].From.Equal(t3) || !spans[1].Until.IsZero() {
			t.Fatalf("spans of aaa = %+v, %v; want [%s, %s) and [%s, now)", spans, err, t1, t2, t3)
		}
		if spans, _ := s.LiveSpans(ctx, "web", "alpha", "ccc"); len(spans) != 1 || !spans[0].From.Equal(t2) || !spans[0].Until.Equal(t3) {
			t.Fatalf("spans of ccc = %+v", spans)
		}
		if spans, _ := s.LiveSpans(ctx, "web", "alpha", "bbb"); len(spans) != 0 {
			t.Fatalf("spans of a commit that failed = %+v", spans)
		}
		if spans, _ := s.LiveSpans(ctx, "web", "test", "aaa"); len(spans) != 0 {
			t.Fatalf("spans on another stage = %+v", spans)
		}
	})
}
