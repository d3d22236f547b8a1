package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

type apiStub struct{}

func (apiStub) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	mux.HandleFunc("GET /api/v1/deployments", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
}

// gateStub lets through requests with the header X-Vouched, as a sign-in would a session.
type gateStub struct{}

func (gateStub) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(298) })
}

func (gateStub) Protect(next http.Handler, public ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vouched") == "" && r.URL.Path != "/signin" && !slices.Contains(public, r.URL.Path) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func routes(gate Gate) http.Handler {
	return Handler(Routes{
		Webhook:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("handler bug") }),
		Metrics:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }),
		Dashboard: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(297) }),
		API:       apiStub{},
		SignIn:    gate,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestRoutesAndRecovery(t *testing.T) {
	h := routes(gateStub{})
	for _, tt := range []struct {
		method, path string
		vouched      bool
		status       int
	}{
		{"POST", "/webhook", false, 500}, {"GET", "/metrics", false, 299}, {"GET", "/healthz", false, 200}, {"POST", "/metrics", false, 405},
		{"GET", "/signin", false, 298},
		{"GET", "/", false, 401}, {"GET", "/api/v1/deployments", false, 401}, {"GET", "/nope", false, 401},
		{"GET", "/", true, 297}, {"GET", "/api/v1/deployments", true, 200}, {"GET", "/nope", true, 404},
	} {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.vouched {
			r.Header.Set("X-Vouched", "yes")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s %s (vouched %v) = %d, want %d", tt.method, tt.path, tt.vouched, w.Code, tt.status)
		}
	}
}

// TestWithoutGateOnlyPublicPathsAnswer: a server assembled without the sign-in serves GitHub's
// deliveries and the probes, and refuses the dashboard and the API rather than opening them.
func TestWithoutGateOnlyPublicPathsAnswer(t *testing.T) {
	h := routes(nil)
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/webhook", 500}, {"GET", "/metrics", 299}, {"GET", "/healthz", 200},
		{"GET", "/", 401}, {"GET", "/api/v1/deployments", 401}, {"GET", "/nope", 401},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.status {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, w.Code, tt.status)
		}
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond) // a delivery being recorded when the signal comes
		w.WriteHeader(202)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	resp := make(chan int, 1)
	go func() {
		r, err := http.Post("http://"+ln.Addr().String()+"/", "application/json", nil)
		if err != nil {
			resp <- 0
			return
		}
		r.Body.Close()
		resp <- r.StatusCode
	}()
	<-started
	cancel()
	if code := <-resp; code != 202 {
		t.Errorf("request in flight at shutdown got %d, want 202", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}
