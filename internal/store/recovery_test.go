package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
)

// twoReplicas runs fn with two stores on one fresh database, as two replicas have, on SQLite and
// on PostgreSQL.
func twoReplicas(t *testing.T, fn func(t *testing.T, a, b *Store)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFor(t, name)
			a := openStore(t, dsn)
			fn(t, a, openStore(t, dsn))
		})
	}
}

// TestRecoveryLeaseOneReplicaAtATime: while one replica holds the recovery lease no other takes
// it, even forced; a finished pass makes the next one due after its interval (forced takes do
// not wait for that); the checkpoint is kept between passes.
func TestRecoveryLeaseOneReplicaAtATime(t *testing.T) {
	twoReplicas(t, func(t *testing.T, a, b *Store) {
		ctx := context.Background()
		la, _, ok, err := a.TakeRecovery(ctx, "a", time.Minute, false)
		if err != nil || !ok || !la.Checkpoint.IsZero() {
			t.Fatalf("first take = %+v, %v, %v; want the lease and no checkpoint", la, ok, err)
		}
		for _, force := range []bool{false, true} {
			if _, wait, ok, err := b.TakeRecovery(ctx, "b", time.Minute, force); err != nil || ok || wait <= 0 || wait > time.Minute {
				t.Errorf("take while a holds it (force %v) = %v, wait %s, %v; want refused, wait at most the lease", force, ok, wait, err)
			}
		}
		if err := a.RenewRecovery(ctx, la, time.Minute); err != nil {
			t.Fatal(err)
		}
		checkpoint := time.Date(2026, 11, 24, 11, 59, 58, 0, time.UTC)
		if err := a.FinishRecovery(ctx, la, checkpoint, time.Hour, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, wait, ok, err := b.TakeRecovery(ctx, "b", time.Minute, false); err != nil || ok || wait < 59*time.Minute {
			t.Errorf("take before the next pass is due = %v, wait %s, %v; want refused for about an hour", ok, wait, err)
		}
		lb, _, ok, err := b.TakeRecovery(ctx, "b", time.Minute, true)
		if err != nil || !ok || !lb.Checkpoint.Equal(checkpoint) || lb.Token == la.Token {
			t.Fatalf("forced take = %+v, %v, %v; want the lease with the checkpoint %s", lb, ok, err, checkpoint)
		}
		if err := a.FinishRecovery(ctx, la, time.Now(), 0, time.Time{}); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("finishing with a lease given up = %v, want ErrLeaseLost", err)
		}
	})
}

// TestRecoveryLeaseTakenOverWhenExpired: a lease that ran out is taken over, and the replica
// that held it can write nothing more under it.
func TestRecoveryLeaseTakenOverWhenExpired(t *testing.T) {
	twoReplicas(t, func(t *testing.T, a, b *Store) {
		ctx := context.Background()
		// A lease taken for a negative time has run out at once: no sleeping for it.
		la, _, ok, err := a.TakeRecovery(ctx, "a", -time.Second, false)
		if err != nil || !ok {
			t.Fatalf("take = %v, %v", ok, err)
		}
		lb, _, ok, err := b.TakeRecovery(ctx, "b", time.Minute, false)
		if err != nil || !ok {
			t.Fatalf("take over an expired lease = %v, %v; want it", ok, err)
		}
		for name, err := range map[string]error{
			"renew":           a.RenewRecovery(ctx, la, time.Minute),
			"save redelivery": a.SaveRedelivery(ctx, la, Redelivery{GUID: "g", Event: "push", State: Redelivered}),
			"save refs":       a.SaveRecoveryRefs(ctx, la, "acme/app", []RecoveryRef{{Ref: "refs/heads/prod", SHA: "x"}}, nil),
			"finish":          a.FinishRecovery(ctx, la, time.Now(), 0, time.Time{}),
		} {
			if !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s under the lost lease = %v, want ErrLeaseLost", name, err)
			}
		}
		if rs, _ := b.Redeliveries(ctx, []string{"g"}); len(rs) != 0 {
			t.Errorf("the lost lease wrote %v", rs)
		}
		if err := b.RenewRecovery(ctx, lb, time.Minute); err != nil {
			t.Errorf("the new holder renews: %v", err)
		}
	})
}

// TestRecoveryLeaseIsOnTheDatabaseClock: a replica whose own clock runs ten minutes ahead does
// not take a live lease for expired. Leases on each replica's clock would let it.
func TestRecoveryLeaseIsOnTheDatabaseClock(t *testing.T) {
	twoReplicas(t, func(t *testing.T, a, b *Store) {
		ctx := context.Background()
		ahead := useClock(b)
		ahead.now = time.Now().Add(10 * time.Minute)
		if _, _, ok, err := a.TakeRecovery(ctx, "a", time.Minute, false); err != nil || !ok {
			t.Fatalf("take = %v, %v", ok, err)
		}
		if _, _, ok, err := b.TakeRecovery(ctx, "b", time.Minute, true); err != nil || ok {
			t.Errorf("a replica ten minutes ahead took a live one-minute lease: %v, %v", ok, err)
		}
	})
}

func TestRedeliveries(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		l, _, _, err := s.TakeRecovery(ctx, "a", time.Minute, false)
		if err != nil {
			t.Fatal(err)
		}
		r := Redelivery{GUID: "g1", AttemptID: 7, Event: "push", Repo: "acme/app", Ref: "refs/heads/alpha", State: Redelivered, Attempts: 1}
		if err := s.SaveRedelivery(ctx, l, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.Redeliveries(ctx, []string{"g1", "g3"})
		if err != nil || len(got) != 1 || got["g1"].Ref != "refs/heads/alpha" || got["g1"].Attempts != 1 || got["g1"].State != Redelivered {
			t.Fatalf("redeliveries = %+v, %v", got, err)
		}
		pending, err := s.PendingRedeliveries(ctx)
		if err != nil || len(pending) != 1 || pending["g1"].AttemptID != 7 {
			t.Errorf("pending = %+v, %v; want g1", pending, err)
		}
		r.State, r.AttemptID, r.Attempts = RedeliveryRecovered, 12, 2
		if err := s.SaveRedelivery(ctx, l, r); err != nil {
			t.Fatal(err)
		}
		if pending, _ := s.PendingRedeliveries(ctx); len(pending) != 0 {
			t.Errorf("pending after recovery = %+v", pending)
		}
		c.Add(time.Hour)
		if err := s.SaveRedelivery(ctx, l, Redelivery{GUID: "g2", AttemptID: 9, Event: "issue_comment", Action: "created",
			State: RedeliveryAbandoned, Reason: "too old"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Redeliveries(ctx, []string{"g1", "g2"}); got["g1"].AttemptID != 12 || got["g2"].Reason != "too old" {
			t.Errorf("redeliveries = %+v", got)
		}
		// Finishing forgets rows last updated before the cutoff: g2 stays, being newer.
		if err := s.FinishRecovery(ctx, l, time.Now(), time.Minute, c.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Redeliveries(ctx, []string{"g1", "g2"}); len(got) != 1 || got["g2"].GUID == "" {
			t.Errorf("after forgetting: %+v, want g2 only", got)
		}
	})
}

func TestRecoveryRefsAndWhatWasRecorded(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		l, _, _, _ := s.TakeRecovery(ctx, "a", time.Minute, false)
		at := c.Now()
		if err := s.SaveRecoveryRefs(ctx, l, "acme/app", []RecoveryRef{{Ref: "", ObservedAt: at},
			{Ref: "refs/heads/alpha", SHA: "a1", ObservedAt: at}, {Ref: "refs/tags/v1", SHA: "t1", ObservedAt: at}}, nil); err != nil {
			t.Fatal(err)
		}
		later := at.Add(time.Minute)
		if err := s.SaveRecoveryRefs(ctx, l, "acme/app", []RecoveryRef{{Ref: "refs/heads/alpha", SHA: "a2", ObservedAt: later}},
			[]string{"refs/tags/v1"}); err != nil {
			t.Fatal(err)
		}
		refs, err := s.RecoveryRefs(ctx, "acme/app")
		if err != nil || len(refs) != 2 || refs["refs/heads/alpha"].SHA != "a2" || !refs["refs/heads/alpha"].ObservedAt.Equal(later) ||
			!refs[""].ObservedAt.Equal(at) {
			t.Errorf("refs = %+v, %v", refs, err)
		}
		if other, _ := s.RecoveryRefs(ctx, "acme/other"); len(other) != 0 {
			t.Errorf("another repository's refs = %+v", other)
		}

		record(t, s, intake("d1", push("app", "alpha", "a2", "d1")))
		for _, tt := range []struct {
			sha   string
			since time.Time
			want  bool
		}{{"a2", at, true}, {"a2", at.Add(time.Second), false}, {"a1", at.Add(-time.Hour), false}} {
			if got, err := s.DeployRequestedSince(ctx, "app", "alpha", tt.sha, tt.since); err != nil || got != tt.want {
				t.Errorf("DeployRequestedSince(%s, %s) = %v, %v; want %v", tt.sha, tt.since, got, err, tt.want)
			}
		}
		if _, _, err := s.EnqueueJob(ctx, jobs.Job{Kind: jobs.KindTagCreated, Key: "tag:acme/app:v1:t1", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]bool{"tag:acme/app:v1:t1": true, "tag:acme/app:v1:t2": false} {
			if got, err := s.JobExists(ctx, key); err != nil || got != want {
				t.Errorf("JobExists(%s) = %v, %v; want %v", key, got, err, want)
			}
		}
	})
}
