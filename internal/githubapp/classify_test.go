package githubapp

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// TestClassify: a GitHub call's error becomes what the job runner should do with it: wait for a
// rate limit's reset, give up on a request GitHub refused for good, retry anything else.
func TestClassify(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code, Header: http.Header{}} }
	reset := time.Now().Add(90 * time.Second)
	tests := []struct {
		name     string
		err      error
		terminal bool
		after    time.Duration // > 0: a RetryAfterError at least this long
	}{
		{"nil", nil, false, 0},
		{"rate limit", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: reset}}, Response: resp(403)}, false, 80 * time.Second},
		{"secondary rate limit", &github.AbuseRateLimitError{Response: resp(403), RetryAfter: github.Ptr(42 * time.Second)}, false, 42 * time.Second},
		{"not found", &github.ErrorResponse{Response: resp(404)}, true, 0},
		{"unprocessable", fmt.Errorf("creating: %w", &github.ErrorResponse{Response: resp(422)}), true, 0},
		{"forbidden: a permission being granted", &github.ErrorResponse{Response: resp(403)}, false, 0},
		{"unauthorized: a token to renew", &github.ErrorResponse{Response: resp(401)}, false, 0},
		{"server error", &github.ErrorResponse{Response: resp(502)}, false, 0},
		{"no answer", errors.New("dial tcp: connection refused"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.err)
			if (got == nil) != (tt.err == nil) {
				t.Fatalf("Classify(%v) = %v", tt.err, got)
			}
			if jobs.IsTerminal(got) != tt.terminal {
				t.Errorf("terminal = %v, want %v", jobs.IsTerminal(got), tt.terminal)
			}
			var ra *jobs.RetryAfterError
			if isRA := errors.As(got, &ra); isRA != (tt.after > 0) || (isRA && ra.After < tt.after) {
				t.Errorf("retry after = %v (%v), want at least %s", isRA, ra, tt.after)
			}
		})
	}
}
