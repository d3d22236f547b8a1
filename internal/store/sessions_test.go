package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

func TestSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		live := Session{IDHash: "live", UserID: 7, Login: "alice", Token: []byte{0, 1, 2, 0xff}, CreatedAt: now, ExpiresAt: now.Add(8 * time.Hour)}
		old := Session{IDHash: "old", UserID: 8, Login: "bob", Token: []byte("sealed"), CreatedAt: now.Add(-9 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
		for _, x := range []Session{live, old} {
			if err := s.CreateSession(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateSession(ctx, live); err == nil {
			t.Error("a second session with the same id was recorded")
		}
		got, err := s.Session(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		if got.Login != "alice" || got.UserID != 7 || string(got.Token) != string(live.Token) || !got.ExpiresAt.Equal(live.ExpiresAt) || !got.CreatedAt.Equal(now) {
			t.Errorf("session = %+v", got)
		}
		if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 1 {
			t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
		}
		if _, err := s.Session(ctx, "old"); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session still there: %v", err)
		}
		if err := s.DeleteSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, "live"); err != nil {
			t.Errorf("ending an ended session: %v", err)
		}
		if _, err := s.Session(ctx, "live"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ended session still there: %v", err)
		}
	})
}

// TestListDeploysOfReadableReposOnly keeps a person's list to the repositories they may read,
// whatever the case of the names, and an empty list of repositories to nothing at all.
func TestListDeploysOfReadableReposOnly(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i, repo := range []string{"acme/Hello", "acme/secret", "other/thing"} {
			sha := string(rune('a' + i))
			if _, err := s.Record(ctx, Intake{Delivery: Delivery{ID: sha, Event: "push"},
				Deploys: []deploy.Request{{App: "app" + sha, Stage: "test", Repo: repo, SHA: sha, Trigger: deploy.Trigger{Event: "push", Delivery: sha}}}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range []struct {
			name  string
			repos []string
			want  []string
		}{
			{"no filter", nil, []string{"other/thing", "acme/secret", "acme/Hello"}},
			{"one repository, other case", []string{"ACME/hello"}, []string{"acme/Hello"}},
			{"two", []string{"acme/hello", "other/thing"}, []string{"other/thing", "acme/Hello"}},
			{"none readable", []string{}, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ds, err := s.ListDeploys(ctx, Filter{Repos: tt.repos})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, d := range ds {
					got = append(got, d.Repo)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("repos = %v, want %v", got, tt.want)
				}
			})
		}
	})
}
