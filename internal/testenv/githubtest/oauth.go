package githubtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The App's user authorization (the OAuth web flow GitHub runs for a GitHub App) lives outside
// the REST description, on GitHub's web host: GET /login/oauth/authorize shows the page where a
// person authorizes the App (or sends them straight back when they are signed in to GitHub, as
// SetBrowserUser arranges, as GitHub does for someone who authorized the App before), and POST
// /login/oauth/access_token exchanges the one-time code for a user token ("ghu_…", eight hours
// long), checking the client's credentials, the redirect_uri and the PKCE code_verifier against
// the code_challenge the authorization asked with. Errors are GitHub's: a 200 with error and
// error_description. The user token then works on the REST operations for the person — GET
// /user, /user/installations and the repositories of an installation they can read, with their
// permission on each (from SetPermission) — and DELETE /applications/{client_id}/token revokes
// it with the client's credentials.

// codeLifetime is how long GitHub's authorization codes work.
const codeLifetime = 10 * time.Minute

// userTokenLifetime is the lifetime of a GitHub App's user token.
const userTokenLifetime = 8 * time.Hour

// oauthState is the web flow's state; the Server's mu guards it.
type oauthState struct {
	clientID, clientSecret string
	callbackURL            string // the App's registered callback URL
	browserUser            string // who is signed in to GitHub in "the browser"
	codes                  map[string]*oauthCode
	tokens                 map[string]*userToken
}

type oauthCode struct {
	login, redirectURI, challenge string
	expires                       time.Time
}

type userToken struct {
	login   string
	expires time.Time
	revoked bool
}

func newOAuthState(slug string) *oauthState {
	return &oauthState{clientID: "Iv1." + slug, clientSecret: randomHex(20),
		codes: map[string]*oauthCode{}, tokens: map[string]*userToken{}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ClientID is the App's client id (the manifest conversion hands it out too).
func (s *Server) ClientID() string { return s.oauth.clientID }

// ClientSecret is the App's client secret (the manifest conversion hands it out too).
func (s *Server) ClientSecret() string { return s.oauth.clientSecret }

// SetCallbackURL registers the App's callback URL: where authorization sends people back when
// the request names no redirect_uri, and what a redirect_uri must lie under.
func (s *Server) SetCallbackURL(u string) { s.mu.Lock(); s.oauth.callbackURL = u; s.mu.Unlock() }

// SetBrowserUser signs login in to GitHub in "the browser": authorization then approves at once
// for them, as GitHub does for a person who authorized the App before. "" shows the
// authorization page instead, where a login is typed and Authorize pressed.
func (s *Server) SetBrowserUser(login string) {
	s.mu.Lock()
	s.oauth.browserUser = login
	s.mu.Unlock()
}

// IssueUserToken gives login a user token, as completing the web flow would.
func (s *Server) IssueUserToken(login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueUserTokenLocked(login)
}

func (s *Server) issueUserTokenLocked(login string) string {
	tok := "ghu_" + randomHex(18)
	s.oauth.tokens[tok] = &userToken{login: login, expires: time.Now().Add(userTokenLifetime)}
	return tok
}

// RevokeUserToken revokes a user token on GitHub's side, as a person revoking the App's
// authorization in their settings does.
func (s *Server) RevokeUserToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.oauth.tokens[tok]; t != nil {
		t.revoked = true
	}
}

// UserTokens returns the user tokens issued to login and whether each still works.
func (s *Server) UserTokens(login string) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for tok, t := range s.oauth.tokens {
		if t.login == login {
			out[tok] = !t.revoked && time.Now().Before(t.expires)
		}
	}
	return out
}

// userLoginLocked returns the person a live user token belongs to.
func (s *Server) userLoginLocked(tok string) (string, bool) {
	t := s.oauth.tokens[tok]
	if t == nil || t.revoked || !time.Now().Before(t.expires) {
		return "", false
	}
	return t.login, true
}

// webFlow serves /login/oauth/…; it returns the status it answered with and the name the request
// is recorded under.
func (s *Server) webFlow(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	switch {
	case r.URL.Path == "/login/oauth/authorize" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		form := r.URL.Query()
		if r.Method == http.MethodPost {
			form, _ = url.ParseQuery(string(body))
		}
		return s.authorizePage(w, r.Method, form), "oauth/authorize"
	case r.URL.Path == "/login/oauth/access_token" && r.Method == http.MethodPost:
		form, _ := url.ParseQuery(string(body))
		for k, v := range r.URL.Query() {
			if form.Get(k) == "" {
				form[k] = v
			}
		}
		if id, secret, ok := r.BasicAuth(); ok && form.Get("client_id") == "" {
			form.Set("client_id", id)
			form.Set("client_secret", secret)
		}
		status := http.StatusOK
		answer := s.exchange(form)
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			writeJSON(w, status, answer)
		} else {
			vals := url.Values{}
			for k, v := range answer {
				vals.Set(k, toString(v))
			}
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(vals.Encode()))
		}
		return status, "oauth/access-token"
	}
	http.Error(w, "Not Found", http.StatusNotFound)
	return http.StatusNotFound, ""
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

var authorizeTmpl = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {{.App}}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto">
<h1>Authorize {{.App}}</h1>
<p>GitHub test server. {{.App}} would like to know who you are and which of its installations and repositories you can reach.</p>
<form method="post" action="/login/oauth/authorize">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label>Sign in as <input name="login" value="{{.Login}}" required></label>
<p><button name="decision" value="authorize" type="submit">Authorize {{.App}}</button>
<button name="decision" value="cancel" type="submit" formnovalidate>Cancel</button></p>
</form></body></html>
`))

// authorizePage checks an authorization request and approves it (for the browser's user, or
// the login posted from the page), shows the page, or sends the person back with an error.
func (s *Server) authorizePage(w http.ResponseWriter, method string, q url.Values) int {
	s.mu.Lock()
	o := s.oauth
	clientID, callback, user := o.clientID, o.callbackURL, o.browserUser
	s.mu.Unlock()
	if q.Get("client_id") != clientID {
		http.Error(w, "Not Found: no application has the client_id "+q.Get("client_id"), http.StatusNotFound)
		return http.StatusNotFound
	}
	target, ok := redirectTarget(callback, q.Get("redirect_uri"))
	if !ok {
		if callback == "" {
			http.Error(w, "The redirect_uri is not valid and the App has no callback URL.", http.StatusBadRequest)
			return http.StatusBadRequest
		}
		return back(w, callback, url.Values{"error": {"redirect_uri_mismatch"},
			"error_description": {"The redirect_uri MUST match the registered callback URL for this application."}, "state": {q.Get("state")}})
	}
	challenge, method256 := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge != "" && method256 != "S256" {
		return back(w, target, url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge_method must be S256"}, "state": {q.Get("state")}})
	}
	login := user
	if method == http.MethodPost {
		if q.Get("decision") != "authorize" {
			return back(w, target, url.Values{"error": {"access_denied"},
				"error_description": {"The user has denied your application access."}, "state": {q.Get("state")}})
		}
		login = strings.TrimSpace(q.Get("login"))
	}
	if login == "" {
		hidden := map[string]string{}
		for _, k := range []string{"client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"} {
			if v := q.Get(k); v != "" {
				hidden[k] = v
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = authorizeTmpl.Execute(w, map[string]any{"App": "Stagecoach", "Hidden": hidden, "Login": q.Get("login")})
		return http.StatusOK
	}
	code := randomHex(10)
	s.mu.Lock()
	s.oauth.codes[code] = &oauthCode{login: login, redirectURI: q.Get("redirect_uri"), challenge: challenge, expires: time.Now().Add(codeLifetime)}
	s.mu.Unlock()
	return back(w, target, url.Values{"code": {code}, "state": {q.Get("state")}})
}

// redirectTarget is where authorization sends the person: the redirect_uri when it lies under
// the registered callback URL (same scheme, host and port, a path below), else the callback.
func redirectTarget(callback, redirect string) (string, bool) {
	if redirect == "" {
		return callback, callback != ""
	}
	r, err := url.Parse(redirect)
	if err != nil || r.Host == "" || (r.Scheme != "http" && r.Scheme != "https") {
		return "", false
	}
	if callback == "" {
		return redirect, true
	}
	c, err := url.Parse(callback)
	if err != nil || c.Scheme != r.Scheme || c.Host != r.Host || !strings.HasPrefix(r.Path, c.Path) {
		return "", false
	}
	return redirect, true
}

// back redirects to target with params added to its query.
func back(w http.ResponseWriter, target string, params url.Values) int {
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "bad redirect", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	q := u.Query()
	for k, v := range params {
		if v[0] != "" {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
	return http.StatusFound
}

// exchange trades a code for a user token, or says what is wrong, as GitHub does.
func (s *Server) exchange(form url.Values) map[string]any {
	fail := func(code, desc string) map[string]any {
		return map[string]any{"error": code, "error_description": desc,
			"error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.oauth
	if form.Get("client_id") != o.clientID || subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(o.clientSecret)) != 1 {
		return fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
	}
	if gt := form.Get("grant_type"); gt != "" && gt != "authorization_code" {
		return fail("unsupported_grant_type", "The grant type "+gt+" is not supported by the test server.")
	}
	c := o.codes[form.Get("code")]
	delete(o.codes, form.Get("code")) // a code works once, whatever the outcome
	if c == nil || time.Now().After(c.expires) {
		return fail("bad_verification_code", "The code passed is incorrect or expired.")
	}
	if c.redirectURI != "" && form.Get("redirect_uri") != c.redirectURI {
		return fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
	}
	if c.challenge != "" {
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		if form.Get("code_verifier") == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			return fail("bad_verification_code", "The code_verifier does not match the code_challenge of the authorization request.")
		}
	}
	tok := s.issueUserTokenLocked(c.login)
	return map[string]any{"access_token": tok, "token_type": "bearer", "scope": "",
		"expires_in": int(userTokenLifetime.Seconds()), "refresh_token": "ghr_" + randomHex(30), "refresh_token_expires_in": 15897600}
}

// authorizeUser checks the credentials of the operations a person's token calls (0 when
// allowed): a live user token; an installation token is not a person.
func (s *Server) authorizeUser(r *http.Request) (int, string) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "Bearer") {
		return http.StatusUnauthorized, "Requires authentication"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.userLoginLocked(cred); ok {
		return 0, ""
	}
	if _, ok := s.tokens[cred]; ok {
		return http.StatusForbidden, "Resource not accessible by integration"
	}
	return http.StatusUnauthorized, "Bad credentials"
}

// authorizeClient checks the App's client credentials (basic auth) for the token endpoints.
func (s *Server) authorizeClient(r *http.Request) (int, string) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != s.oauth.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.oauth.clientSecret)) != 1 {
		return http.StatusNotFound, "Not Found"
	}
	return 0, ""
}

func (c *call) userLogin() string {
	_, tok, _ := strings.Cut(c.r.Header.Get("Authorization"), " ")
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	login, _ := c.s.userLoginLocked(tok)
	return login
}

// reposOfLocked lists the repositories login has a permission on, sorted, with the permission.
func (s *Server) reposOfLocked(login string) ([]string, map[string]string) {
	perms := map[string]string{}
	for key, p := range s.permissions {
		i := strings.LastIndex(key, "/")
		if key[i+1:] == login && p != "" && p != "none" {
			perms[key[:i]] = p
		}
	}
	repos := make([]string, 0, len(perms))
	for r := range perms {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	return repos, perms
}

func (s *Server) authenticatedUser(c *call) (int, any) {
	login := c.userLogin()
	u := s.user(login)
	for k, v := range map[string]any{"name": login, "company": nil, "blog": "", "location": nil, "email": nil, "hireable": nil,
		"bio": nil, "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0, "created_at": "2026-01-01T00:00:00Z",
		"updated_at": "2026-01-01T00:00:00Z", "private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0,
		"disk_usage": 0, "collaborators": 0, "two_factor_authentication": true, "user_view_type": "private"} {
		u[k] = v
	}
	return http.StatusOK, u
}

func (s *Server) userInstallations(c *call) (int, any) {
	login := c.userLogin()
	s.mu.Lock()
	repos, _ := s.reposOfLocked(login)
	s.mu.Unlock()
	list := []any{}
	if len(repos) > 0 {
		list = append(list, s.installation(s.installationID))
	}
	return http.StatusOK, map[string]any{"total_count": len(list), "installations": list}
}

func (s *Server) userInstallationRepos(c *call) (int, any) {
	login := c.userLogin()
	if c.id("installation_id") != s.installationID {
		return notFound()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	repos, perms := s.reposOfLocked(login)
	if len(repos) == 0 {
		return notFound()
	}
	list := []any{}
	for _, repo := range repos {
		p := perms[repo]
		rank := map[string]int{"read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}[p]
		r := s.repositoryJSONLocked(repo)
		r["permissions"] = map[string]bool{"admin": rank >= 5, "maintain": rank >= 4, "push": rank >= 3, "triage": rank >= 2, "pull": rank >= 1}
		list = append(list, r)
	}
	return http.StatusOK, map[string]any{"total_count": len(list), "repository_selection": "all", "repositories": list}
}

func (s *Server) deleteUserToken(c *call) (int, any) {
	var in struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.decode(&in); err != nil {
		return http.StatusUnprocessableEntity, message(err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.oauth.tokens[in.AccessToken]
	if c.params["client_id"] != s.oauth.clientID || t == nil {
		return notFound()
	}
	t.revoked = true
	return http.StatusNoContent, nil
}
