package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	"github.com/stagecoach/stagecoach/internal/testenv/sandbox"
)

// TestReleaseWorkflowEndToEnd plays the whole release workflow on the running service against
// the GitHub test server (every request checked against GitHub's REST description, every webhook
// delivered by it as GitHub would), the AWS test servers and the real Kubernetes control plane:
// a merge while test is frozen (held, saying until when, then started when the freeze ends) → a
// pull request built and merged → test deploy → /promote alpha → alpha deploy → a release tag
// → release issue with changelog, ready to promote once it has soaked on alpha → /promote prod
// by a non-approver (refused, with the reason) → by the product owner before it soaked (refused,
// saying when it is ready) → the Promote button once it has → prod deployed to the idle slot and
// switched → issue closed → a failing build → a second release → /rollback prod switches back. Then every approval hole of issue 9,
// tried as an attacker with write access would, and refused with the reason a person reads,
// nothing deployed or moved: a developer's commit deployed to test and pushed to alpha and to
// prod; a command from an outsider; a ref that climbs out of the API path; /promote prod on a
// pull request; a release tag moved onto that commit (the issue rewritten) and the button shown
// before the move; /promote prod over the commit the push left on prod's branch, then forced by
// an admin, which says what it dropped. At last the repository's own .github/stagecoach.yml:
// one the server allows, in force, and one reaching for the operators' registry, refused by a
// failed stagecoach/config check run naming file:line. Last, v1.2.0 fails prod's health check
// once users reach it, and Stagecoach switches prod back to the slot that was live, ending the
// deploy rolled_back with the release issue open. The story and its checks are the sandbox's
// (internal/testenv/sandbox); this test runs it on the real cluster and checks what GitHub saw.
func TestReleaseWorkflowEndToEnd(t *testing.T) {
	kc := kubetest.Start(t)
	var out bytes.Buffer
	w, err := sandbox.Start(context.Background(), sandbox.Options{Dir: t.TempDir(), Listen: "127.0.0.1:0", Out: &out,
		Kube:  &sandbox.Kube{Kubeconfig: kc.Kubeconfig(), Context: kubetest.Context, Description: "the test control plane"},
		Serve: serveSandbox})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err = w.Play(ctx)
	t.Logf("the story:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	gh := w.GitHub
	if err := gh.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range gh.Problems() {
		t.Errorf("GitHub test server: %s", p)
	}
	// Every delivery was taken: 202 for work, 200 or 202 for what Stagecoach ignores (its own
	// comments, the pushes its promotions caused), never an error.
	for _, d := range gh.Deliveries() {
		if d.Failed() {
			t.Errorf("delivery %s (%s %s) failed: %d %s %v", d.ID, d.Event, d.Action, d.Status, d.Response, d.Err)
		}
	}
	// Each release issue that went live was closed with the summary; v1.2.0's, whose
	// verification failed on prod, stays open saying so.
	for _, is := range gh.Issues("acme/maas-backend") {
		if !strings.HasPrefix(is.Title, "Release ") {
			continue
		}
		comments := gh.Comments("acme/maas-backend", is.Number)
		if is.Title == "Release v1.2.0" {
			if is.State != "open" || !saidByBot(comments, "**Promoting v1.2.0 to prod failed**") || saidByBot(comments, "is live on prod.**") {
				t.Errorf("%s: state %s, want open, saying its promotion failed", is.Title, is.State)
			}
			continue
		}
		if is.State != "closed" || !saidByBot(comments, "is live on prod.**") {
			t.Errorf("%s: state %s, want closed with the summary", is.Title, is.State)
		}
	}
	if n := gh.Count("git/update-ref"); n != 7 {
		t.Errorf("%d branch moves, want 7 (alpha three times, prod four times: one forced over @alice's push, and v1.2.0's)", n)
	}
	// The refusals are on the dashboard too, for the watcher signed in with GitHub.
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(w.DashboardURL())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{">Refused</h3>", "<strong>@alice</strong> <code>push ", "may not deploy to prod by pushing to prod"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
	resp, err = http.Get(w.InternalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		// The attacks: a /promote prod by a developer, on a pull request, by a button shown before
		// its tag moved, and over a commit on prod's branch (and /promote alpha over one on alpha's); two pushes by a developer; an
		// outsider not heard; a ref that climbs out of the API path.
		`stagecoach_commands_total{outcome="refused",verb="promote"} 6`, // and one before v1.0.0 soaked, and /promote alpha over @alice's push
		`stagecoach_commands_total{outcome="accepted",verb="promote"} 7`,
		`stagecoach_commands_total{outcome="refused",verb="push"} 2`,
		`stagecoach_commands_total{outcome="accepted",verb="push"} 7`, // Stagecoach's own moves, matched
		`stagecoach_commands_total{outcome="ignored",verb="promote"} 1`,
		`stagecoach_commands_total{outcome="refused",verb="invalid"} 1`,
		`stagecoach_commands_total{outcome="accepted",verb="rollback"} 1`,
		`stagecoach_deploy_duration_seconds_count{result="succeeded",stage="pr"} 1`,
		`stagecoach_deploy_duration_seconds_count{result="failed",stage="test"} 1`,
		`stagecoach_deploy_duration_seconds_count{result="rolled_back",stage="prod"} 1`, // v1.2.0, verification failed
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// saidByBot reports whether Stagecoach wrote a comment containing text.
func saidByBot(cs []githubtest.Comment, text string) bool {
	for _, c := range cs {
		if c.User == "" && strings.Contains(c.Body, text) {
			return true
		}
	}
	return false
}

// TestSandboxOnce runs `stagecoach sandbox --once` as a newcomer would, on the simulated
// cluster: it plays the flow, prints the stages and exits 0 only when every step behaved.
func TestSandboxOnce(t *testing.T) {
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := run(ctx, []string{"sandbox", "--once", "--cluster", "simulated", "--listen", "127.0.0.1:0", "--dir", t.TempDir()},
		func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("sandbox --once: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{"simulated cluster", "36. @alice comments `/status`", "Every step behaved as expected.",
		"Frozen (payment provider maintenance): waiting until", "after the freeze ended", "it is ready to promote at",
		".github/stagecoach.yml:3: apps[0].image_repository:",
		"prod    v1.1.1 (", "on slot prod ", "rolled_back", "so Stagecoach switched back to slot prod", "refused: “@alice may not deploy to prod by pushing to `prod`"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// TestSandboxDashboardIsOneClickAway: the sandbox's dashboard link signs its watcher in with the
// GitHub test server and lands on the dashboard, audit trail included; without it, the page is
// the sign-in page and the API answers 401.
func TestSandboxDashboardIsOneClickAway(t *testing.T) {
	w, err := sandbox.Start(context.Background(), sandbox.Options{Dir: t.TempDir(), Listen: "127.0.0.1:0", Serve: serveSandbox})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	page := func(c *http.Client, url string) (int, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := page(http.DefaultClient, w.URL+"/"); code != 200 || !strings.Contains(body, `id="signin-github"`) || strings.Contains(body, "maas-backend") {
		t.Errorf("anonymous: %d\n%s", code, body)
	}
	if code, body := page(http.DefaultClient, w.URL+"/api/v1/deployments"); code != http.StatusUnauthorized || strings.Contains(body, "maas-backend") {
		t.Errorf("anonymous API: %d %s", code, body)
	}
	code, body := page(browser, w.DashboardURL())
	for _, want := range []string{`Signed in as <strong>@sam</strong>`, `id="app-maas-backend"`, `id="app-maas-backend-audit"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("one click: %d, the page lacks %s", code, want)
		}
	}
	if code, body := page(browser, w.URL+"/api/v1/deployments"); code != 200 || !strings.Contains(body, `"deployments"`) {
		t.Errorf("the signed-in API: %d %s", code, body)
	}
	if problems := w.GitHub.Problems(); len(problems) > 0 {
		t.Errorf("GitHub test server: %v", problems)
	}
}
