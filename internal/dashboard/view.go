package dashboard

import (
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/status"
	"github.com/stagecoach/stagecoach/internal/store"
)

// How much of each list the page shows.
const (
	historyRows   = 10 // deploys per stage
	releaseRows   = 5  // releases per app
	prBuildRows   = 5  // pull requests per app
	prBuildWindow = 200
	refusalRows   = 10 // refused pushes and commands per app
	refusalWindow = 40
)

// How often the page reloads itself, in seconds: quickly while something runs, slowly while
// deploys only wait (held, or queued behind a lock).
const (
	refreshRunning = 5
	refreshWaiting = 30
)

// pageView is everything the template renders, resolved: the template only lays it out.
type pageView struct {
	Apps []appView
	// Login and CSRF are the signed-in person and their form token (the sign-out form); empty
	// on the local trial.
	Login, CSRF string
	// Hidden is set when apps are configured but the reader can read none of their repositories.
	Hidden  bool
	Refresh int  // seconds between reloads; 0 for none
	Paused  bool // the reader turned reloading off (?refresh=off)
	Busy    bool // something is in flight, so the page would reload if not paused
	Now     time.Time
}

// appView is one app: its releases, its stages side by side, and its pull-request builds.
type appView struct {
	Name, Repo, RepoURL string
	ID                  string // the element id of the app's section
	Releases            []releaseView
	Stages              []stageView
	PRBuildsEnabled     bool
	PRBuilds            []row // the newest build of each of the pull requests built last
	// Refusals are what was refused or ignored lately, newest first: what anyone who reads the
	// repository sees on GitHub too (the refused push's check run, the refusal's reply).
	Refusals []refusalView
	// Audit says the reader may read the app's command audit trail (its repository's admins);
	// Commands are its latest entries.
	Audit    bool
	Commands []commandView
}

// refusalView is a push or command Stagecoach refused (or, from outside, ignored).
type refusalView struct {
	Actor, What, Stage, Outcome, Why string
	When                             when
}

// stageView is one stage's card.
type stageView struct {
	Name, ID string
	Live     *row // nil: nothing was deployed yet
	Slot     string
	Slots    []string // the stage's two slots, when it has them
	Lock     *lockView
	Window   *windowView // nil: the stage takes deploys any time
	Next     nextView
	Problem  *row // the newest finished deploy after the live one, when it failed or rolled back
	InFlight []row
	History  []row
}

// nextView says what the next stage would gain from a promotion.
type nextView struct {
	Stage, Text, URL string
}

// lockView is a stage's lock.
type lockView struct {
	Owner, Reason, IssueURL string
	Issue                   int
	Since                   when
	Until                   when // empty: until someone unlocks it
}

// windowView is when a stage takes deploys, as of now: its windows, and what holds it closed.
type windowView struct {
	Open    bool
	Windows string // "Mon-Thu 09:00-16:00 Europe/Berlin"; "" when only freezes hold it
	Freeze  string // the reason of the freeze that holds it now
	Next    string // when that changes, in the stage's zone: "Mon Jan 20 09:00 CET"
	NextISO string
}

// windowOf is s's window as of now; nil when the stage takes deploys any time and is open.
func windowOf(s status.Stage, now time.Time) *windowView {
	if s.Calendar == nil {
		return nil
	}
	st := s.Calendar.At(now)
	if st.Open && len(s.Calendar.Weekly) == 0 {
		return nil // only freezes, none holding it now: nothing to say
	}
	v := &windowView{Open: st.Open, Windows: s.Calendar.Describe()}
	if st.Freeze != nil {
		v.Freeze = st.Freeze.Reason
	}
	if !st.Next.IsZero() {
		v.Next, v.NextISO = s.Calendar.Format(st.Next), st.Next.UTC().Format(time.RFC3339)
	}
	return v
}

// when is a moment as the page shows it: relative text, and the exact time for <time>.
type when struct {
	Text, ISO, Full string
}

// version is a commit as the page shows it: its release tag when it has one, and the sha.
type version struct {
	Tag, TagURL, SHA, Short, CommitURL string
}

// badge is a small label: its text says what it means, the class only colours it.
type badge struct {
	Text, Class, Title string
}

// row is one deploy: a history row, an in-flight deploy, or what is live.
type row struct {
	ID                  int64
	Version             version
	State, StateClass   string
	Step, Detail        string // in flight: the step and its progress
	Badges              []badge
	Note, NoteTitle     string // why it failed or was forced
	Actor, PRURL, Stage string
	PR                  int
	When                when  // created, or finished once final
	Collapsed           int   // history: how many older superseded deploys this row stands for too
	OldestID            int64 // history: the oldest of them
}

// releaseView is one release of an app's repository.
type releaseView struct {
	Tag, TagURL, State, Class, IssueURL, Reason, Short string
	Issue                                              int
	When                                               when
}

// at renders t relative to now; the zero time renders empty.
func at(t, now time.Time) when {
	if t.IsZero() {
		return when{}
	}
	return when{Text: status.Ago(t, now), ISO: t.UTC().Format(time.RFC3339), Full: t.UTC().Format("2006-01-02 15:04:05 UTC")}
}

// versionOf links sha in the repository at repoURL, with its tag from tags when it has one.
func versionOf(repoURL, sha string, tags map[string]string) version {
	v := version{SHA: sha, Short: deploy.ShortSHA(sha), CommitURL: repoURL + "/commit/" + sha}
	if t := tags[sha]; t != "" {
		v.Tag, v.TagURL = t, repoURL+"/releases/tag/"+t
	}
	return v
}

// stateText is a deploy state for people: "rolling out", not "rolling_out".
func stateText(s deploy.State) string { return strings.ReplaceAll(string(s), "_", " ") }

// badges are the labels that say what kind of deploy d is, beyond its state: a rollback to an
// earlier image, a slot switch, a pull-request build, which slot a deploy went to, and forced
// past the stage order. (A held deploy says so as its step.)
func badges(d deploy.Deploy, cp deploy.Checkpoint) []badge {
	var out []badge
	switch d.Mode {
	case deploy.ModeImage:
		out = append(out, badge{Text: "rollback", Class: "rollback", Title: "rolled back to the image built before, with no build"})
	case deploy.ModeSwitch:
		slot := firstOf(d.Slot, cp.Slot)
		b := badge{Text: "slot switch → " + slot, Class: "switch", Title: "pointed the Services at slot " + slot + ", with no build and no rollout"}
		if cp.FromSlot != "" {
			b.Title += " (from " + cp.FromSlot + ")"
		}
		out = append(out, b)
	case deploy.ModePRBuild:
		out = append(out, badge{Text: "PR build", Class: "pr", Title: "built with the pr credentials tier; deploys nothing"})
	}
	if d.Mode != deploy.ModeSwitch && cp.Slot != "" {
		out = append(out, badge{Text: "slot " + cp.Slot, Class: "slot", Title: "deployed to slot " + cp.Slot})
	}
	if d.Force != "" {
		out = append(out, badge{Text: "forced", Class: "forced", Title: "forced past the stage order: " + d.Force})
	}
	return out
}

// note is the line of text under a deploy that says why: why it failed, rolled back or was
// cancelled, or why it was forced. The full text is the title when the note is clipped.
func note(d deploy.Deploy, cp deploy.Checkpoint) (text, title string) {
	var parts []string
	if d.Force != "" {
		parts = append(parts, "forced: "+d.Force)
	}
	switch d.State {
	case deploy.Failed, deploy.Cancelled:
		if d.Error != "" {
			parts = append(parts, d.Error)
		}
	case deploy.RolledBack:
		parts = append(parts, strings.TrimPrefix(firstOf(d.Error, cp.RollbackReason), "rolled back: "))
	case deploy.Superseded:
		if d.SupersededBy != 0 {
			parts = append(parts, fmt.Sprintf("superseded by #%d before it started", d.SupersededBy))
		}
	}
	full := strings.Join(parts, " · ")
	if r := []rune(full); len(r) > 140 {
		return string(r[:139]) + "…", full
	}
	return full, ""
}

// progress is the step an unfinished deploy is at and what it is doing there. lock is the
// stage's lock (nil when none); branch is the stage's branch.
func progress(d deploy.Deploy, cp deploy.Checkpoint, lock *store.StageLock, branch string) (step, detail string) {
	switch d.State {
	case deploy.Queued:
		switch {
		case cp.Wait != nil:
			return "waiting", cp.Wait.Text()
		case d.Held && (d.Mode == deploy.ModeImage || d.Mode == deploy.ModeSwitch):
			return "held", "starts as soon as the command that asked for it releases it"
		case d.Held && branch != "":
			return "held", fmt.Sprintf("starts once the %s branch moves to %s", branch, deploy.ShortSHA(d.SHA))
		case d.Held:
			return "held", "starts once it is released"
		case lockedOut(d, lock):
			return "queued", "waits for @" + lock.Owner + " to unlock the stage"
		}
		return "queued", "starts when the stage is free"
	case deploy.Preflight:
		return "preflight", "checking that the stage is ready"
	case deploy.Building:
		if cp.BuildPhase != "" {
			return "building", "phase " + cp.BuildPhase
		}
		return "building", ""
	case deploy.RollingOut:
		switch {
		case cp.Verify != nil && !cp.Verify.Passed && !cp.RollingBack:
			return "verifying", cp.Verify.Progress()
		case d.Mode == deploy.ModeSwitch || cp.RolloutDone:
			return "switching slot", "pointing the Services at slot " + firstOf(cp.Slot, d.Slot)
		case cp.RollingBack:
			return "rolling back", joinNonEmpty(": ", "putting the previous images back", cp.Progress)
		case d.Mode == deploy.ModeImage:
			return "rolling out", joinNonEmpty(": ", "the earlier image, no build", cp.Progress)
		case cp.Slot != "":
			head := "to idle slot " + cp.Slot
			if cp.FromSlot != "" {
				head += " (" + cp.FromSlot + " keeps serving)"
			}
			return "rolling out", joinNonEmpty(": ", head, cp.Progress)
		}
		return "rolling out", cp.Progress
	}
	return stateText(d.State), ""
}

// deployRow is d as a row of the page. tags resolve release tags; lock and branch are the
// stage's, for what an unfinished deploy waits for.
func deployRow(d deploy.Deploy, repoURL string, tags map[string]string, lock *store.StageLock, branch string, now time.Time) row {
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint) // an unreadable checkpoint shows nothing extra
	r := row{ID: d.ID, Version: versionOf(repoURL, d.SHA, tags), State: stateText(d.State), StateClass: string(d.State),
		Badges: badges(d, cp), Actor: d.Trigger.Actor, PR: d.Trigger.PR, Stage: d.Stage, When: at(d.CreatedAt, now)}
	if d.Trigger.PR != 0 {
		r.PRURL = fmt.Sprintf("%s/pull/%d", repoURL, d.Trigger.PR)
	}
	if d.State.Final() {
		r.When = at(firstTime(d.FinishedAt, d.UpdatedAt, d.CreatedAt), now)
	} else {
		r.Step, r.Detail = progress(d, cp, lock, branch)
	}
	r.Note, r.NoteTitle = note(d, cp)
	return r
}

// collapse groups a stage's finished deploys (newest first) for its history: a run of
// superseded deploys, which never started (every push during a long build leaves one), is one
// group; every other deploy is a group of its own.
func collapse(history []deploy.Deploy) [][]deploy.Deploy {
	var out [][]deploy.Deploy
	for _, d := range history {
		if n := len(out); n > 0 && d.State == deploy.Superseded && out[n-1][0].State == deploy.Superseded {
			out[n-1] = append(out[n-1], d)
			continue
		}
		out = append(out, []deploy.Deploy{d})
	}
	return out
}

// nextOf says what promoting s would ship to the next stage.
func nextOf(s status.Stage, repoURL string) nextView {
	n := nextView{Stage: s.Next}
	switch {
	case s.Next == "" || s.Live == nil:
	case s.NextSHA == s.Live.SHA:
		n.Text = s.Next + " is up to date"
	case s.NextSHA == "":
		n.Text = s.Next + " has nothing yet"
	default:
		n.Text, n.URL = "what promoting to "+s.Next+" would ship", repoURL+"/compare/"+s.NextSHA+"..."+s.Live.SHA
	}
	return n
}

// problemOf is the newest finished deploy after the live one when it failed or rolled back:
// the stage runs what it ran before, and people should see why. history is newest first.
func problemOf(history []deploy.Deploy, live *deploy.Deploy) *deploy.Deploy {
	for i := range history {
		d := &history[i]
		if live != nil && d.ID <= live.ID {
			return nil
		}
		switch d.State {
		case deploy.Failed, deploy.RolledBack:
			return d
		case deploy.Succeeded:
			return nil
		}
	}
	return nil
}

// releaseClass is the colour class of a release state; the state is always shown as text too.
func releaseClass(s store.ReleaseState) string {
	switch s {
	case store.ReleaseShipped:
		return "succeeded"
	case store.ReleaseFailed, store.ReleaseRefused:
		return "failed"
	case store.ReleasePromoting:
		return "running"
	}
	return "open"
}

// releaseOf is r as the page shows it.
func releaseOf(r store.Release, repoURL string, now time.Time) releaseView {
	v := releaseView{Tag: r.Tag, TagURL: repoURL + "/releases/tag/" + r.Tag, State: string(r.State), Class: releaseClass(r.State),
		Reason: r.Reason, Short: deploy.ShortSHA(r.SHA), Issue: r.Issue, When: at(firstTime(r.ShippedAt, r.CreatedAt), now)}
	if r.Issue != 0 {
		v.IssueURL = fmt.Sprintf("%s/issues/%d", repoURL, r.Issue)
	}
	return v
}

// prBuilds picks from ds (an app's deploys, newest first) the newest build of each pull
// request, for the n pull requests built most recently.
func prBuilds(ds []deploy.Deploy, n int) []deploy.Deploy {
	var out []deploy.Deploy
	seen := map[string]bool{}
	for _, d := range ds {
		if d.Mode != deploy.ModePRBuild || seen[d.Stage] {
			continue
		}
		seen[d.Stage] = true
		out = append(out, d)
		if len(out) == n {
			break
		}
	}
	return out
}

// refresh is how often the page reloads: quickly while a deploy runs or could start, slowly
// while deploys only wait (held, queued behind a lock, or for their stage's window), never when
// nothing is in flight.
func refresh(inFlight []deploy.Deploy, locked func(deploy.Deploy) bool) int {
	out := 0
	for _, d := range inFlight {
		switch {
		case d.State.Final():
		case d.State.Running() || (d.State == deploy.Queued && !d.Held && !locked(d) && status.WaitOf(d) == nil):
			return refreshRunning
		default:
			out = refreshWaiting
		}
	}
	return out
}

// lockedOut reports whether lock keeps d from starting: only a command by the lock's owner
// passes a lock.
func lockedOut(d deploy.Deploy, lock *store.StageLock) bool {
	return lock != nil && (!d.Trigger.Command() || d.Trigger.Actor != lock.Owner)
}

// slotsOf are the configured slots of stage, when it has two.
func slotsOf(cfg *config.Config, stage string) []string {
	if s := cfg.Stage(stage); s != nil && s.Slotted() {
		return s.Slots
	}
	return nil
}

// firstOf is the first of s that is not empty.
func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// firstTime is the first of ts that is not the zero time.
func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// joinNonEmpty joins the parts that are not empty with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

// refusalsOf keeps the refusals about app's stages (or about no stage: a malformed command),
// newest first, with the reason as plain words (the reply's Markdown marks stripped).
func refusalsOf(app *config.App, cs []store.CommandRecord, now time.Time) []refusalView {
	var out []refusalView
	for _, c := range cs {
		if app != nil && c.Stage != "" {
			if _, ok := app.Stages[c.Stage]; !ok {
				continue
			}
		}
		what := c.Args
		if what == "" {
			what = strings.TrimSpace(c.Verb + " " + c.Stage)
		}
		why := strings.NewReplacer("**", "", "`", "").Replace(c.Reason)
		if first, _, ok := strings.Cut(why, "\n"); ok {
			why = first
		}
		out = append(out, refusalView{Actor: c.Actor, What: what, Stage: c.Stage, Outcome: c.Outcome, Why: why, When: at(c.CreatedAt, now)})
		if len(out) == refusalRows {
			break
		}
	}
	return out
}
