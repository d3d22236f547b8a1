package server

import (
	"log/slog"
	"net/http"
)

// Registrar adds its routes to a mux: the read API, the sign-in's own pages.
type Registrar interface{ Register(*http.ServeMux) }

// Route makes one pattern and its handler a Registrar.
func Route(pattern string, h http.Handler) Registrar { return route{pattern, h} }

type route struct {
	pattern string
	h       http.Handler
}

func (r route) Register(mux *http.ServeMux) { mux.Handle(r.pattern, r.h) }

// Public is what the public listener serves: the one port that must be open to the internet,
// because GitHub's deliveries come through it. Nothing else an operator needs (probes, metrics)
// is here, and no error text leaves through it: handlers answer fixed texts for failures.
//
// It is assembled in three parts, so that the sign-in plugs in without touching the rest:
//
//   - Webhook serves /webhook. It authenticates every delivery by its signature, before
//     anything else, so it is never behind Gate.
//   - Open are routes anyone may reach: the sign-in's own pages (sign in, the OAuth callback,
//     sign out), which guard themselves. Keep them few.
//   - People are the routes for people and scripts: the dashboard (GET /) and the read API
//     (/api/v1/...). Every request that is not for /webhook or an Open route goes through Gate
//     to them, unknown paths included, so a path the gate does not let through reveals nothing.
type Public struct {
	Webhook http.Handler
	Open    []Registrar
	People  []Registrar
	// Gate wraps People: the sign-in (a session or an API token), which answers anonymous
	// callers itself. nil closes People: every request but /webhook and the Open routes is
	// answered 401, so a server assembled without its sign-in never opens the dashboard or the
	// API by mistake.
	Gate func(http.Handler) http.Handler
}

// Handler builds the public router.
func (p Public) Handler(log *slog.Logger) http.Handler {
	people := http.NewServeMux()
	for _, r := range p.People {
		r.Register(people)
	}
	rest := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "sign in first", http.StatusUnauthorized)
	})
	mux := http.NewServeMux()
	mux.Handle("/webhook", p.Webhook)
	for _, r := range p.Open {
		r.Register(mux)
	}
	if p.Gate != nil {
		mux.Handle("/", p.Gate(people))
	} else {
		mux.Handle("/", rest)
	}
	return recoverer(mux, log)
}
