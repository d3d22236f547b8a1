package signin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/access"
)

func gateFor(t *testing.T, yaml string) (*Gate, error) {
	t.Helper()
	cfg, err := config.Parse("modes.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Config: cfg, WebURL: "https://github.com"})
}

func serveGate(g *Gate) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "all=%v", access.From(r.Context()).All())
	})
	mux.HandleFunc("GET /api/v1/x", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "token=%s", access.From(r.Context()).Token)
	})
	g.Register(mux)
	return g.Protect(mux)
}

func get(h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httpRequest("GET", path, header...))
	return w
}

// TestLocalTrialIsOpenOnlyOnLoopback: with no GitHub App and a loopback listener everything is
// open; listening on every interface, it is closed.
func TestLocalTrialIsOpenOnlyOnLoopback(t *testing.T) {
	for listen, open := range map[string]bool{"127.0.0.1:8080": true, ":8080": false, "0.0.0.0:8080": false} {
		g, err := gateFor(t, fmt.Sprintf("listen: %q\n", listen))
		if err != nil {
			t.Fatal(err)
		}
		w := get(serveGate(g), "/")
		if got := w.Code == 200 && w.Body.String() == "all=true"; got != open {
			t.Errorf("listen %s: %d %s, want open=%v", listen, w.Code, w.Body, open)
		}
	}
}

// TestWithoutClientIDOnlyTokensGetIn: an App without a client id lets nobody sign in, says so,
// and lets API tokens in.
func TestWithoutClientIDOnlyTokensGetIn(t *testing.T) {
	g, err := gateFor(t, fmt.Sprintf(`listen: "127.0.0.1:8080"
github: {app_id: 1, private_key_file: /k.pem}
signin: {api_tokens: [{name: board, sha256: %s}]}
`, boardHash))
	if err != nil {
		t.Fatal(err)
	}
	h := serveGate(g)
	if w := get(h, "/"); w.Code != http.StatusSeeOther {
		t.Errorf("anonymous on loopback with an App: %d %s", w.Code, w.Body)
	}
	if w := get(h, "/signin"); !strings.Contains(w.Body.String(), "not set up") {
		t.Errorf("the sign-in page does not say sign-in is off: %s", w.Body)
	}
	if w := get(h, "/signin/github"); w.Code != http.StatusNotFound {
		t.Errorf("starting a sign-in: %d", w.Code)
	}
	if w := get(h, "/api/v1/x", bearer(boardToken)...); w.Code != 200 || w.Body.String() != "token=board" {
		t.Errorf("a token: %d %s", w.Code, w.Body)
	}
}

// TestClientIDWithoutReadableSecretDoesNotStart: a client id whose secret cannot be read stops
// the start, naming the file and never a secret.
func TestClientIDWithoutReadableSecretDoesNotStart(t *testing.T) {
	_, err := gateFor(t, "github: {client_id: Iv23li, client_secret_file: /nonexistent/secret}\n")
	if err == nil || !strings.Contains(err.Error(), "github.client_secret_file") {
		t.Errorf("New = %v", err)
	}
}
