package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
)

// due reports whether a job of kind k is due at the runner's current time, without running it.
func claimable(t *testing.T, r *Runner) bool {
	t.Helper()
	j, l, err := r.st.ClaimJob(context.Background(), "peek", r.kinds, time.Minute)
	if err != nil {
		return false
	}
	// Put it back as it was: the peek must not count.
	if err := r.st.PostponeJob(context.Background(), l, j.RunAfter, "", ""); err != nil {
		t.Fatal(err)
	}
	return true
}

// TestRetryAfterIsHonouredExactlyNotCompoundedWithBackoff: a job that has failed several times
// (its backoff is now tens of seconds) is told by GitHub's secondary rate limit to come back in
// 3 s. The old runner waited max(backoff, Retry-After), so the next call came 15-55 s later; now
// the job is due exactly 3 s later, and the wait does not use up an attempt.
func TestRetryAfterIsHonouredExactlyNotCompoundedWithBackoff(t *testing.T) {
	fail := errors.New("502 Bad Gateway")
	limited := fmt.Errorf("wrapped: %w", &jobs.RetryAfterError{After: 3 * time.Second, Err: errors.New("secondary rate limit")})
	ex := &scripted{kind: "k", errs: []error{fail, fail, fail, fail, limited}}
	r, st, now := newRunner(t, ex)
	r.o.MaxAttempts = 6
	enqueue(t, st, "k", "j1")
	ctx := context.Background()
	for ex.runs < 5 {
		if worked, err := r.RunOne(ctx); err != nil {
			t.Fatal(err)
		} else if !worked {
			*now = now.Add(time.Minute) // past the backoff of four attempts
		}
	}
	limitedAt := *now
	*now = limitedAt.Add(3*time.Second - time.Microsecond)
	if claimable(t, r) {
		t.Fatal("the job is due before Retry-After")
	}
	*now = limitedAt.Add(3 * time.Second)
	if !claimable(t, r) {
		t.Fatal("the job is not due when Retry-After ends: the wait was compounded with backoff")
	}
	// The wait did not count: with MaxAttempts 6 the job still has its sixth attempt.
	if worked, err := r.RunOne(ctx); !worked || err != nil {
		t.Fatal(worked, err)
	}
	if p, _ := st.PendingJobs(ctx); p["k"] != 0 || ex.runs != 6 {
		t.Errorf("pending %v after %d runs, want done after 6", p, ex.runs)
	}
}

// TestJobsWaitingForGitHubAreWokenWhenItAnswersAgain: during an outage a job's backoff grows
// (the old runner found GitHub back only at the next attempt, 43-106 s after a 14 s outage).
// Now a job that failed because GitHub did not answer waits for it, attempts unused; while the
// probe fails it stays asleep, and the probe that finds GitHub answering makes it due at once.
func TestJobsWaitingForGitHubAreWokenWhenItAnswersAgain(t *testing.T) {
	down := jobs.Unavailable("github", errors.New("503 Service Unavailable"))
	ex := &scripted{kind: "k", errs: []error{down, down, down}}
	r, st, now := newRunner(t, ex)
	enqueue(t, st, "k", "j1")
	ctx := context.Background()
	answers := false
	gh := Service{Name: "github", Probe: func(context.Context) error {
		if !answers {
			return errors.New("503")
		}
		return nil
	}}
	for i := range 3 {
		if i > 0 {
			*now = now.Add(2 * time.Second) // past its backoff: it is tried again, and fails again
		}
		if worked, err := r.RunOne(ctx); !worked || err != nil {
			t.Fatal(worked, err)
		}
		if err := r.probe(ctx, gh); err != nil {
			t.Fatal(err)
		}
		if claimable(t, r) {
			t.Fatal("a job waiting for GitHub is due while GitHub is down")
		}
	}
	// Three failures, none counted (MaxAttempts is 3): the job is still there, waiting.
	if p, _ := st.PendingJobs(ctx); p["k"] != 1 {
		t.Fatalf("pending = %v: the outage used up the job's attempts", p)
	}
	answers = true
	if err := r.probe(ctx, gh); err != nil {
		t.Fatal(err)
	}
	if !claimable(t, r) {
		t.Fatal("GitHub answers again but the waiting job is not due")
	}
	if worked, err := r.RunOne(ctx); !worked || err != nil {
		t.Fatal(worked, err)
	}
	if p, _ := st.PendingJobs(ctx); p["k"] != 0 {
		t.Errorf("pending = %v, want the job done", p)
	}
}

// TestHandleDecodesThePayload: one typed decode for every executor; a payload that does not
// decode fails the job for good instead of being retried.
func TestHandleDecodesThePayload(t *testing.T) {
	var got jobs.DeployReport
	e := Handle(jobs.KindDeployReport, func(_ context.Context, _ jobs.Job, p jobs.DeployReport) error { got = p; return nil })
	if e.Kind() != jobs.KindDeployReport {
		t.Errorf("kind = %s", e.Kind())
	}
	if err := e.Run(context.Background(), jobs.Job{Kind: e.Kind(), Payload: []byte(`{"deploy_id":7,"seq":3}`)}); err != nil || got.DeployID != 7 || got.Seq != 3 {
		t.Errorf("run = %v, payload %+v", err, got)
	}
	if err := e.Run(context.Background(), jobs.Job{Kind: e.Kind(), Payload: []byte(`{"deploy_id":"x"}`)}); !jobs.IsTerminal(err) {
		t.Errorf("a bad payload gave %v, want a terminal error", err)
	}
}
