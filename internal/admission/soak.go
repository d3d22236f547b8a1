package admission

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/window"
)

// Spans finds when a commit ran on a stage.
type Spans interface {
	LiveSpans(ctx context.Context, app, stage, sha string) ([]store.Span, error)
}

// Readiness is how far a commit has soaked on the stage a promotion takes it from.
type Readiness struct {
	Ready bool
	// At is when it is (or was) ready: the moment it had run MinSoak on From without a break.
	// Zero when it is not ready and does not run there now: it never will be, unless it is
	// deployed there again.
	At time.Time
	// Ran is its longest stretch on From so far (the current one, while it runs there).
	Ran time.Duration
	// Left is when its last stretch on From ended; zero while it still runs there.
	Left    time.Time
	From    string
	MinSoak time.Duration
	Zone    *time.Location // where times are shown
}

// Soaked reads a commit's stretches on a stage against min: it is ready once one of them lasted
// min (a commit replaced before that has not been tried for long enough, and is ready only
// after it ran that long again).
func Soaked(spans []store.Span, min time.Duration, now time.Time) Readiness {
	var r Readiness
	for _, s := range spans {
		end := s.Until
		if end.IsZero() {
			end = now
		}
		r.Ran = max(r.Ran, end.Sub(s.From))
		switch {
		case end.Sub(s.From) >= min:
			if !r.Ready {
				r.Ready, r.At = true, s.From.Add(min)
			}
		case s.Until.IsZero() && !r.Ready:
			r.At = s.From.Add(min)
		}
		r.Left = s.Until
	}
	return r
}

// Soak is how far sha has soaked for a deploy to stage: on the stage stage promotes from, for
// that stage's min_soak, for every app of apps (the latest of them decides). A stage whose
// source has no min_soak, and an app that skips the source, need no soak: Ready.
func Soak(ctx context.Context, st Spans, cfg *config.Config, apps []*config.App, stage *config.Stage, sha string, now time.Time) (Readiness, error) {
	r := Readiness{Ready: true}
	from := cfg.Stage(stage.PromoteFrom)
	if from == nil || from.MinSoak <= 0 {
		return r, nil
	}
	r.From, r.MinSoak, r.Zone = from.Name, from.MinSoak, from.Zone()
	if from.TimeZone == "" {
		r.Zone = stage.Zone()
	}
	var worst *Readiness
	for _, app := range apps {
		if _, ok := app.Stages[from.Name]; !ok {
			continue
		}
		spans, err := st.LiveSpans(ctx, app.Name, from.Name, sha)
		if err != nil {
			return Readiness{}, err
		}
		a := Soaked(spans, from.MinSoak, now)
		switch {
		case !a.Ready && (worst == nil || later(a.At, worst.At)):
			worst = &a
		case a.Ready && a.At.After(r.At):
			r.At, r.Ran = a.At, a.Ran
		}
	}
	if worst != nil {
		r.Ready, r.At, r.Ran, r.Left = false, worst.At, worst.Ran, worst.Left
	}
	return r, nil
}

// later reports whether readiness at a comes after readiness at b; zero is never, the latest.
func later(a, b time.Time) bool {
	return a.IsZero() && !b.IsZero() || !a.IsZero() && !b.IsZero() && a.After(b)
}

// SoakError says a commit may not go to a stage yet: it has not run long enough on the stage
// before (its min_soak).
type SoakError struct {
	SHA, Stage string
	Readiness
	Now time.Time
}

// CheckSoak is soak time, the rule both the gate and the pipeline's preflight apply, like the
// stage order: app's deploy of r.SHA to stage needs the commit to have run min_soak on the
// stage it promotes from, unless an admin forced it or it only brings back what ran before.
// A commit that never succeeded there is the stage order's to refuse (CheckOrder). It returns
// nil when the deploy may go.
func CheckSoak(ctx context.Context, st Spans, cfg *config.Config, app *config.App, stage *config.Stage, r deploy.Request, now time.Time) (*SoakError, error) {
	if stage == nil || stage.PromoteFrom == "" || r.Force != "" || r.Mode == deploy.ModeImage || r.Mode == deploy.ModeSwitch || r.Mode == deploy.ModePRBuild {
		return nil, nil
	}
	rd, err := Soak(ctx, st, cfg, []*config.App{app}, stage, r.SHA, now)
	if err != nil || rd.Ready || rd.Ran == 0 && rd.At.IsZero() {
		return nil, err // ready, or never there at all (the stage order's refusal)
	}
	return &SoakError{SHA: r.SHA, Stage: stage.Name, Readiness: rd, Now: now}, nil
}

// when is a moment as the readiness shows it.
func (r Readiness) when(t time.Time) string { return window.Format(t, r.Zone) }

// Error is the plain text a deploy's error shows.
func (e *SoakError) Error() string {
	if e.At.IsZero() {
		return fmt.Sprintf("soak time: %s ran on %s for only %s before it was replaced there, and %s takes a commit only once it has run %s on %s (min_soak); "+
			"deploy it to %s again, or an admin may override it with --force", deploy.ShortSHA(e.SHA), e.From, round(e.Ran), e.Stage, round(e.MinSoak), e.From, e.From)
	}
	return fmt.Sprintf("soak time: %s has run on %s for %s, and %s takes a commit only once it has run %s there (min_soak): it is ready at %s; "+
		"an admin may override it with --force", deploy.ShortSHA(e.SHA), e.From, round(e.Ran), e.Stage, round(e.MinSoak), e.when(e.At))
}

// Markdown is the refusal a person reads, saying when the commit will be ready.
func (e *SoakError) Markdown() string {
	if e.At.IsZero() {
		return fmt.Sprintf("`%s` ran on **%s** for only %s (it was replaced there at %s), and **%s** takes a commit only once it has run "+
			"%s on %s without a break (`min_soak`). Deploy it to %s again and promote it once it has run there %s, or an admin may "+
			"promote it anyway with `--force \"the reason\"`.", deploy.ShortSHA(e.SHA), e.From, round(e.Ran), e.when(e.Left), e.Stage,
			round(e.MinSoak), e.From, e.From, round(e.MinSoak))
	}
	return fmt.Sprintf("`%s` has run on **%s** for %s, and **%s** takes a commit only once it has run %s there (`min_soak`): "+
		"it is **ready to promote at %s** (in %s). An admin may promote it sooner with `--force \"the reason\"`.",
		deploy.ShortSHA(e.SHA), e.From, round(e.Ran), e.Stage, round(e.MinSoak), e.when(e.At), round(e.At.Sub(e.Now)))
}

// round shows a duration as people write it: to the second, or to the minute once it is long,
// without zero units ("48m", "1h", "2h30m", "45s").
func round(d time.Duration) string {
	if d >= 10*time.Minute {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
