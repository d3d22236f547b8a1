package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

type apiStub struct{}

func (apiStub) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
}

func TestRoutesAndRecovery(t *testing.T) {
	h := Handler(Routes{
		Webhook: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("handler bug") }),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }),
		API:     apiStub{},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/webhook", 500}, {"GET", "/metrics", 299}, {"GET", "/healthz", 200}, {"GET", "/nope", 404}, {"POST", "/metrics", 405},
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
