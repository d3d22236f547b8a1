// Package status answers "what is where": for each stage of an app, the commit live there (and
// the tag it carries), since when and by whom, which slot serves it, whether it is locked (and
// until when), whether it is outside its deploy windows or frozen, what is deploying now or
// waiting for the stage to open, and a link to what the next stage would gain from a promotion. The /status
// command, release issues and the dashboard all show it; this package reads it and renders the
// Markdown, with no GitHub calls.
package status

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/window"
)

// Store is what status reads.
type Store interface {
	LiveDeploys(ctx context.Context, app string) (map[string]deploy.Deploy, error)
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
	StageLocks(ctx context.Context) ([]store.StageLock, error)
	Releases(ctx context.Context, repo string, limit int) ([]store.Release, error)
}

// Stage is one stage of one app.
type Stage struct {
	Name    string
	Live    *deploy.Deploy // nil: nothing was deployed yet
	Tag     string         // a release tag on the live commit, if any
	Slot    string         // the slot that serves, on a stage with slots
	Lock    *store.StageLock
	Running *deploy.Deploy // the deploy in progress, if any
	Next    string         // the stage this one promotes to
	// NextSHA is the commit live on the next stage: the next stage would gain the commits in
	// NextSHA...Live.SHA (empty when nothing is live there).
	NextSHA string
	// History is the stage's newest deploys, newest first, whatever their state: as many as
	// Options.History asks for (3 with Read).
	History []deploy.Deploy
	// Calendar is when the stage takes deploys (its windows and freezes); nil: any time.
	Calendar *window.Calendar
	// Waiting is the deploy queued for the stage's next window or a freeze's end, if one is.
	Waiting *deploy.Deploy
	// Artifact is what an app with artifact: promote knows of the live image (nil otherwise).
	Artifact *deploy.Artifact
}

// WaitOf is what d waits for before it starts: its stage's window or a freeze's end; nil when
// it waits for nothing of the kind.
func WaitOf(d deploy.Deploy) *deploy.Wait {
	if d.State != deploy.Queued {
		return nil
	}
	cp, err := deploy.DecodeCheckpoint(d.Checkpoint)
	if err != nil {
		return nil
	}
	return cp.Wait
}

// Closed says, for a sentence, why the stage takes no deploys at now and until when ("" when
// it takes them): "frozen until Mon Jan 5 09:00 CET: `Year-end freeze`", or "outside its
// deploy windows until Mon Jan 20 09:00 CET".
func (s Stage) Closed(now time.Time) string {
	if s.Calendar == nil {
		return ""
	}
	st := s.Calendar.At(now)
	switch {
	case st.Open:
		return ""
	case st.Freeze != nil:
		return fmt.Sprintf("frozen until %s: %s", s.Calendar.Format(st.Next), markdown.Code(st.Freeze.Reason))
	}
	return fmt.Sprintf("outside its deploy windows (%s) until %s", s.Calendar.Describe(), s.Calendar.Format(st.Next))
}

// App is an app's stages, in the configured order.
type App struct {
	Name, Repo string
	Stages     []Stage
	// Releases are the repository's newest releases, newest first (at most 50): where Tag comes
	// from. Apps built from one repository share them.
	Releases []store.Release
}

// Options tunes ReadWith.
type Options struct {
	// History is how many of each stage's newest deploys to read into Stage.History; at least
	// 3, the default, which is what finds the running deploy.
	History int
}

// Read gathers the status of every app built from repo ("" for every app).
func Read(ctx context.Context, st Store, cfg *config.Config, repo string) ([]App, error) {
	return ReadWith(ctx, st, cfg, repo, Options{})
}

// ReadWith is Read with options: the dashboard reads a longer history of each stage in the
// same pass.
func ReadWith(ctx context.Context, st Store, cfg *config.Config, repo string, o Options) ([]App, error) {
	o.History = max(o.History, 3)
	locks, err := st.StageLocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []App
	tags := map[string]map[string]string{} // repo -> sha -> tag
	releases := map[string][]store.Release{}
	apps := cfg.EffectiveApps() // one generation for the whole read
	for i := range apps {
		app := &apps[i]
		if repo != "" && !strings.EqualFold(app.Repo, repo) {
			continue
		}
		if tags[app.Repo] == nil {
			tags[app.Repo] = map[string]string{}
			rels, err := st.Releases(ctx, app.Repo, 50)
			if err != nil {
				return nil, err
			}
			releases[app.Repo] = rels
			for j := len(rels) - 1; j >= 0; j-- { // newest last, so it wins
				tags[app.Repo][rels[j].SHA] = rels[j].Tag
			}
		}
		live, err := st.LiveDeploys(ctx, app.Name)
		if err != nil {
			return nil, err
		}
		a := App{Name: app.Name, Repo: app.Repo, Releases: releases[app.Repo]}
		for _, cs := range cfg.Stages {
			if _, ok := app.Stages[cs.Name]; !ok {
				continue
			}
			s := Stage{Name: cs.Name}
			if d, ok := live[cs.Name]; ok {
				s.Live = &d
				s.Tag = tags[app.Repo][d.SHA]
				if cp, err := deploy.DecodeCheckpoint(d.Checkpoint); err == nil {
					s.Slot, s.Artifact = cp.Slot, cp.Artifact
				}
			}
			for _, l := range locks {
				if l.App == app.Name && l.Stage == cs.Name {
					s.Lock = &l
				}
			}
			recent, err := st.ListDeploys(ctx, store.Filter{App: app.Name, Stage: cs.Name, Limit: o.History})
			if err != nil {
				return nil, err
			}
			s.History = recent
			if s.Running, err = running(ctx, st, app.Name, cs.Name, recent, o.History); err != nil {
				return nil, err
			}
			// A deploy waiting for the stage to open is its newest: a newer request would
			// have superseded it.
			if len(recent) > 0 && WaitOf(recent[0]) != nil {
				s.Waiting = &recent[0]
			}
			s.Calendar, _ = cs.Calendar() // a loaded configuration's calendar always reads
			for _, n := range cfg.NextStages(cs.Name) {
				if _, ok := app.Stages[n.Name]; ok {
					s.Next = n.Name
					if d, ok := live[n.Name]; ok {
						s.NextSHA = d.SHA
					}
					break
				}
			}
			a.Stages = append(a.Stages, s)
		}
		out = append(out, a)
	}
	return out, nil
}

// running finds the deploy running on app's stage. It is in recent (the stage's newest deploys,
// newest first, at most limit of them) unless the window is full of deploys that never ran
// (queued, superseded or cancelled, as pushes during a long build leave): then it is looked up
// by state. Once a deploy in the window ran, nothing older can still be running.
func running(ctx context.Context, st Store, app, stage string, recent []deploy.Deploy, limit int) (*deploy.Deploy, error) {
	for i := range recent {
		switch s := recent[i].State; {
		case s.Running():
			return &recent[i], nil
		case s != deploy.Queued && s != deploy.Superseded && s != deploy.Cancelled:
			return nil, nil
		}
	}
	if len(recent) < limit {
		return nil, nil
	}
	for _, s := range []deploy.State{deploy.Preflight, deploy.Building, deploy.RollingOut} {
		ds, err := st.ListDeploys(ctx, store.Filter{App: app, Stage: stage, State: s, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(ds) == 1 {
			return &ds[0], nil
		}
	}
	return nil, nil
}

// Markdown renders apps as one table per app, for a comment or an issue. webURL is GitHub's web
// root, for links; now is for "since".
func Markdown(apps []App, webURL string, now time.Time) string {
	var b strings.Builder
	for i, a := range apps {
		if i > 0 {
			b.WriteString("\n")
		}
		if len(apps) > 1 {
			fmt.Fprintf(&b, "**%s**\n\n", a.Name)
		}
		b.WriteString("| Stage | Live | Since | By | Next stage |\n|---|---|---|---|---|\n")
		for _, s := range a.Stages {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", stageCell(s), liveCell(a.Repo, s, webURL, now), sinceCell(s, now),
				byCell(s), nextCell(a.Repo, s, webURL))
		}
	}
	return b.String()
}

func stageCell(s Stage) string {
	out := "**" + s.Name + "**"
	if s.Lock != nil {
		out += " 🔒"
	}
	return out
}

func liveCell(repo string, s Stage, webURL string, now time.Time) string {
	if s.Live == nil {
		out := "nothing yet"
		if s.Running != nil {
			out += fmt.Sprintf("; deploying `%s` (%s)", deploy.ShortSHA(s.Running.SHA), strings.ReplaceAll(string(s.Running.State), "_", " "))
		}
		return out + stateNotes(s, now)
	}
	out := fmt.Sprintf("[`%s`](%s/%s/commit/%s)", deploy.ShortSHA(s.Live.SHA), webURL, repo, s.Live.SHA)
	if s.Tag != "" {
		out = fmt.Sprintf("**%s** %s", cell(markdown.Code(s.Tag)), out)
	}
	if s.Slot != "" {
		out += " on slot " + s.Slot
	}
	out += imageNote(s)
	if s.Running != nil {
		out += fmt.Sprintf("; deploying `%s` (%s)", deploy.ShortSHA(s.Running.SHA), strings.ReplaceAll(string(s.Running.State), "_", " "))
	}
	return out + stateNotes(s, now)
}

// stateNotes are what holds a stage back, for its Live cell: its lock (and until when), a
// freeze or its closed windows, and the deploy waiting for them.
func stateNotes(s Stage, now time.Time) string {
	var out string
	if s.Lock != nil {
		out += fmt.Sprintf("; locked by @%s", s.Lock.Owner)
		if !s.Lock.ExpiresAt.IsZero() {
			out += " until " + s.Lock.ExpiresAt.UTC().Format("Jan 2 15:04 UTC")
		}
		if s.Lock.Reason != "" {
			out += ": " + cell(markdown.Code(s.Lock.Reason)) // a person's words: shown, never rendered
		}
	}
	if c := s.Closed(now); c != "" {
		out += "; " + cell(c)
	}
	if s.Waiting != nil {
		if w := WaitOf(*s.Waiting); w != nil {
			out += fmt.Sprintf("; `%s` %s", deploy.ShortSHA(s.Waiting.SHA), cell(w.Text()))
		}
	}
	return out
}

func sinceCell(s Stage, now time.Time) string {
	if s.Live == nil {
		return ""
	}
	return Ago(s.Live.FinishedAt, now)
}

func byCell(s Stage) string {
	if s.Live == nil || s.Live.Trigger.Actor == "" {
		return ""
	}
	out := "@" + s.Live.Trigger.Actor
	if s.Live.Trigger.PR != 0 {
		out += fmt.Sprintf(" (#%d)", s.Live.Trigger.PR)
	}
	return out
}

func nextCell(repo string, s Stage, webURL string) string {
	switch {
	case s.Next == "":
		return ""
	case s.Live == nil:
		return s.Next
	case s.NextSHA == s.Live.SHA:
		return s.Next + ": up to date"
	case s.NextSHA == "":
		return s.Next + ": nothing there yet"
	}
	return fmt.Sprintf("[%s is behind](%s/%s/compare/%s...%s)", s.Next, webURL, repo, s.NextSHA, s.Live.SHA)
}

// Ago says how long ago t was, for people: "just now", "5m ago", "3h ago", "4 days ago".
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

func cell(s string) string { return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s) }
