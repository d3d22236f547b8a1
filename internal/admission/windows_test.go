package admission

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// clock is the tests' clock: it moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// windowsConfig is testConfig with alpha soaking an hour and prod's windows and freeze.
var windowsConfig = strings.NewReplacer(
	"promote_from: test, promoters: {users: [lead]}}", "promote_from: test, promoters: {users: [lead]}, min_soak: 1h, time_zone: Europe/Berlin}",
	"slots: [prod, prod-backup]}", `slots: [prod, prod-backup], time_zone: Europe/Berlin, windows: [{days: Mon-Thu, hours: "09:00-16:00"}],
     freezes: [{from: 2025-12-22, until: 2026-01-05, reason: Year-end freeze}]}`).Replace(testConfig)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	zone, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	x, err := time.ParseInLocation("2006-01-02 15:04", s, zone)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestSoaked(t *testing.T) {
	t0 := time.Date(2025, 1, 13, 10, 0, 0, 0, time.UTC)
	span := func(from, until time.Duration) store.Span {
		s := store.Span{From: t0.Add(from)}
		if until != 0 {
			s.Until = t0.Add(until)
		}
		return s
	}
	for _, tt := range []struct {
		name  string
		spans []store.Span
		now   time.Duration
		ready bool
		at    time.Duration // -1: zero (never, as things stand)
		ran   time.Duration
	}{
		{"never there", nil, time.Hour, false, -1, 0},
		{"running 10 minutes", []store.Span{span(0, 0)}, 10 * time.Minute, false, time.Hour, 10 * time.Minute},
		{"running exactly the soak", []store.Span{span(0, 0)}, time.Hour, true, time.Hour, time.Hour},
		{"running longer", []store.Span{span(0, 0)}, 3 * time.Hour, true, time.Hour, 3 * time.Hour},
		{"replaced after 40 minutes", []store.Span{span(0, 40*time.Minute)}, 3 * time.Hour, false, -1, 40 * time.Minute},
		{"replaced after it soaked", []store.Span{span(0, 2*time.Hour)}, 3 * time.Hour, true, time.Hour, 2 * time.Hour},
		{"back again: the new stretch counts from its start", []store.Span{span(0, 40*time.Minute), span(2*time.Hour, 0)}, 150 * time.Minute,
			false, 3 * time.Hour, 40 * time.Minute},
		{"an old stretch that soaked stays soaked", []store.Span{span(0, 2*time.Hour), span(3*time.Hour, 0)}, 190 * time.Minute, true, time.Hour, 2 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Soaked(tt.spans, time.Hour, t0.Add(tt.now))
			want := time.Time{}
			if tt.at >= 0 {
				want = t0.Add(tt.at)
			}
			if r.Ready != tt.ready || !r.At.Equal(want) || r.Ran != tt.ran {
				t.Errorf("Soaked = ready %v at %s ran %s; want ready %v at %s ran %s", r.Ready, r.At, r.Ran, tt.ready, want, tt.ran)
			}
		})
	}
}

// TestPushOfUnsoakedCommitToProdIsRefused: a product owner pushes prod to the commit alpha has
// run for ten minutes; alpha's min_soak is an hour. The push deploys nothing, and the check run
// says when the commit will be ready. An hour after it went live on alpha, the same push deploys.
func TestPushOfUnsoakedCommitToProdIsRefused(t *testing.T) {
	c := &clock{now: at(t, "2025-01-13 10:00")}
	w := newWorldWith(t, windowsConfig, c.Now) // shaB went live on alpha at 10:00
	c.Set(at(t, "2025-01-13 10:10"))
	before := len(w.deploys("prod"))
	w.pushed("prod", shaB, "po", "User")
	if n := len(w.deploys("prod")); n != before {
		t.Fatalf("the unsoaked push recorded %d deploy(s)", n-before)
	}
	run := w.refusal("prod", shaB)
	for _, want := range []string{"`bbbbbbb` has run on **alpha** for 10m", "takes a commit only once it has run 1h there (`min_soak`)",
		"**ready to promote at Mon Jan 13 11:00 CET** (in 50m)"} {
		if !strings.Contains(run.Summary, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, run.Summary)
		}
	}
	c.Set(at(t, "2025-01-13 11:00"))
	w.gh.SetRef(repo, "prod", shaA)
	w.pushed("prod", shaB, "po", "User")
	if ds := w.deploys("prod"); ds[0].SHA != shaB || ds[0].State != deploy.Queued {
		t.Fatalf("the soaked push: newest prod deploy %+v", ds[0])
	}
}

// TestPushOutsideTheWindowIsAdmittedToWait: a product owner's push to prod on a Friday evening
// is admitted (it is approved), but the decision says it waits for Monday's window, and the
// audit trail says so.
func TestPushOutsideTheWindowIsAdmittedToWait(t *testing.T) {
	c := &clock{now: at(t, "2025-01-10 10:00")}
	w := newWorldWith(t, windowsConfig, c.Now)
	c.Set(at(t, "2025-01-17 17:00"))
	w.pushed("prod", shaB, "po", "User")
	if ds := w.deploys("prod"); ds[0].SHA != shaB || ds[0].State != deploy.Queued {
		t.Fatalf("newest prod deploy %+v, want the push's, queued", ds[0])
	}
	if a := w.lastAudit(); a.Outcome != "accepted" || !strings.Contains(a.Reason, "waiting for the window at Mon Jan 20 09:00 CET") {
		t.Errorf("audit = %+v", a)
	}
}

// TestHold covers who waits: deploys outside the windows or in a freeze; not rollbacks, not
// what an admin forced, not pull-request builds, not stages without windows.
func TestHold(t *testing.T) {
	cfg, err := config.Parse("w.yaml", []byte(windowsConfig))
	if err != nil {
		t.Fatal(err)
	}
	prod, alpha := cfg.Stage("prod"), cfg.Stage("alpha")
	friday, frozen, monday := at(t, "2025-01-17 17:00"), at(t, "2025-12-23 10:00"), at(t, "2025-01-13 10:00")
	for _, tt := range []struct {
		name  string
		stage *config.Stage
		r     deploy.Request
		now   time.Time
		want  string // the wait's Text, "" for none
	}{
		{"outside the window", prod, deploy.Request{}, friday, "waiting for the window at Mon Jan 20 09:00 CET"},
		{"in the window", prod, deploy.Request{}, monday, ""},
		{"in a freeze", prod, deploy.Request{}, frozen, "frozen (Year-end freeze): waiting until Mon Jan 5 09:00 CET"},
		{"a rollback to an image", prod, deploy.Request{Mode: deploy.ModeImage}, frozen, ""},
		{"a slot switch", prod, deploy.Request{Mode: deploy.ModeSwitch}, friday, ""},
		{"forced", prod, deploy.Request{Force: "INC-42"}, frozen, ""},
		{"a stage without windows", alpha, deploy.Request{}, friday, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Hold(tt.stage, tt.r, tt.now)
			got := ""
			if w != nil {
				got = w.Text()
			}
			if err != nil || got != tt.want {
				t.Errorf("Hold = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	w, _ := Hold(prod, deploy.Request{}, frozen)
	if md := w.Markdown("prod"); !strings.Contains(md, "**prod** is frozen: `Year-end freeze`") || !strings.Contains(md, "starts at **Mon Jan 5 09:00 CET**") {
		t.Errorf("Markdown = %s", md)
	}
}

// TestSoakReadinessOfSeveralApps: the latest app decides, and one that never ran there makes the
// commit not ready at all.
func TestSoakReadinessOfSeveralApps(t *testing.T) {
	cfg, err := config.Parse("w.yaml", []byte(windowsConfig+`  - name: worker
    repo: acme/hello
    codebuild_project: worker
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/worker
    stages:
      alpha: {secret_id: worker/alpha, deployments: [{name: worker, containers: [worker]}]}
      prod: {secret_id: worker/prod, deployments: [{name: worker, containers: [worker], service: worker}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := at(t, "2025-01-13 10:00")
	spans := fakeSpans{"hello": {{From: t0}}, "worker": {{From: t0.Add(20 * time.Minute)}}}
	apps := cfg.AppsForRepo(repo)
	r, err := Soak(context.Background(), spans, cfg, apps, cfg.Stage("prod"), shaB, t0.Add(30*time.Minute))
	if err != nil || r.Ready || !r.At.Equal(t0.Add(80*time.Minute)) {
		t.Fatalf("Soak = %+v, %v; want ready when worker is, at 11:20", r, err)
	}
	r, _ = Soak(context.Background(), spans, cfg, apps, cfg.Stage("prod"), shaB, t0.Add(2*time.Hour))
	if !r.Ready || !r.At.Equal(t0.Add(80*time.Minute)) {
		t.Fatalf("Soak two hours later = %+v", r)
	}
	delete(spans, "worker")
	if r, _ := Soak(context.Background(), spans, cfg, apps, cfg.Stage("prod"), shaB, t0.Add(2*time.Hour)); r.Ready || !r.At.IsZero() {
		t.Fatalf("Soak with worker never on alpha = %+v", r)
	}
	if r, _ := Soak(context.Background(), spans, cfg, apps, cfg.Stage("alpha"), shaB, t0); !r.Ready {
		t.Fatalf("alpha's source (test) has no min_soak, yet %+v", r)
	}
}

type fakeSpans map[string][]store.Span

func (f fakeSpans) LiveSpans(_ context.Context, app, _, _ string) ([]store.Span, error) {
	return f[app], nil
}
