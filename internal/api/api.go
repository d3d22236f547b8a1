// Package api is the read side over HTTP: what was asked to deploy, where it stands (its steps
// and progress), the stages' locks, the releases, the commands people gave (the audit trail).
// It only reads; every change comes in through the webhook.
//
// Every answer under /api/v1 holds only what the request's access.Viewer may read: the deploys,
// locks and releases of its repositories, and the command audit of those it may audit. A deploy
// of another repository is answered as one that does not exist. A request without a viewer
// reads nothing (401).
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what the API reads.
type Store interface {
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
	Deploy(ctx context.Context, id int64) (deploy.Deploy, error)
	StageLocks(ctx context.Context) ([]store.StageLock, error)
	Releases(ctx context.Context, repo string, limit int) ([]store.Release, error)
	Commands(ctx context.Context, repo string, limit int) ([]store.CommandRecord, error)
}

// API serves /api/v1/... (the probes are the internal listener's: package server).
type API struct {
	st  Store
	log *slog.Logger
}

// New builds the API over a store.
func New(st Store, log *slog.Logger) *API { return &API{st: st, log: log} }

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/deployments", a.listDeployments)
	mux.HandleFunc("GET /api/v1/deployments/{id}", a.getDeployment)
	mux.HandleFunc("GET /api/v1/locks", a.listLocks)
	mux.HandleFunc("GET /api/v1/releases", a.listReleases)
	mux.HandleFunc("GET /api/v1/commands", a.listCommands)
}

// deploymentList is the body of GET /api/v1/deployments. Next, when set, is the `before` value
// that fetches the following page.
type deploymentList struct {
	Deployments []deployment `json:"deployments"`
	Next        int64        `json:"next_before,omitempty"`
}

// deployment is a deploy with what its checkpoint tells people: its steps, the step running
// now and its progress, the image and the slot.
type deployment struct {
	deploy.Deploy
	Step     string              `json:"step,omitempty"`
	Progress string              `json:"progress,omitempty"`
	Image    string              `json:"image,omitempty"`
	Slot     string              `json:"slot,omitempty"`
	Steps    []deploy.StepRecord `json:"steps,omitempty"`
	// Waiting is, for a queued deploy, the stage's window or the freeze it waits for and when it
	// starts; its Step is then "waiting" and its Progress says so in words.
	Waiting *deploy.Wait `json:"waiting,omitempty"`
}

func view(d deploy.Deploy) deployment {
	out := deployment{Deploy: d}
	if cp, err := deploy.DecodeCheckpoint(d.Checkpoint); err == nil {
		out.Steps, out.Image, out.Slot, out.Progress = cp.Steps, cp.Image, cp.Slot, cp.Progress
		if n := len(cp.Steps); n > 0 && !d.State.Final() {
			out.Step = cp.Steps[n-1].Name
			if d.State == deploy.Building && cp.BuildPhase != "" {
				out.Progress = "phase " + cp.BuildPhase
			}
		}
		if d.State == deploy.Queued && cp.Wait != nil {
			out.Waiting, out.Step, out.Progress = cp.Wait, "waiting", cp.Wait.Text()
		}
	}
	// Image and Slot hide the request's fields of the same JSON names: until the checkpoint
	// says, show what the request asked for (a rollback's image, a switch's slot).
	if out.Image == "" {
		out.Image = d.Image
	}
	if out.Slot == "" {
		out.Slot = d.Slot
	}
	return out
}

// viewer is who asks; a request nobody vouched for is answered 401 and gets nothing.
func viewer(w http.ResponseWriter, r *http.Request) (*access.Viewer, bool) {
	v := access.From(r.Context())
	if v == nil {
		writeError(w, http.StatusUnauthorized, "sign in, or send an API token")
	}
	return v, v != nil
}

func (a *API) listDeployments(w http.ResponseWriter, r *http.Request) {
	v, ok := viewer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.Filter{App: q.Get("app"), Stage: q.Get("stage"), State: deploy.State(q.Get("state"))}
	if f.State != "" && !f.State.Valid() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown state %q; states are %v", f.State, deploy.States))
		return
	}
	var err error
	if f.Limit, err = intParam(q.Get("limit"), 100, 1, 1000); err != nil {
		writeError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	before, err := intParam(q.Get("before"), 0, 1, 1<<62)
	if err != nil {
		writeError(w, http.StatusBadRequest, "before: "+err.Error())
		return
	}
	f.BeforeID = int64(before)
	if !v.All() {
		f.Repos = v.Repos()
	}
	ds, err := a.st.ListDeploys(r.Context(), f)
	if err != nil {
		a.log.Error("listing deploys", "err", err)
		writeError(w, http.StatusInternalServerError, "could not read deploys")
		return
	}
	out := deploymentList{Deployments: make([]deployment, 0, len(ds))}
	for _, d := range ds {
		if v.CanRead(d.Repo) {
			out.Deployments = append(out.Deployments, view(d))
		}
	}
	if len(ds) == f.Limit {
		out.Next = ds[len(ds)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getDeployment(w http.ResponseWriter, r *http.Request) {
	v, ok := viewer(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return
	}
	d, err := a.st.Deploy(r.Context(), id)
	if err == nil && !v.CanRead(d.Repo) {
		err = store.ErrNotFound // another repository's deploy is not there, for this reader
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no deployment %d", id))
		return
	}
	if err != nil {
		a.log.Error("reading deploy", "deploy", id, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the deploy")
		return
	}
	writeJSON(w, http.StatusOK, view(d))
}

func (a *API) listLocks(w http.ResponseWriter, r *http.Request) {
	v, ok := viewer(w, r)
	if !ok {
		return
	}
	ls, err := a.st.StageLocks(r.Context())
	if err != nil {
		a.log.Error("listing locks", "err", err)
		writeError(w, http.StatusInternalServerError, "could not read locks")
		return
	}
	type lock struct {
		App       string    `json:"app"`
		Stage     string    `json:"stage"`
		Repo      string    `json:"repo"`
		Owner     string    `json:"owner"`
		Reason    string    `json:"reason,omitempty"`
		Issue     int       `json:"issue,omitempty"`
		CreatedAt time.Time `json:"created_at"`
		ExpiresAt time.Time `json:"expires_at,omitzero"` // absent: until someone unlocks it
	}
	out := []lock{}
	for _, l := range ls {
		if !v.CanRead(l.Repo) {
			continue
		}
		out = append(out, lock{l.App, l.Stage, l.Repo, l.Owner, l.Reason, l.Issue, l.CreatedAt, l.ExpiresAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"locks": out})
}

func (a *API) listReleases(w http.ResponseWriter, r *http.Request) {
	v, ok := viewer(w, r)
	if !ok {
		return
	}
	repo, limit, ok := repoAndLimit(w, r)
	if !ok {
		return
	}
	var rs []store.Release
	var err error
	if v.CanRead(repo) { // another repository's releases look like none
		rs, err = a.st.Releases(r.Context(), repo, limit)
	}
	if err != nil {
		a.log.Error("listing releases", "err", err)
		writeError(w, http.StatusInternalServerError, "could not read releases")
		return
	}
	type release struct {
		Repo       string    `json:"repo"`
		Tag        string    `json:"tag"`
		SHA        string    `json:"sha"`
		State      string    `json:"state"`
		Reason     string    `json:"reason,omitempty"`
		Issue      int       `json:"issue,omitempty"`
		TaggedBy   string    `json:"tagged_by,omitempty"`
		PromotedBy string    `json:"promoted_by,omitempty"`
		CreatedAt  time.Time `json:"created_at"`
		ShippedAt  time.Time `json:"shipped_at,omitzero"`
	}
	out := []release{}
	for _, x := range rs {
		out = append(out, release{x.Repo, x.Tag, x.SHA, string(x.State), x.Reason, x.Issue, x.TaggedBy, x.PromotedBy, x.CreatedAt, x.ShippedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"releases": out})
}

func (a *API) listCommands(w http.ResponseWriter, r *http.Request) {
	v, ok := viewer(w, r)
	if !ok {
		return
	}
	repo := r.URL.Query().Get("repo")
	limit, err := intParam(r.URL.Query().Get("limit"), 50, 1, 500)
	if err != nil {
		writeError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	if repo != "" && !v.CanAudit(repo) {
		writeError(w, http.StatusForbidden, "the command audit of a repository is shown to its admins only")
		return
	}
	cs, err := a.commands(r.Context(), v, repo, limit)
	if err != nil {
		a.log.Error("listing commands", "err", err)
		writeError(w, http.StatusInternalServerError, "could not read commands")
		return
	}
	type cmd struct {
		Repo      string    `json:"repo"`
		Issue     int       `json:"issue,omitempty"`
		Actor     string    `json:"actor"`
		Verb      string    `json:"verb"`
		Stage     string    `json:"stage,omitempty"`
		Args      string    `json:"args"`
		Force     string    `json:"force_reason,omitempty"`
		Outcome   string    `json:"outcome"`
		Reason    string    `json:"reason,omitempty"`
		CreatedAt time.Time `json:"created_at"`
	}
	out := []cmd{}
	for _, c := range cs {
		out = append(out, cmd{c.Repo, c.Issue, c.Actor, c.Verb, c.Stage, c.Args, c.Force, c.Outcome, c.Reason, c.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": out})
}

// commands reads the newest commands of repo, or of every repository v may audit.
func (a *API) commands(ctx context.Context, v *access.Viewer, repo string, limit int) ([]store.CommandRecord, error) {
	if repo != "" || v.All() {
		return a.st.Commands(ctx, repo, limit)
	}
	var all []store.CommandRecord
	for _, r := range v.AuditRepos() {
		cs, err := a.st.Commands(ctx, r, limit)
		if err != nil {
			return nil, err
		}
		all = append(all, cs...)
	}
	slices.SortFunc(all, func(x, y store.CommandRecord) int { return cmp.Compare(y.ID, x.ID) })
	return all[:min(len(all), limit)], nil
}

// repoAndLimit reads the required repo and optional limit parameters.
func repoAndLimit(w http.ResponseWriter, r *http.Request) (string, int, bool) {
	repo := r.URL.Query().Get("repo")
	if repo == "" {
		writeError(w, http.StatusBadRequest, "repo is required: owner/name")
		return "", 0, false
	}
	limit, err := intParam(r.URL.Query().Get("limit"), 20, 1, 500)
	if err != nil {
		writeError(w, http.StatusBadRequest, "limit: "+err.Error())
		return "", 0, false
	}
	return repo, limit, true
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want an integer from %d to %d, got %q", lo, hi, s)
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
