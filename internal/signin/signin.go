// Package signin guards the dashboard and the read API. People sign in with GitHub, through the
// App's own user authorization (its client id and secret): the authorization carries a random
// state, tied to the browser by a sealed short-lived cookie, and a PKCE challenge whose verifier
// only that cookie holds, so neither a forged redirect nor a stolen code signs anyone in. A
// sign-in becomes a session kept in the store, shared by every replica: the browser gets a
// signed, HttpOnly, SameSite=Lax cookie (Secure behind TLS) carrying only a random id; the
// store keeps the id's hash and the person's GitHub token sealed with a key derived from the
// client secret. Forms (sign-out) carry a token derived from the session.
//
// What a person may read is asked of GitHub with their own token — the App's installations they
// can reach and the repositories they can read there, with their permission — and remembered
// for signin.access_ttl: they see the apps of those repositories, and the command audit trail of
// those they administer. Scripts present a read-only API token whose SHA-256 is configured;
// tokens are compared in constant time. On a local trial (no GitHub App, listening on loopback)
// everything is open; everywhere else a request nobody vouched for sees only the sign-in page
// (or 401 on /api/).
package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	_ "embed"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/store"
	"golang.org/x/oauth2"
)

// Sessions is where sessions live: the store, shared by every replica.
type Sessions interface {
	CreateSession(ctx context.Context, s store.Session) error
	Session(ctx context.Context, idHash string) (store.Session, error)
	DeleteSession(ctx context.Context, idHash string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

// Options configure the gate.
type Options struct {
	Config   *config.Config // github.client_id and its secret, signin.*, the apps
	Sessions Sessions
	// WebURL is GitHub's web root (https://github.com, or the GitHub Enterprise host): where
	// people authorize the App and codes are exchanged.
	WebURL string
	// HTTPClient calls GitHub (default: a client with a 20 s timeout).
	HTTPClient *http.Client
	UserAgent  string
	Log        *slog.Logger
	Now        func() time.Time // the clock; tests replace it
}

// Gate serves the sign-in routes and lets through only requests someone vouched for.
type Gate struct {
	cfg        *config.Config
	sessions   Sessions
	keys       *keys // nil: people cannot sign in (no client id)
	oauth      *oauth2.Config
	clientID   string
	secret     string
	publicURL  string
	apiURL     string
	hc         *http.Client
	userAgent  string
	log        *slog.Logger
	now        func() time.Time
	sessionTTL time.Duration
	accessTTL  time.Duration
	tokens     []apiToken
	openLocal  bool
	cache      grantCache
	// exchanges bounds the code exchanges with GitHub in flight: a callback with a flow cookie
	// costs a call to GitHub, and anyone can replay their own cookie for ten minutes.
	exchanges chan struct{}
}

// maxExchanges is how many code exchanges may wait on GitHub at once; more answer 503.
const maxExchanges = 16

// The cookies: the session, and the sign-in flow in progress (sent only to /signin/).
const (
	sessionCookie = "stagecoach_session"
	flowCookie    = "stagecoach_signin"
	flowPath      = "/signin/"
	flowLifetime  = 10 * time.Minute
)

// New builds the gate. With github.client_id set it reads the client secret and derives the
// keys from it; a client id whose secret cannot be read is an error, not an open door.
func New(o Options) (*Gate, error) {
	cfg := o.Config
	g := &Gate{cfg: cfg, sessions: o.Sessions, publicURL: cfg.SignIn.PublicURL, apiURL: cfg.GitHub.APIURL,
		hc: o.HTTPClient, userAgent: o.UserAgent, log: o.Log, now: o.Now,
		sessionTTL: cfg.SignIn.SessionTTL, accessTTL: cfg.SignIn.AccessTTL, openLocal: cfg.OpenLocally(),
		exchanges: make(chan struct{}, maxExchanges)}
	if g.hc == nil {
		g.hc = &http.Client{Timeout: 20 * time.Second}
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.userAgent == "" {
		g.userAgent = "stagecoach"
	}
	var err error
	if g.tokens, err = apiTokens(cfg); err != nil {
		return nil, err
	}
	if !cfg.GitHub.SignInConfigured() {
		return g, nil
	}
	secret, err := cfg.GitHub.ReadClientSecret()
	if err != nil {
		return nil, fmt.Errorf("sign-in: github.client_id is set but its secret is not readable: %w", err)
	}
	if g.keys, err = deriveKeys(secret); err != nil {
		return nil, fmt.Errorf("sign-in: %w", err)
	}
	if o.Sessions == nil {
		return nil, errors.New("sign-in: no session store")
	}
	web := strings.TrimSuffix(o.WebURL, "/")
	g.clientID, g.secret = cfg.GitHub.ClientID, string(secret)
	g.oauth = &oauth2.Config{ClientID: g.clientID, ClientSecret: g.secret,
		Endpoint: oauth2.Endpoint{AuthURL: web + "/login/oauth/authorize", TokenURL: web + "/login/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}}
	if g.publicURL != "" {
		g.oauth.RedirectURL = g.publicURL + "/signin/callback"
	}
	return g, nil
}

// SignInEnabled reports whether people can sign in with GitHub.
func (g *Gate) SignInEnabled() bool { return g.keys != nil }

// Register adds the sign-in routes to mux.
func (g *Gate) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /signin", g.page)
	mux.HandleFunc("GET /signin/github", g.start)
	mux.HandleFunc("GET /signin/callback", g.callback)
	mux.HandleFunc("POST /signout", g.signOut)
}

// ownPaths are the gate's routes, open to everyone (they guard themselves).
var ownPaths = []string{"/signin", "/signin/github", "/signin/callback", "/signout"}

// Protect lets a request through to next only when someone vouched for it: a session, an API
// token (GET and HEAD under /api/ only; elsewhere a token counts for nothing), or the local
// trial. The request's context then carries the access.Viewer. The exact paths in public, and
// the gate's own, pass untouched. Everyone else gets 401 under /api/ and the sign-in page
// elsewhere.
func (g *Gate) Protect(next http.Handler, public ...string) http.Handler {
	pass := map[string]bool{}
	for _, p := range slices.Concat(public, ownPaths) {
		pass[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pass[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		privateHeaders(w)
		v, ok := g.vouch(w, r)
		if !ok {
			return
		}
		next.ServeHTTP(w, r.WithContext(access.WithViewer(r.Context(), v)))
	})
}

// privateHeaders keep what the gate lets through out of shared caches and other sites' frames.
func privateHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Cookie, Authorization")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Security-Policy", "frame-ancestors 'self'")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// vouch finds who is behind r, or answers it (401, 403, 503 or the way to sign in) and
// returns false.
func (g *Gate) vouch(w http.ResponseWriter, r *http.Request) (*access.Viewer, bool) {
	if scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " "); isAPI(r) && strings.EqualFold(scheme, "Bearer") {
		v := tokenViewer(g.tokens, cred)
		switch {
		case v == nil:
			g.log.Warn("refused an API token", "path", r.URL.Path, "remote", r.RemoteAddr)
			unauthorized(w, "the API token is not valid")
			return nil, false
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			apiError(w, http.StatusForbidden, "API tokens are read-only")
			return nil, false
		}
		return v, true
	}
	if g.keys != nil {
		v, err := g.personFor(w, r)
		switch {
		case err == nil && v != nil:
			return v, true
		case err != nil:
			g.log.Error("sign-in: asking GitHub what a person may read", "err", err)
			if isAPI(r) {
				apiError(w, http.StatusServiceUnavailable, "GitHub could not be asked what you may read; try again shortly")
			} else {
				http.Error(w, "GitHub could not be asked what you may read; try again shortly.", http.StatusServiceUnavailable)
			}
			return nil, false
		}
	}
	if g.openLocal {
		return access.Everything(), true
	}
	switch {
	case isAPI(r):
		unauthorized(w, "sign in at /signin, or send an API token: Authorization: Bearer TOKEN")
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		http.Redirect(w, r, "/signin?return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	default:
		http.Error(w, "sign in first", http.StatusUnauthorized)
	}
	return nil, false
}

// personFor returns the signed-in person of r, nil when there is none (a missing, forged,
// expired or ended session, whose cookie is then cleared), or an error when GitHub could not
// say what they may read.
func (g *Gate) personFor(w http.ResponseWriter, r *http.Request) (*access.Viewer, error) {
	id, sess, ok := g.session(w, r)
	if !ok {
		return nil, nil
	}
	token, err := open(g.keys.seal, sess.Token, sess.IDHash)
	if err != nil {
		g.log.Warn("sign-in: a session's token does not open (was the client secret rotated?)", "login", sess.Login)
		g.endSession(r.Context(), w, r, sess.IDHash)
		return nil, nil
	}
	grants, err := g.grants(r.Context(), sess.IDHash, string(token))
	if errors.Is(err, errTokenDead) {
		g.log.Info("sign-in: GitHub no longer takes the session's token; signed out", "login", sess.Login)
		g.endSession(r.Context(), w, r, sess.IDHash)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := access.New(sess.Login, "", grants)
	v.CSRF = g.keys.csrfToken(id)
	return v, nil
}

// session returns the live session r's cookie names. A cookie that is not ours, or whose
// session has expired or ended, is cleared.
func (g *Gate) session(w http.ResponseWriter, r *http.Request) ([]byte, store.Session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, store.Session{}, false
	}
	id, ok := g.keys.sessionID(c.Value)
	if !ok {
		g.clearCookie(w, r, sessionCookie, "/")
		return nil, store.Session{}, false
	}
	sess, err := g.sessions.Session(r.Context(), idHash(id))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			g.log.Error("sign-in: reading a session", "err", err)
		}
		g.clearCookie(w, r, sessionCookie, "/")
		return nil, store.Session{}, false
	}
	if !g.now().Before(sess.ExpiresAt) {
		g.endSession(r.Context(), w, r, sess.IDHash)
		return nil, store.Session{}, false
	}
	return id, sess, true
}

// endSession deletes a session, forgets what it could read and clears its cookie.
func (g *Gate) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request, hash string) {
	if err := g.sessions.DeleteSession(context.WithoutCancel(ctx), hash); err != nil {
		g.log.Error("sign-in: ending a session", "err", err)
	}
	g.cache.forget(hash)
	g.clearCookie(w, r, sessionCookie, "/")
}

// secure reports whether cookies must be Secure: the public URL is https, or the request came
// over TLS (directly or, as the proxy says, in front of Stagecoach).
func (g *Gate) secure(r *http.Request) bool {
	if g.publicURL != "" {
		return strings.HasPrefix(g.publicURL, "https://")
	}
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (g *Gate) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: g.secure(r), SameSite: http.SameSiteLaxMode})
}

func (g *Gate) clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: g.secure(r), SameSite: http.SameSiteLaxMode})
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="stagecoach"`)
	apiError(w, http.StatusUnauthorized, msg)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("signin").Parse(pageHTML))
