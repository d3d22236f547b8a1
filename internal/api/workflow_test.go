package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/store"
)

// TestLocks proves /api/v1/locks lists every stage lock, oldest first, with who holds it, why
// and where it was taken, and an empty list (not null) when nothing is locked.
func TestLocks(t *testing.T) {
	h, st := emptyAPI(t)
	if code, body := get(t, h, "/api/v1/locks"); code != 200 || !strings.Contains(body, `"locks": []`) {
		t.Errorf("no locks: %d %s", code, body)
	}
	ctx := context.Background()
	// A second apart, so "oldest first" does not depend on how fast the store is.
	base, n := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), 0
	st.Now = func() time.Time { n++; return base.Add(time.Duration(n) * time.Second) }
	for _, l := range []store.StageLock{
		{App: "hello", Stage: "prod", Repo: "acme/hello", Owner: "lead", Reason: "release freeze until Monday", Issue: 5},
		{App: "hello", Stage: "alpha", Repo: "acme/hello", Owner: "po"},
	} {
		if _, ours, err := st.LockStage(ctx, l); err != nil || !ours {
			t.Fatalf("locking %s: %v %v", l.Stage, ours, err)
		}
	}
	code, body := get(t, h, "/api/v1/locks")
	var out struct {
		Locks []struct {
			App, Stage, Repo, Owner, Reason string
			Issue                           int
			CreatedAt                       time.Time `json:"created_at"`
		}
	}
	if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil {
		t.Fatalf("%d %s (%v)", code, body, err)
	}
	if len(out.Locks) != 2 {
		t.Fatalf("locks = %s", body)
	}
	first, second := out.Locks[0], out.Locks[1]
	if first.Stage != "prod" || first.Owner != "lead" || first.Reason != "release freeze until Monday" || first.Issue != 5 ||
		first.App != "hello" || first.Repo != "acme/hello" || !first.CreatedAt.Equal(base.Add(time.Second)) {
		t.Errorf("first lock = %+v", first)
	}
	if second.Stage != "alpha" || second.Owner != "po" || strings.Contains(body, `"issue": 0`) || strings.Count(body, `"reason"`) != 1 {
		t.Errorf("second lock = %+v; an empty reason or issue is left out: %s", second, body)
	}
}

// TestReleases proves /api/v1/releases needs the repository, answers 400 saying so without
// it, and lists that repository's releases only, newest first, with their state, who tagged
// and who promoted them.
func TestReleases(t *testing.T) {
	h, st := emptyAPI(t)
	ctx := context.Background()
	var shipped store.Release // v1.3.0 of acme/hello, promoted and shipped
	for _, r := range []store.Release{
		{Repo: "acme/hello", Tag: "v1.3.0", SHA: "a1", TaggedBy: "lead", State: store.ReleaseOpen},
		{Repo: "acme/other", Tag: "v9.0.0", SHA: "o1", TaggedBy: "lead", State: store.ReleaseOpen},
		{Repo: "acme/hello", Tag: "v1.4.0", SHA: "b2", TaggedBy: "lead", State: store.ReleaseOpen},
	} {
		rec, created, err := st.CreateRelease(ctx, r)
		if err != nil || !created {
			t.Fatalf("recording %s: %v %v", r.Tag, created, err)
		}
		if r.Tag == "v1.3.0" {
			shipped = rec
		}
	}
	shipped.State, shipped.Issue, shipped.PromotedBy, shipped.ShippedAt = store.ReleaseShipped, 5, "po", time.Now()
	if err := st.UpdateRelease(ctx, shipped); err != nil {
		t.Fatal(err)
	}
	type release struct {
		Tag, SHA, State, Repo string
		Issue                 int
		TaggedBy              string    `json:"tagged_by"`
		PromotedBy            string    `json:"promoted_by"`
		ShippedAt             time.Time `json:"shipped_at"`
	}
	for _, tt := range []struct {
		path   string
		status int
		repo   string // every release listed is of it
		tags   string // newest first
		body   string // substring
	}{
		{path: "/api/v1/releases?repo=acme/hello", status: 200, repo: "acme/hello", tags: "v1.4.0,v1.3.0"},
		{path: "/api/v1/releases?repo=acme/hello&limit=1", status: 200, repo: "acme/hello", tags: "v1.4.0"},
		{path: "/api/v1/releases?repo=acme/other", status: 200, repo: "acme/other", tags: "v9.0.0"},
		{path: "/api/v1/releases?repo=acme/nothing", status: 200, tags: "", body: `"releases": []`},
		{path: "/api/v1/releases", status: 400, body: `"error": "repo is required: owner/name"`},
		{path: "/api/v1/releases?limit=5", status: 400, body: "repo is required"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, h, tt.path)
			if code != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("%d %s; want %d with %q", code, body, tt.status, tt.body)
			}
			if tt.status != 200 {
				return
			}
			var out struct{ Releases []release }
			if err := json.Unmarshal([]byte(body), &out); err != nil {
				t.Fatal(err)
			}
			var tags []string
			for _, r := range out.Releases {
				tags = append(tags, r.Tag)
				if r.TaggedBy != "lead" || r.Repo != tt.repo {
					t.Errorf("release %+v", r)
				}
				shippedOne := r.Tag == shipped.Tag && r.Repo == shipped.Repo
				if shippedOne != (r.State == "shipped" && r.PromotedBy == "po" && r.Issue == 5 && !r.ShippedAt.IsZero()) {
					t.Errorf("release %+v; only %s shipped, promoted by @po on #5", r, shipped.Tag)
				}
				if !shippedOne && (r.State != "open" || !r.ShippedAt.IsZero() || strings.Contains(body, `"shipped_at": "0001`)) {
					t.Errorf("release %+v; want it open, with no shipped_at", r)
				}
			}
			if strings.Join(tags, ",") != tt.tags {
				t.Errorf("tags %v, want %s", tags, tt.tags)
			}
		})
	}
}

// TestCommands proves /api/v1/commands is the audit trail: every command with who gave it,
// where, the command line, the --force reason, and what became of it (accepted, or refused and
// why), newest first, optionally for one repository.
func TestCommands(t *testing.T) {
	h, st := emptyAPI(t)
	ctx := context.Background()
	for _, c := range []struct {
		store.CommandRecord
		outcome, reason string
	}{
		{store.CommandRecord{Key: "c1", Repo: "acme/hello", Issue: 5, Actor: "po", Verb: "promote", Stage: "prod", Args: "/promote prod"}, "accepted", ""},
		{store.CommandRecord{Key: "c2", Repo: "acme/hello", Issue: 5, Actor: "dev", Verb: "deploy", Stage: "prod",
			Args: `/deploy prod --force "hotfix"`, Force: "hotfix"}, "refused", "@dev may not deploy to prod: only admins may force"},
		{store.CommandRecord{Key: "c3", Repo: "acme/other", Issue: 9, Actor: "po", Verb: "lock", Stage: "alpha", Args: "/lock alpha"}, "", ""},
	} {
		rec, err := st.RecordCommand(ctx, c.CommandRecord)
		if err != nil {
			t.Fatal(err)
		}
		if c.outcome != "" {
			if err := st.FinishCommand(ctx, rec.ID, c.outcome, c.reason, 100+rec.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	type command struct {
		Repo, Actor, Verb, Stage, Args, Outcome, Reason string
		Issue                                           int
		Force                                           string    `json:"force_reason"`
		CreatedAt                                       time.Time `json:"created_at"`
	}
	for _, tt := range []struct {
		path string
		args string // newest first
	}{
		{"/api/v1/commands", `/lock alpha|/deploy prod --force "hotfix"|/promote prod`},
		{"/api/v1/commands?repo=acme/hello", `/deploy prod --force "hotfix"|/promote prod`},
		{"/api/v1/commands?repo=acme/hello&limit=1", `/deploy prod --force "hotfix"`},
		{"/api/v1/commands?repo=acme/nothing", ""},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, h, tt.path)
			var out struct{ Commands []command }
			if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil || out.Commands == nil {
				t.Fatalf("%d %s (%v)", code, body, err)
			}
			var args []string
			for _, c := range out.Commands {
				args = append(args, c.Args)
				if c.CreatedAt.IsZero() || c.Actor == "" || c.Verb == "" || c.Issue == 0 {
					t.Errorf("command %+v", c)
				}
				switch c.Verb {
				case "promote":
					if c.Outcome != "accepted" || c.Reason != "" || c.Force != "" || c.Stage != "prod" || c.Actor != "po" {
						t.Errorf("the promotion: %+v", c)
					}
				case "deploy":
					if c.Outcome != "refused" || c.Reason != "@dev may not deploy to prod: only admins may force" || c.Force != "hotfix" {
						t.Errorf("the refused deploy: %+v", c)
					}
				case "lock":
					if c.Outcome != "" || c.Repo != "acme/other" {
						t.Errorf("the lock, still running: %+v", c)
					}
				}
			}
			if strings.Join(args, "|") != tt.args {
				t.Errorf("commands %q, want %q", args, tt.args)
			}
		})
	}
}

// TestBadLimits proves every list answers a limit or page it cannot serve with 400 and the
// reason, naming the parameter and the range it takes.
func TestBadLimits(t *testing.T) {
	h, _ := emptyAPI(t)
	for _, tt := range []struct{ path, reason string }{
		{"/api/v1/deployments?limit=1001", `limit: want an integer from 1 to 1000, got \"1001\"`},
		{"/api/v1/deployments?limit=ten", `limit: want an integer from 1 to 1000, got \"ten\"`},
		{"/api/v1/deployments?before=0", `before: want an integer from 1 to`},
		{"/api/v1/releases?repo=acme/hello&limit=0", `limit: want an integer from 1 to 500, got \"0\"`},
		{"/api/v1/releases?repo=acme/hello&limit=501", `limit: want an integer from 1 to 500, got \"501\"`},
		{"/api/v1/commands?limit=-1", `limit: want an integer from 1 to 500, got \"-1\"`},
		{"/api/v1/commands?repo=acme/hello&limit=1.5", `limit: want an integer from 1 to 500, got \"1.5\"`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, h, tt.path)
			var out struct{ Error string }
			if err := json.Unmarshal([]byte(body), &out); code != 400 || err != nil || out.Error == "" || !strings.Contains(body, tt.reason) {
				t.Errorf("%d %s; want 400 with %q", code, body, tt.reason)
			}
		})
	}
}
