package dashboard

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/status"
	"github.com/stagecoach/stagecoach/internal/store"
)

// dep is a deploy for the tables.
func dep(id int64, state deploy.State, mut ...func(*deploy.Deploy)) deploy.Deploy {
	d := deploy.Deploy{ID: id, State: state, Request: deploy.Request{App: "hello", Stage: "prod", SHA: shaA}}
	for _, m := range mut {
		m(&d)
	}
	return d
}

func TestBadges(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    deploy.Deploy
		cp   deploy.Checkpoint
		want []string // text/class
	}{
		{"a normal deploy", dep(1, deploy.Succeeded), deploy.Checkpoint{}, nil},
		{"an image rollback", dep(1, deploy.Succeeded, func(d *deploy.Deploy) { d.Mode = deploy.ModeImage }), deploy.Checkpoint{}, []string{"rollback/rollback"}},
		{"a slot switch names its slot once", dep(1, deploy.Succeeded, func(d *deploy.Deploy) { d.Mode, d.Slot = deploy.ModeSwitch, "prod" }),
			deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup"}, []string{"slot switch → prod/switch"}},
		{"a switch before preflight picked the slot", dep(1, deploy.Queued, func(d *deploy.Deploy) { d.Mode, d.Slot = deploy.ModeSwitch, "prod-backup" }),
			deploy.Checkpoint{}, []string{"slot switch → prod-backup/switch"}},
		{"a deploy to a slot", dep(1, deploy.Succeeded), deploy.Checkpoint{Slot: "prod-backup"}, []string{"slot prod-backup/slot"}},
		{"forced, to a slot", dep(1, deploy.Failed, func(d *deploy.Deploy) { d.Force = "outage" }), deploy.Checkpoint{Slot: "prod"},
			[]string{"slot prod/slot", "forced/forced"}},
		{"a pull-request build", dep(1, deploy.Building, func(d *deploy.Deploy) { d.Mode = deploy.ModePRBuild }), deploy.Checkpoint{}, []string{"PR build/pr"}},
		{"held says so as its step, not a badge", dep(1, deploy.Queued, func(d *deploy.Deploy) { d.Held = true }), deploy.Checkpoint{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, b := range badges(tc.d, tc.cp) {
				got = append(got, b.Text+"/"+b.Class)
				if b.Title == "" {
					t.Errorf("badge %s has no title", b.Text)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("badges = %q, want %q", got, tc.want)
			}
		})
	}
	forced := badges(dep(1, deploy.Succeeded, func(d *deploy.Deploy) { d.Force = "hotfix for the outage" }), deploy.Checkpoint{})
	if len(forced) != 1 || !strings.Contains(forced[0].Title, "hotfix for the outage") {
		t.Errorf("a forced deploy's badge lacks the reason: %+v", forced)
	}
}

func TestNote(t *testing.T) {
	long := strings.Repeat("é", 200)
	for _, tc := range []struct {
		name        string
		d           deploy.Deploy
		cp          deploy.Checkpoint
		text, title string
	}{
		{"succeeded", dep(1, deploy.Succeeded), deploy.Checkpoint{}, "", ""},
		{"failed", dep(1, deploy.Failed, func(d *deploy.Deploy) { d.Error = "build failed" }), deploy.Checkpoint{}, "build failed", ""},
		{"rolled back, without repeating it", dep(1, deploy.RolledBack, func(d *deploy.Deploy) { d.Error = "rolled back: api: timeout" }),
			deploy.Checkpoint{}, "api: timeout", ""},
		{"rolled back, the reason from the checkpoint", dep(1, deploy.RolledBack), deploy.Checkpoint{RollbackReason: "crash loop"}, "crash loop", ""},
		{"superseded", dep(1, deploy.Superseded, func(d *deploy.Deploy) { d.SupersededBy = 9 }), deploy.Checkpoint{}, "superseded by #9 before it started", ""},
		{"forced and failed", dep(1, deploy.Failed, func(d *deploy.Deploy) { d.Force, d.Error = "outage", "boom" }), deploy.Checkpoint{},
			"forced: outage · boom", ""},
		{"forced, running", dep(1, deploy.Building, func(d *deploy.Deploy) { d.Force = "outage" }), deploy.Checkpoint{}, "forced: outage", ""},
		{"clipped by characters, the whole as the title", dep(1, deploy.Failed, func(d *deploy.Deploy) { d.Error = long }), deploy.Checkpoint{},
			strings.Repeat("é", 139) + "…", long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, title := note(tc.d, tc.cp)
			if text != tc.text || title != tc.title {
				t.Errorf("note = %q, %q; want %q, %q", text, title, tc.text, tc.title)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	lock := &store.StageLock{Owner: "sre-sam"}
	bySam := func(d *deploy.Deploy) { d.Trigger = deploy.Trigger{Event: "issue_comment", Actor: "sre-sam"} }
	for _, tc := range []struct {
		name         string
		d            deploy.Deploy
		cp           deploy.Checkpoint
		lock         *store.StageLock
		step, detail string
	}{
		{"queued", dep(1, deploy.Queued), deploy.Checkpoint{}, nil, "queued", "starts when the stage is free"},
		{"queued behind a lock", dep(1, deploy.Queued), deploy.Checkpoint{}, lock, "queued", "waits for @sre-sam to unlock the stage"},
		{"the lock's owner's command passes", dep(1, deploy.Queued, bySam), deploy.Checkpoint{}, lock, "queued", "starts when the stage is free"},
		{"held for the branch", dep(1, deploy.Queued, func(d *deploy.Deploy) { d.Held = true }), deploy.Checkpoint{}, nil,
			"held", "starts once the prod branch moves to aaaaaaa"},
		{"a held rollback", dep(1, deploy.Queued, func(d *deploy.Deploy) { d.Held, d.Mode = true, deploy.ModeImage }), deploy.Checkpoint{}, lock,
			"held", "starts as soon as the command that asked for it releases it"},
		{"waiting for the window", dep(1, deploy.Queued), deploy.Checkpoint{Wait: &deploy.Wait{At: "Mon Jan 20 09:00 CET"}}, nil,
			"waiting", "waiting for the window at Mon Jan 20 09:00 CET"},
		{"waiting for a freeze to end", dep(1, deploy.Queued), deploy.Checkpoint{Wait: &deploy.Wait{At: "Mon Jan 5 09:00 CET", Freeze: "Year-end"}}, nil,
			"waiting", "frozen (Year-end): waiting until Mon Jan 5 09:00 CET"},
		{"preflight", dep(1, deploy.Preflight), deploy.Checkpoint{}, nil, "preflight", "checking that the stage is ready"},
		{"building, no phase yet", dep(1, deploy.Building), deploy.Checkpoint{}, nil, "building", ""},
		{"building", dep(1, deploy.Building), deploy.Checkpoint{BuildPhase: "BUILD"}, nil, "building", "phase BUILD"},
		{"rolling out", dep(1, deploy.RollingOut), deploy.Checkpoint{Progress: "api: 2 of 3 pods updated"}, nil, "rolling out", "api: 2 of 3 pods updated"},
		{"rolling out to the idle slot", dep(1, deploy.RollingOut), deploy.Checkpoint{Slot: "prod-backup", FromSlot: "prod", Progress: "api: 1 of 3 pods updated"}, nil,
			"rolling out", "to idle slot prod-backup (prod keeps serving): api: 1 of 3 pods updated"},
		{"a slot deploy switching", dep(1, deploy.RollingOut), deploy.Checkpoint{Slot: "prod-backup", RolloutDone: true}, nil,
			"switching slot", "pointing the Services at slot prod-backup"},
		{"a slot switch", dep(1, deploy.RollingOut, func(d *deploy.Deploy) { d.Mode, d.Slot = deploy.ModeSwitch, "prod" }), deploy.Checkpoint{}, nil,
			"switching slot", "pointing the Services at slot prod"},
		{"an image rollback rolling out", dep(1, deploy.RollingOut, func(d *deploy.Deploy) { d.Mode = deploy.ModeImage }), deploy.Checkpoint{Progress: "api: 1 of 3 pods updated"}, nil,
			"rolling out", "the earlier image, no build: api: 1 of 3 pods updated"},
		{"verifying", dep(1, deploy.RollingOut), deploy.Checkpoint{Verify: &deploy.Verification{Phase: deploy.VerifyLive,
			Checks: []deploy.CheckRecord{{Name: "health", Successes: 3, InRow: 2, Answers: 4}}}}, nil,
			"verifying", "0 of 1 checks passed, health 2/3 answers in a row (4 asked)"},
		{"a slot deploy verifying its idle slot", dep(1, deploy.RollingOut), deploy.Checkpoint{Slot: "prod-backup", RolloutDone: true,
			Verify: &deploy.Verification{Phase: deploy.VerifyIdle, Checks: []deploy.CheckRecord{{Name: "idle", Successes: 3, Result: deploy.CheckPassed}}}}, nil,
			"verifying", "1 of 1 checks passed"},
		{"rolling back a failed verification", dep(1, deploy.RollingOut), deploy.Checkpoint{RollingBack: true, Verify: &deploy.Verification{Phase: deploy.VerifyLive}}, nil,
			"rolling back", "putting the previous images back"},
		{"rolling back a failed rollout", dep(1, deploy.RollingOut), deploy.Checkpoint{RollingBack: true, Progress: "api: 3 of 3 pods updated"}, nil,
			"rolling back", "putting the previous images back: api: 3 of 3 pods updated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step, detail := progress(tc.d, tc.cp, tc.lock, "prod")
			if step != tc.step || detail != tc.detail {
				t.Errorf("progress = %q, %q; want %q, %q", step, detail, tc.step, tc.detail)
			}
		})
	}
}

func TestNextOf(t *testing.T) {
	live := &deploy.Deploy{Request: deploy.Request{SHA: shaB}}
	for _, tc := range []struct {
		name      string
		s         status.Stage
		text, url string
	}{
		{"last stage", status.Stage{Live: live}, "", ""},
		{"nothing live here", status.Stage{Next: "alpha", NextSHA: shaA}, "", ""},
		{"up to date", status.Stage{Live: live, Next: "alpha", NextSHA: shaB}, "alpha is up to date", ""},
		{"nothing there", status.Stage{Live: live, Next: "alpha"}, "alpha has nothing yet", ""},
		{"behind", status.Stage{Live: live, Next: "alpha", NextSHA: shaA}, "what promoting to alpha would ship", "R/compare/" + shaA + "..." + shaB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := nextOf(tc.s, "R"); n.Text != tc.text || n.URL != tc.url {
				t.Errorf("nextOf = %q %q, want %q %q", n.Text, n.URL, tc.text, tc.url)
			}
		})
	}
}

func TestProblemOf(t *testing.T) {
	live := dep(3, deploy.Succeeded)
	for _, tc := range []struct {
		name    string
		history []deploy.Deploy // newest first
		live    *deploy.Deploy
		want    int64 // 0: none
	}{
		{"nothing", nil, nil, 0},
		{"the live deploy is the newest", []deploy.Deploy{live}, &live, 0},
		{"a failure after the live deploy", []deploy.Deploy{dep(5, deploy.Queued), dep(4, deploy.Failed), live}, &live, 4},
		{"a rollback after the live deploy, past a superseded one", []deploy.Deploy{dep(5, deploy.Superseded), dep(4, deploy.RolledBack), live}, &live, 4},
		{"a failure before the live deploy is history", []deploy.Deploy{live, dep(2, deploy.Failed)}, &live, 0},
		{"nothing ever succeeded", []deploy.Deploy{dep(2, deploy.Failed)}, nil, 2},
		{"cancelled is no problem", []deploy.Deploy{dep(4, deploy.Cancelled), live}, &live, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got int64
			if p := problemOf(tc.history, tc.live); p != nil {
				got = p.ID
			}
			if got != tc.want {
				t.Errorf("problemOf = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPRBuilds(t *testing.T) {
	pr := func(id int64, n int) deploy.Deploy {
		return dep(id, deploy.Succeeded, func(d *deploy.Deploy) { d.Mode, d.Stage, d.Trigger.PR = deploy.ModePRBuild, deploy.PRStage(n), n })
	}
	ds := []deploy.Deploy{pr(9, 12), dep(8, deploy.Succeeded), pr(7, 13), pr(6, 12), pr(5, 14), pr(4, 15)}
	for _, tc := range []struct {
		n    int
		want []int64
	}{{1, []int64{9}}, {3, []int64{9, 7, 5}}, {10, []int64{9, 7, 5, 4}}} {
		var got []int64
		for _, d := range prBuilds(ds, tc.n) {
			got = append(got, d.ID)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("prBuilds(%d) = %v, want %v (the newest build of each pull request, stages left out)", tc.n, got, tc.want)
		}
	}
}

func TestRefresh(t *testing.T) {
	locked := func(d deploy.Deploy) bool { return d.Stage == "prod" }
	onTest := func(d *deploy.Deploy) { d.Stage = "test" }
	for _, tc := range []struct {
		name     string
		inFlight []deploy.Deploy
		want     int
	}{
		{"nothing in flight", nil, 0},
		{"only finished", []deploy.Deploy{dep(1, deploy.Succeeded)}, 0},
		{"running", []deploy.Deploy{dep(1, deploy.RollingOut)}, refreshRunning},
		{"queued and free to start", []deploy.Deploy{dep(1, deploy.Queued, onTest)}, refreshRunning},
		{"queued behind a lock", []deploy.Deploy{dep(1, deploy.Queued)}, refreshWaiting},
		{"held", []deploy.Deploy{dep(1, deploy.Queued, onTest, func(d *deploy.Deploy) { d.Held = true })}, refreshWaiting},
		{"waiting and running", []deploy.Deploy{dep(1, deploy.Queued), dep(2, deploy.Building)}, refreshRunning},
		{"waiting for the window", []deploy.Deploy{dep(1, deploy.Queued, onTest, func(d *deploy.Deploy) {
			d.Checkpoint = (&deploy.Checkpoint{Wait: &deploy.Wait{At: "Mon Jan 20 09:00 CET"}}).Encode()
		})}, refreshWaiting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := refresh(tc.inFlight, locked); got != tc.want {
				t.Errorf("refresh = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestReleases(t *testing.T) {
	now := epoch.Add(time.Hour)
	for _, tc := range []struct {
		r                     store.Release
		class, issueURL, text string
	}{
		{store.Release{Tag: "v1", State: store.ReleaseOpen, Issue: 3, CreatedAt: epoch}, "open", "R/issues/3", "1h ago"},
		{store.Release{Tag: "v1", State: store.ReleaseOpening, CreatedAt: epoch}, "open", "", "1h ago"},
		{store.Release{Tag: "v1", State: store.ReleasePromoting, Issue: 3}, "running", "R/issues/3", ""},
		{store.Release{Tag: "v1", State: store.ReleaseShipped, Issue: 3, CreatedAt: epoch, ShippedAt: now.Add(-30 * time.Second)}, "succeeded", "R/issues/3", "just now"},
		{store.Release{Tag: "v1", State: store.ReleaseFailed, Issue: 3}, "failed", "R/issues/3", ""},
		{store.Release{Tag: "v1", State: store.ReleaseRefused}, "failed", "", ""},
	} {
		v := releaseOf(tc.r, "R", now)
		if v.State != string(tc.r.State) || v.Class != tc.class || v.IssueURL != tc.issueURL || v.When.Text != tc.text || v.TagURL != "R/releases/tag/v1" {
			t.Errorf("%s: %+v, want class %s, issue %q, when %q", tc.r.State, v, tc.class, tc.issueURL, tc.text)
		}
	}
}

func TestVersionOf(t *testing.T) {
	tags := map[string]string{shaA: "v1.1.0"}
	for _, tc := range []struct {
		sha  string
		want version
	}{
		{shaA, version{Tag: "v1.1.0", TagURL: "R/releases/tag/v1.1.0", SHA: shaA, Short: "aaaaaaa", CommitURL: "R/commit/" + shaA}},
		{shaB, version{SHA: shaB, Short: "bbbbbbb", CommitURL: "R/commit/" + shaB}},
		{"abc", version{SHA: "abc", Short: "abc", CommitURL: "R/commit/abc"}},
	} {
		if got := versionOf("R", tc.sha, tags); got != tc.want {
			t.Errorf("versionOf(%s) = %+v, want %+v", tc.sha, got, tc.want)
		}
	}
}

func TestCollapse(t *testing.T) {
	s, f, ok := deploy.Superseded, deploy.Failed, deploy.Succeeded
	for _, tc := range []struct {
		name   string
		states []deploy.State // newest first
		want   []int          // group sizes
	}{
		{"nothing", nil, nil},
		{"no superseded", []deploy.State{ok, f, ok}, []int{1, 1, 1}},
		{"one superseded stays a row", []deploy.State{ok, s, ok}, []int{1, 1, 1}},
		{"a run of superseded is one row", []deploy.State{s, s, s, ok, s, s, f}, []int{3, 1, 2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ds []deploy.Deploy
			for i, st := range tc.states {
				ds = append(ds, dep(int64(100-i), st))
			}
			var got []int
			n := 0
			for _, g := range collapse(ds) {
				got = append(got, len(g))
				for _, d := range g {
					if d.ID != ds[n].ID {
						t.Fatalf("groups lose the order at %d", n)
					}
					n++
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("groups = %v, want %v", got, tc.want)
			}
		})
	}
}
