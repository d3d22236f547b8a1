package chatops

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// windowsConfig is testConfig with alpha soaking an hour, and prod's windows and a freeze.
var windowsConfig = strings.NewReplacer(
	"promote_from: test, promoters: {users: [lead]}}", "promote_from: test, promoters: {users: [lead]}, min_soak: 1h}",
	"    slots: [prod, prod-backup]\n", `    slots: [prod, prod-backup]
    time_zone: Europe/Berlin
    windows: [{days: Mon-Thu, hours: "09:00-16:00"}]
    freezes: [{from: 2026-12-21, until: 2027-01-04, reason: Year-end freeze}]
`).Replace(testConfig)

// TestLockForAWhileExpires: `/lock prod 2h "db migration"` says until when it holds; other
// people's commands are refused, naming the expiry; two hours later the lock is gone by
// itself, and their commands are carried out.
func TestLockForAWhileExpires(t *testing.T) {
	w := newWorld(t)
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaC, "lead", deploy.Checkpoint{})
	w.release("v1.0.0", shaC, 1)
	got := w.say(1, "sam", `/lock prod 2h "db migration"`)
	for _, want := range []string{"🔒 locked **prod** for 2h, until Dec 1 14:00 UTC: `db migration`", "The lock expires by itself then"} {
		if !strings.Contains(got, want) {
			t.Errorf("lock answer lacks %q:\n%s", want, got)
		}
	}
	locks, _ := w.st.StageLocks(context.Background())
	if len(locks) != 1 || !locks[0].ExpiresAt.Equal(w.now.Add(2*time.Hour)) {
		t.Fatalf("locks = %+v", locks)
	}
	if got := w.say(1, "po", "/promote prod"); !strings.Contains(got, "locked by @sam since Dec 1 12:00 UTC until Dec 1 14:00 UTC: `db migration`") {
		t.Errorf("promote while locked = %q", got)
	}
	if got := w.say(2, "dev", "/status"); !strings.Contains(got, "locked by @sam until Dec 1 14:00 UTC: `db migration`") {
		t.Errorf("/status does not say until when prod is locked:\n%s", got)
	}
	w.gh.SetTeamMember("acme", "sre", "sue")
	w.gh.SetPermission(repo, "sue", "write")
	if got := w.say(1, "sue", "/lock prod 30m"); !strings.Contains(got, "locked already, by @sam since Dec 1 12:00 UTC until Dec 1 14:00 UTC") {
		t.Errorf("a second lock = %q", got)
	}
	w.now = w.now.Add(2 * time.Hour)
	if got := w.say(1, "po", "/promote prod"); !strings.Contains(got, "promoting `v1.0.0` (`ccccccc`) to **prod**") {
		t.Errorf("promote once the lock expired = %q", got)
	}
	if got := w.say(2, "sam", "/unlock prod"); !strings.Contains(got, "**prod** is not locked") {
		t.Errorf("unlock of an expired lock = %q", got)
	}
}

// TestPromotionBeforeSoakIsRefusedSayingWhenReady: alpha's min_soak is an hour; `/promote prod`
// of a release ten minutes after its commit went live on alpha is refused, saying when it will
// be ready, and moves nothing; at that time it is carried out.
func TestPromotionBeforeSoakIsRefusedSayingWhenReady(t *testing.T) {
	w := newWorldWith(t, windowsConfig)
	w.now = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // a Tuesday, 10:00 in Berlin: prod's window is open
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaC, "lead", deploy.Checkpoint{})
	w.release("v1.0.0", shaC, 1)
	w.now = w.now.Add(10 * time.Minute)
	got := w.say(1, "po", "/promote prod")
	for _, want := range []string{"`ccccccc` has run on **alpha** for 10m", "**ready to promote at Tue Dec 1 11:00 CET** (in 50m)", "`--force \"the reason\"`"} {
		if !strings.Contains(got, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, got)
		}
	}
	if sha, _ := w.gh.Ref(repo, "prod"); sha != shaA {
		t.Errorf("a refused promotion moved prod to %s", sha)
	}
	if ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "prod"}); len(ds) != 0 {
		t.Errorf("a refused promotion recorded %d deploy(s)", len(ds))
	}
	w.now = w.now.Add(50 * time.Minute)
	if got := w.say(1, "po", "/promote prod"); !strings.Contains(got, "promoting `v1.0.0` (`ccccccc`) to **prod**") || strings.Contains(got, "waits") {
		t.Errorf("promote once soaked = %q", got)
	}
}

// TestRetryButtonDuringFreezeIsAdmittedToWait: Retry pressed on a failed prod deploy during the
// freeze is the command it stands for: admitted (who pressed it may), and the answer says the
// deploy waits for the freeze to end, and how to deploy anyway. (The pipeline holds it: package
// pipeline's TestRetryButtonDuringFreezeWaits.)
func TestRetryButtonDuringFreezeIsAdmittedToWait(t *testing.T) {
	w := newWorldWith(t, windowsConfig)
	w.now = time.Date(2026, 12, 20, 9, 0, 0, 0, time.UTC)
	w.live("test", shaA, "dev", deploy.Checkpoint{})
	w.live("alpha", shaA, "lead", deploy.Checkpoint{})
	failed, run := w.ended("prod", shaA, deploy.Failed, 4, "")
	w.now = time.Date(2026, 12, 22, 9, 0, 0, 0, time.UTC) // a Tuesday in the window, but frozen
	w.press(run, "stagecoach/prod", strconv.FormatInt(failed.ID, 10), "retry", "po")
	got := w.lastBotComment(4)
	for _, want := range []string{"⏸️ **prod** is frozen: `Year-end freeze`", "starts at **Mon Jan 4 09:00 CET**", "`/rollback prod` does not wait"} {
		if !strings.Contains(got, want) {
			t.Errorf("the answer lacks %q:\n%s", want, got)
		}
	}
	ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "prod"})
	if ds[0].State != deploy.Queued || ds[0].Trigger.Event != "check_run" {
		t.Fatalf("newest prod deploy %+v, want the retry, queued (the pipeline holds it)", ds[0])
	}
	cmds, _ := w.st.Commands(context.Background(), repo, 1)
	if len(cmds) != 1 || cmds[0].Outcome != "accepted" || !strings.Contains(cmds[0].Reason, "frozen (Year-end freeze): waiting until Mon Jan 4 09:00 CET") {
		t.Errorf("audit = %+v", cmds)
	}
}

// TestWindowsGolden pins /help and /status where stages have windows, a freeze and a soak time,
// and a deploy waits for prod's window.
func TestWindowsGolden(t *testing.T) {
	w := newWorldWith(t, windowsConfig)
	w.now = time.Date(2026, 11, 27, 17, 0, 0, 0, time.UTC) // a Friday evening
	w.live("test", shaC, "dev", deploy.Checkpoint{})
	w.live("alpha", shaB, "lead", deploy.Checkpoint{})
	w.live("prod", shaA, "po", deploy.Checkpoint{Slot: "prod-backup"})
	w.now = w.now.Add(2 * time.Hour)
	rd, err := w.st.RequestDeploys(context.Background(), []deploy.Request{{App: "hello", Stage: "prod", Repo: repo, SHA: shaB, Ref: "prod",
		InstallationID: 1, Trigger: deploy.Trigger{Event: "push", Delivery: "p1", Actor: "po"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	d, l, err := w.st.ClaimDeploy(context.Background(), "pipeline", time.Minute)
	if err != nil || d.ID != rd[0].ID {
		t.Fatalf("claimed %d, %v", d.ID, err)
	}
	cp := deploy.Checkpoint{Wait: &deploy.Wait{Until: waitUntil, At: "Mon Nov 30 09:00 CET", Windows: "Mon-Thu 09:00-16:00 Europe/Berlin"}}
	if err := w.st.Advance(context.Background(), l, store.Update{Checkpoint: cp.Encode(), RunAfter: waitUntil, Release: true}); err != nil {
		t.Fatal(err)
	}
	w.say(1, "lead", "/lock alpha 1d nightly load test")
	for _, name := range []string{"status", "help"} {
		t.Run(name, func(t *testing.T) {
			got := w.say(9, "dev", "/"+name)
			golden := filepath.Join("testdata", name+"-windows.md")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
			}
		})
	}
}
