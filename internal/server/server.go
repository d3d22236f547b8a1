// Package server assembles Stagecoach's HTTP surface from parts built elsewhere: the webhook
// intake, the read API and the metrics. It owns routing and the HTTP server's limits, nothing
// else.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Routes are the handlers the server mounts.
type Routes struct {
	Webhook   http.Handler
	Metrics   http.Handler
	Dashboard http.Handler // GET /; nil for none
	// API registers its own routes (/api/v1/..., /healthz, /readyz).
	API interface{ Register(*http.ServeMux) }
}

// Handler builds the router.
func Handler(r Routes, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhook", r.Webhook)
	mux.Handle("GET /metrics", r.Metrics)
	if r.Dashboard != nil {
		mux.Handle("GET /{$}", r.Dashboard)
	}
	r.API.Register(mux)
	return recoverer(mux, log)
}

// recoverer turns a panic in one request into a 500 and a log line instead of a dead process.
func recoverer(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Serve listens on ln until ctx ends, then shuts down gracefully, letting requests in flight
// (deliveries being recorded) finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // 25 MiB over a slow link
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutting down HTTP: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
