package githubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"
)

// client is a real go-github client of installation 1, through ghinstallation.
func client(t *testing.T, s *Server) (*github.Client, *http.Client) {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	itr := ghinstallation.NewFromAppsTransport(atr, 1)
	base := s.URL()
	c, err := github.NewClient(github.WithTransport(itr), github.WithURLs(&base, &base))
	if err != nil {
		t.Fatal(err)
	}
	return c, &http.Client{Transport: itr}
}

func TestCheckRunLifecycle(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	cr, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{
		Name: "stagecoach/test", HeadSHA: "abc", Status: github.Ptr("queued"), ExternalID: github.Ptr("7"),
		Output: &github.CheckRunOutput{Title: github.Ptr("Queued"), Summary: github.Ptr("waiting")},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = gh.Checks.UpdateCheckRun(ctx, "acme", "app", cr.GetID(), github.UpdateCheckRunOptions{
		Name: "stagecoach/test", Status: github.Ptr("completed"), Conclusion: github.Ptr("success"),
		Output: &github.CheckRunOutput{Title: github.Ptr("Deployed"), Summary: github.Ptr("done")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := gh.Checks.GetCheckRun(ctx, "acme", "app", cr.GetID())
	if err != nil || got.GetConclusion() != "success" || got.GetOutput().GetTitle() != "Deployed" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	runs := s.CheckRuns("acme/app")
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].ExternalID != "7" || runs[0].Updates != 1 {
		t.Errorf("stored = %+v", runs)
	}
	if s.Count("apps/create-installation-access-token") != 1 || s.Count("checks/create") != 1 {
		t.Errorf("requests: %+v", s.Requests())
	}
}

// TestRejections sends requests GitHub's description does not allow; each must be refused and
// recorded. The test server would fail this test at cleanup for them, so it uses a child test
// value that only collects those errors.
func TestRejections(t *testing.T) {
	tests := []struct {
		name, method, path, body, problem string
		status                            int
	}{
		{"completed without conclusion", "PATCH", "/repos/acme/app/check-runs/1", `{"name":"x","status":"completed"}`, "matches none of anyOf", 422},
		{"unknown status", "POST", "/repos/acme/app/check-runs", `{"name":"x","head_sha":"a","status":"done"}`, `done is not one of`, 0},
		{"missing head_sha", "POST", "/repos/acme/app/check-runs", `{"name":"x"}`, `"head_sha" is required`, 422},
		{"wrong type", "POST", "/repos/acme/app/check-runs", `{"name":7,"head_sha":"a"}`, "want string", 422},
		{"unknown path", "GET", "/repos/acme/app/frobs", ``, "no operation", 404},
		{"wrong method", "DELETE", "/repos/acme/app/check-runs/1", ``, "no operation", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &collector{TB: t}
			s := New(sink)
			_, hc := client(t, s)
			req, _ := http.NewRequest(tt.method, strings.TrimSuffix(s.URL(), "/")+tt.path, bytes.NewBufferString(tt.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			rej := s.Rejected()
			if len(rej) != 1 || !strings.Contains(strings.Join(rej[0].Problems, ";"), tt.problem) {
				t.Fatalf("rejected = %+v, want one with %q", rej, tt.problem)
			}
			if tt.status != 0 && resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

// collector stands in for a testing.TB to capture the server's cleanup errors.
type collector struct {
	testing.TB
	errs []string
}

func (c *collector) Errorf(format string, args ...any) { c.errs = append(c.errs, format) }

func TestFaults(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	// A first call fetches and caches the installation token.
	if _, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: "a"}); err != nil {
		t.Fatal(err)
	}
	s.SetDown(true)
	if _, _, err := gh.Checks.GetCheckRun(ctx, "acme", "app", 1); err == nil {
		t.Error("a call succeeded while GitHub was down")
	}
	s.SetDown(false)
	s.FailNext("checks/get", 1, 502)
	_, resp, err := gh.Checks.GetCheckRun(ctx, "acme", "app", 1)
	if err == nil || resp.StatusCode != 502 {
		t.Errorf("injected 502: %v", err)
	}
	// go-github then refuses calls locally until Retry-After has passed.
	s.SecondaryRateLimit(1, 30*time.Second)
	_, _, err = gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: "a"})
	var abuse *github.AbuseRateLimitError
	if !asAbuse(err, &abuse) || abuse.GetRetryAfter() != 30*time.Second {
		t.Errorf("secondary limit: %v", err)
	}
}

func asAbuse(err error, target **github.AbuseRateLimitError) bool {
	if e, ok := err.(*github.AbuseRateLimitError); ok {
		*target = e
		return true
	}
	return false
}

func TestValidatorEdgeCases(t *testing.T) {
	s := New(t)
	var op *operation
	for _, o := range s.ops {
		if o.id == "checks/update" {
			op = o
		}
	}
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{`{"name":"x"}`, true},
		{`{"name":"x","status":"in_progress"}`, true},
		{`{"name":"x","status":"completed","conclusion":"success"}`, true},
		{`{"name":"x","conclusion":"bogus"}`, false},
		{`{"name":"x","output":{"title":"t"}}`, false}, // output needs a summary
		{`{"name":"x","actions":[{"label":"Promote","description":"Promote to prod","identifier":"promote"}]}`, true},
		{`{"name":"x","actions":[{"label":"Promote","description":"d","identifier":"` + strings.Repeat("x", 21) + `"}]}`, false},
	} {
		var v any
		json.Unmarshal([]byte(tt.body), &v)
		probs := s.v.validate(op.request, v, "body")
		if (len(probs) == 0) != tt.ok {
			t.Errorf("%s: problems %v, want ok=%v", tt.body, probs, tt.ok)
		}
	}
	if s.checkBody(findOp(s, "apps/create-installation-access-token"), []byte("null")) != nil {
		t.Error("ghinstallation's null body for access_tokens is rejected")
	}
}

func findOp(s *Server, id string) *operation {
	for _, o := range s.ops {
		if o.id == id {
			return o
		}
	}
	return nil
}
