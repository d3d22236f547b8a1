// Package awstest is an in-process AWS for tests and for `stagecoach sandbox`: CodeBuild, Secrets Manager and ECR speak the
// awsJson1.1 protocol (POST /, X-Amz-Target, epoch-second timestamps) and STS the awsQuery
// protocol (form request, XML response), as the real aws-sdk-go-v2 clients expect.
//
// The fake is faithful rather than convenient. Every request the clients send and every answer
// the servers give is checked against AWS's own service models (the subset ./gen derives from
// botocore into testdata); every request's SigV4 signature is checked against the credentials
// the fake knows or issued; every secret's value is watched for in every request and answer. A
// test fails at cleanup if anything broke them (New); outside a test, Start runs the same
// servers, Problems lists what broke them and Close stops them.
//
// Builds have a real lifecycle, on the wall clock or on a clock the test moves with Advance;
// successful builds push images to the fake ECR; STS issues temporary credentials the other
// services then accept, and each call records the role that signed it.
package awstest

import (
	"crypto/rand"
	"encoding/hex"
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

// The base credentials the fake knows, as Config and the standard AWS_* variables of tests give
// them; requests signed with any other key are refused as AWS refuses them.
const (
	AccessKeyID     = "AKIDSTAGECOACHTEST"
	SecretAccessKey = "test-secret-key"
	Region          = "eu-west-1"
	Account         = "123456789012"
)

// Call is one request a client made.
type Call struct {
	Service     string // codebuild, secretsmanager, ecr, sts
	Operation   string
	Body        []byte
	Params      url.Values // STS's form parameters
	Status      int
	AccessKeyID string // the key that signed the request
	Role        string // the role whose temporary credentials signed it; "" for the base credentials
}

// Env is the fake AWS: one HTTP server for every service.
type Env struct {
	CodeBuild *CodeBuild
	Secrets   *Secrets
	ECR       *ECR
	STS       *STS

	srv       *httptest.Server
	models    map[string]*model
	closeOnce sync.Once

	mu       sync.Mutex
	calls    []Call
	problems []string
	throttle map[string]int
	faults   map[string]*fault // operation -> the failures its next calls meet
	now      func() time.Time
	manual   *time.Time // the test's clock once Advance was called
}

// Start starts the fake AWS outside of a test (New is the same inside one). Close stops it;
// Problems says what broke the service models, signatures or secrecy.
func Start() (*Env, error) {
	e := &Env{models: map[string]*model{}, throttle: map[string]int{}, faults: map[string]*fault{}, now: time.Now}
	for _, s := range []string{"codebuild", "secretsmanager", "ecr", "sts"} {
		m, err := loadModel(s)
		if err != nil {
			return nil, fmt.Errorf("awstest: %w", err)
		}
		e.models[s] = m
	}
	e.ECR = &ECR{env: e, repos: map[repoKey]*repository{}}
	e.CodeBuild = newCodeBuild(e)
	e.Secrets = &Secrets{env: e, secrets: map[string]*secret{}}
	e.STS = &STS{env: e, roles: map[string]string{}, issued: map[string]issued{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	return e, nil
}

// New starts the fake AWS for a test; it stops when the test ends, and the test fails then if a
// request or a response broke the service models.
func New(tb testing.TB) *Env {
	tb.Helper()
	e, err := Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		e.Close()
		for _, p := range e.Problems() {
			tb.Errorf("AWS test server: %s", p)
		}
	})
	return e
}

// Close stops the servers, closing open connections. It may be called more than once.
func (e *Env) Close() {
	e.closeOnce.Do(func() {
		e.srv.CloseClientConnections()
		e.srv.Close()
	})
}

// URL is the endpoint for every service (AWS_ENDPOINT_URL, BaseEndpoint).
func (e *Env) URL() string { return e.srv.URL }

// Config is an aws.Config for the real SDK clients, pointed at the fake with the base
// credentials. It keeps the SDK's standard retryer, as in production: the throttling tests rely
// on it.
func (e *Env) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(e.srv.URL),
	}
}

// SetClock makes the servers read time from now (builds advance by it).
func (e *Env) SetClock(now func() time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now, e.manual = now, nil
}

// Advance moves the servers' clock on by d. The first call stops the wall clock where it is, so
// that from then on time moves only when the test says.
func (e *Env) Advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.manual == nil {
		t := e.now()
		e.manual = &t
		e.now = func() time.Time { return *e.manual } // read under e.mu, in Now
	}
	*e.manual = e.manual.Add(d)
}

// Now is the servers' time.
func (e *Env) Now() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now() }

// Throttle answers the next n calls to service (codebuild, secretsmanager, ecr, sts) as AWS does
// when its rate limit is exceeded.
func (e *Env) Throttle(service string, n int) {
	if _, ok := e.models[service]; !ok {
		e.problem("Throttle(%q): not one of codebuild, secretsmanager, ecr, sts", service)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.throttle[service] += n
}

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

// Problems returns what broke the service models, signatures or secrecy so far.
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

// targets maps the X-Amz-Target prefix of each JSON service to its model name.
var targets = map[string]string{
	"CodeBuild_20161006":                   "codebuild",
	"secretsmanager":                       "secretsmanager",
	"AmazonEC2ContainerRegistry_V20150921": "ecr",
}

func (e *Env) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/starport-layer-bucket/") {
		e.ECR.download(w, r) // S3, where ECR's layer download URLs point
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		e.problem("%s %s: AWS JSON and query protocols POST to /", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	// A secret's value must never travel, in either direction: Stagecoach passes secret ids.
	e.Secrets.scan("request", body)
	rec := &recorder{ResponseWriter: w}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, op, _ := strings.Cut(target, ".")
		svc, ok := targets[prefix]
		if !ok {
			e.problem("unknown X-Amz-Target %q", target)
			jsonError(w, http.StatusBadRequest, "UnknownOperationException", "unknown target "+target)
			return
		}
		e.serveJSON(rec, r, svc, op, body)
	} else {
		e.serveQuery(rec, r, body)
	}
	e.Secrets.scan("response", rec.body)
}

// recorder keeps a copy of the response body for the secrecy check.
type recorder struct {
	http.ResponseWriter
	body []byte
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body = append(r.body, b...)
	return r.ResponseWriter.Write(b)
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// epoch is a timestamp as awsJson writes it: seconds since the epoch, with milliseconds.
func epoch(t time.Time) float64 {
	return float64(t.UnixMilli()) / 1000
}

// fault is how the next calls of one operation fail: before says how many fail before the
// operation does anything, after how many do their work and then fail to answer.
type fault struct{ before, after int }

// FailNext answers the next n calls of operation (e.g. "PutImage") with a server error (HTTP
// 500) before doing anything, as AWS does in a partial outage. The SDK's retryer tries a call
// three times: n above 3 reaches the caller.
func (e *Env) FailNext(operation string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faultOf(operation).before += n
}

// LoseAnswers lets the next n calls of operation do their work, then answers each with a server
// error instead of its result: the caller cannot tell it happened.
func (e *Env) LoseAnswers(operation string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faultOf(operation).after += n
}

// faultOf returns operation's fault, making it. e.mu is held.
func (e *Env) faultOf(operation string) *fault {
	f := e.faults[operation]
	if f == nil {
		f = &fault{}
		e.faults[operation] = f
	}
	return f
}

// faulty takes one failure of operation's next call: before it works, or after.
func (e *Env) faulty(operation string) (before, after bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.faults[operation]
	switch {
	case f == nil:
	case f.before > 0:
		f.before--
		return true, false
	case f.after > 0:
		f.after--
		return false, true
	}
	return false, false
}

// accountOf is the account whose credentials signed a call: an assumed role's is in its ARN
// (arn:aws:iam::ACCOUNT:role/NAME), the base credentials are Account's.
func accountOf(role string) string {
	parts := strings.Split(role, ":")
	if len(parts) >= 5 && parts[4] != "" {
		return parts[4]
	}
	return Account
}
