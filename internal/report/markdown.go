package report

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/markdown"
)

// view is everything a rendered report needs, resolved, so rendering is a pure function that
// golden files pin down.
type view struct {
	D       deploy.Deploy
	CP      deploy.Checkpoint
	Now     time.Time
	WebURL  string         // https://github.com or https://HOST for GitHub Enterprise
	Compare string         // the sha live on the stage before this deploy ("" when none)
	Next    string         // the stage this one promotes to ("" when none)
	By      *deploy.Deploy // the deploy that superseded this one, when it was
	// EnvURL is the app's environment_url on the stage ("" when none): where people open it.
	EnvURL string
}

func (v view) commitURL() string {
	return fmt.Sprintf("%s/%s/commit/%s", v.WebURL, v.D.Repo, v.D.SHA)
}

func (v view) compareURL() string {
	if v.Compare == "" || v.Compare == v.D.SHA {
		return ""
	}
	return fmt.Sprintf("%s/%s/compare/%s...%s", v.WebURL, v.D.Repo, v.Compare, v.D.SHA)
}

// rollbackURL is what a rollback takes off the stage: the commits in what was live that the
// commit it goes back to does not have. (compareURL's direction would show nothing: GitHub's
// base...head lists the commits head has and base lacks.)
func (v view) rollbackURL() string {
	if v.Compare == "" || v.Compare == v.D.SHA {
		return ""
	}
	return fmt.Sprintf("%s/%s/compare/%s...%s", v.WebURL, v.D.Repo, v.D.SHA, v.Compare)
}

// rollback reports whether the deploy puts back what ran before (an image or a slot).
func (v view) rollback() bool { return v.D.Mode == deploy.ModeImage || v.D.Mode == deploy.ModeSwitch }

// elapsed is how long the deploy has taken so far, or took.
func (v view) elapsed() time.Duration {
	start := v.D.StartedAt
	if start.IsZero() {
		start = v.D.CreatedAt
	}
	end := v.D.FinishedAt
	if end.IsZero() {
		end = v.Now
	}
	return end.Sub(start)
}

// title is the check run's one-line headline: what happened, or what is happening now.
func (v view) title() string {
	d, cp := v.D, v.CP
	if d.Mode == deploy.ModePRBuild {
		return v.buildTitle()
	}
	switch d.State {
	case deploy.Queued:
		if w := cp.Wait; w != nil {
			// Outside its stage's deploy windows, or frozen: it starts when the stage opens.
			return markdown.Clip(markdown.Capitalize(w.Text()), 120)
		}
		if d.Held {
			// A command records its deploys held, then does the rest of its work (a promotion
			// moves the stage's branch), then lets them start.
			return fmt.Sprintf("Queued for %s: starts once the command that asked for it is done", d.Stage)
		}
		return fmt.Sprintf("Queued for %s", d.Stage)
	case deploy.Preflight:
		return fmt.Sprintf("Checking that %s is ready", d.Stage)
	case deploy.Building:
		return v.building()
	case deploy.RollingOut:
		switch {
		case v.verifying():
			return v.verifyingTitle()
		case d.Mode == deploy.ModeSwitch || cp.RolloutDone:
			return fmt.Sprintf("Switching %s to slot %s", d.Stage, cp.Slot)
		case cp.RollingBack:
			return joinProgress(fmt.Sprintf("Rolling back %s", d.Stage), cp.Progress)
		case cp.Slot != "":
			return joinProgress(fmt.Sprintf("Rolling out to %s's idle slot %s", d.Stage, cp.Slot), cp.Progress)
		}
		return joinProgress(fmt.Sprintf("Rolling out to %s", d.Stage), cp.Progress)
	case deploy.Succeeded:
		switch {
		case d.Mode == deploy.ModeSwitch:
			return fmt.Sprintf("Switched %s back to slot %s (%s) in %s", d.Stage, cp.Slot, deploy.ShortSHA(d.SHA), round(v.elapsed()))
		case d.Mode == deploy.ModeImage:
			return fmt.Sprintf("Rolled %s back to %s in %s", d.Stage, deploy.ShortSHA(d.SHA), round(v.elapsed()))
		case cp.Slot != "":
			return fmt.Sprintf("Deployed %s to %s (slot %s) in %s", deploy.ShortSHA(d.SHA), d.Stage, cp.Slot, round(v.elapsed()))
		}
		return fmt.Sprintf("Deployed %s to %s in %s", deploy.ShortSHA(d.SHA), d.Stage, round(v.elapsed()))
	case deploy.Failed:
		return markdown.Clip("Failed: "+d.Error, 120)
	case deploy.RolledBack:
		return markdown.Clip(fmt.Sprintf("Rolled back %s: %s", d.Stage, strings.TrimPrefix(d.Error, "rolled back: ")), 120)
	case deploy.Superseded:
		return fmt.Sprintf("Superseded by deploy #%d before it started", d.SupersededBy)
	case deploy.Cancelled:
		return markdown.Clip("Cancelled: "+d.Error, 120)
	}
	return string(d.State)
}

func (v view) building() string {
	cp := v.CP
	if cp.Artifact.Promoted() {
		return v.promoting()
	}
	t := fmt.Sprintf("Building %s", deploy.ShortSHA(v.D.SHA))
	if cp.BuildPhase != "" {
		t += fmt.Sprintf(" (phase %s, %s", cp.BuildPhase, round(v.Now.Sub(cp.BuildStarted)))
		if cp.ExpectedBuild > 0 {
			t += fmt.Sprintf(" of about %s", round(cp.ExpectedBuild))
		}
		t += ")"
	}
	return t
}

// buildTitle is the headline of a pull-request build, which deploys nothing.
func (v view) buildTitle() string {
	d := v.D
	switch d.State {
	case deploy.Queued, deploy.Preflight:
		return fmt.Sprintf("Queued: building #%d at %s", d.Trigger.PR, deploy.ShortSHA(d.SHA))
	case deploy.Building:
		return v.building()
	case deploy.Succeeded:
		return fmt.Sprintf("Built #%d at %s in %s", d.Trigger.PR, deploy.ShortSHA(d.SHA), round(v.elapsed()))
	case deploy.Failed:
		if rest, ok := strings.CutPrefix(d.Error, "build "); ok {
			return markdown.Clip("Build "+rest, 120) // "build failed in BUILD: ...", said once
		}
		return markdown.Clip("Build failed: "+d.Error, 120)
	case deploy.Superseded:
		return fmt.Sprintf("Superseded by a newer push (build #%d) before it started", d.SupersededBy)
	}
	return markdown.Clip(string(d.State)+": "+d.Error, 120)
}

func joinProgress(head, progress string) string {
	if progress == "" {
		return head
	}
	return head + ": " + progress
}

// conclusion maps a final state to a check run conclusion ("" while running).
func conclusion(s deploy.State) string {
	switch s {
	case deploy.Succeeded:
		return "success"
	case deploy.Failed, deploy.RolledBack:
		return "failure"
	case deploy.Superseded:
		return "skipped"
	case deploy.Cancelled:
		return "cancelled"
	}
	return ""
}

var stepIcons = map[string]string{deploy.StepRunning: "⏳", deploy.StepSucceeded: "✅", deploy.StepFailed: "❌"}

// summary is the check run's Markdown body: who asked for what, a table of steps with their
// durations and links, and links to the commit and the changes.
func (v view) summary() string {
	d := v.D
	var b strings.Builder
	switch {
	case d.Mode == deploy.ModePRBuild:
		fmt.Fprintf(&b, "**%s** `%s` · pull request #%d · build #%d with the `pr` credentials tier (no stage secret, no deploy) · pushed by %s",
			d.App, deploy.ShortSHA(d.SHA), d.Trigger.PR, d.ID, actor(d.Trigger.Actor))
	default:
		fmt.Fprintf(&b, "**%s** `%s` → **%s** · deploy #%d%s · requested by %s%s", d.App, deploy.ShortSHA(d.SHA), d.Stage, d.ID,
			modeNote(d), actor(d.Trigger.Actor), v.via())
	}
	b.WriteString("\n\n")
	if d.Force != "" {
		fmt.Fprintf(&b, "> [!WARNING]\n> Forced by %s, past the stage order, soak time, deploy windows and freezes, and over anything the stage held that this commit lacks: %s\n\n",
			actor(d.Trigger.Actor), markdown.Code(d.Force))
	}
	if w := v.CP.Wait; w != nil && d.State == deploy.Queued {
		fmt.Fprintf(&b, "%s\n\n", w.Markdown(d.Stage))
	}
	if len(v.CP.Steps) > 0 {
		b.WriteString("| Step | Status | Duration | Details |\n|---|---|---|---|\n")
		for _, s := range v.CP.Steps {
			end := s.Finished
			if end.IsZero() {
				end = v.Now
			}
			detail := s.Detail
			if s.Link != "" {
				if detail != "" {
					detail += " · "
				}
				detail += fmt.Sprintf("[CodeBuild log](%s)", s.Link)
			}
			fmt.Fprintf(&b, "| %s | %s %s | %s | %s |\n", s.Name, stepIcons[s.Status], s.Status, round(end.Sub(s.Started)), cell(markdown.Quote(detail)))
		}
		b.WriteString("\n")
	}
	v.verification(&b)
	if d.Error != "" {
		fmt.Fprintf(&b, "> %s\n\n", markdown.Quote(d.Error)) // it may carry a build's own output
	}
	if v.CP.Image != "" {
		fmt.Fprintf(&b, "Image: `%s`\n\n", v.CP.Image)
	}
	if note := artifactNote(v.CP); note != "" {
		b.WriteString(note + "\n\n")
	}
	fmt.Fprintf(&b, "[Commit %s](%s)", deploy.ShortSHA(d.SHA), v.commitURL())
	switch {
	case d.Mode == deploy.ModePRBuild:
	case v.rollback():
		if c := v.rollbackURL(); c != "" {
			takes := "takes"
			if d.State.Final() && d.State != deploy.Succeeded {
				takes = "would have taken" // refused, failed or cancelled: nothing was taken off
			}
			fmt.Fprintf(&b, " · [Changes this rollback %s off %s](%s)", takes, d.Stage, c)
		}
	default:
		if c := v.compareURL(); c != "" {
			fmt.Fprintf(&b, " · [Changes since the last deploy to %s](%s)", d.Stage, c)
		}
	}
	if v.EnvURL != "" && d.Mode != deploy.ModePRBuild {
		fmt.Fprintf(&b, " · [Open %s](<%s>)", d.Stage, v.EnvURL) // check-config refused spaces and angle brackets in it
	}
	b.WriteString("\n")
	return markdown.Limit(b.String(), 0, v.commitURL())
}

// modeNote says what kind of deploy it is when it is not a normal build and rollout.
func modeNote(d deploy.Deploy) string {
	switch d.Mode {
	case deploy.ModeImage:
		return " · rollback to the image that ran before (no new build)"
	case deploy.ModeSwitch:
		return fmt.Sprintf(" · slot switch to %s (no build, no rollout)", d.Slot)
	}
	return ""
}

// via says where the request came from: a pull request, a command on an issue, an event.
func (v view) via() string {
	t := v.D.Trigger
	switch {
	case t.Command() && t.Issue != 0 && t.Event == "check_run":
		return fmt.Sprintf(" with a check-run button, for #%d", t.Issue)
	case t.Command() && t.Event == "check_run":
		return " with a check-run button"
	case t.Command() && t.Issue != 0:
		if t.Comment != 0 {
			return fmt.Sprintf(" in [a comment](%s/%s/issues/%d#issuecomment-%d) on #%d", v.WebURL, v.D.Repo, t.Issue, t.Comment, t.Issue)
		}
		return fmt.Sprintf(" on #%d", t.Issue)
	case t.PR != 0:
		return fmt.Sprintf(" via #%d", t.PR)
	case t.Event != "":
		return fmt.Sprintf(" via `%s`", t.Event)
	}
	return ""
}

// commentMarker finds Stagecoach's comment about an app and stage on a pull request.
func commentMarker(d deploy.Deploy) string {
	return fmt.Sprintf("<!-- stagecoach:deploy %s/%s -->", d.App, d.Stage)
}

// comment is the pull request's comment once its merge reached the stage.
func (v view) comment() string {
	d := v.D
	icon := map[deploy.State]string{deploy.Succeeded: "✅", deploy.Failed: "❌", deploy.RolledBack: "↩️"}[d.State]
	if icon == "" {
		icon = "⏳"
	}
	var head string
	switch d.State {
	case deploy.Succeeded:
		head = fmt.Sprintf("%s This pull request is live on **%s**", icon, d.Stage)
	case deploy.Failed:
		head = fmt.Sprintf("%s Deploying this pull request to **%s** failed", icon, d.Stage)
	case deploy.RolledBack:
		head = fmt.Sprintf("%s Deploying this pull request to **%s** failed and was rolled back", icon, d.Stage)
	default:
		head = fmt.Sprintf("%s Deploying this pull request to **%s**: %s", icon, d.Stage, v.title())
	}
	return markdown.Limit(fmt.Sprintf("%s\n### %s\n\n%s", commentMarker(d), head, v.summary()), 0, v.commitURL())
}

// commandMarker finds the comment that reports a command's deploy on its issue.
func commandMarker(d deploy.Deploy) string {
	return fmt.Sprintf("<!-- stagecoach:command-deploy %d -->", d.ID)
}

// commandComment is the one comment, edited in place, that follows a deploy a command asked for
// on the issue it was asked on: where it stands now, then how it ended.
func (v view) commandComment() string {
	d := v.D
	what := "`" + deploy.ShortSHA(d.SHA) + "`"
	if d.Ref != "" && d.Ref != d.Stage && !strings.HasPrefix(d.SHA, d.Ref) {
		what = fmt.Sprintf("%s (`%s`)", markdown.Code(d.Ref), deploy.ShortSHA(d.SHA)) // a ref someone named
	}
	var head string
	switch d.State {
	case deploy.Succeeded:
		switch d.Mode {
		case deploy.ModeSwitch:
			head = fmt.Sprintf("✅ **%s** is back on slot %s, running %s (switched in %s)", d.Stage, v.CP.Slot, what, round(v.elapsed()))
		case deploy.ModeImage:
			head = fmt.Sprintf("✅ **%s** is back on %s, rolled back in %s", d.Stage, what, round(v.elapsed()))
		default:
			head = fmt.Sprintf("✅ %s is live on **%s**, deployed in %s", what, d.Stage, round(v.elapsed()))
		}
	case deploy.Failed:
		switch {
		case v.CP.RollingBack && v.CP.Slot == "":
			// The rollback of a stage without slots failed too: the stage does not run what it
			// ran before.
			head = fmt.Sprintf("❌ Deploying %s to **%s** failed and so did the rollback; %s needs attention", what, d.Stage, d.Stage)
		case d.Mode == deploy.ModeSwitch:
			slot := "its other slot"
			if s := cmp.Or(v.CP.Slot, d.Slot); s != "" {
				slot = "slot " + s
			}
			head = fmt.Sprintf("❌ Switching **%s** back to %s failed; %s still runs what it ran before", d.Stage, slot, d.Stage)
		default:
			head = fmt.Sprintf("❌ Deploying %s to **%s** failed; %s still runs what it ran before", what, d.Stage, d.Stage)
		}
	case deploy.RolledBack:
		head = fmt.Sprintf("↩️ Deploying %s to **%s** failed and was rolled back", what, d.Stage)
	case deploy.Cancelled:
		head = fmt.Sprintf("🚫 Deploying %s to **%s** was cancelled", what, d.Stage)
	case deploy.Superseded:
		head = fmt.Sprintf("⏭️ Deploying %s to **%s** was superseded before it started", what, d.Stage)
		if by := v.By; by != nil {
			head = fmt.Sprintf("⏭️ Deploying %s to **%s** was superseded by deploy #%d of `%s` (by %s%s) before it started; nothing was deployed for this command",
				what, d.Stage, by.ID, deploy.ShortSHA(by.SHA), actor(by.Trigger.Actor), viaShort(by.Trigger))
		}
	default:
		head = fmt.Sprintf("⏳ Deploying %s to **%s** — %s", what, d.Stage, v.title())
	}
	return markdown.Limit(fmt.Sprintf("%s\n### %s\n\n%s", commandMarker(d), head, v.summary()), 0, v.commitURL())
}

// viaShort says in a few words what asked for a deploy, for a line about another deploy.
func viaShort(t deploy.Trigger) string {
	switch {
	case t.Command() && t.Issue != 0:
		return fmt.Sprintf(" on #%d", t.Issue)
	case t.PR != 0:
		return fmt.Sprintf(", merging #%d", t.PR)
	case t.Event == "push":
		return ", a push"
	}
	return ""
}

// statusDescription is a Deployment status's description: GitHub allows 140 characters.
func (v view) statusDescription() string {
	return markdown.Clip(v.title(), 140)
}

func round(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d < time.Second:
		return d.Round(time.Millisecond) // a slot switch takes milliseconds: say so, not "0s"
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Second)
	}
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
