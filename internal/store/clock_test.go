package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
)

// TestReplicaWithClockFiveMinutesAheadCannotTakeALiveLease: two replicas share the database, and
// one's clock runs five minutes ahead. It must not take over a deploy or a job whose lease the
// other holds (for a minute, kept by heartbeats), and it cannot shorten that lease either. Once the
// holder stops and the lease really expires, on the database's clock, the replica takes over.
func TestReplicaWithClockFiveMinutesAheadCannotTakeALiveLease(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dsn := dsnFor(t, name)
			holder, ahead := openStore(t, dsn), openStore(t, dsn)
			ahead.Now = func() time.Time { return time.Now().Add(5 * time.Minute) }

			id := record(t, holder, intake("d1", req("app", "test", "aaa", 0))).Deploys[0].ID
			d, l, err := holder.ClaimDeploy(ctx, "holder", time.Minute)
			if err != nil || d.ID != id {
				t.Fatalf("claim = %+v, %v", d, err)
			}
			if _, _, err := ahead.ClaimDeploy(ctx, "ahead", time.Minute); !errors.Is(err, ErrNoWork) {
				t.Fatalf("the replica five minutes ahead claimed a leased deploy: %v", err)
			}
			if err := holder.Heartbeat(ctx, l, time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ahead.ClaimDeploy(ctx, "ahead", time.Minute); !errors.Is(err, ErrNoWork) {
				t.Fatalf("the replica five minutes ahead claimed a deploy after its heartbeat: %v", err)
			}

			if _, _, err := holder.EnqueueJob(ctx, jobs.Job{Kind: "k", Key: "k1", Payload: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := holder.ClaimJob(ctx, "holder", []string{"k"}, time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ahead.ClaimJob(ctx, "ahead", []string{"k"}, time.Minute); !errors.Is(err, ErrNoWork) {
				t.Fatalf("the replica five minutes ahead claimed a leased job: %v", err)
			}

			// The holder dies. On the database's clock its lease ends a minute later; the
			// replica ahead takes over then, not before.
			ahead.skew.Store((time.Minute + time.Second).Microseconds())
			d2, l2, err := ahead.ClaimDeploy(ctx, "ahead", time.Minute)
			if err != nil || d2.ID != id {
				t.Fatalf("takeover after the lease expired = %+v, %v", d2, err)
			}
			if _, _, err := ahead.ClaimJob(ctx, "ahead", []string{"k"}, time.Minute); err != nil {
				t.Fatalf("job takeover after the lease expired: %v", err)
			}
			if err := holder.Advance(ctx, l, Update{}); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("the old holder advanced after the takeover: %v", err)
			}
			if err := ahead.Advance(ctx, l2, Update{Release: true}); err != nil {
				t.Errorf("the new holder: %v", err)
			}
		})
	}
}
