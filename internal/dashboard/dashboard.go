// Package dashboard serves the page people look at. For each app it shows the latest releases
// (tag, state, release issue); its stages side by side, each with what is live (the release tag
// or commit, with commit and compare links, since when and by whom), the slot that serves a
// two-slot stage, the stage's lock (who, why, since when), the deploys in flight with their step
// and pod progress, and the stage's recent history (rollbacks, slot switches and forced deploys
// marked); the app's latest pull-request builds; and what was refused lately (pushes to guarded
// stages, commands), by whom and why. What is live comes from internal/status, so
// the page, the /status command and release issues agree.
//
// The page shows only the apps whose repositories the request's access.Viewer may read, and an
// app's latest commands (the audit trail) only to those who may audit its repository (its
// admins). A signed-in person gets a sign-out form carrying their session's form token.
//
// The page is server-rendered with html/template, with no front-end build step, and reloads
// itself while deploys are in flight (?refresh=off stops that).
package dashboard

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/status"
	"github.com/stagecoach/stagecoach/internal/store"
)

//go:embed page.html
var files embed.FS

var page = template.Must(template.New("page.html").ParseFS(files, "page.html"))

// Store is what the dashboard reads: what internal/status reads (live deploys, locks,
// releases, each stage's history), the app's deploys for its pull-request builds, and the
// commands and pushes that were refused.
type Store interface {
	status.Store
	Refusals(ctx context.Context, repo string, limit int) ([]store.CommandRecord, error)
	Commands(ctx context.Context, repo string, limit int) ([]store.CommandRecord, error)
}

// Dashboard renders the page.
type Dashboard struct {
	st     Store
	cfg    *config.Config
	webURL string
	log    *slog.Logger
	now    func() time.Time // the clock; tests replace it
}

// New builds the dashboard; webURL is GitHub's web root, for links.
func New(st Store, cfg *config.Config, webURL string, log *slog.Logger) *Dashboard {
	return &Dashboard{st: st, cfg: cfg, webURL: strings.TrimSuffix(webURL, "/"), log: log, now: time.Now}
}

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pv, err := d.view(r.Context(), access.From(r.Context()))
	if err != nil {
		d.log.Error("dashboard: reading the status", "err", err)
		http.Error(w, "could not read the status of the stages", http.StatusInternalServerError)
		return
	}
	if r.URL.Query().Get("refresh") == "off" {
		pv.Paused, pv.Refresh = true, 0
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, pv); err != nil {
		d.log.Error("dashboard: rendering", "err", err)
	}
}

// view reads everything the page shows v: the apps of the repositories v may read.
func (d *Dashboard) view(ctx context.Context, v *access.Viewer) (pageView, error) {
	now := d.now().UTC()
	// One generation of the apps (repositories' files included) for the whole page.
	all := d.cfg.EffectiveApps()
	readable := d.cfg.WithApps(slices.DeleteFunc(slices.Clone(all), func(a config.App) bool { return !v.CanRead(a.Repo) }))
	apps, err := status.ReadWith(ctx, d.st, readable, "", status.Options{History: historyRows})
	if err != nil {
		return pageView{}, err
	}
	pv := pageView{Now: now, Hidden: len(readable.Apps) == 0 && len(all) > 0}
	if v != nil {
		pv.Login, pv.CSRF = v.Login, v.CSRF
	}
	var inFlight []deploy.Deploy
	locks := map[string]*store.StageLock{} // app/stage
	for _, a := range apps {
		repoURL := d.webURL + "/" + a.Repo
		tags := map[string]string{} // sha -> tag, the newest release winning, as status resolves it
		for j := len(a.Releases) - 1; j >= 0; j-- {
			tags[a.Releases[j].SHA] = a.Releases[j].Tag
		}
		av := appView{Name: a.Name, Repo: a.Repo, RepoURL: repoURL, ID: "app-" + a.Name}
		for _, rel := range a.Releases[:min(len(a.Releases), releaseRows)] {
			av.Releases = append(av.Releases, releaseOf(rel, repoURL, now))
		}
		for _, s := range a.Stages {
			locks[a.Name+"/"+s.Name] = s.Lock
			av.Stages = append(av.Stages, d.stage(a, s, repoURL, tags, now))
			for _, h := range s.History {
				if !h.State.Final() {
					inFlight = append(inFlight, h)
				}
			}
			if s.Running != nil {
				inFlight = append(inFlight, *s.Running) // maybe twice: refresh only asks whether any runs
			}
		}
		if app := readable.App(a.Name); app != nil {
			av.PRBuildsEnabled = app.PRBuild.Enabled
		}
		recent, err := d.st.ListDeploys(ctx, store.Filter{App: a.Name, Limit: prBuildWindow})
		if err != nil {
			return pageView{}, err
		}
		if av.Audit = v.CanAudit(a.Repo); av.Audit {
			cs, err := d.st.Commands(ctx, a.Repo, auditRows)
			if err != nil {
				return pageView{}, err
			}
			av.Commands = commandsOf(cs, repoURL, now)
		}
		for _, b := range prBuilds(recent, prBuildRows) {
			av.PRBuilds = append(av.PRBuilds, deployRow(b, repoURL, tags, nil, "", now))
			if !b.State.Final() {
				inFlight = append(inFlight, b)
			}
		}
		refused, err := d.st.Refusals(ctx, a.Repo, refusalWindow)
		if err != nil {
			return pageView{}, err
		}
		av.Refusals = refusalsOf(readable.App(a.Name), refused, now)
		pv.Apps = append(pv.Apps, av)
	}
	pv.Busy = len(inFlight) > 0
	pv.Refresh = refresh(inFlight, func(x deploy.Deploy) bool { return lockedOut(x, locks[x.App+"/"+x.Stage]) })
	return pv, nil
}

// stage builds one stage's card from its status.
func (d *Dashboard) stage(a status.App, s status.Stage, repoURL string, tags map[string]string, now time.Time) stageView {
	sv := stageView{Name: s.Name, ID: a.Name + "-" + s.Name, Slot: s.Slot, Slots: slotsOf(d.cfg, s.Name), Next: nextOf(s, repoURL)}
	branch := ""
	if cs := d.cfg.Stage(s.Name); cs != nil {
		branch = cs.Branch
	}
	sv.Window = windowOf(s, now)
	if l := s.Lock; l != nil {
		sv.Lock = &lockView{Owner: l.Owner, Reason: l.Reason, Issue: l.Issue, Since: at(l.CreatedAt, now), Until: at(l.ExpiresAt, now)}
		if l.Issue != 0 {
			sv.Lock.IssueURL = fmt.Sprintf("%s/issues/%d", repoURL, l.Issue)
		}
	}
	if s.Live != nil {
		live := deployRow(*s.Live, repoURL, map[string]string{s.Live.SHA: s.Tag}, nil, branch, now)
		live.When = at(s.Live.FinishedAt, now)
		if s.Slot != "" { // the card says which slot serves
			live.Badges = slices.DeleteFunc(live.Badges, func(b badge) bool { return b.Class == "slot" })
		}
		sv.Live = &live
	}
	if p := problemOf(s.History, s.Live); p != nil {
		r := deployRow(*p, repoURL, tags, s.Lock, branch, now)
		sv.Problem = &r
	}
	var finished []deploy.Deploy
	for _, h := range s.History {
		if h.State.Final() {
			finished = append(finished, h)
		} else {
			sv.InFlight = append(sv.InFlight, deployRow(h, repoURL, tags, s.Lock, branch, now))
		}
	}
	for _, g := range collapse(finished) {
		r := deployRow(g[0], repoURL, tags, s.Lock, branch, now)
		if len(g) > 1 {
			r.Collapsed, r.OldestID = len(g)-1, g[len(g)-1].ID
			r.Note, r.NoteTitle = fmt.Sprintf("%d requests superseded by newer ones before they started", len(g)), ""
		}
		sv.History = append(sv.History, r)
	}
	slices.Reverse(sv.InFlight) // the running deploy first, then what queues behind it
	if s.Running != nil && !slices.ContainsFunc(s.History, func(h deploy.Deploy) bool { return h.ID == s.Running.ID }) {
		// Behind more newer deploys that never ran than the history holds: still first.
		sv.InFlight = append([]row{deployRow(*s.Running, repoURL, tags, s.Lock, branch, now)}, sv.InFlight...)
	}
	return sv
}
