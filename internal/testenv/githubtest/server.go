// Package githubtest is an in-process GitHub for tests and for `stagecoach sandbox`: a REST API
// that speaks GitHub's wire protocol to the real go-github and ghinstallation clients, and a
// webhook sender that delivers events as GitHub does. It keeps the state the calls create,
// records every request, and rejects any request whose method, path or JSON body does not
// match GitHub's published REST description. Its own answers are checked against the same
// description, so the fake cannot drift from GitHub unnoticed.
//
// Start runs a server outside a test (Close stops it, Problems lists what went wrong); New does
// the same for a test and fails it at cleanup for every problem.
//
// # The description
//
// testdata/rest-subset.json holds the operations Stagecoach calls, with their path parameters,
// request and success-response schemas and every component schema they reference. It is
// generated from @octokit/openapi's description of api.github.com (MIT, licence copied to
// testdata) by ./gen; run `go generate ./internal/testenv/githubtest` with the description at
// ../shared/reference/github. Tests read only the subset.
//
// Requests are matched to templates stricter first: templates without a multi-segment
// parameter ({ref}, {basehead}, {path}, {branch}, or one marked x-multi-segment) before those
// with one, then by number of literal segments; the deprecated compare form is an alias. Bodies
// are checked with a small JSON Schema checker (see validator). Where go-github departs from the
// description in ways GitHub accepts, the server allows it: a bare JSON array for
// issues/add-labels, the JSON text null for the access-token body. Unknown body keys are
// errors only under additionalProperties: false; elsewhere they are kept as Request.Notes.
//
// # State
//
// Installation tokens ("ghs_…", an hour long) are issued to App JWTs signed with the key from
// PrivateKeyPEM; every repository call needs one, as on GitHub. Check runs, deployments and
// their statuses, issues, comments, reactions, labels, refs, commits, annotated tags, pull
// requests, team memberships and collaborator permissions live in memory; tests seed what
// GitHub would already hold (SetRef, AddCommit, AddPull, SetDefaultBranch, SetTeamMember,
// SetPermission, AddManifestCode) and read back what the code under test created (CheckRuns,
// Deployments, Comments, Issues, Pulls, Tags, Ref). What is not there answers 404. The App's
// bot user is BotLogin, "<slug>[bot]" (GET /app answers the slug): it authors whatever the App
// creates.
//
// # Signing in
//
// The App's user authorization runs as on GitHub's web host (oauth.go): GET
// /login/oauth/authorize (the page, or straight back for the person SetBrowserUser signed in)
// and POST /login/oauth/access_token (client credentials, redirect_uri and the PKCE verifier
// checked; GitHub's error answers). The user token ("ghu_…") reads GET /user and the person's
// installations and repositories (with their SetPermission permissions) and is revoked by DELETE
// /applications/{client_id}/token; installation tokens are refused there, as on GitHub.
//
// # Webhooks
//
// After SetWebhook the server delivers events to a URL as GitHub delivers an App's: a POST with
// X-GitHub-Event, X-GitHub-Delivery (a random UUID), X-GitHub-Hook-ID, X-Hub-Signature-256 (the
// HMAC-SHA256 of the body with the secret) and a GitHub-Hookshot User-Agent. Deliveries go out
// one at a time, in the order of the changes that caused them, from one goroutine; one caused
// by an API call leaves only once that call is answered. Deliveries records each with its
// answer; one answered other than 2xx, or not within 10 s, is failed and not retried
// (Redeliver sends it again); Flush waits for the queue to empty. Every attempt is in the App's
// delivery log as GitHub keeps it, for the App's JWT: GET /app/hook/deliveries (newest first,
// paged by the Link header's cursor), GET /app/hook/deliveries/{id} (with the request and the
// answer) and POST /app/hook/deliveries/{id}/attempts (a redelivery: GitHub answers 202, which
// go-github reports as an *AcceptedError). go-github cannot ask the log for failed deliveries
// only (its ListCursorOptions lacks the description's status filter): list them all.
//
// The App's own API calls cause what they cause on GitHub: git/create-ref and git/update-ref
// of a branch or tag deliver a push (and a create for a new ref), and issues/create-comment and
// issues/update-comment an issue_comment by the bot. What people do are methods: MergePull,
// OpenPull, PushToPull, PushBranch, CreateTag, Comment, EditComment, PressButton and Rerequest
// change the state as GitHub would and deliver GitHub's events. Every payload is a real one
// GitHub sent (testdata/webhooks) with the fields that matter replaced by the server's state.
//
// # Faults
//
// SetDown answers 503 to everything and SetOutage any status (GitHub's 502 windows),
// CloseConnections drops every connection unanswered, FailNext fails the next calls of one
// operation, and SecondaryRateLimit answers GitHub's secondary rate limit (403, Retry-After, and
// the documentation_url go-github recognizes).
package githubtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:generate go run ./gen -spec ../../../../shared/reference/github/rest-api.github.com.json -out testdata/rest-subset.json

//go:embed testdata/rest-subset.json
var subsetJSON []byte

// Request is one request the server received and how it answered.
type Request struct {
	Method    string
	Path      string // as sent, still escaped
	Query     string // the raw query, without "?"
	UserAgent string
	At        time.Time // when the answer was written
	Operation string    // GitHub's operationId; "" when no operation matched
	Body      []byte
	Status    int      // 0 when the connection was dropped
	Problems  []string // why the request was rejected (empty when it matched the description)
	Notes     []string // body keys GitHub would ignore
}

// Option changes how Start (or New) sets up a server.
type Option func(*Server)

// WithAppID sets the GitHub App's id (default 4242).
func WithAppID(id int64) Option { return func(s *Server) { s.appID = id } }

// WithAppSlug sets the GitHub App's slug (default "stagecoach"); its bot user is "<slug>[bot]".
func WithAppSlug(slug string) Option { return func(s *Server) { s.slug = slug } }

// WithInstallationID sets the id of the App's one installation (default 1), as the installation
// endpoints and every webhook payload name it.
func WithInstallationID(id int64) Option { return func(s *Server) { s.installationID = id } }

// WithRateLimit sets the primary rate limit the server reports in its X-RateLimit headers
// (default 5000 an hour); each answered request uses one.
func WithRateLimit(limit int) Option { return func(s *Server) { s.limit = limit } }

// Server is the fake GitHub. Its methods are safe for concurrent use.
type Server struct {
	srv            *httptest.Server
	key            *rsa.PrivateKey
	appID          int64
	slug           string
	installationID int64
	limit          int
	reset          time.Time
	ops            []*operation
	v              *validator
	handlers       map[string]func(*call) (int, any)
	templates      map[string]map[string]any // webhook payload examples, by file name
	out            *outbox                   // webhook deliveries

	mu            sync.Mutex
	reqs          []Request
	serverErrs    []string // answers of ours that broke the description
	down          int      // the status every request is answered with during an outage; 0 serves
	drop          bool
	failNext      map[string][]int
	secondary     int
	retryAfter    int
	used          int
	nextID        int64
	tokens        map[string]int64 // token -> installation id
	checkRuns     map[string][]*CheckRun
	deployments   map[string][]*Deployment
	issues        map[string]map[int]*Issue
	comments      map[string][]*Comment
	labels        map[string]map[string]*Label
	refs          map[string]map[string]string // repo -> "refs/heads/main" -> sha
	activity      map[string][]activity        // repo -> branch updates, oldest first (activity.go)
	commits       map[string]map[string]*Commit
	tags          map[string]map[string]*Tag // repo -> tag object sha -> annotated tag
	pulls         map[string]map[int]*Pull
	branches      map[string]string // repo -> default branch, where not "main"
	onAnswered    func(Request)
	members       map[string]bool   // org/team/user
	permissions   map[string]string // owner/repo/user -> permission
	manifestCodes map[string]bool
	webhookSecret string
	beforeAnswer  func(Request)
	settings      settings    // the App's permissions, its installation's coverage, branch rules
	oauth         *oauthState // the App's user authorization (oauth.go)
}

// Start starts a server outside of a test (New is the same inside one). Close stops it;
// Problems says what it rejected or answered outside the description.
func Start(opts ...Option) (*Server, error) {
	b, err := shared()
	if err != nil {
		return nil, err
	}
	s := &Server{key: b.key, ops: b.ops, v: b.v, templates: b.templates, appID: 4242, slug: "stagecoach", installationID: 1, limit: 5000,
		reset: time.Now().Add(time.Hour), nextID: 1000,
		failNext: map[string][]int{}, tokens: map[string]int64{},
		checkRuns: map[string][]*CheckRun{}, deployments: map[string][]*Deployment{}, issues: map[string]map[int]*Issue{},
		comments: map[string][]*Comment{}, labels: map[string]map[string]*Label{}, refs: map[string]map[string]string{},
		commits: map[string]map[string]*Commit{}, tags: map[string]map[string]*Tag{}, pulls: map[string]map[int]*Pull{},
		branches: map[string]string{}, members: map[string]bool{}, permissions: map[string]string{}, manifestCodes: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	s.oauth = newOAuthState(s.slug)
	s.handlers = s.routes()
	s.out = newOutbox(s.appID)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s, nil
}

// base is what every server of the process starts from, made once and only read afterwards:
// the App's key, the description subset and the webhook payload examples. Generating a 2048-bit
// key and parsing both files took most of a server's start, and, under -race on a busy machine,
// most of a test run (a package run at -count=20 outlived go test's ten-minute timeout). Every
// server of a process so has the same App key; each is still its own App by id and slug.
type base struct {
	key       *rsa.PrivateKey
	ops       []*operation
	v         *validator
	templates map[string]map[string]any
}

var shared = sync.OnceValues(func() (*base, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("githubtest: generating the App key: %w", err)
	}
	b := &base{key: key}
	if b.ops, b.v, err = loadSubset(subsetJSON); err != nil {
		return nil, fmt.Errorf("githubtest: %w", err)
	}
	if b.templates, err = loadTemplates(); err != nil {
		return nil, fmt.Errorf("githubtest: %w", err)
	}
	return b, nil
})

// New starts a server for a test; it closes when the test ends, and the test fails then for
// every problem (see Problems).
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Start(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Close()
		for _, p := range s.Problems() {
			tb.Errorf("GitHub test server: %s", p)
		}
	})
	return s
}

// Close stops the server: queued webhook deliveries are dropped (recorded as failed), the one in
// flight is cancelled, and open connections are closed. It may be called more than once.
func (s *Server) Close() {
	s.out.close()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Problems returns, as sentences, every request the server rejected and every answer of its
// own that broke the description (or that it could not give), oldest first.
func (s *Server) Problems() []string {
	var out []string
	for _, r := range s.Rejected() {
		out = append(out, fmt.Sprintf("rejected %s %s: %s.", r.Method, r.Path, strings.Join(r.Problems, "; ")))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.serverErrs {
		out = append(out, e+".")
	}
	return out
}

// problemLocked records something the server itself got wrong or could not do; the caller
// holds s.mu.
func (s *Server) problemLocked(format string, args ...any) {
	s.serverErrs = append(s.serverErrs, fmt.Sprintf(format, args...))
}

// URL is the API root, with a trailing slash.
func (s *Server) URL() string { return s.srv.URL + "/" }

// AppID is the id of the GitHub App the server knows.
func (s *Server) AppID() int64 { return s.appID }

// PrivateKeyPEM is the App's private key; the server verifies App JWTs with it.
func (s *Server) PrivateKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(s.key)})
}

// Requests returns every request received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Count is how many requests for an operation (operationId) were answered with a 2xx.
func (s *Server) Count(operationID string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Operation == operationID && r.Status/100 == 2 {
			n++
		}
	}
	return n
}

// Rejected returns the requests that did not match the REST description.
func (s *Server) Rejected() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if len(r.Problems) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// OnAnswered calls fn with every request once it is answered, before the answer reaches the
// client, so a test can make something happen on GitHub between two calls (a push landing while
// a command decides). fn may call the server's methods; nil removes it.
func (s *Server) OnAnswered(fn func(Request)) { s.mu.Lock(); s.onAnswered = fn; s.mu.Unlock() }

// SetDown makes the server answer every request with 503 (true) or serve normally (false).
func (s *Server) SetDown(down bool) {
	if down {
		s.SetOutage(http.StatusServiceUnavailable)
	} else {
		s.SetOutage(0)
	}
}

// SetOutage makes the server answer every request with status, as GitHub answers during an
// incident (502 Bad Gateway, 503, 504), until SetOutage(0) serves normally again.
func (s *Server) SetOutage(status int) { s.mu.Lock(); s.down = status; s.mu.Unlock() }

// CloseConnections makes the server close every connection without answering (true), as an
// unreachable GitHub looks to a client, or serve normally again (false).
func (s *Server) CloseConnections(drop bool) { s.mu.Lock(); s.drop = drop; s.mu.Unlock() }

// FailNext answers the next n requests for an operation with status.
func (s *Server) FailNext(operationID string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext[operationID] = append(s.failNext[operationID], status)
	}
}

// SecondaryRateLimit answers the next n authenticated requests with GitHub's secondary rate
// limit: 403 with Retry-After and a documentation_url go-github recognizes.
func (s *Server) SecondaryRateLimit(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary, s.retryAfter = n, int(retryAfter.Seconds())
}

// BeforeAnswer calls fn with every request the server handled (its state already changed: a
// check run or comment created is there), before the answer is written; nil removes it. A test
// uses it to kill the process that called between GitHub's 201 and that process recording what
// it made, or to let a second replica act while the first waits for its answer. fn runs on the
// request's goroutine and may block it.
func (s *Server) BeforeAnswer(fn func(Request)) { s.mu.Lock(); s.beforeAnswer = fn; s.mu.Unlock() }

// message is GitHub's error body.
func message(msg string) map[string]string {
	return map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, UserAgent: r.UserAgent(), Body: body}
	// Webhooks this call causes wait for its answer: GitHub answers the API call first.
	answered, hijacked := make(chan struct{}), false
	defer func() {
		rec.At = time.Now()
		s.mu.Lock()
		s.reqs = append(s.reqs, rec)
		hook := s.onAnswered
		s.mu.Unlock()
		if hook != nil {
			hook(rec) // before the client reads the answer: what it does happened "meanwhile"
		}
		if !hijacked {
			_ = http.NewResponseController(w).Flush()
		}
		close(answered)
	}()
	s.mu.Lock()
	down, drop := s.down, s.drop
	s.mu.Unlock()
	if drop {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			hijacked = true
			conn.Close()
			return
		}
	}
	s.headers(w)
	if down != 0 {
		rec.Status = down
		writeJSON(w, rec.Status, message(http.StatusText(down)))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/login/oauth/") { // the web flow, on GitHub's web host
		rec.Status, rec.Operation = s.webFlow(w, r, body)
		return
	}
	op, params, near := match(s.ops, s.v, r.Method, r.URL.EscapedPath())
	if op == nil {
		rec.Status = http.StatusNotFound
		rec.Problems = append([]string{"no operation " + r.Method + " " + rec.Path + " in GitHub's REST description"}, near...)
		writeJSON(w, rec.Status, message("Not Found"))
		return
	}
	rec.Operation = op.id
	value, probs, notes := s.checkBody(op, body)
	rec.Notes = notes
	if len(probs) > 0 {
		rec.Status, rec.Problems = http.StatusUnprocessableEntity, probs
		writeJSON(w, rec.Status, map[string]any{"message": "Invalid request.", "errors": probs,
			"documentation_url": "https://docs.github.com/rest"})
		return
	}
	if status, msg := s.authorize(op, r); status != 0 {
		rec.Status = status
		writeJSON(w, status, message(msg))
		return
	}
	if status, retry := s.injected(op.id); status != 0 {
		rec.Status = status
		if retry != "" {
			w.Header().Set("Retry-After", retry)
			writeJSON(w, status, map[string]string{
				"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
				"documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
			return
		}
		writeJSON(w, status, message(http.StatusText(status)))
		return
	}
	handler := s.handlers[op.id]
	if op.aliasOf != "" {
		handler = s.handlers[op.aliasOf]
	}
	if handler == nil {
		handler = func(*call) (int, any) { return s.notImplemented(op.id) }
	}
	status, resp := handler(&call{s: s, r: r, params: params, body: value, header: w.Header(), answered: answered})
	rec.Status = status
	if status/100 == 2 {
		s.checkResponse(op, status, resp)
	}
	s.mu.Lock()
	hook := s.beforeAnswer
	s.mu.Unlock()
	if hook != nil {
		hook(rec)
	}
	writeJSON(w, status, resp)
}

// headers sets what GitHub sends on every answer.
func (s *Server) headers(w http.ResponseWriter) {
	s.mu.Lock()
	s.used++
	used, n := s.used, len(s.reqs)+1
	s.mu.Unlock()
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.limit-used, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("5C0A:7E57:%06X:%06X", n, used))
}

// injected pops a fault for the operation, if any; retry is set for a secondary rate limit.
func (s *Server) injected(op string) (status int, retry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secondary > 0 {
		s.secondary--
		return http.StatusForbidden, strconv.Itoa(s.retryAfter)
	}
	if q := s.failNext[op]; len(q) > 0 {
		s.failNext[op] = q[1:]
		return q[0], ""
	}
	return 0, ""
}

// checkBody decodes a request body and checks it against the operation's description.
func (s *Server) checkBody(op *operation, body []byte) (value any, probs, notes []string) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if op.request != nil && !op.optional {
			return nil, []string{"body: this operation needs a JSON body"}, nil
		}
		return nil, nil, nil
	}
	if op.request == nil {
		return nil, []string{"body: this operation takes no JSON body"}, nil
	}
	if err := json.Unmarshal(trimmed, &value); err != nil {
		return nil, []string{"body is not JSON: " + err.Error()}, nil
	}
	// ghinstallation posts the JSON text null for an optional body; GitHub reads it as none.
	if value == nil && op.optional {
		return nil, nil, nil
	}
	// go-github sends labels as a bare array where the description wants {"labels": [...]};
	// GitHub accepts both (NOTES.md).
	if arr, ok := value.([]any); ok && (op.id == "issues/add-labels" || op.id == "issues/set-labels") {
		value = map[string]any{"labels": arr}
	}
	probs, notes = s.v.check(op.request, value, "body")
	return value, probs, notes
}

func (s *Server) checkResponse(op *operation, status int, resp any) {
	schema, ok := op.responses[strconv.Itoa(status)]
	var probs []string
	switch {
	case !ok:
		probs = []string{fmt.Sprintf("%s answered %d, which the description does not list", op.id, status)}
	case schema != nil:
		b, err := json.Marshal(resp)
		var v any
		if err == nil {
			err = json.Unmarshal(b, &v)
		}
		if err != nil {
			probs = []string{fmt.Sprintf("%s: encoding the answer: %v", op.id, err)}
			break
		}
		for _, p := range s.v.validate(schema, v, "response") {
			probs = append(probs, op.id+": "+p)
		}
	}
	for i, p := range probs {
		probs[i] = "answered outside the description: " + p
	}
	if len(probs) > 0 {
		s.mu.Lock()
		s.serverErrs = append(s.serverErrs, probs...)
		s.mu.Unlock()
	}
}

// writeJSON answers with v, with a Content-Length as GitHub sends, so that a flush hands the
// client the whole answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	if v != nil {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status, b = http.StatusInternalServerError, []byte(`{"message":"encoding the answer failed"}`)
		}
		b = append(b, '\n')
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
