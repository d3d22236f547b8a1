// Package api is the read side over HTTP: what was asked to deploy, where it stands, and
// whether the service is healthy. It only reads; every change comes in through the webhook.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what the API reads.
type Store interface {
	ListDeploys(ctx context.Context, f store.Filter) ([]deploy.Deploy, error)
	Deploy(ctx context.Context, id int64) (deploy.Deploy, error)
	Ping(ctx context.Context) error
}

// API serves /api/v1/..., /healthz and /readyz.
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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
}

// deploymentList is the body of GET /api/v1/deployments. Next, when set, is the `before` value
// that fetches the following page.
type deploymentList struct {
	Deployments []deploy.Deploy `json:"deployments"`
	Next        int64           `json:"next_before,omitempty"`
}

func (a *API) listDeployments(w http.ResponseWriter, r *http.Request) {
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
	ds, err := a.st.ListDeploys(r.Context(), f)
	if err != nil {
		a.log.Error("listing deploys", "err", err)
		writeError(w, http.StatusInternalServerError, "could not read deploys")
		return
	}
	out := deploymentList{Deployments: ds}
	if out.Deployments == nil {
		out.Deployments = []deploy.Deploy{}
	}
	if len(ds) == f.Limit {
		out.Next = ds[len(ds)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getDeployment(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return
	}
	d, err := a.st.Deploy(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no deployment %d", id))
		return
	}
	if err != nil {
		a.log.Error("reading deploy", "deploy", id, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the deploy")
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.st.Ping(ctx); err != nil {
		a.log.Warn("not ready: store unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
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
