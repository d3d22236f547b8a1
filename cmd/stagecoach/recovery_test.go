package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/recovery"
	"github.com/stagecoach/stagecoach/internal/testenv/sandbox"
)

// TestWorkMissedWhileStoppedIsRecoveredOnce is the outage on the running service:
// Stagecoach stops while a pull request is merged, a pull request is pushed to, a release is
// tagged and `/promote prod` is commented; every delivery fails and GitHub sends none again by
// itself. After Stagecoach starts, each is acted on exactly once (test deploys the merge, the
// new head is built, the tag gets its release issue, prod is promoted), by the recovery pass
// every start runs: the next periodic pass is an hour away, so nothing here waited for one.
// With recovery off this test fails: nothing the outage missed ever happens.
func TestWorkMissedWhileStoppedIsRecoveredOnce(t *testing.T) {
	serve := func(ctx context.Context, s sandbox.Server) error {
		return serveSandboxTuned(ctx, s, func(o *serverOptions) {
			o.recovery = recovery.Options{Interval: time.Hour, FollowUp: time.Second}
		})
	}
	var out bytes.Buffer
	w, err := sandbox.Start(context.Background(), sandbox.Options{Dir: t.TempDir(), Listen: "127.0.0.1:0", Out: &out, Serve: serve})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	failed, err := w.PlayOutage(ctx)
	t.Logf("the story:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	gh := w.GitHub
	if err := gh.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Each failed delivery was redelivered once, and taken.
	redelivered := map[string]int{}
	for _, d := range gh.Deliveries() {
		if d.Redelivery {
			redelivered[d.ID]++
			if d.Failed() {
				t.Errorf("redelivery of %s %s failed: %d %v", d.Event, d.Action, d.Status, d.Err)
			}
		}
	}
	byEvent := map[string]int{}
	for _, d := range failed {
		byEvent[d.Event]++
		if redelivered[d.ID] != 1 {
			t.Errorf("%s %s %s redelivered %d times, want once", d.Event, d.Action, d.ID, redelivered[d.ID])
		}
	}
	if n := gh.Count("apps/redeliver-webhook-delivery"); n != len(failed) {
		t.Errorf("%d redeliveries asked for, want %d", n, len(failed))
	}
	// The restarted process's metrics count each recovered delivery once its redelivery was
	// seen taken (the pass after the one that asked), and nothing reconciled besides.
	var want []string
	for event, n := range byEvent {
		want = append(want, fmt.Sprintf(`stagecoach_recovered_total{event=%q,how="redelivered"} %d`, event, n))
	}
	var text string
	eventually(t, "recovery to see every redelivery taken", func() bool {
		text = scrapeMetrics(t, w.InternalURL)
		for _, line := range want {
			if !strings.Contains(text, line) {
				return false
			}
		}
		return true
	})
	if strings.Contains(text, `how="reconciled"`) || !strings.Contains(text, fmt.Sprintf(`stagecoach_recovery_redeliveries_total{outcome="requested"} %d`, len(failed))) {
		t.Errorf("recovery metrics:\n%s", grep(text, "recover"))
	}
	for _, p := range gh.Problems() {
		t.Errorf("GitHub test server: %s", p)
	}
}

func scrapeMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
