package githubtest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
)

// collector stands in for a testing.TB to capture what the server reports at cleanup.
type collector struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (c *collector) Errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, format)
}

func (c *collector) Cleanup(f func()) { c.cleanups = append(c.cleanups, f) }

// finish runs the cleanups, as the end of a test would, and returns the errors reported.
func (c *collector) finish() []string {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	return c.errs
}

// TestRejections sends requests the description does not allow; each must be refused,
// recorded with its problem, and reported when the test ends.
func TestRejections(t *testing.T) {
	tests := []struct {
		name, method, path, body, problem string
		status                            int
	}{
		{"completed without conclusion", "PATCH", "/repos/acme/app/check-runs/1", `{"name":"x","status":"completed"}`, "matches none of anyOf", 422},
		{"unknown status", "POST", "/repos/acme/app/check-runs", `{"name":"x","head_sha":"a","status":"done"}`, `"done" is not one of`, 422},
		{"missing head_sha", "POST", "/repos/acme/app/check-runs", `{"name":"x"}`, `"head_sha" is required`, 422},
		{"unknown path", "GET", "/repos/acme/app/frobs", ``, "no operation", 404},
		{"wrong method", "DELETE", "/repos/acme/app/check-runs/1", ``, "no operation", 404},
		{"id not an integer", "GET", "/repos/acme/app/check-runs/latest", ``, "check_run_id: want integer", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &collector{TB: t}
			s := New(sink)
			_, hc := client(t, s)
			req, err := http.NewRequest(tt.method, strings.TrimSuffix(s.URL(), "/")+tt.path, bytes.NewBufferString(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			rej := s.Rejected()
			if len(rej) != 1 || !strings.Contains(strings.Join(rej[0].Problems, ";"), tt.problem) {
				t.Fatalf("rejected = %+v, want one with %q", rej, tt.problem)
			}
			if errs := sink.finish(); len(errs) != 1 {
				t.Errorf("reported at cleanup: %q, want one error", errs)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	// A first call fetches and caches the installation token.
	_, resp, err := gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"X-RateLimit-Remaining", "X-RateLimit-Reset", "X-GitHub-Request-Id"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if resp.Rate.Remaining != 5000-2 {
		t.Errorf("rate remaining %d after two calls, want %d", resp.Rate.Remaining, 5000-2)
	}

	s.SetDown(true)
	if _, resp, _ := gh.Checks.GetCheckRun(ctx, "acme", "app", 1001); status(resp) != http.StatusServiceUnavailable {
		t.Errorf("while down: status %d, want 503", status(resp))
	}
	s.SetDown(false)
	s.SetOutage(http.StatusBadGateway)
	if _, resp, _ := gh.Checks.GetCheckRun(ctx, "acme", "app", 1001); status(resp) != http.StatusBadGateway {
		t.Errorf("during a 502 outage: status %d, want 502", status(resp))
	}
	s.SetOutage(0)

	s.CloseConnections(true)
	if _, resp, err := gh.Checks.GetCheckRun(ctx, "acme", "app", 1001); err == nil || resp != nil {
		t.Errorf("with connections dropped: %v, %v; want a transport error", resp, err)
	}
	s.CloseConnections(false)
	if _, _, err := gh.Checks.GetCheckRun(ctx, "acme", "app", 1001); err != nil {
		t.Errorf("after reconnecting: %v", err)
	}

	s.FailNext("checks/get", 2, http.StatusBadGateway)
	for range 2 {
		if _, resp, _ := gh.Checks.GetCheckRun(ctx, "acme", "app", 1001); status(resp) != http.StatusBadGateway {
			t.Errorf("injected failure: status %d, want 502", status(resp))
		}
	}
	if _, _, err := gh.Checks.GetCheckRun(ctx, "acme", "app", 1001); err != nil {
		t.Errorf("after the injected failures: %v", err)
	}

	s.SecondaryRateLimit(1, 30*time.Second)
	_, _, err = gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: "a"})
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) || abuse.GetRetryAfter() != 30*time.Second {
		t.Errorf("secondary limit: %v", err)
	}
	// go-github now refuses calls itself until Retry-After has passed: nothing reaches the server.
	before := len(s.Requests())
	if _, _, err := gh.Checks.GetCheckRun(ctx, "acme", "app", 1001); !errors.As(err, &abuse) {
		t.Errorf("call during Retry-After: %v", err)
	}
	if after := len(s.Requests()); after != before {
		t.Errorf("%d requests reached the server during Retry-After", after-before)
	}
	if len(s.Rejected()) != 0 {
		t.Errorf("rejected: %+v", s.Rejected())
	}
}

// TestConcurrentClients checks the server's state under parallel callers (run with -race).
func TestConcurrentClients(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			cr, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: "a"})
			if err == nil {
				_, _, err = gh.Issues.CreateComment(ctx, "acme", "app", i, &github.IssueComment{Body: github.Ptr(cr.GetName())})
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ids := map[int64]bool{}
	for _, cr := range s.CheckRuns("acme/app") {
		ids[cr.ID] = true
	}
	if len(ids) != 8 {
		t.Errorf("%d distinct check runs, want 8", len(ids))
	}
}

// TestOwnAnswersAreChecked makes the server answer outside the description and expects the
// test to be failed for it: the fake's answers are held to the description too.
func TestOwnAnswersAreChecked(t *testing.T) {
	sink := &collector{TB: t}
	s := New(sink)
	var op *operation
	for _, o := range s.ops {
		if o.id == "checks/get" {
			op = o
		}
	}
	s.checkResponse(op, http.StatusOK, map[string]any{"id": "not a number"})
	s.checkResponse(op, http.StatusAccepted, nil)
	errs := sink.finish()
	if len(errs) < 2 {
		t.Errorf("reported at cleanup: %q, want the bad check run and the unlisted status", errs)
	}
}

// TestNotes sends a body key the description does not name: GitHub ignores it, so the request
// is served and the key noted, not rejected.
func TestNotes(t *testing.T) {
	s := New(t)
	_, hc := client(t, s)
	resp, err := hc.Post(s.URL()+"repos/acme/app/check-runs", "application/json",
		strings.NewReader(`{"name":"n","head_sha":"a","colour":"red"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if resp.StatusCode != http.StatusCreated || len(last.Problems) != 0 || len(last.Notes) != 1 || !strings.Contains(last.Notes[0], "colour") {
		t.Errorf("status %d, request %+v", resp.StatusCode, last)
	}
}
