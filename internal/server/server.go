// Package server assembles Stagecoach's HTTP surface from parts built elsewhere: the webhook
// intake, the read API, the dashboard, the sign-in and the metrics. It owns routing and the HTTP
// server's limits, nothing else. Everything but the public paths (GitHub's deliveries, the
// probes and metrics) is behind the sign-in gate; without a gate, behind nothing but a 401.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"
)

// Routes are the handlers the server mounts.
type Routes struct {
	Webhook   http.Handler
	Metrics   http.Handler
	Dashboard http.Handler // GET /; nil for none
	// API registers its own routes (/api/v1/..., /healthz, /readyz).
	API interface{ Register(*http.ServeMux) }
	// SignIn serves the sign-in routes and guards every route but the public ones; nil closes
	// them all (401).
	SignIn Gate
}

// Gate is the sign-in: its own routes, and the guard in front of everything not public.
type Gate interface {
	Register(*http.ServeMux)
	Protect(next http.Handler, public ...string) http.Handler
}

// public are the paths anyone may reach: GitHub's deliveries (the intake checks their
// signature), and the probes and metrics.
var public = []string{"/webhook", "/healthz", "/readyz", "/metrics"}

// Handler builds the router.
func Handler(r Routes, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhook", r.Webhook)
	mux.Handle("GET /metrics", r.Metrics)
	if r.Dashboard != nil {
		mux.Handle("GET /{$}", r.Dashboard)
	}
	r.API.Register(mux)
	var h http.Handler = closed(mux)
	if r.SignIn != nil {
		r.SignIn.Register(mux)
		h = r.SignIn.Protect(mux, public...)
	}
	return recoverer(h, log)
}

// closed serves only the public paths; everything else is refused.
func closed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(public, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, "sign in first", http.StatusUnauthorized)
	})
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
