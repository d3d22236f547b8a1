package report

import (
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// verifyFixture is the fixture deploy after its rollout, verifying with two HTTP checks (one
// passed, one 2 of 3 answers in a row) and a CodeBuild verify project in phase BUILD.
func verifyFixture(state deploy.State) view {
	v := fixture(state)
	v.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(194), Finished: at(241), Detail: "2 Deployment(s) updated"}
	v.CP.Steps = append(v.CP.Steps, deploy.StepRecord{Name: "Verify", Status: deploy.StepRunning, Started: at(241)})
	v.CP.Progress = ""
	v.CP.Verify = &deploy.Verification{Phase: deploy.VerifyLive, Started: at(241),
		Checks: []deploy.CheckRecord{
			{Name: "public", URL: "https://test.acme.dev/healthz", Status: 200, Interval: 10 * time.Second, Timeout: 5 * time.Second, Successes: 3,
				Deadline: at(361), Answers: 3, InRow: 3, Result: deploy.CheckPassed, Last: &deploy.Answer{At: at(261), Status: 200, Excerpt: "ok", OK: true}},
			{Name: "health", URL: "http://api.test.svc:8080/healthz", Status: 200, Body: `"version":"c4295bd"`, Interval: 10 * time.Second,
				Timeout: 5 * time.Second, Successes: 3, Deadline: at(361), Answers: 4, InRow: 2,
				Last: &deploy.Answer{At: at(271), Status: 200, Excerpt: `{"status":"green","version":"c4295bd"}`, OK: true}},
		},
		BuildProject: "hello-smoke", BuildID: "hello-smoke:1", BuildPhase: "BUILD",
		BuildLog: "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fhello-smoke"}
	v.CP.Steps[3].Detail = v.CP.Verify.Progress()
	v.Now = at(275)
	return v
}

// TestVerifyGolden pins the check runs of a deploy verifying (the phase and its progress in the
// title, a table of the checks), of one rolled back because a check failed (which check, its
// last answer), and of a slot stage verifying its idle slot before the switch.
func TestVerifyGolden(t *testing.T) {
	verifying := verifyFixture(deploy.RollingOut)

	failed := verifyFixture(deploy.RolledBack)
	c := &failed.CP.Verify.Checks[1]
	c.Answers, c.InRow, c.Result, c.Why = 7, 0, deploy.CheckFailed, "status 503, want 200"
	c.Last = &deploy.Answer{At: at(301), Status: 503, Excerpt: "<html><body>@acme/everyone `down` | [click](https://evil.example) database unreachable</body></html>",
		Why: "status 503, want 200"}
	failed.CP.Verify.BuildStatus, failed.CP.Verify.BuildPhase = "", "BUILD"
	failed.D.Error = "rolled back: verification failed: check health (http://api.test.svc:8080/healthz): status 503, want 200"
	failed.D.FinishedAt = at(330)
	failed.CP.Steps[3] = deploy.StepRecord{Name: "Verify", Status: deploy.StepFailed, Started: at(241), Finished: at(301),
		Detail: strings.TrimPrefix(failed.D.Error, "rolled back: ")}
	failed.CP.Steps = append(failed.CP.Steps, deploy.StepRecord{Name: "Rollback", Status: deploy.StepSucceeded, Started: at(301), Finished: at(330), Detail: "2 Deployment(s) updated"})
	failed.CP.RollingBack = true

	idle := verifyFixture(deploy.RollingOut)
	idle.D.Stage = "prod"
	idle.CP.Slot, idle.CP.FromSlot, idle.CP.RolloutDone = "prod-backup", "prod", true
	idle.CP.Verify.Phase, idle.CP.Verify.BuildProject = deploy.VerifyIdle, ""
	idle.CP.Verify.Checks = idle.CP.Verify.Checks[1:]
	idle.CP.Verify.Checks[0].URL = "http://api-prod-backup.prod.svc:8080/healthz"
	idle.CP.Steps[3].Name, idle.CP.Steps[3].Detail = "Verify idle slot", idle.CP.Verify.Progress()

	for _, tt := range []struct {
		name string
		v    view
	}{
		{"checkrun-verifying", verifying},
		{"checkrun-verify-failed", failed},
		{"checkrun-verifying-idle-slot", idle},
	} {
		t.Run(tt.name, func(t *testing.T) { checkGolden(t, tt.name, checkRunText(tt.v)) })
	}
	if got, want := verifying.title(), "Verifying test: 1 of 3 checks passed, health 2/3 answers in a row (4 asked)"; got != want {
		t.Errorf("title = %q, want %q", got, want)
	}
	// The app's body is shown, never obeyed: only in a code span (no mention, no HTML, no link),
	// its pipe escaped (the table holds).
	span := "``<html><body>@acme/everyone `down` \\| [click](https://evil.example) database unreachable</body></html>``"
	body := failed.summary()
	if !strings.Contains(body, span) {
		t.Fatalf("the body excerpt is not shown as the code span %s:\n%s", span, body)
	}
	for _, bad := range []string{"@acme/everyone", "<html>", "](https://evil.example)"} {
		if strings.Contains(strings.ReplaceAll(body, span, ""), bad) {
			t.Errorf("%q outside the code span:\n%s", bad, body)
		}
	}
}
