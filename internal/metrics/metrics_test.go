package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

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
