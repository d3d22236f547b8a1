package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// Pinger answers whether the store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Internal is what the internal listener serves: the kubelet's probes and Prometheus's scrape.
// It listens on loopback unless configured otherwise (in a pod, on the pod's address, which the
// Service does not expose).
type Internal struct {
	Metrics http.Handler
	Store   Pinger
}

// readyTimeout bounds /readyz's question to the store.
const readyTimeout = 2 * time.Second

// Handler builds the internal router: GET /metrics, /healthz and /readyz, nothing else.
func (in Internal) Handler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", in.Metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := in.Store.Ping(ctx); err != nil {
			// The error (a host name, a user, a path) goes to the log, not to whoever asks.
			log.Warn("not ready: store unreachable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": "not answering; see the log"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return recoverer(mux, log)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
