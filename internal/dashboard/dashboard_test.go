package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

const cfgYAML = `
credentials:
  pr: {role_arn: "arn:aws:iam::123456789012:role/pr"}
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test}
  - {name: prod, branch: prod, trigger: push, credentials: prod, promote_from: alpha, slots: [prod, prod-backup]}
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    pr_build: {enabled: true, codebuild_project: hello-pr}
    stages:
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
      alpha: {secret_id: hello/alpha, deployments: [{name: api, containers: [api]}]}
      prod: {secret_id: hello/prod, deployments: [{name: api, containers: [api], service: api}]}
`

// The commits of the world.
const (
	shaA  = "aaaaaaa111111111111111111111111111111111" // v1.1.0; live on alpha again after a rollback
	shaB  = "bbbbbbb222222222222222222222222222222222" // live on test
	shaC  = "ccccccc333333333333333333333333333333333" // rolling out on test; v1.3.0, open
	shaD  = "ddddddd444444444444444444444444444444444" // was on alpha, rolled back from
	shaE  = "eeeeeee555555555555555555555555555555555" // queued on test
	shaF  = "fffffff666666666666666666666666666666666" // forced to prod; v1.2.0, live on prod-backup
	shaG  = "0000000777777777777777777777777777777777" // rolled back on prod
	shaPR = "1212121212121212121212121212121212121212" // pull request 12, built
	shaPS = "1313131313131313131313131313131313131313" // pull request 13, building
)

// epoch is when the world begins; the page is rendered three hours later.
var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// world is a store with a history that has everything the page shows:
//
//   - test: shaB live (merged PR #7 by octocat), shaC rolling out (2 of 3 pods), shaE queued;
//   - alpha: shaA, then shaD, then an image rollback to shaA (live, tagged v1.1.0), and a
//     promotion of shaB held until the alpha branch moves;
//   - prod (two slots): shaA on slot prod, then shaF forced with a reason onto prod-backup (live,
//     tagged v1.2.0), then shaG rolled back; locked by sre-sam, who is switching it back to slot
//     prod;
//   - pull-request builds: #12 built, #13 building;
//   - releases v1.1.0 and v1.2.0 shipped, v1.3.0 open, v1.3.1 refused.
func world(t *testing.T) *Dashboard {
	t.Helper()
	cfg, err := config.Parse("dashboard_test.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var clock atomic.Int64 // the store's clock, read by its committer goroutine too
	clock.Store(epoch.UnixMicro())
	st.Now = func() time.Time { return time.UnixMicro(clock.Add(int64(time.Minute / time.Microsecond))).UTC() }
	ctx := context.Background()
	n := 0
	record := func(r deploy.Request) {
		t.Helper()
		n++
		r.App, r.Repo = "hello", "acme/hello"
		if r.Trigger.Event == "" {
			r.Trigger = deploy.Trigger{Event: "pull_request", PR: 7, Actor: "octocat"}
		}
		if _, err := st.Record(ctx, store.Intake{Delivery: store.Delivery{ID: "d" + string(rune('a'+n)), Event: r.Trigger.Event},
			Deploys: []deploy.Request{r}}); err != nil {
			t.Fatal(err)
		}
	}
	// run records r and takes it through states, the last with checkpoint cp.
	run := func(r deploy.Request, cp deploy.Checkpoint, errText string, states ...deploy.State) {
		t.Helper()
		record(r)
		d, l, err := st.ClaimDeploy(ctx, "t", time.Hour)
		if err != nil || d.SHA != r.SHA || d.Stage != r.Stage {
			t.Fatalf("claimed %s on %s (%v), want %s on %s", d.SHA, d.Stage, err, r.SHA, r.Stage)
		}
		for i, s := range states {
			u := store.Update{State: s}
			if i == len(states)-1 {
				b, _ := json.Marshal(cp)
				u.Checkpoint, u.Error = b, errText
			}
			if err := st.Advance(ctx, l, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	ok := []deploy.State{deploy.Preflight, deploy.Building, deploy.RollingOut, deploy.Succeeded}
	img := func(sha string) string { return "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:" + sha[:8] }
	lead := deploy.Trigger{Event: "issue_comment", Actor: "lead-dev", Issue: 30, Comment: 1}
	sre := deploy.Trigger{Event: "issue_comment", Actor: "sre-sam", Issue: 12, Comment: 2}

	run(deploy.Request{Stage: "alpha", SHA: shaA}, deploy.Checkpoint{Image: img(shaA)}, "", ok...)
	run(deploy.Request{Stage: "alpha", SHA: shaD}, deploy.Checkpoint{Image: img(shaD)}, "", ok...)
	run(deploy.Request{Stage: "alpha", SHA: shaA, Mode: deploy.ModeImage, Image: img(shaA), Nonce: "rb", Trigger: lead},
		deploy.Checkpoint{Image: img(shaA)}, "", deploy.Preflight, deploy.RollingOut, deploy.Succeeded)
	run(deploy.Request{Stage: "test", SHA: shaB}, deploy.Checkpoint{}, "", ok...)
	run(deploy.Request{Stage: "prod", SHA: shaA, Trigger: lead}, deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup", Switched: true}, "", ok...)
	run(deploy.Request{Stage: "prod", SHA: shaF, Force: "hotfix for the login outage", Trigger: lead},
		deploy.Checkpoint{Slot: "prod-backup", FromSlot: "prod", Switched: true}, "", ok...)
	run(deploy.Request{Stage: "prod", SHA: shaG, Trigger: lead}, deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup", RollingBack: true},
		"rolled back: api: ProgressDeadlineExceeded", deploy.Preflight, deploy.Building, deploy.RollingOut, deploy.RolledBack)
	run(deploy.Request{Stage: deploy.PRStage(12), SHA: shaPR, Mode: deploy.ModePRBuild, Trigger: deploy.Trigger{Event: "pull_request", PR: 12, Actor: "dev-dana"}},
		deploy.Checkpoint{}, "", deploy.Preflight, deploy.Building, deploy.Succeeded)

	// In flight: each claimed at once, so the next claim cannot take it.
	run(deploy.Request{Stage: "test", SHA: shaC}, deploy.Checkpoint{Progress: "api: 2 of 3 pods updated"}, "", deploy.Preflight, deploy.Building, deploy.RollingOut)
	run(deploy.Request{Stage: deploy.PRStage(13), SHA: shaPS, Mode: deploy.ModePRBuild, Trigger: deploy.Trigger{Event: "pull_request", PR: 13, Actor: "dev-dana"}},
		deploy.Checkpoint{BuildPhase: "BUILD"}, "", deploy.Preflight, deploy.Building)
	if _, _, err := st.LockStage(ctx, store.StageLock{App: "hello", Stage: "prod", Repo: "acme/hello", Owner: "sre-sam",
		Reason: "incident INC-42: hold prod", Issue: 12}); err != nil {
		t.Fatal(err)
	}
	run(deploy.Request{Stage: "prod", SHA: shaA, Mode: deploy.ModeSwitch, Slot: "prod", Nonce: "sw", Trigger: sre},
		deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup"}, "", deploy.Preflight, deploy.RollingOut)
	// Waiting: queued behind the running deploy, and held for the branch to move.
	record(deploy.Request{Stage: "test", SHA: shaE})
	record(deploy.Request{Stage: "alpha", SHA: shaB, Ref: "alpha", Held: true, Trigger: lead})

	for i, r := range []store.Release{
		{Tag: "v1.1.0", SHA: shaA, State: store.ReleaseShipped, Issue: 20},
		{Tag: "v1.2.0", SHA: shaF, State: store.ReleaseShipped, Issue: 21},
		{Tag: "v1.3.0", SHA: shaC, State: store.ReleaseOpen, Issue: 22},
		{Tag: "v1.3.1", SHA: shaE, State: store.ReleaseRefused, Reason: "eeeeeee never succeeded on alpha"},
	} {
		r.Repo, r.TaggedBy = "acme/hello", "lead-dev"
		rel, _, err := st.CreateRelease(ctx, r)
		if err != nil {
			t.Fatal(i, err)
		}
		rel.State, rel.Issue, rel.Reason = r.State, r.Issue, r.Reason
		if err := st.UpdateRelease(ctx, rel); err != nil {
			t.Fatal(err)
		}
	}
	// A push to prod by someone who may not deploy there, refused by the admission gate.
	c, err := st.RecordCommand(ctx, store.CommandRecord{Key: "push:1", Repo: "acme/hello", Actor: "dev-dana", Verb: "push", Stage: "prod",
		Args: "push 9999999 to prod (forced)"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.FinishCommand(ctx, c.ID, "refused", "@dev-dana may not deploy to prod by pushing to `prod`: only members of **@acme/product-owners** may.", 0); err != nil {
		t.Fatal(err)
	}
	d := New(st, cfg, "https://github.com/", slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.now = func() time.Time { return epoch.Add(3 * time.Hour) }
	return d
}

// get renders the page at target for the local trial's viewer, who may read everything.
func get(t *testing.T, h http.Handler, target string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	return getAs(t, h, access.Everything(), target)
}

// getAs renders the page at target for v (nil: nobody vouched for the request).
func getAs(t *testing.T, h http.Handler, v *access.Viewer, target string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	w := httptest.NewRecorder()
	asViewer(h, v).ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	return w, w.Body.String()
}

// asViewer serves h to requests that carry v, as the sign-in gate passes them on.
func asViewer(h http.Handler, v *access.Viewer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v != nil {
			r = r.WithContext(access.WithViewer(r.Context(), v))
		}
		h.ServeHTTP(w, r)
	})
}

// section is the HTML of the element with id, up to the next element of the same kind: enough
// to check that a text is inside a stage's card.
func section(t *testing.T, body, id string) string {
	t.Helper()
	start := strings.Index(body, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no element %s", id)
	}
	rest := body[start:]
	if end := strings.Index(rest[1:], `<section class="stage`); end >= 0 {
		return rest[:end+1]
	}
	return rest
}

func TestPage(t *testing.T) {
	w, body := get(t, world(t), "/")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("answer %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	gh := "https://github.com/acme/hello"
	want := map[string][]string{
		"hello-test": {
			`<a class="sha" href="` + gh + `/commit/` + shaB + `">bbbbbbb</a>`, // live
			`by @octocat`, `<a href="` + gh + `/pull/7">#7</a>`,
			`<a href="` + gh + `/compare/` + shaA + `...` + shaB + `">what promoting to alpha would ship</a>`,
			`<span class="badge">rolling out</span>`, `api: 2 of 3 pods updated`, // in flight
			`<span class="badge">queued</span>`, `starts when the stage is free`,
		},
		"hello-alpha": {
			`<a class="tag" href="` + gh + `/releases/tag/v1.1.0">v1.1.0</a>`, // live, by its tag, after the rollback
			`<span class="badge rollback" title="rolled back to the image built before, with no build">rollback</span>`,
			`<span class="badge">held</span>`, `starts once the alpha branch moves to bbbbbbb`,
			`<a href="` + gh + `/compare/` + shaF + `...` + shaA + `">what promoting to prod would ship</a>`,
		},
		"hello-prod": {
			`<span class="badge lock-b"><span aria-hidden="true">🔒</span> locked</span>`,
			`Locked by <strong>@sre-sam</strong>`, `: “incident INC-42: hold prod”`, `<a href="` + gh + `/issues/12">where it was locked</a>`,
			`<a class="tag" href="` + gh + `/releases/tag/v1.2.0">v1.2.0</a>`, // live, by its tag
			`serving from <strong>slot prod-backup</strong>`, `(of prod, prod-backup)`,
			`<span class="badge forced" title="forced past the stage order: hotfix for the login outage">forced</span>`,
			`forced: hotfix for the login outage`,
			`Deploy #7 of <code>0000000</code> rolled back`, `api: ProgressDeadlineExceeded`, // the problem line
			`<span class="badge">switching slot</span>`, `pointing the Services at slot prod`, `slot switch → prod`,
		},
		"app-hello-releases": {
			`<a class="tag" href="` + gh + `/releases/tag/v1.3.0">v1.3.0</a>`, `<span class="badge open">open</span>`,
			`<a href="` + gh + `/issues/22">release issue #22</a>`,
			`<span class="badge failed" title="eeeeeee never succeeded on alpha">refused</span>`,
			`<span class="badge succeeded">shipped</span>`,
		},
		"app-hello-refusals": {
			`<span class="badge failed">refused</span>`, `<strong>@dev-dana</strong> <code>push 9999999 to prod (forced)</code>: ` +
				`@dev-dana may not deploy to prod by pushing to prod: only members of @acme/product-owners may.`,
		},
		"app-hello-prs": {
			`<a href="` + gh + `/pull/12">#12</a>`, `<a href="` + gh + `/pull/13">#13</a>`,
			`<span class="badge succeeded">succeeded</span>`, `<span class="badge building">building</span>`, `phase BUILD`,
		},
	}
	for id, wants := range want {
		got := section(t, body, id)
		for _, s := range wants {
			if !strings.Contains(got, s) {
				t.Errorf("%s lacks %s", id, s)
			}
		}
	}
	for _, s := range []string{
		`<section class="stage locked" id="hello-prod"`, `<section class="stage" id="hello-test"`,
		`<meta http-equiv="refresh" content="5">`, `<a href="?refresh=off">stop refreshing</a>`, // deploys run
	} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	// Pull-request builds are not stages.
	if strings.Contains(body, `id="hello-pr#`) || strings.Contains(section(t, body, "hello-test"), "#13") {
		t.Error("a pull-request build shows as a stage")
	}

	_, paused := get(t, world(t), "/?refresh=off")
	if strings.Contains(paused, `http-equiv="refresh"`) || !strings.Contains(paused, "refreshing is off") {
		t.Error("?refresh=off still refreshes, or does not say it stopped")
	}
}

// TestQuiet: with nothing in flight the page does not reload, and an app without deploys says so.
func TestQuiet(t *testing.T) {
	cfg, err := config.Parse("quiet.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, body := get(t, New(st, cfg, "https://github.com", slog.New(slog.NewTextHandler(io.Discard, nil))), "/")
	for _, s := range []string{`<p class="live empty">nothing yet</p>`, `<h3 id="app-hello-releases">Releases</h3>`, `Pull-request builds`} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("the page reloads with nothing in flight")
	}
}

// TestBehindSuperseded: pushes during a long rollout leave more superseded deploys than the
// history holds; the page still shows the running deploy, first, and the superseded ones as one
// row.
func TestBehindSuperseded(t *testing.T) {
	d := world(t)
	st := d.st.(*store.Store)
	for i := range historyRows + 2 {
		sha := strings.Repeat(string(rune('a'+i)), 40)
		if _, err := st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: "push-" + sha, Event: "push"},
			Deploys: []deploy.Request{{App: "hello", Stage: "test", Repo: "acme/hello", SHA: sha, Trigger: deploy.Trigger{Event: "push", Actor: "octocat"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	_, body := get(t, d, "/")
	card := section(t, body, "hello-test")
	flights := card[strings.Index(card, `<ul class="flights"`):]
	if !strings.Contains(body, `content="5"`) || !strings.HasPrefix(flights[strings.Index(flights, `<li`):], `<li class="flight"><span class="badge">rolling out</span>`) {
		t.Errorf("the running deploy is not first in flight on test:\n%s", flights)
	}
	if !strings.Contains(card, "requests superseded by newer ones before they started") || strings.Count(card, "<tr>") > historyRows {
		t.Errorf("the superseded deploys are not one row:\n%s", card)
	}
}

// TestWindowsAndLocksOnThePage: a stage outside its deploy windows says so and until when, a
// frozen one names the freeze, a lock taken for a while says when it expires, and a deploy
// waiting for the window says for what; the page then reloads slowly.
func TestWindowsAndLocksOnThePage(t *testing.T) {
	text := strings.Replace(cfgYAML, "slots: [prod, prod-backup]}", `slots: [prod, prod-backup], time_zone: Europe/Berlin,
     windows: [{days: Mon-Thu, hours: "09:00-16:00"}], freezes: [{from: 2026-03-13, until: 2026-03-16, reason: Quarter close}]}`, 1)
	text = strings.Replace(text, "promote_from: test}", `promote_from: test, windows: [{days: daily, hours: "06:00-22:00"}]}`, 1)
	cfg, err := config.Parse("windows.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	friday := time.Date(2026, 3, 6, 17, 0, 0, 0, time.UTC) // 18:00 in Berlin
	st.Now = func() time.Time { return friday }
	ctx := context.Background()
	rd, err := st.RequestDeploys(ctx, []deploy.Request{{App: "hello", Stage: "prod", Repo: "acme/hello", SHA: shaA,
		Trigger: deploy.Trigger{Event: "push", Delivery: "p1", Actor: "po"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, l, err := st.ClaimDeploy(ctx, "pipeline", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	monday := time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)
	cp := deploy.Checkpoint{Wait: &deploy.Wait{Until: monday, At: "Mon Mar 9 09:00 CET", Windows: "Mon-Thu 09:00-16:00 Europe/Berlin"}}
	if err := st.Advance(ctx, l, store.Update{Checkpoint: cp.Encode(), RunAfter: monday, Release: true, Report: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.LockStage(ctx, store.StageLock{App: "hello", Stage: "alpha", Repo: "acme/hello", Owner: "lead-dev", Reason: "load test",
		ExpiresAt: friday.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d := New(st, cfg, "https://github.com/", slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.now = func() time.Time { return friday }
	_, body := get(t, d, "/")
	for id, wants := range map[string][]string{
		"hello-prod": {`<p class="window closed"><span aria-hidden="true">⏸</span> Outside its deploy windows · deploys wait until ` +
			`<time datetime="2026-03-09T08:00:00Z">Mon Mar 9 09:00 CET</time> <span class="meta">(Mon-Thu 09:00-16:00 Europe/Berlin)</span>`,
			`<span class="badge">waiting</span>`, `waiting for the window at Mon Mar 9 09:00 CET`, fmt.Sprintf("deploy #%d", rd[0].ID)},
		"hello-alpha": {`Deploy window open until <time datetime="2026-03-06T22:00:00Z">Fri Mar 6 22:00 UTC</time>`,
			`Locked by <strong>@lead-dev</strong>`, `expires <time datetime="2026-03-06T19:00:00Z"`, `2026-03-06 19:00:00 UTC</time>`},
	} {
		got := section(t, body, id)
		for _, s := range wants {
			if !strings.Contains(got, s) {
				t.Errorf("%s lacks %s:\n%s", id, s, got)
			}
		}
	}
	if strings.Contains(section(t, body, "hello-test"), `class="window`) {
		t.Error("test, which takes deploys any time, shows a window")
	}
	if !strings.Contains(body, `<meta http-equiv="refresh" content="30">`) {
		t.Error("a page where deploys only wait does not reload slowly")
	}
	// In the freeze: the freeze's reason and its end.
	d.now = func() time.Time { return time.Date(2026, 3, 13, 10, 0, 0, 0, time.UTC) }
	_, body = get(t, d, "/")
	if got := section(t, body, "hello-prod"); !strings.Contains(got, `<span aria-hidden="true">❄</span> Frozen: “Quarter close” · deploys wait until `+
		`<time datetime="2026-03-16T08:00:00Z">Mon Mar 16 09:00 CET</time>`) {
		t.Errorf("the frozen stage:\n%s", got)
	}
}
