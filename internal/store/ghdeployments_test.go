package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// reported records n deploys of app to stage and gives each a GitHub Deployment (id 1000+its
// id) whose last status is the one statuses names in turn; it returns the deploys' ids.
func reported(t *testing.T, s *Store, app, stage string, statuses ...string) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i, st := range statuses {
		r := deploy.Request{App: app, Stage: stage, Repo: "acme/app", SHA: fmt.Sprintf("%s-%s-%d", app, stage, i), Nonce: fmt.Sprint(i)}
		rec, err := s.Record(ctx, Intake{Delivery: Delivery{ID: fmt.Sprintf("%s/%s/%d", app, stage, i), Event: "push"}, Deploys: []deploy.Request{r}})
		if err != nil {
			t.Fatal(err)
		}
		id := rec.Deploys[0].ID
		if st != "" {
			if err := s.SetGitHubDeployment(ctx, id, 1000+id, st); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, id)
	}
	return ids
}

func TestActiveBefore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		test := reported(t, s, "web", "test", "success", "inactive", "failure", "success", "", "success")
		other := reported(t, s, "api", "test", "success")
		got, err := s.ActiveBefore(ctx, "web", "test", test[5], 10)
		if err != nil {
			t.Fatal(err)
		}
		// Newest first; never the deploy itself, a newer one, one not active or another app's.
		want := []ActiveDeployment{{test[3], "acme/app", 1000 + test[3]}, {test[0], "acme/app", 1000 + test[0]}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("active before %d = %+v, want %+v", test[5], got, want)
		}
		if got, _ := s.ActiveBefore(ctx, "web", "test", test[5], 1); len(got) != 1 || got[0].DeployID != test[3] {
			t.Errorf("limit 1 = %+v", got)
		}
		if got, _ := s.ActiveBefore(ctx, "api", "test", other[0]+100, 10); len(got) != 1 || got[0].DeployID != other[0] {
			t.Errorf("the other app's = %+v", got)
		}
	})
}

// TestUpgradeKeepsOnlyTheNewestActiveDeployment: before 0013, GitHub's auto_inactive retired
// earlier Deployments without the store hearing of it, so every past success still reads
// success. The migration keeps only each app and stage's newest, so the first success after the
// upgrade sends one inactive status, not one per deploy ever made.
func TestUpgradeKeepsOnlyTheNewestActiveDeployment(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		test := reported(t, s, "web", "test", "success", "success", "failure", "success", "in_progress")
		prod := reported(t, s, "web", "prod", "success")
		// Undo 0013, as a store made before it stands.
		for _, q := range []string{"DROP INDEX deploys_github_success", "DELETE FROM schema_migrations WHERE version = 13"} {
			if _, err := s.write.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.migrate(ctx); err != nil {
			t.Fatal(err)
		}
		status := func(id int64) string {
			var st string
			if err := s.read.QueryRowContext(ctx, "SELECT github_deployment_status FROM deploys WHERE id = $1", id).Scan(&st); err != nil {
				t.Fatal(err)
			}
			return st
		}
		var got []string
		for _, id := range append(test, prod...) {
			got = append(got, status(id))
		}
		if want := "inactive,inactive,failure,success,in_progress,success"; strings.Join(got, ",") != want {
			t.Errorf("statuses after the upgrade = %s, want %s", strings.Join(got, ","), want)
		}
	})
}

// TestActiveBeforeUsesItsIndex: a success looks for the Deployments it retires through the
// partial index of active ones, not through the app and stage's whole history.
func TestActiveBeforeUsesItsIndex(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		seedHistory(t, s, 1000)
		p := plan(t, s, activeBeforeQuery, "app1", "test", int64(1<<40), 3)
		if !strings.Contains(p, "deploys_github_success") {
			t.Errorf("the plan does not use deploys_github_success:\n%s", p)
		}
		for _, line := range strings.Split(p, "\n") {
			if fullScan(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "->"))) {
				t.Errorf("the plan reads a whole table:\n%s", p)
			}
		}
	})
}
