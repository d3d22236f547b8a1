package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/store"
)

// fakeRecorder keeps what it was asked to record, or fails when err is set.
type fakeRecorder struct {
	mu   sync.Mutex
	got  []store.Intake
	seen map[string]bool
	err  error
}

func (f *fakeRecorder) Record(_ context.Context, in store.Intake) (store.Recorded, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return store.Recorded{}, f.err
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	if f.seen[in.Delivery.ID] {
		return store.Recorded{Duplicate: true}, nil
	}
	f.seen[in.Delivery.ID] = true
	f.got = append(f.got, in)
	rec := store.Recorded{}
	for i := range in.Deploys {
		rec.Deploys = append(rec.Deploys, store.RecordedDeploy{ID: int64(len(f.got)*10 + i), New: true})
	}
	return rec, nil
}

const testSecret = "test-secret"

const testConfig = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-nonprod"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-prod"}
apps:
  - name: hello
    repo: Codertocat/Hello-World
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      test: {secret_id: hello/test, deployments: [{name: api, containers: [api]}]}
`

func newIntake(t testing.TB, rec Recorder) *Intake {
	t.Helper()
	return newIntakeWith(t, rec, Options{})
}

func newIntakeWith(t testing.TB, rec Recorder, o Options) *Intake {
	t.Helper()
	cfg, err := config.Parse("webhook_test.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	in, err := New([]byte(testSecret), handlers.All(cfg), rec, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../handlers/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signed(event, delivery string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
	r.Header.Set("X-GitHub-Event", event)
	r.Header.Set("X-GitHub-Delivery", delivery)
	r.Header.Set("X-Hub-Signature-256", Sign([]byte(testSecret), body))
	return r
}

// TestGitHubSignatureVector is the example from GitHub's "Validating webhook deliveries".
func TestGitHubSignatureVector(t *testing.T) {
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!")); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	in, err := New([]byte("It's a Secret to Everybody"), nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	sum, ok := parseSignature(want)
	if !ok {
		t.Fatalf("parseSignature(%q) refuses GitHub's own example", want)
	}
	for body, valid := range map[string]bool{"Hello, World!": true, "Hello, World?": false} {
		bd, err := in.read(strings.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		if got := bd.verified(sum[:]); got != valid {
			t.Errorf("verified(%q) = %v, want %v", body, got, valid)
		}
		bd.free()
	}
	if in.Unverified() != 0 {
		t.Errorf("%d bytes still charged after every body was freed", in.Unverified())
	}
}

func TestIntake(t *testing.T) {
	merged := fixture(t, "pull_request_closed_merged.json")
	tests := []struct {
		name     string
		req      func() *http.Request
		recErr   error
		status   int
		body     string // substring of the answer
		recorded int    // deliveries recorded
	}{
		{name: "merged PR is recorded", req: func() *http.Request { return signed("pull_request", "a", merged) },
			status: 202, body: `"deploys":[10]`, recorded: 1},
		{name: "missing signature", req: func() *http.Request {
			r := signed("pull_request", "a", merged)
			r.Header.Del("X-Hub-Signature-256")
			return r
		}, status: 401, body: "X-Hub-Signature-256"},
		{name: "forged signature", req: func() *http.Request {
			r := signed("pull_request", "a", merged)
			r.Header.Set("X-Hub-Signature-256", Sign([]byte("not the secret"), merged))
			return r
		}, status: 401},
		{name: "sha1 signature only", req: func() *http.Request {
			r := signed("pull_request", "a", merged)
			r.Header.Set("X-Hub-Signature-256", "sha1=0123456789abcdef0123456789abcdef01234567")
			return r
		}, status: 401},
		{name: "body changed after signing", req: func() *http.Request {
			r := signed("pull_request", "a", merged)
			r.Body = io.NopCloser(bytes.NewReader(append([]byte(" "), merged...)))
			return r
		}, status: 401},
		{name: "ping", req: func() *http.Request { return signed("ping", "p", []byte(`{"zen":"Keep it logically awesome."}`)) },
			status: 200, body: "pong"},
		{name: "event not handled", req: func() *http.Request { return signed("star", "s", []byte(`{}`)) },
			status: 202, body: "not handled"},
		{name: "not a merge", req: func() *http.Request { return signed("pull_request", "c", fixture(t, "pull_request_closed.json")) },
			status: 202, body: "not merged"},
		{name: "malformed JSON", req: func() *http.Request { return signed("pull_request", "m", []byte(`{"action":"closed",`)) },
			status: 400, body: "invalid JSON at byte"},
		{name: "missing delivery id", req: func() *http.Request { return signed("pull_request", "", merged) },
			status: 400, body: "X-GitHub-Delivery"},
		{name: "GET", req: func() *http.Request { return httptest.NewRequest(http.MethodGet, "/webhook", nil) }, status: 405},
		{name: "too large by Content-Length", req: func() *http.Request {
			r := signed("push", "big", []byte(`{}`))
			r.ContentLength = MaxBody + 1
			return r
		}, status: 413},
		{name: "too large while streaming", req: func() *http.Request {
			r := signed("push", "big", []byte(`{}`))
			r.ContentLength = -1
			r.Body = io.NopCloser(io.LimitReader(zeros{}, MaxBody+10))
			return r
		}, status: 413},
		{name: "store down", recErr: errors.New("disk full"), req: func() *http.Request { return signed("pull_request", "a", merged) },
			status: 503, body: "redeliver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecorder{err: tt.recErr}
			w := httptest.NewRecorder()
			newIntake(t, rec).ServeHTTP(w, tt.req())
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body %q does not contain %q", w.Body, tt.body)
			}
			if len(rec.got) != tt.recorded {
				t.Errorf("recorded %d deliveries, want %d", len(rec.got), tt.recorded)
			}
		})
	}
}

func TestRedeliveryIsDuplicate(t *testing.T) {
	rec := &fakeRecorder{}
	in := newIntake(t, rec)
	body := fixture(t, "pull_request_closed_merged.json")
	var codes []int
	for range 3 {
		w := httptest.NewRecorder()
		in.ServeHTTP(w, signed("pull_request", "same-delivery", body))
		codes = append(codes, w.Code)
		if w.Code == 202 && len(codes) > 1 && !strings.Contains(w.Body.String(), "duplicate") {
			t.Errorf("redelivery answered %s, want duplicate", w.Body)
		}
	}
	if len(rec.got) != 1 {
		t.Errorf("recorded %d times, want once (codes %v)", len(rec.got), codes)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// FuzzIntake sends arbitrary signed bodies and events: the intake must answer every one with a
// defined status and never panic; whatever it accepts it must have recorded.
func FuzzIntake(f *testing.F) {
	f.Add("pull_request", fixture(f, "pull_request_closed_merged.json"))
	f.Add("push", fixture(f, "push.json"))
	f.Add("issue_comment", fixture(f, "issue_comment_created.json"))
	f.Add("push", []byte(`{"ref":"refs/heads/master","after":"x","repository":{"full_name":"Codertocat/Hello-World"}}`))
	f.Add("create", []byte(`{"ref_type":"tag","ref":"v1","repository":{"full_name":"Codertocat/Hello-World"}}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		rec := &fakeRecorder{}
		w := httptest.NewRecorder()
		newIntake(t, rec).ServeHTTP(w, signed(event, "fuzz", body))
		switch w.Code {
		case 200, 400:
			if len(rec.got) != 0 {
				t.Fatalf("status %d but recorded %+v", w.Code, rec.got)
			}
		case 202:
			if strings.Contains(w.Body.String(), `"accepted"`) != (len(rec.got) == 1) {
				t.Fatalf("answer %s disagrees with %d recorded", w.Body, len(rec.got))
			}
		default:
			t.Fatalf("unexpected status %d: %s", w.Code, w.Body)
		}
	})
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
