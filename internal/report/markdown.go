package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/pipeline"
)

// view is everything a rendered report needs, resolved, so rendering is a pure function that
// golden files pin down.
type view struct {
	D       deploy.Deploy
	CP      pipeline.Checkpoint
	Now     time.Time
	WebURL  string // https://github.com or https://HOST for GitHub Enterprise
	Compare string // the sha live on the stage before this deploy ("" when none)
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
	switch d.State {
	case deploy.Queued:
		return fmt.Sprintf("Queued for %s", d.Stage)
	case deploy.Preflight:
		return fmt.Sprintf("Checking that %s is ready", d.Stage)
	case deploy.Building:
		t := fmt.Sprintf("Building %s", short(d.SHA))
		if cp.BuildPhase != "" {
			t += fmt.Sprintf(" (phase %s, %s", cp.BuildPhase, round(v.Now.Sub(cp.BuildStarted)))
			if cp.ExpectedBuild > 0 {
				t += fmt.Sprintf(" of about %s", round(cp.ExpectedBuild))
			}
			t += ")"
		}
		return t
	case deploy.RollingOut:
		verb := "Rolling out to"
		if cp.RollingBack {
			verb = "Rolling back"
		}
		if cp.Progress != "" {
			return fmt.Sprintf("%s %s: %s", verb, d.Stage, cp.Progress)
		}
		return fmt.Sprintf("%s %s", verb, d.Stage)
	case deploy.Succeeded:
		return fmt.Sprintf("Deployed %s to %s in %s", short(d.SHA), d.Stage, round(v.elapsed()))
	case deploy.Failed:
		return clip("Failed: "+d.Error, 120)
	case deploy.RolledBack:
		return clip(fmt.Sprintf("Rolled back %s: %s", d.Stage, strings.TrimPrefix(d.Error, "rolled back: ")), 120)
	case deploy.Superseded:
		return fmt.Sprintf("Superseded by deploy #%d before it started", d.SupersededBy)
	case deploy.Cancelled:
		return "Cancelled"
	}
	return string(d.State)
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

var stepIcons = map[string]string{pipeline.StepRunning: "⏳", pipeline.StepSucceeded: "✅", pipeline.StepFailed: "❌"}

// summary is the check run's Markdown body: who asked for what, a table of steps with their
// durations and links, and links to the commit and the changes.
func (v view) summary() string {
	d := v.D
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** `%s` → **%s** · deploy #%d · requested by %s", d.App, short(d.SHA), d.Stage, d.ID, actor(d.Trigger.Actor))
	if d.Trigger.PR != 0 {
		fmt.Fprintf(&b, " via #%d", d.Trigger.PR)
	} else if d.Trigger.Event != "" {
		fmt.Fprintf(&b, " via `%s`", d.Trigger.Event)
	}
	b.WriteString("\n\n")
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
			fmt.Fprintf(&b, "| %s | %s %s | %s | %s |\n", s.Name, stepIcons[s.Status], s.Status, round(end.Sub(s.Started)), cell(detail))
		}
		b.WriteString("\n")
	}
	if d.Error != "" {
		fmt.Fprintf(&b, "> %s\n\n", d.Error)
	}
	if v.CP.Image != "" {
		fmt.Fprintf(&b, "Image: `%s`\n\n", v.CP.Image)
	}
	fmt.Fprintf(&b, "[Commit %s](%s)", short(d.SHA), v.commitURL())
	if c := v.compareURL(); c != "" {
		fmt.Fprintf(&b, " · [Changes since the last deploy to %s](%s)", d.Stage, c)
	}
	b.WriteString("\n")
	return b.String()
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
	return fmt.Sprintf("%s\n### %s\n\n%s", commentMarker(d), head, v.summary())
}

// statusDescription is a Deployment status's description: GitHub allows 140 characters.
func (v view) statusDescription() string {
	return clip(v.title(), 140)
}

func round(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Second)
	}
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

func short(sha string) string { return shortSHA(sha) }
