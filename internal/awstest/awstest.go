// Package awstest is an in-process AWS for tests: CodeBuild, Secrets Manager and ECR speak the
// awsJson1.1 protocol (POST /, X-Amz-Target, epoch-second timestamps) and STS the awsQuery
// protocol (form request, XML response), as the real aws-sdk-go-v2 clients expect. Every request
// the clients send and every JSON response the servers return is checked against AWS's own
// service models (a subset derived by ./gen from botocore into testdata), and a test fails at
// cleanup if anything broke them. Builds have a real lifecycle on a clock the test controls.
package awstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Call is one request a client made.
type Call struct {
	Service   string // codebuild, secretsmanager, ecr, sts
	Operation string
	Body      []byte
	Params    url.Values // STS's form parameters
	Status    int
}

// Env is the fake AWS: one HTTP server for every service.
type Env struct {
	CodeBuild *CodeBuild
	Secrets   *Secrets
	ECR       *ECR
	STS       *STS

	srv    *httptest.Server
	models map[string]*model

	mu       sync.Mutex
	calls    []Call
	problems []string
	throttle map[string]int
	now      func() time.Time
}

// targets maps the X-Amz-Target prefix of each JSON service to its model name.
var targets = map[string]string{
	"CodeBuild_20161006":                   "codebuild",
	"secretsmanager":                       "secretsmanager",
	"AmazonEC2ContainerRegistry_V20150921": "ecr",
}

// New starts the fake AWS; it stops when the test ends.
func New(tb testing.TB) *Env {
	tb.Helper()
	e := &Env{models: map[string]*model{}, throttle: map[string]int{}, now: time.Now}
	for _, s := range []string{"codebuild", "secretsmanager", "ecr", "sts"} {
		m, err := loadModel(s)
		if err != nil {
			tb.Fatal(err)
		}
		e.models[s] = m
	}
	e.ECR = &ECR{env: e, images: map[string]map[string]ecrImage{}}
	e.CodeBuild = &CodeBuild{env: e, builds: map[string]*build{}, tokens: map[string]string{}, numbers: map[string]int64{}}
	e.Secrets = &Secrets{env: e, secrets: map[string]time.Time{}}
	e.STS = &STS{env: e, roles: map[string]string{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	tb.Cleanup(func() {
		e.srv.Close()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, p := range e.problems {
			tb.Errorf("AWS test server: %s", p)
		}
	})
	return e
}

// URL is the endpoint for every service (AWS_ENDPOINT_URL).
func (e *Env) URL() string { return e.srv.URL }

// SetClock makes the servers read time from now (builds advance by it).
func (e *Env) SetClock(now func() time.Time) { e.mu.Lock(); e.now = now; e.mu.Unlock() }

func (e *Env) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now() }

// Config is an aws.Config for the real SDK clients, pointed at the fake.
func (e *Env) Config() aws.Config {
	return aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTAGECOACHTEST", "test-secret-key", ""),
		BaseEndpoint: aws.String(e.srv.URL),
		// The SDK's standard retryer, as in production; tests of throttling rely on it.
	}
}

// Throttle answers the next n calls to service with ThrottlingException.
func (e *Env) Throttle(service string, n int) { e.mu.Lock(); e.throttle[service] += n; e.mu.Unlock() }

// Calls returns the calls made to an operation ("" for all), in order.
func (e *Env) Calls(operation string) []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Call
	for _, c := range e.calls {
		if operation == "" || c.Operation == operation {
			out = append(out, c)
		}
	}
	return out
}

// Problems returns what broke the service models so far.
func (e *Env) Problems() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.problems...)
}

func (e *Env) problem(format string, args ...any) {
	e.mu.Lock()
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

func (e *Env) record(c Call) { e.mu.Lock(); e.calls = append(e.calls, c); e.mu.Unlock() }

func (e *Env) throttled(service string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.throttle[service] > 0 {
		e.throttle[service]--
		return true
	}
	return false
}

func (e *Env) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		e.problem("%s %s: AWS JSON and query protocols POST to /", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		e.problem("%s: request is not signed with SigV4", r.Header.Get("X-Amz-Target"))
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, op, _ := strings.Cut(target, ".")
		svc, ok := targets[prefix]
		if !ok {
			e.problem("unknown X-Amz-Target %q", target)
			jsonError(w, http.StatusBadRequest, "UnknownOperationException", "unknown target "+target)
			return
		}
		e.serveJSON(w, r, svc, op, body)
		return
	}
	e.serveQuery(w, r, body)
}

func (e *Env) serveJSON(w http.ResponseWriter, r *http.Request, svc, op string, body []byte) {
	call := Call{Service: svc, Operation: op, Body: body}
	defer func() { e.record(call) }()
	m := e.models[svc]
	in := m.shapeOf(op, "input")
	if in == "" {
		e.problem("%s.%s is not an operation of the model subset", svc, op)
		call.Status = http.StatusBadRequest
		jsonError(w, call.Status, "UnknownOperationException", op)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		e.problem("%s.%s: Content-Type %q, want application/x-amz-json-1.1", svc, op, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		e.problem("%s.%s: body is not JSON: %v", svc, op, err)
		call.Status = http.StatusBadRequest
		jsonError(w, call.Status, "SerializationException", err.Error())
		return
	}
	if probs := m.validate(in, v, op); len(probs) > 0 {
		e.problem("%s.%s request: %s", svc, op, strings.Join(probs, "; "))
		call.Status = http.StatusBadRequest
		jsonError(w, call.Status, "ValidationException", strings.Join(probs, "; "))
		return
	}
	if e.throttled(svc) {
		call.Status = http.StatusBadRequest
		jsonError(w, call.Status, "ThrottlingException", "Rate exceeded")
		return
	}
	var out any
	var err *apiError
	switch svc {
	case "codebuild":
		out, err = e.CodeBuild.handle(op, body)
	case "secretsmanager":
		out, err = e.Secrets.handle(op, body)
	case "ecr":
		out, err = e.ECR.handle(op, body)
	}
	if err != nil {
		if m.Shapes[err.code] == nil {
			e.problem("%s.%s answered error %s, which the model does not define", svc, op, err.code)
		}
		call.Status = http.StatusBadRequest
		jsonError(w, call.Status, err.code, err.msg)
		return
	}
	b, _ := json.Marshal(out)
	var check any
	_ = json.Unmarshal(b, &check)
	if probs := m.validate(m.shapeOf(op, "output"), check, op+" response"); len(probs) > 0 {
		e.problem("%s.%s response: %s", svc, op, strings.Join(probs, "; "))
	}
	call.Status = http.StatusOK
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", requestID())
	w.Write(b)
}

// apiError is a modelled AWS error.
type apiError struct{ code, msg string }

func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-ErrorType", code)
	w.Header().Set("x-amzn-RequestId", requestID())
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func epoch(t time.Time) float64 {
	return float64(t.UnixMilli()) / 1000
}
