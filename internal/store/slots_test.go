package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// TestSlotImagesAreWrittenUnderTheDeploysLease: the record of what a slot runs is written by
// the deploy holding its lease, replaced by the next, and refused to a worker whose lease was
// taken over.
func TestSlotImagesAreWrittenUnderTheDeploysLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clk := useClock(s)
		if _, ok, err := s.SlotImages(ctx, "app", "prod", "blue"); ok || err != nil {
			t.Fatalf("a slot never deployed to has a record: %v, %v", ok, err)
		}
		record(t, s, intake("d1", req("app", "prod", "aaa", 0)))
		_, l1, err := s.ClaimDeploy(ctx, "w1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		images := []deploy.Image{{Deployment: "api-blue", Container: "api", Image: "r/app@sha256:aa"}}
		want := SlotImages{App: "app", Stage: "prod", Slot: "blue", SHA: "aaa", DeployID: l1.ID, Images: images}
		if err := s.SetSlotImages(ctx, l1, want); err != nil {
			t.Fatal(err)
		}
		want.Images[0].Image, want.SHA = "r/app@sha256:bb", "bbb"
		if err := s.SetSlotImages(ctx, l1, want); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.SlotImages(ctx, "app", "prod", "blue")
		if err != nil || !ok || got.SHA != "bbb" || got.DeployID != l1.ID || len(got.Images) != 1 || got.Images[0] != want.Images[0] || !got.UpdatedAt.Equal(clk.Now()) {
			t.Fatalf("record = %+v, %v, %v", got, ok, err)
		}
		clk.Add(2 * time.Minute) // the lease expires; another worker takes the deploy over
		if _, _, err := s.ClaimDeploy(ctx, "w2", time.Minute); err != nil {
			t.Fatal(err)
		}
		stale := want
		stale.SHA = "stale"
		if err := s.SetSlotImages(ctx, l1, stale); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("a lost lease recorded a slot: %v", err)
		}
		if got, _, _ := s.SlotImages(ctx, "app", "prod", "blue"); got.SHA != "bbb" {
			t.Errorf("record = %+v after a stale write", got)
		}
		if _, ok, _ := s.SlotImages(ctx, "app", "prod", "green"); ok {
			t.Error("the other slot has a record")
		}
	})
}
