// Package server assembles Stagecoach's HTTP surface from parts built elsewhere, on two
// listeners. The public one must be reachable from GitHub: it serves the webhook, which proves
// itself by its signature, and whatever people and scripts reach through the sign-in. The
// internal one (loopback by default) serves what only operators and the cluster need: the
// probes and the metrics. The package owns routing and the HTTP servers' limits, nothing else.
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

// The limits of both servers. A header must arrive within ReadHeaderTimeout; a webhook's body
// has its own deadline (package webhook), and ReadTimeout is the backstop for any other request.
// GitHub gives up on a delivery after 10 s, so nothing that takes longer is GitHub.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	// MaxHeaderBytes bounds a request's header block (GitHub sends about 1 KiB; a signed-in
	// browser a few more).
	MaxHeaderBytes = 16 << 10
)

// recoverer turns a panic in one request into a 500 and a log line instead of a dead process.
// The answer is a fixed text: a panic's value never leaves the process.
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

// newServer is an http.Server with the package's limits; headerTimeout 0 is ReadHeaderTimeout.
func newServer(h http.Handler, headerTimeout time.Duration, log *slog.Logger) *http.Server {
	if headerTimeout == 0 {
		headerTimeout = ReadHeaderTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Listener is one address and what it serves.
type Listener struct {
	Name     string // "public", "internal": for errors and logs
	Listener net.Listener
	Handler  http.Handler
	// headerTimeout replaces ReadHeaderTimeout in this package's tests.
	headerTimeout time.Duration
}

// Serve serves every listener until ctx ends or one of them fails, then shuts them all down
// gracefully, letting requests in flight (deliveries being recorded) finish. A replica that
// lost one of its doors stops rather than run half-visible.
func Serve(ctx context.Context, log *slog.Logger, ls ...Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			err := serve(ctx, l, log)
			if err != nil {
				err = fmt.Errorf("%s listener: %w", l.Name, err)
			}
			cancel() // one door closed: close the others too
			errc <- err
		}()
	}
	var errs []error
	for range ls {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serve runs one listener's server until ctx ends.
func serve(ctx context.Context, l Listener, log *slog.Logger) error {
	srv := newServer(l.Handler, l.headerTimeout, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l.Listener) }()
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
