package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

func newAPI(t *testing.T) (http.Handler, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i, sha := range []string{"a1", "b2", "c3"} {
		_, err := st.Record(context.Background(), store.Intake{
			Delivery: store.Delivery{ID: sha, Event: "push"},
			Deploys: []deploy.Request{{App: "hello", Stage: []string{"test", "test", "alpha"}[i], Repo: "acme/hello", SHA: sha,
				Trigger: deploy.Trigger{Event: "push", Delivery: sha, Actor: "octocat"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	New(st, slog.New(slog.NewTextHandler(io.Discard, nil))).Register(mux)
	return mux, st
}

// get asks as the local trial's viewer, who may read everything.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	return getAs(t, h, access.Everything(), path)
}

// getAs asks as v; nil asks as nobody.
func getAs(t *testing.T, h http.Handler, v *access.Viewer, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if v != nil {
		r = r.WithContext(access.WithViewer(r.Context(), v))
	}
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func TestDeployments(t *testing.T) {
	h, _ := newAPI(t)
	tests := []struct {
		path   string
		status int
		shas   []string // expected order, newest first
		body   string   // substring, for errors
	}{
		{path: "/api/v1/deployments", status: 200, shas: []string{"c3", "b2", "a1"}},
		{path: "/api/v1/deployments?stage=test", status: 200, shas: []string{"b2", "a1"}},
		{path: "/api/v1/deployments?state=superseded", status: 200, shas: []string{"a1"}},
		{path: "/api/v1/deployments?app=nope", status: 200, shas: []string{}},
		{path: "/api/v1/deployments?limit=1", status: 200, shas: []string{"c3"}, body: `"next_before": 3`},
		{path: "/api/v1/deployments?limit=1&before=3", status: 200, shas: []string{"b2"}},
		{path: "/api/v1/deployments?state=done", status: 400, body: `unknown state \"done\"`},
		{path: "/api/v1/deployments?limit=0", status: 400, body: "limit: want an integer from 1 to 1000"},
		{path: "/api/v1/deployments/2", status: 200, body: `"sha": "b2"`},
		{path: "/api/v1/deployments/99", status: 404, body: "no deployment 99"},
		{path: "/api/v1/deployments/x", status: 400, body: "positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, h, tt.path)
			if code != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("%d %s; want %d with %q", code, body, tt.status, tt.body)
			}
			if tt.shas == nil {
				return
			}
			var out struct {
				Deployments []struct {
					SHA     string `json:"sha"`
					Trigger struct{ Actor string }
				}
			}
			if err := json.Unmarshal([]byte(body), &out); err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, d := range out.Deployments {
				got = append(got, d.SHA)
				if d.Trigger.Actor != "octocat" {
					t.Errorf("trigger not in the answer: %s", body)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.shas, ",") {
				t.Errorf("shas = %v, want %v", got, tt.shas)
			}
		})
	}
}
