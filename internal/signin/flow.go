package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/store"
	"golang.org/x/oauth2"
)

// flowState is the sign-in in progress, sealed into its cookie: the state GitHub must send back,
// the PKCE verifier only this browser knows, and where to go afterwards.
type flowState struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Expires  int64  `json:"e"` // unix seconds
}

// pageData is what the sign-in page shows.
type pageData struct {
	Enabled   bool
	ReturnTo  string
	SignedOut bool
	Problem   string
}

func (g *Gate) render(w http.ResponseWriter, status int, d pageData) {
	privateHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, d); err != nil {
		g.log.Error("sign-in: rendering the page", "err", err)
	}
}

// page is the sign-in page; someone signed in already goes on to where they were going.
func (g *Gate) page(w http.ResponseWriter, r *http.Request) {
	ret := localPath(r.URL.Query().Get("return_to"))
	if g.keys != nil {
		if _, _, ok := g.session(w, r); ok {
			http.Redirect(w, r, ret, http.StatusSeeOther)
			return
		}
	}
	g.render(w, http.StatusOK, pageData{Enabled: g.keys != nil, ReturnTo: ret, SignedOut: r.URL.Query().Has("signed_out")})
}

// start sends the browser to GitHub to authorize the App, with a fresh state and PKCE challenge
// whose secrets stay in a sealed cookie only /signin/ receives.
func (g *Gate) start(w http.ResponseWriter, r *http.Request) {
	if g.keys == nil {
		g.render(w, http.StatusNotFound, pageData{Problem: "Signing in with GitHub is not set up here."})
		return
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	f := flowState{State: b64.EncodeToString(raw), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: localPath(r.URL.Query().Get("return_to")), Expires: g.now().Add(flowLifetime).Unix()}
	b, err := json.Marshal(f)
	if err != nil {
		http.Error(w, "could not start the sign-in", http.StatusInternalServerError)
		return
	}
	g.setCookie(w, r, flowCookie, b64.EncodeToString(seal(g.keys.flow, b, "flow")), flowPath, flowLifetime)
	http.Redirect(w, r, g.oauth.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// readFlow opens this browser's sign-in in progress; false when there is none, it is not ours,
// or it is older than ten minutes.
func (g *Gate) readFlow(r *http.Request) (flowState, bool) {
	c, err := r.Cookie(flowCookie)
	if err != nil {
		return flowState{}, false
	}
	sealed, err := b64.DecodeString(c.Value)
	if err != nil {
		return flowState{}, false
	}
	plain, err := open(g.keys.flow, sealed, "flow")
	var f flowState
	if err != nil || json.Unmarshal(plain, &f) != nil || g.now().Unix() > f.Expires || f.State == "" || f.Verifier == "" {
		return flowState{}, false
	}
	return f, true
}

// callback is where GitHub sends the browser back: the state must be this browser's, and the
// code is exchanged with this browser's PKCE verifier. Then the person becomes a session.
func (g *Gate) callback(w http.ResponseWriter, r *http.Request) {
	if g.keys == nil {
		g.render(w, http.StatusNotFound, pageData{Problem: "Signing in with GitHub is not set up here."})
		return
	}
	f, ok := g.readFlow(r)
	g.clearCookie(w, r, flowCookie, flowPath) // a flow serves one callback, whatever comes of it
	q := r.URL.Query()
	again := pageData{Enabled: true, ReturnTo: "/"}
	if !ok {
		g.log.Warn("sign-in: a callback without this browser's sign-in in progress", "remote", r.RemoteAddr)
		again.Problem = "This sign-in did not start in this browser, or took longer than 10 minutes. Sign in again."
		g.render(w, http.StatusBadRequest, again)
		return
	}
	again.ReturnTo = f.ReturnTo
	if e := q.Get("error"); e != "" {
		again.Problem = "GitHub did not sign you in"
		if e == "access_denied" {
			again.Problem = "You did not authorize Stagecoach on GitHub, so you are not signed in."
		}
		g.render(w, http.StatusForbidden, again)
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		g.log.Warn("sign-in: the state GitHub sent back is not this browser's", "remote", r.RemoteAddr)
		again.Problem = "This answer from GitHub belongs to another sign-in (state mismatch). Sign in again."
		g.render(w, http.StatusBadRequest, again)
		return
	}
	if q.Get("code") == "" {
		again.Problem = "GitHub sent no code. Sign in again."
		g.render(w, http.StatusBadRequest, again)
		return
	}
	select {
	case g.exchanges <- struct{}{}:
		defer func() { <-g.exchanges }()
	default:
		again.Problem = "Too many people are signing in at this moment. Sign in again shortly."
		g.render(w, http.StatusServiceUnavailable, again)
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, g.hc)
	tok, err := g.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		reason := "unreachable"
		if errors.As(err, &re) {
			reason = re.ErrorCode
		}
		g.log.Warn("sign-in: GitHub refused the code exchange", "reason", reason)
		again.Problem = "GitHub did not complete the sign-in. Sign in again."
		g.render(w, http.StatusBadGateway, again)
		return
	}
	gh, err := g.userClient(tok.AccessToken)
	if err != nil {
		http.Error(w, "could not finish the sign-in", http.StatusInternalServerError)
		return
	}
	u, _, err := gh.Users.Get(ctx, "")
	if err != nil || u.GetLogin() == "" {
		g.log.Warn("sign-in: reading who signed in", "err", err)
		g.revoke(ctx, tok.AccessToken)
		again.Problem = "GitHub did not say who you are. Sign in again."
		g.render(w, http.StatusBadGateway, again)
		return
	}
	if err := g.createSession(ctx, w, r, u, tok); err != nil {
		g.log.Error("sign-in: recording the session", "login", u.GetLogin(), "err", err)
		g.revoke(ctx, tok.AccessToken)
		again.Problem = "Stagecoach could not record your sign-in. Try again shortly."
		g.render(w, http.StatusServiceUnavailable, again)
		return
	}
	g.log.Info("signed in", "login", u.GetLogin())
	http.Redirect(w, r, localPath(f.ReturnTo), http.StatusSeeOther)
}

// createSession records the session (its id hashed, the token sealed to it) and gives the
// browser its cookie. It lasts signin.session_ttl, and no longer than GitHub's token.
func (g *Gate) createSession(ctx context.Context, w http.ResponseWriter, r *http.Request, u *github.User, tok *oauth2.Token) error {
	now := g.now()
	expires := now.Add(g.sessionTTL)
	if !tok.Expiry.IsZero() && tok.Expiry.Before(expires) {
		expires = tok.Expiry
	}
	if n, err := g.sessions.DeleteExpiredSessions(ctx, now); err != nil {
		g.log.Warn("sign-in: removing expired sessions", "err", err)
	} else if n > 0 {
		g.log.Debug("sign-in: removed expired sessions", "count", n)
	}
	id := newSessionID()
	hash := idHash(id)
	if err := g.sessions.CreateSession(ctx, store.Session{IDHash: hash, UserID: u.GetID(), Login: u.GetLogin(),
		Token: seal(g.keys.seal, []byte(tok.AccessToken), hash), CreatedAt: now, ExpiresAt: expires}); err != nil {
		return err
	}
	g.setCookie(w, r, sessionCookie, g.keys.cookieValue(id), "/", expires.Sub(now))
	return nil
}

// signOut ends the session a form from Stagecoach's own page posts, and revokes its token at
// GitHub. Without the session's form token nothing changes.
func (g *Gate) signOut(w http.ResponseWriter, r *http.Request) {
	if g.keys == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		g.render(w, http.StatusBadRequest, pageData{Enabled: true, ReturnTo: "/", Problem: "That sign-out form was not readable."})
		return
	}
	id, sess, ok := g.session(w, r)
	if !ok {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	if !g.keys.validCSRF(id, r.PostForm.Get("csrf")) {
		g.log.Warn("sign-in: refused a sign-out without this session's form token", "login", sess.Login, "remote", r.RemoteAddr)
		g.render(w, http.StatusForbidden, pageData{Enabled: true, ReturnTo: "/",
			Problem: "That sign-out did not come from Stagecoach's own page, so you are still signed in."})
		return
	}
	g.endSession(r.Context(), w, r, sess.IDHash)
	if token, err := open(g.keys.seal, sess.Token, sess.IDHash); err == nil {
		g.revoke(r.Context(), string(token))
	}
	g.log.Info("signed out", "login", sess.Login)
	http.Redirect(w, r, "/signin?signed_out=1", http.StatusSeeOther)
}

// revoke asks GitHub to revoke a person's token (with the App's client credentials), so an
// ended session's token is worth nothing even if it leaked. A failure is logged: the session is
// gone either way.
func (g *Gate) revoke(ctx context.Context, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	hc := *g.hc
	hc.Transport = &github.BasicAuthTransport{Username: g.clientID, Password: g.secret, Transport: g.hc.Transport}
	gh, err := github.NewClient(github.WithHTTPClient(&hc), github.WithURLs(&g.apiURL, &g.apiURL), github.WithUserAgent(g.userAgent))
	if err == nil {
		_, err = gh.Authorizations.Revoke(ctx, g.clientID, token)
	}
	if err != nil {
		g.log.Warn("sign-in: could not revoke a token at GitHub (it expires by itself)", "err", err)
	}
}

// localPath keeps a return address on this site: a path, never another host (an open redirect
// would let a link that looks like Stagecoach's send people elsewhere after signing in).
func localPath(s string) string {
	if s == "" || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(u.Path, "/signin") || u.Path == "/signout" {
		return "/"
	}
	return s
}
