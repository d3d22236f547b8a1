package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/webhook"
)

func TestRunSendsUniqueSignedDeliveries(t *testing.T) {
	secret, body := []byte("s"), []byte(`{"action":"closed"}`)
	var mu sync.Mutex
	seen := map[string]int{}
	bad := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Hub-Signature-256") != webhook.Sign(secret, b) || r.Header.Get("X-GitHub-Event") != "pull_request" {
			bad++
		}
		seen[r.Header.Get("X-GitHub-Delivery")]++
		if len(seen)%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{URL: srv.URL, Event: "pull_request", Payload: body, Secret: secret,
		Connections: 4, Requests: 200, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || len(seen) != 200 || bad != 0 {
		t.Errorf("requests %d, unique deliveries %d, badly signed %d; want 200, 200, 0", res.Requests, len(seen), bad)
	}
	if res.Errors != 20 || res.Status[503] != 20 || res.OK() != 180 {
		t.Errorf("errors %d, status %v; want 20 errors (every tenth answered 503)", res.Errors, res.Status)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 || res.RPS() <= 0 {
		t.Errorf("latencies not measured: %s", res)
	}
}

func TestRefusesRemoteTargets(t *testing.T) {
	for _, u := range []string{"http://192.0.2.10/webhook", "http://8.8.8.8/webhook", "ftp://127.0.0.1/"} {
		_, err := Run(context.Background(), Options{URL: u, Event: "push", Payload: []byte("{}"), Secret: []byte("s"), Requests: 1})
		if err == nil {
			t.Errorf("%s: load was sent", u)
		}
	}
	if err := checkTarget("http://127.0.0.1:1/webhook", false); err != nil {
		t.Errorf("loopback refused: %v", err)
	}
	if err := checkTarget("http://192.0.2.10/webhook", true); err != nil {
		t.Errorf("--allow-remote ignored: %v", err)
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if quantile(d, 0.5) != 50*time.Millisecond || quantile(d, 0.99) != 99*time.Millisecond || quantile(nil, 0.5) != 0 {
		t.Errorf("quantiles wrong: %s %s", quantile(d, 0.5), quantile(d, 0.99))
	}
	if !strings.Contains(deliveryID("0123456789abcdef", 1), "-") {
		t.Error("delivery id is not UUID-shaped")
	}
}
