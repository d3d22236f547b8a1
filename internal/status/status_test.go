package status

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// fake is an in-memory Store: deploys newest last, as they were recorded.
type fake struct {
	deploys  []deploy.Deploy
	locks    []store.StageLock
	releases map[string][]store.Release // newest first
	relReads map[string]int
	lists    int // ListDeploys calls
}

func (f *fake) LiveDeploys(_ context.Context, app string) (map[string]deploy.Deploy, error) {
	out := map[string]deploy.Deploy{}
	for _, d := range f.deploys {
		if d.App == app && d.State == deploy.Succeeded {
			out[d.Stage] = d
		}
	}
	return out, nil
}

func (f *fake) ListDeploys(_ context.Context, flt store.Filter) ([]deploy.Deploy, error) {
	f.lists++
	var out []deploy.Deploy
	for i := len(f.deploys) - 1; i >= 0 && len(out) < flt.Limit; i-- {
		if d := f.deploys[i]; d.App == flt.App && d.Stage == flt.Stage && (flt.State == "" || d.State == flt.State) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fake) StageLocks(context.Context) ([]store.StageLock, error) { return f.locks, nil }

func (f *fake) Releases(_ context.Context, repo string, limit int) ([]store.Release, error) {
	f.relReads[repo]++
	rels := f.releases[repo]
	return rels[:min(limit, len(rels))], nil
}

const cfgYAML = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test}
  - {name: prod, branch: prod, trigger: push, credentials: prod, promote_from: alpha, slots: [prod, prod-backup]}
apps:
  - name: api
    repo: acme/shop
    codebuild_project: api
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api
    stages:
      test: {secret_id: api/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: api/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: api/prod, deployments: [{name: api, containers: [api], service: api}]}
  - name: web
    repo: acme/shop
    codebuild_project: web
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web
    stages:
      test: {secret_id: web/test, deployments: [{name: web, containers: [web]}]}
  - name: other
    repo: acme/other
    codebuild_project: other
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/other
    stages:
      test: {secret_id: other/test, deployments: [{name: o, containers: [o]}]}
`

func world(t *testing.T) (*fake, *config.Config) {
	t.Helper()
	cfg, err := config.Parse("status_test.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{relReads: map[string]int{}, releases: map[string][]store.Release{"acme/shop": {
		{Tag: "v2", SHA: "c3", State: store.ReleaseOpen}, {Tag: "v1.0.1", SHA: "p1", State: store.ReleaseShipped},
		{Tag: "v1", SHA: "p1", State: store.ReleaseShipped}}}}
	var id int64
	add := func(app, stage, sha string, s deploy.State, cp deploy.Checkpoint) {
		id++
		b, _ := json.Marshal(cp)
		f.deploys = append(f.deploys, deploy.Deploy{ID: id, State: s, Checkpoint: b,
			Request: deploy.Request{App: app, Stage: stage, SHA: sha}})
	}
	add("api", "test", "t1", deploy.Succeeded, deploy.Checkpoint{})
	add("api", "alpha", "p1", deploy.Succeeded, deploy.Checkpoint{})
	add("api", "prod", "p1", deploy.Succeeded, deploy.Checkpoint{Slot: "prod-backup", FromSlot: "prod"})
	add("api", "test", "t2", deploy.RollingOut, deploy.Checkpoint{})
	for i := range 4 { // newer than the running deploy: it is the 5th newest on test
		add("api", "test", "t"+string(rune('3'+i)), deploy.Superseded, deploy.Checkpoint{})
	}
	add("web", "test", "w1", deploy.Succeeded, deploy.Checkpoint{})
	f.locks = []store.StageLock{{App: "api", Stage: "prod", Owner: "sam", Reason: "freeze"}, {App: "web", Stage: "alpha", Owner: "x"}}
	return f, cfg
}

func TestReadWith(t *testing.T) {
	f, cfg := world(t)
	apps, err := ReadWith(context.Background(), f, cfg, "ACME/Shop", Options{History: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].Name != "api" || apps[1].Name != "web" {
		t.Fatalf("apps = %+v, want api and web of acme/shop", apps)
	}
	if f.relReads["acme/shop"] != 1 || len(apps[0].Releases) != 3 || len(apps[1].Releases) != 3 {
		t.Errorf("releases read %d times, api has %d, web %d: want one read, shared", f.relReads["acme/shop"], len(apps[0].Releases), len(apps[1].Releases))
	}
	api := apps[0].Stages
	for _, tc := range []struct {
		stage, liveSHA, tag, slot, lockOwner, running, next, nextSHA string
		history                                                      int
	}{
		{"test", "t1", "", "", "", "t2", "alpha", "p1", 6},
		{"alpha", "p1", "v1.0.1", "", "", "", "prod", "p1", 1},
		{"prod", "p1", "v1.0.1", "prod-backup", "sam", "", "", "", 1},
	} {
		var s *Stage
		for i := range api {
			if api[i].Name == tc.stage {
				s = &api[i]
			}
		}
		if s == nil {
			t.Fatalf("no stage %s", tc.stage)
		}
		got := []string{sha(s.Live), s.Tag, s.Slot, owner(s.Lock), sha(s.Running), s.Next, s.NextSHA}
		want := []string{tc.liveSHA, tc.tag, tc.slot, tc.lockOwner, tc.running, tc.next, tc.nextSHA}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: live,tag,slot,lock,running,next,nextSHA = %q, want %q", tc.stage, got, want)
		}
		if len(s.History) != tc.history {
			t.Errorf("%s: %d deploys of history, want %d", tc.stage, len(s.History), tc.history)
		}
	}

	// Read keeps its short history, yet finds the running deploy behind the superseded ones.
	apps, err = Read(context.Background(), f, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if test := apps[0].Stages[0]; len(apps) != 3 || len(test.History) != 3 || sha(test.Running) != "t2" {
		t.Errorf("Read: %d apps, test history %d, running %q; want 3, 3, t2", len(apps), len(test.History), sha(test.Running))
	}
}

func TestRunning(t *testing.T) {
	d := func(id int64, s deploy.State) deploy.Deploy {
		return deploy.Deploy{ID: id, State: s, Request: deploy.Request{App: "api", Stage: "test"}}
	}
	older := &fake{deploys: []deploy.Deploy{d(1, deploy.Building)}}
	for _, tc := range []struct {
		name   string
		recent []deploy.Deploy
		want   int64 // 0: none
		lists  int   // lookups by state
	}{
		{"running in the window", []deploy.Deploy{d(4, deploy.Queued), d(3, deploy.Superseded), d(2, deploy.RollingOut)}, 2, 0},
		{"something in the window ran", []deploy.Deploy{d(4, deploy.Superseded), d(3, deploy.Failed), d(2, deploy.Superseded)}, 0, 0},
		{"the window is not full", []deploy.Deploy{d(3, deploy.Superseded), d(2, deploy.Queued)}, 0, 0},
		{"a full window of deploys that never ran", []deploy.Deploy{d(4, deploy.Queued), d(3, deploy.Cancelled), d(2, deploy.Superseded)}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			older.lists = 0
			got, err := running(context.Background(), older, "api", "test", tc.recent, 3)
			if err != nil {
				t.Fatal(err)
			}
			var id int64
			if got != nil {
				id = got.ID
			}
			if id != tc.want || older.lists != tc.lists {
				t.Errorf("running = %d after %d lookups, want %d after %d", id, older.lists, tc.want, tc.lists)
			}
		})
	}
}

func TestMarkdown(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	live := &deploy.Deploy{FinishedAt: now.Add(-2 * time.Hour), Request: deploy.Request{SHA: "abcdef0123", Trigger: deploy.Trigger{Actor: "octocat", PR: 7}}}
	for _, tc := range []struct {
		name string
		s    Stage
		want string
	}{
		{"nothing", Stage{Name: "dev"}, "| **dev** | nothing yet |  |  |  |"},
		{"tag, slot and lock", Stage{Name: "prod", Live: live, Tag: "v1", Slot: "prod-backup", Lock: &store.StageLock{Owner: "sam", Reason: "a|b"}},
			"| **prod** 🔒 | **`v1`** [`abcdef0`](W/acme/shop/commit/abcdef0123) on slot prod-backup; locked by @sam: `a\\|b` | 2h ago | @octocat (#7) |  |"},
		{"behind", Stage{Name: "test", Live: live, Next: "alpha", NextSHA: "0123"},
			"| **test** | [`abcdef0`](W/acme/shop/commit/abcdef0123) | 2h ago | @octocat (#7) | [alpha is behind](W/acme/shop/compare/0123...abcdef0123) |"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Markdown([]App{{Name: "api", Repo: "acme/shop", Stages: []Stage{tc.s}}}, "W", now)
			if lines := strings.Split(strings.TrimSpace(got), "\n"); lines[len(lines)-1] != tc.want {
				t.Errorf("row = %s\nwant  %s", lines[len(lines)-1], tc.want)
			}
		})
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{30 * time.Second, "just now"}, {5 * time.Minute, "5m ago"}, {3 * time.Hour, "3h ago"}, {47 * time.Hour, "47h ago"}, {96 * time.Hour, "4 days ago"}} {
		if got := Ago(now.Add(-tc.d), now); got != tc.want {
			t.Errorf("Ago(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if Ago(time.Time{}, now) != "" {
		t.Error("the zero time is not empty")
	}
}

func sha(d *deploy.Deploy) string {
	if d == nil {
		return ""
	}
	return d.SHA
}

func owner(l *store.StageLock) string {
	if l == nil {
		return ""
	}
	return l.Owner
}
