package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// answer is a handler that answers status with body.
func answer(status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func do(h http.Handler, method, path string) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w.Code, w.Body.String()
}

// The public listener serves the webhook and the people's routes, and nothing of the internal
// one: an anonymous caller on the internet cannot scrape the metrics or read the probes.
func TestMetricsAndProbesAreNotOnThePublicListener(t *testing.T) {
	public := Public{
		Webhook: answer(401, "webhook"),
		People:  []Registrar{Route("GET /{$}", answer(200, "dashboard")), Route("GET /api/v1/locks", answer(200, "locks"))},
		Gate:    func(h http.Handler) http.Handler { return h }, // a gate that lets everyone by: only the routes count here
	}.Handler(quiet)
	internal := Internal{Metrics: answer(200, "metrics"), Store: pinger{}}.Handler(quiet)
	for _, tt := range []struct {
		name         string
		h            http.Handler
		method, path string
		status       int
		body         string
	}{
		{"public webhook", public, "POST", "/webhook", 401, "webhook"},
		{"public dashboard", public, "GET", "/", 200, "dashboard"},
		{"public API", public, "GET", "/api/v1/locks", 200, "locks"},
		{"public metrics", public, "GET", "/metrics", 404, ""},
		{"public healthz", public, "GET", "/healthz", 404, ""},
		{"public readyz", public, "GET", "/readyz", 404, ""},
		{"public unknown", public, "GET", "/nope", 404, ""},
		{"internal metrics", internal, "GET", "/metrics", 200, "metrics"},
		{"internal healthz", internal, "GET", "/healthz", 200, `"ok"`},
		{"internal readyz", internal, "GET", "/readyz", 200, `"ready"`},
		{"internal webhook", internal, "POST", "/webhook", 404, ""},
		{"internal dashboard", internal, "GET", "/", 404, ""},
		{"internal API", internal, "GET", "/api/v1/locks", 404, ""},
		{"internal metrics POST", internal, "POST", "/metrics", 405, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.h, tt.method, tt.path)
			if code != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("%s %s = %d %q, want %d with %q", tt.method, tt.path, code, body, tt.status, tt.body)
			}
		})
	}
}

// /readyz says the store does not answer, never why: the error names hosts, users and paths.
func TestReadyzShowsNoStoreError(t *testing.T) {
	const secretish = "dial tcp db.internal:5432: password authentication failed for user stagecoach"
	code, body := do(Internal{Metrics: answer(200, ""), Store: pinger{errors.New(secretish)}}.Handler(quiet), "GET", "/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("readyz = %d, want 503", code)
	}
	for _, leak := range []string{"db.internal", "password", "stagecoach", "5432"} {
		if strings.Contains(body, leak) {
			t.Errorf("readyz answered %q, which gives away %q", body, leak)
		}
	}
}

// The gate sits in front of every people's route and of unknown paths, never in front of the
// webhook or the open routes (the sign-in's own pages).
func TestGateCoversPeopleNotWebhook(t *testing.T) {
	var gated []string
	gate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gated = append(gated, r.URL.Path)
			w.WriteHeader(http.StatusUnauthorized)
		})
	}
	h := Public{
		Webhook: answer(202, "webhook"),
		Open:    []Registrar{Route("GET /signin", answer(200, "sign in"))},
		People:  []Registrar{Route("GET /{$}", answer(200, "dashboard")), Route("GET /api/v1/locks", answer(200, "locks"))},
		Gate:    gate,
	}.Handler(quiet)
	for path, want := range map[string]int{"/webhook": 202, "/signin": 200, "/": 401, "/api/v1/locks": 401, "/metrics": 401, "/nope": 401} {
		method := "GET"
		if path == "/webhook" {
			method = "POST"
		}
		if code, _ := do(h, method, path); code != want {
			t.Errorf("%s %s = %d, want %d", method, path, code, want)
		}
	}
	slices.Sort(gated)
	if want := []string{"/", "/api/v1/locks", "/metrics", "/nope"}; !slices.Equal(gated, want) {
		t.Errorf("gated %v, want %v", gated, want)
	}
}

// TestWithoutGateOnlyPublicPathsAnswer: a public listener assembled without its sign-in serves
// GitHub's deliveries and the open routes, and refuses the dashboard and the API rather than
// opening them.
func TestWithoutGateOnlyPublicPathsAnswer(t *testing.T) {
	h := Public{
		Webhook: answer(202, "webhook"),
		Open:    []Registrar{Route("GET /signin", answer(200, "sign in"))},
		People:  []Registrar{Route("GET /{$}", answer(200, "dashboard")), Route("GET /api/v1/locks", answer(200, "locks"))},
	}.Handler(quiet)
	for path, want := range map[string]int{"/webhook": 202, "/signin": 200, "/": 401, "/api/v1/locks": 401, "/nope": 401} {
		method := "GET"
		if path == "/webhook" {
			method = "POST"
		}
		if code, body := do(h, method, path); code != want || (want == 401 && strings.Contains(body, "dashboard")) {
			t.Errorf("%s %s = %d %q, want %d", method, path, code, body, want)
		}
	}
}

// A panic in a handler is a 500 with a fixed text, not a dead process or a leaked value.
func TestPanicIsAFixedInternalError(t *testing.T) {
	h := Public{Webhook: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("token ghs_secret") })}.Handler(quiet)
	code, body := do(h, "POST", "/webhook")
	if code != 500 || strings.Contains(body, "ghs_secret") {
		t.Errorf("panic answered %d %q", code, body)
	}
}

// Serve lets a request in flight finish when ctx ends, on every listener, and stops them all.
func TestServeShutsDownGracefully(t *testing.T) {
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release // a delivery being recorded when the signal comes
		w.WriteHeader(202)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, quiet, Listener{Name: "public", Listener: pub, Handler: h},
			Listener{Name: "internal", Listener: in, Handler: answer(200, "")})
	}()
	resp := make(chan int, 1)
	go func() {
		r, err := http.Post("http://"+pub.Addr().String()+"/", "application/json", nil)
		if err != nil {
			resp <- 0
			return
		}
		r.Body.Close()
		resp <- r.StatusCode
	}()
	<-started
	cancel()
	close(release)
	if code := <-resp; code != 202 {
		t.Errorf("request in flight at shutdown got %d, want 202", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if _, err := http.Get("http://" + in.Addr().String() + "/"); err == nil {
		t.Error("the internal listener still answers after Serve returned")
	}
}

// When one listener fails, Serve closes the other and says which one failed.
func TestServeStopsWhenOneListenerFails(t *testing.T) {
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.Close() // Serve on a closed listener fails at once
	err = Serve(context.Background(), quiet, Listener{Name: "public", Listener: pub, Handler: answer(200, "")},
		Listener{Name: "internal", Listener: in, Handler: answer(200, "")})
	if err == nil || !strings.Contains(err.Error(), "internal listener") {
		t.Errorf("Serve = %v, want the internal listener's error", err)
	}
}

// serveOne serves h on a loopback listener until the test ends and returns its address.
func serveOne(t *testing.T, l Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Name, l.Listener = "public", ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, quiet, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return ln.Addr().String()
}

// A header block over MaxHeaderBytes is refused (431) before any handler runs.
func TestOversizedHeadersAreRefused(t *testing.T) {
	addr := serveOne(t, Listener{Handler: answer(200, "handled")})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Go allows 4 KiB of slack over MaxHeaderBytes; send well past both.
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", strings.Repeat("a", MaxHeaderBytes+8<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers answered %d, want 431", resp.StatusCode)
	}
}

// A sender that never finishes its headers is disconnected at the header timeout, before any
// handler runs (slowloris). The production timeout is ReadHeaderTimeout; this test shortens it.
func TestSlowHeadersAreCutOff(t *testing.T) {
	handled := make(chan struct{}, 1)
	addr := serveOne(t, Listener{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { handled <- struct{}{} }),
		headerTimeout: 100 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /webhook HTTP/1.1\r\nHost: x\r\n") // and nothing more
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("reading until the server hangs up: %v", err)
	}
	select {
	case <-handled:
		t.Error("a handler ran for a request whose headers never ended")
	default:
	}
	if ReadHeaderTimeout > 10*time.Second {
		t.Errorf("ReadHeaderTimeout %s: GitHub sends its headers at once and gives up after 10 s", ReadHeaderTimeout)
	}
}
