package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/webhook"
)

type fakeStore struct{ err error }

func (f fakeStore) CountDeploys(context.Context) (map[deploy.State]int, error) {
	return map[deploy.State]int{deploy.Queued: 2, deploy.Succeeded: 5}, f.err
}

func (f fakeStore) PendingJobs(context.Context) (map[string]int, error) {
	return map[string]int{"checkrun.create": 3}, f.err
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	return w.Body.String()
}

func TestMetrics(t *testing.T) {
	m := New(fakeStore{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.Delivered("pull_request", webhook.Accepted)
	m.Delivered("pull_request", webhook.Accepted)
	m.Delivered("push", webhook.Unauthorized)
	m.Delivered("made-up-event-1234", webhook.Ignored)
	out := scrape(t, m)
	for _, want := range []string{
		`stagecoach_webhook_deliveries_total{event="pull_request",result="accepted"} 2`,
		`stagecoach_webhook_deliveries_total{event="push",result="unauthorized"} 1`,
		`stagecoach_webhook_deliveries_total{event="other",result="ignored"} 1`,
		`stagecoach_deploys{state="queued"} 2`,
		`stagecoach_deploys{state="succeeded"} 5`,
		`stagecoach_deploys{state="failed"} 0`,
		`stagecoach_jobs_pending{kind="checkrun.create"} 3`,
		`stagecoach_store_up 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(out, "made-up-event") {
		t.Error("an arbitrary event name became a label")
	}
}

func TestStoreDown(t *testing.T) {
	m := New(fakeStore{err: errors.New("down")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	out := scrape(t, m)
	if !strings.Contains(out, "stagecoach_store_up 0") || strings.Contains(out, "stagecoach_deploys{") {
		t.Errorf("store down not shown:\n%s", out)
	}
}

func TestClientMetrics(t *testing.T) {
	m := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	answer := func(code int, header http.Header) http.RoundTripper {
		return roundTripper(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: code, Header: header, Body: http.NoBody}, nil
		})
	}
	gh := m.GitHubTransport(answer(201, http.Header{"X-Ratelimit-Remaining": []string{"4321"}}))
	req, _ := http.NewRequest("POST", "https://api.github.com/repos/a/b/check-runs", nil)
	gh.RoundTrip(req)
	gh.RoundTrip(req)
	aws := m.AWSClient(&http.Client{Transport: answer(200, nil)})
	cb, _ := http.NewRequest("POST", "https://codebuild.eu-west-1.amazonaws.com/", nil)
	cb.Header.Set("X-Amz-Target", "CodeBuild_20161006.BatchGetBuilds")
	aws.Do(cb)
	sts, _ := http.NewRequest("POST", "https://sts.amazonaws.com/", nil)
	sts.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	aws.Do(sts)
	m.DeployEnded(deploy.Deploy{State: deploy.Succeeded, Request: deploy.Request{Stage: "prod"}}, 200*time.Second)
	out := scrape(t, m)
	for _, want := range []string{
		`stagecoach_github_requests_total{code="201"} 2`,
		`stagecoach_github_rate_limit_remaining 4321`,
		`stagecoach_aws_requests_total{code="200",service="codebuild"} 1`,
		`stagecoach_aws_requests_total{code="200",service="sts"} 1`,
		`stagecoach_deploy_duration_seconds_bucket{result="succeeded",stage="prod",le="300"} 1`,
		`stagecoach_deploy_duration_seconds_bucket{result="succeeded",stage="prod",le="180"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestRecoveryMetrics(t *testing.T) {
	m := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.RecoveryPass("done")
	m.Redelivery("requested")
	m.Redelivery("requested")
	m.Redelivery("stale")
	m.Recovered("redelivered", "issue_comment")
	m.Recovered("reconciled", "push")
	m.Recovered("redelivered", "made-up-event-1234")
	out := scrape(t, m)
	for _, want := range []string{
		`stagecoach_recovery_passes_total{result="done"} 1`,
		`stagecoach_recovery_redeliveries_total{outcome="requested"} 2`,
		`stagecoach_recovery_redeliveries_total{outcome="stale"} 1`,
		`stagecoach_recovered_total{event="issue_comment",how="redelivered"} 1`,
		`stagecoach_recovered_total{event="push",how="reconciled"} 1`,
		`stagecoach_recovered_total{event="other",how="redelivered"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(out, "made-up-event") {
		t.Error("an arbitrary event name became a label")
	}
}
