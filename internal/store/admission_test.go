package store

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestBranchMovesMatchOnePushEach: a move Stagecoach recorded is matched to one push of that
// branch and sha, and to the same push again on a retry, never to a second push.
func TestBranchMovesMatchOnePushEach(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		useClock(s)
		ctx := context.Background()
		if _, ok, err := s.MatchBranchMove(ctx, "acme/web", "prod", "aaa", "d0"); err != nil || ok {
			t.Fatalf("a push with no move matched: %v %v", ok, err)
		}
		m := BranchMove{Repo: "acme/web", Branch: "prod", SHA: "aaa", CommandKey: "comment:1", DeployIDs: []int64{4, 5}}
		for range 2 { // a retried command records it once
			if err := s.RecordBranchMove(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		got, ok, err := s.MatchBranchMove(ctx, "acme/web", "prod", "aaa", "d1")
		if err != nil || !ok || got.CommandKey != "comment:1" || !slices.Equal(got.DeployIDs, []int64{4, 5}) || got.CreatedAt.IsZero() {
			t.Fatalf("match = %+v, %v, %v", got, ok, err)
		}
		if again, ok, _ := s.MatchBranchMove(ctx, "acme/web", "prod", "aaa", "d1"); !ok || again.ID != got.ID {
			t.Fatal("the same delivery, retried, no longer matches its move")
		}
		if _, ok, _ := s.MatchBranchMove(ctx, "acme/web", "prod", "aaa", "d2"); ok {
			t.Fatal("a second push matched a move already matched")
		}
		for _, other := range [][3]string{{"acme/other", "prod", "aaa"}, {"acme/web", "alpha", "aaa"}, {"acme/web", "prod", "bbb"}} {
			if err := s.RecordBranchMove(ctx, BranchMove{Repo: "acme/web", Branch: "prod", SHA: "ccc", CommandKey: "comment:2"}); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := s.MatchBranchMove(ctx, other[0], other[1], other[2], "d3"); ok {
				t.Errorf("a push of %v matched", other)
			}
		}
	})
}

func TestReleaseLookupsAndRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		useClock(s)
		ctx := context.Background()
		rel, _, err := s.CreateRelease(ctx, Release{Repo: "acme/web", Tag: "v1", SHA: "aaa", State: ReleaseOpen})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReleaseByID(ctx, "acme/web", rel.ID); err != nil || got.Tag != "v1" {
			t.Errorf("by id: %+v %v", got, err)
		}
		if _, err := s.ReleaseByID(ctx, "acme/other", rel.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("another repository's release by id: %v", err)
		}
		if got, err := s.ReleaseByTag(ctx, "acme/web", "v1"); err != nil || got.ID != rel.ID {
			t.Errorf("by tag: %+v %v", got, err)
		}
		if _, err := s.ReleaseByTag(ctx, "acme/web", "v2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown tag: %v", err)
		}
		for i, outcome := range []string{"accepted", "refused", "ignored", ""} {
			c, err := s.RecordCommand(ctx, CommandRecord{Key: string(rune('a' + i)), Repo: "acme/web", Actor: "x", Verb: "push"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.FinishCommand(ctx, c.ID, outcome, "why "+outcome, 0); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Refusals(ctx, "acme/web", 0)
		if err != nil || len(got) != 2 || got[0].Outcome != "ignored" || got[1].Outcome != "refused" {
			t.Errorf("refusals = %+v, %v", got, err)
		}
		if all, _ := s.Refusals(ctx, "", 1); len(all) != 1 {
			t.Errorf("refusals of every repository, limit 1 = %d", len(all))
		}
	})
}
