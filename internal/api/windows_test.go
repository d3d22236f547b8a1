package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// TestWaitingDeployAndExpiringLock: a deploy waiting for its stage's window answers with what it
// waits for and when it starts (step "waiting"); a lock taken for a while says when it expires,
// and once it has, it is no longer listed.
func TestWaitingDeployAndExpiringLock(t *testing.T) {
	h, st := emptyAPI(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 6, 17, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	id := place(t, st, deploy.Request{App: "hello", Stage: "prod", Repo: "acme/hello", SHA: "a1",
		Trigger: deploy.Trigger{Event: "push", Delivery: "p1", Actor: "po"}}, deploy.Queued, nil)
	_, l, err := st.ClaimDeploy(ctx, "pipeline", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)
	cp := deploy.Checkpoint{Wait: &deploy.Wait{Until: until, At: "Mon Mar 9 09:00 CET", Windows: "Mon-Thu 09:00-16:00 Europe/Berlin"}}
	if err := st.Advance(ctx, l, store.Update{Checkpoint: cp.Encode(), RunAfter: until, Release: true}); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, h, fmt.Sprintf("/api/v1/deployments/%d", id))
	var d struct {
		State, Step, Progress string
		Waiting               *deploy.Wait
	}
	if err := json.Unmarshal([]byte(body), &d); code != 200 || err != nil {
		t.Fatalf("%d %s (%v)", code, body, err)
	}
	if d.State != "queued" || d.Step != "waiting" || d.Progress != "waiting for the window at Mon Mar 9 09:00 CET" || d.Waiting == nil ||
		!d.Waiting.Until.Equal(until) || d.Waiting.Windows != "Mon-Thu 09:00-16:00 Europe/Berlin" {
		t.Errorf("the waiting deploy = %s", body)
	}

	if _, _, err := st.LockStage(ctx, store.StageLock{App: "hello", Stage: "prod", Repo: "acme/hello", Owner: "sre", ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, h, "/api/v1/locks"); !strings.Contains(body, `"expires_at": "2026-03-06T19:00:00Z"`) {
		t.Errorf("the lock does not say when it expires: %s", body)
	}
	now = now.Add(2 * time.Hour)
	if _, body := get(t, h, "/api/v1/locks"); !strings.Contains(body, `"locks": []`) {
		t.Errorf("an expired lock is listed: %s", body)
	}
}
