package githubapp

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// Service is the name jobs use for GitHub when it does not answer (jobs.UnavailableError).
const Service = "github"

// Classify turns a GitHub call's error into what the job runner should do with it: wait for a
// rate limit exactly as long as GitHub says, wait for GitHub to answer again after a server or
// network failure (the runner probes it and wakes the job), retry other failures with backoff,
// or give up on a request GitHub refused for good (404, 422: retrying the same call cannot
// succeed).
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		return &jobs.RetryAfterError{After: time.Until(rl.Rate.Reset.Time), Err: err}
	}
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		after := time.Minute
		if abuse.RetryAfter != nil {
			after = *abuse.RetryAfter
		}
		return &jobs.RetryAfterError{After: after, Err: err}
	}
	// A token refresh that GitHub refused: wait as long as it asks, or retry with backoff.
	var tokErr *ghinstallation.HTTPError
	if errors.As(err, &tokErr) && tokErr.Response != nil {
		if after, ok := retryAfter(tokErr.Response); ok {
			return &jobs.RetryAfterError{After: after, Err: err}
		}
		switch code := tokErr.Response.StatusCode; {
		case code == http.StatusNotFound || code == http.StatusUnprocessableEntity:
			return jobs.Terminal(err) // the installation is gone
		case code >= 500:
			return jobs.Unavailable(Service, err)
		}
		return err
	}
	var resp *github.ErrorResponse
	if errors.As(err, &resp) && resp.Response != nil {
		switch code := resp.Response.StatusCode; {
		case code == http.StatusTooManyRequests, code == http.StatusForbidden:
			return err // an unmarked rate limit or a permission being granted: retry
		case code == http.StatusUnauthorized:
			return err // tokens are renewed on the next attempt
		case code >= 400 && code < 500:
			return jobs.Terminal(err)
		case code >= 500:
			return jobs.Unavailable(Service, err)
		}
		return err
	}
	// No answer at all (refused or dropped connections, timeouts): GitHub is unreachable.
	return jobs.Unavailable(Service, err)
}

// retryAfter reads a rate-limited response's Retry-After (seconds) or X-RateLimit-Reset (epoch).
func retryAfter(r *http.Response) (time.Duration, bool) {
	if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if s := r.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return time.Duration(n) * time.Second, true
		}
	}
	if s := r.Header.Get("X-RateLimit-Reset"); s != "" && r.Header.Get("X-RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Until(time.Unix(n, 0)), true
		}
	}
	return 0, false
}
