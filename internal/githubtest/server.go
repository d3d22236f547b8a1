// Package githubtest is an in-process GitHub REST API for tests. It speaks GitHub's wire
// protocol to the real go-github and ghinstallation clients, keeps the state the calls create
// (installation tokens, check runs, deployments, comments), records every request, and rejects
// any request whose method, path or JSON body does not match GitHub's published REST
// description (a subset derived by ./gen into testdata). Its own responses are checked against
// the same description, so the fake cannot drift from GitHub either. Faults are injectable:
// GitHub down, dropped connections, failures of one operation, secondary rate limits.
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

//go:generate go run ./gen -spec ../../../shared/reference/github/rest-api.github.com.json -out testdata/rest-subset.json

//go:embed testdata/rest-subset.json
var subsetJSON []byte

// Request is one request the server received and how it answered.
type Request struct {
	Method    string
	Path      string
	UserAgent string
	At        time.Time // when the answer was written
	Operation string    // GitHub's operationId; "" when no operation matched
	Body      []byte
	Status    int
	Problems  []string // why the request was rejected (empty when it matched the description)
}

// Server is the fake GitHub. Its methods are safe for concurrent use.
type Server struct {
	tb    testing.TB
	srv   *httptest.Server
	key   *rsa.PrivateKey
	appID int64
	ops   []*operation
	v     *validator

	mu            sync.Mutex
	reqs          []Request
	serverErrs    []string // responses of ours that broke the description
	down          bool
	drop          bool
	failNext      map[string][]int
	secondary     int
	retryAfter    int
	nextID        int64
	tokens        map[string]int64
	checkRuns     map[string][]*CheckRun
	deployments   map[string][]*Deployment
	comments      map[string][]*Comment
	members       map[string]bool // org/team/user
	manifestCodes map[string]bool
	webhookSecret string
	permissions   map[string]string // owner/repo/user -> permission
}

// New starts a server; it closes when the test ends, and the test fails if any request was
// rejected or any response broke the description.
func New(tb testing.TB) *Server {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{tb: tb, key: key, appID: 4242, nextID: 1000, failNext: map[string][]int{},
		tokens: map[string]int64{}, checkRuns: map[string][]*CheckRun{}}
	if err := s.loadSubset(); err != nil {
		tb.Fatal(err)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(func() {
		s.srv.Close()
		for _, r := range s.Rejected() {
			tb.Errorf("GitHub test server rejected %s %s: %s", r.Method, r.Path, strings.Join(r.Problems, "; "))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.serverErrs {
			tb.Errorf("GitHub test server answered outside the description: %s", e)
		}
	})
	return s
}

// URL is the API root, with a trailing slash.
func (s *Server) URL() string { return s.srv.URL + "/" }

// AppID is the id of the GitHub App the server knows.
func (s *Server) AppID() int64 { return s.appID }

// PrivateKeyPEM is the App's private key; the server verifies App JWTs with it.
func (s *Server) PrivateKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(s.key)})
}

// Requests returns every request received so far.
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

// SetDown makes the server answer every request with 503 (true) or serve normally (false).
func (s *Server) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// DropConnections makes the server close every connection without answering, as an
// unreachable GitHub looks to a client.
func (s *Server) DropConnections(drop bool) { s.mu.Lock(); s.drop = drop; s.mu.Unlock() }

// FailNext answers the next n requests for an operation with status.
func (s *Server) FailNext(operationID string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext[operationID] = append(s.failNext[operationID], status)
	}
}

// SecondaryRateLimit answers the next n requests with GitHub's secondary rate limit: 403 with
// Retry-After and a documentation_url go-github recognizes.
func (s *Server) SecondaryRateLimit(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary, s.retryAfter = n, int(retryAfter.Seconds())
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{Method: r.Method, Path: r.URL.Path, UserAgent: r.UserAgent(), Body: body}
	s.mu.Lock()
	down, drop := s.down, s.drop
	s.mu.Unlock()
	defer func() { rec.At = time.Now(); s.mu.Lock(); s.reqs = append(s.reqs, rec); s.mu.Unlock() }()
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	if down {
		rec.Status = http.StatusServiceUnavailable
		writeJSON(w, rec.Status, map[string]string{"message": "Service Unavailable"})
		return
	}
	op, params := s.match(r.Method, r.URL.Path)
	if op == nil {
		rec.Status, rec.Problems = http.StatusNotFound, []string{"no operation " + r.Method + " " + r.URL.Path + " in GitHub's REST description"}
		writeJSON(w, rec.Status, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	rec.Operation = op.id
	if probs := s.checkBody(op, body); len(probs) > 0 {
		rec.Status, rec.Problems = http.StatusUnprocessableEntity, probs
		writeJSON(w, rec.Status, map[string]any{"message": "Invalid request.", "errors": probs})
		return
	}
	if status, msg := s.authorize(op, r); status != 0 {
		rec.Status = status
		writeJSON(w, status, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
		return
	}
	if status, h := s.injected(op.id); status != 0 {
		rec.Status = status
		for k, v := range h {
			w.Header().Set(k, v)
		}
		msg := map[string]string{"message": http.StatusText(status)}
		if status == http.StatusForbidden {
			msg = map[string]string{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
				"documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}
		}
		writeJSON(w, status, msg)
		return
	}
	c := &call{s: s, r: r, params: params, body: body}
	status, resp := s.handle(op.id, c)
	rec.Status = status
	if status/100 == 2 {
		s.checkResponse(op, status, resp)
	}
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	w.Header().Set("X-GitHub-Request-Id", fmt.Sprintf("STAGECOACH:%d", len(s.Requests())))
	writeJSON(w, status, resp)
}

// injected pops a fault for the operation, if any.
func (s *Server) injected(op string) (int, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secondary > 0 {
		s.secondary--
		return http.StatusForbidden, map[string]string{"Retry-After": strconv.Itoa(s.retryAfter)}
	}
	if q := s.failNext[op]; len(q) > 0 {
		s.failNext[op] = q[1:]
		return q[0], nil
	}
	return 0, nil
}

func (s *Server) checkBody(op *operation, body []byte) []string {
	trimmed := bytes.TrimSpace(body)
	// ghinstallation posts the JSON text null to access_tokens; GitHub treats it as no body.
	if len(trimmed) == 0 || string(trimmed) == "null" {
		if op.request != nil && op.id != "apps/create-installation-access-token" && len(trimmed) > 0 {
			return []string{"body: null is not an object"}
		}
		return nil
	}
	if op.request == nil {
		return []string{"this operation takes no JSON body"}
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []string{"body is not JSON: " + err.Error()}
	}
	// go-github sends labels as a bare array where the description wants {"labels": [...]};
	// GitHub accepts both (see reference NOTES.md).
	if arr, ok := v.([]any); ok && strings.Contains(op.path, "/labels") {
		v = map[string]any{"labels": arr}
	}
	return s.v.validate(op.request, v, "body")
}

func (s *Server) checkResponse(op *operation, status int, resp any) {
	schema, ok := op.responses[strconv.Itoa(status)]
	if !ok {
		s.mu.Lock()
		s.serverErrs = append(s.serverErrs, fmt.Sprintf("%s answered %d, which the description does not list", op.id, status))
		s.mu.Unlock()
		return
	}
	if schema == nil {
		return
	}
	b, _ := json.Marshal(resp)
	var v any
	_ = json.Unmarshal(b, &v)
	if probs := s.v.validate(schema, v, "response"); len(probs) > 0 {
		s.mu.Lock()
		s.serverErrs = append(s.serverErrs, fmt.Sprintf("%s: %s", op.id, strings.Join(probs, "; ")))
		s.mu.Unlock()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}
