// Package dashboard serves the page people look at: for each app, its stages side by side
// (what is live, since when, by whom, with commit and compare links), the deploys in flight with
// their step and pod progress, and each stage's recent history. It is server-rendered with
// html/template, with no front-end build step, and refreshes itself while deploys run.
package dashboard

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/pipeline"
	"github.com/stagecoach/stagecoach/internal/store"
)

//go:embed page.html
var files embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"short": func(sha string) string {
		if len(sha) > 7 {
			return sha[:7]
		}
		return sha
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Since(t)
		switch {
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return (d / time.Minute * time.Minute).String() + " ago"
		case d < 48*time.Hour:
			return (d / time.Hour * time.Hour).String() + " ago"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"state": func(s deploy.State) string { return strings.ReplaceAll(string(s), "_", " ") },
}).ParseFS(files, "page.html"))

// Store is what the dashboard reads.
type Store interface {
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
}

// Dashboard renders the page.
type Dashboard struct {
	st     Store
	cfg    *config.Config
	webURL string
	log    *slog.Logger
}

// New builds the dashboard; webURL is GitHub's web root, for links.
func New(st Store, cfg *config.Config, webURL string, log *slog.Logger) *Dashboard {
	return &Dashboard{st: st, cfg: cfg, webURL: strings.TrimSuffix(webURL, "/"), log: log}
}

type stageView struct {
	Name     string
	Live     *deploy.Deploy
	Compare  string // link comparing this stage's live commit with the next stage's
	InFlight []flight
	History  []deploy.Deploy
}

type flight struct {
	deploy.Deploy
	Step     string
	Progress string
}

type appView struct {
	Name, Repo, RepoURL string
	Stages              []stageView
}

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var apps []appView
	running := false
	for _, app := range d.cfg.Apps {
		av := appView{Name: app.Name, Repo: app.Repo, RepoURL: d.webURL + "/" + app.Repo}
		for _, st := range d.cfg.Stages {
			if _, ok := app.Stages[st.Name]; !ok {
				continue
			}
			sv, err := d.stage(r.Context(), app.Name, st.Name)
			if err != nil {
				d.log.Error("dashboard: reading deploys", "app", app.Name, "stage", st.Name, "err", err)
				http.Error(w, "could not read deploys", http.StatusInternalServerError)
				return
			}
			running = running || len(sv.InFlight) > 0
			av.Stages = append(av.Stages, sv)
		}
		// Compare each stage's live commit with the next stage's: what promoting would ship.
		for i := 0; i+1 < len(av.Stages); i++ {
			a, b := av.Stages[i].Live, av.Stages[i+1].Live
			if a != nil && b != nil && a.SHA != b.SHA {
				av.Stages[i].Compare = av.RepoURL + "/compare/" + b.SHA + "..." + a.SHA
			}
		}
		apps = append(apps, av)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, map[string]any{"Apps": apps, "Running": running, "WebURL": d.webURL, "Now": time.Now().UTC()}); err != nil {
		d.log.Error("dashboard: rendering", "err", err)
	}
}

func (d *Dashboard) stage(ctx context.Context, app, stage string) (stageView, error) {
	sv := stageView{Name: stage}
	history, err := d.st.ListDeploys(ctx, store.Filter{App: app, Stage: stage, Limit: 10})
	if err != nil {
		return sv, err
	}
	sv.History = history
	live, err := d.st.ListDeploys(ctx, store.Filter{App: app, Stage: stage, State: deploy.Succeeded, Limit: 1})
	if err != nil {
		return sv, err
	}
	if len(live) == 1 {
		sv.Live = &live[0]
	}
	for _, x := range history {
		if x.State.Final() {
			continue
		}
		f := flight{Deploy: x, Step: strings.ReplaceAll(string(x.State), "_", " ")}
		if cp, err := pipeline.DecodeCheckpoint(x.Checkpoint); err == nil {
			switch {
			case x.State == deploy.Building && cp.BuildPhase != "":
				f.Progress = "phase " + cp.BuildPhase
			case cp.Progress != "":
				f.Progress = cp.Progress
			}
			if cp.RollingBack {
				f.Step = "rolling back"
			}
		}
		sv.InFlight = append(sv.InFlight, f)
	}
	return sv, nil
}
