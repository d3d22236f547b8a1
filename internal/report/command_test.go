package report

import (
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// commandDeploy is the deploy `/promote prod` asked for in comment 77 on release issue #5: the
// release v1.4.0 (commit c4295bd) to prod, a stage without slots.
func commandDeploy(state deploy.State) view {
	v := fixture(state)
	v.D.Stage, v.D.Ref, v.D.Trigger = "prod", "v1.4.0", onIssue
	v.CP.Steps[0].Detail = "secret `hello/prod`, 2 Deployment(s), Secret `hello-env-key`"
	return v
}

// TestGoldenCommand pins the one comment that follows a command's deploy on the issue it was
// asked on, at every point it can stand at, and the check-run title of a deploy the command
// recorded but has not let start yet.
func TestGoldenCommand(t *testing.T) {
	building := commandDeploy(deploy.Building)
	building.CP.Steps = building.CP.Steps[:2]
	building.CP.Steps[1] = deploy.StepRecord{Name: "Build", Status: deploy.StepRunning, Started: at(2), Detail: "phase BUILD", Link: buildLog}
	building.CP.BuildPhase, building.CP.Image, building.Now = "BUILD", "", at(80)

	succeeded := commandDeploy(deploy.Succeeded)
	succeeded.D.FinishedAt = at(241)
	succeeded.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(194), Finished: at(241), Detail: "2 Deployment(s) updated"}

	failed := commandDeploy(deploy.Failed)
	failed.D.Error = "build failed in BUILD: Error while executing command: docker build . Reason: exit status 1"
	failed.D.FinishedAt = at(150)
	failed.CP.Steps = failed.CP.Steps[:2]
	failed.CP.Steps[1] = deploy.StepRecord{Name: "Build", Status: deploy.StepFailed, Started: at(2), Finished: at(150), Detail: failed.D.Error, Link: buildLog}
	failed.CP.Image = ""

	rolledBack := commandDeploy(deploy.RolledBack)
	rolledBack.D.Error = `rolled back: api: progress deadline exceeded: ReplicaSet "api-7d9c" has timed out progressing. (1 of 3 pods updated)`
	rolledBack.D.FinishedAt = at(320)
	rolledBack.CP.RollingBack = true
	rolledBack.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepFailed, Started: at(194), Finished: at(290), Detail: "api: progress deadline exceeded"}
	rolledBack.CP.Steps = append(rolledBack.CP.Steps, deploy.StepRecord{Name: "Rollback", Status: deploy.StepSucceeded, Started: at(290), Finished: at(320), Detail: "2 Deployment(s) updated"})

	// The rollout failed and so did the rollback: prod does not run what it ran before.
	rollbackFailed := commandDeploy(deploy.Failed)
	rollbackFailed.D.Error = "rollout failed (api: progress deadline exceeded) and so did the rollback: progress deadline exceeded"
	rollbackFailed.D.FinishedAt = at(400)
	rollbackFailed.CP.RollingBack, rollbackFailed.CP.RollbackReason = true, "api: progress deadline exceeded"
	rollbackFailed.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepFailed, Started: at(194), Finished: at(290), Detail: "api: progress deadline exceeded"}
	rollbackFailed.CP.Steps = append(rollbackFailed.CP.Steps, deploy.StepRecord{Name: "Rollback", Status: deploy.StepFailed, Started: at(290), Finished: at(400), Detail: "progress deadline exceeded"})

	// GitHub refused to move the branch, so the command cancelled the deploy before it started.
	cancelled := commandDeploy(deploy.Cancelled)
	cancelled.D.StartedAt, cancelled.D.FinishedAt = at(0), at(2)
	cancelled.D.Error = "GitHub would not move `prod` to `c4295bd`: Protected branch update failed for refs/heads/prod. Nothing was deployed."
	cancelled.CP = deploy.Checkpoint{}

	imageRollback := commandDeploy(deploy.Succeeded)
	imageRollback.D.SHA, imageRollback.D.Ref, imageRollback.D.Mode, imageRollback.D.Image = oldSHA, "prod", deploy.ModeImage, oldImage
	imageRollback.D.FinishedAt = at(53)
	imageRollback.Compare = newSHA
	imageRollback.CP = deploy.Checkpoint{Image: oldImage, ImagesSet: true, Steps: []deploy.StepRecord{
		{Name: "Preflight", Status: deploy.StepSucceeded, Started: at(1), Finished: at(2), Detail: "secret `hello/prod`, 2 Deployment(s), Secret `hello-env-key`"},
		{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(2), Finished: at(53), Detail: "2 Deployment(s) updated"},
	}}

	for _, tt := range []struct {
		name string
		v    view
		head string // the comment's headline, which the issue's readers see first
	}{
		{"comment-command-building", building, "### ⏳ Deploying `v1.4.0` (`c4295bd`) to **prod**"},
		{"comment-command-succeeded", succeeded, "### ✅ `v1.4.0` (`c4295bd`) is live on **prod**"},
		{"comment-command-failed", failed, "### ❌ Deploying `v1.4.0` (`c4295bd`) to **prod** failed; prod still runs what it ran before"},
		{"comment-command-rolled-back", rolledBack, "### ↩️ Deploying `v1.4.0` (`c4295bd`) to **prod** failed and was rolled back"},
		{"comment-command-rollback-failed", rollbackFailed, "### ❌ Deploying `v1.4.0` (`c4295bd`) to **prod** failed and so did the rollback"},
		{"comment-command-cancelled", cancelled, "### 🚫 Deploying `v1.4.0` (`c4295bd`) to **prod** was cancelled"},
		{"comment-command-image-rollback", imageRollback, "### ✅ **prod** is back on `6113728`"},
		{"comment-command-switch", switchDeploy(deploy.Succeeded), "### ✅ **prod** is back on slot prod"},
		{"comment-command-switch-refused", switchRefused(), "### ❌ Switching **prod** back to slot prod failed; prod still runs what it ran before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.v.commandComment()
			marker, rest, _ := strings.Cut(text, "\n")
			if want := commandMarker(tt.v.D); marker != want {
				t.Errorf("first line %q, want the marker %q", marker, want)
			}
			if !strings.HasPrefix(rest, tt.head) {
				t.Errorf("headline %q, want it to start %q", strings.SplitN(rest, "\n", 2)[0], tt.head)
			}
			checkGolden(t, tt.name, text)
		})
	}
}

// TestHeldTitle proves a deploy the command recorded but has not let start yet says it is
// queued for its stage, on its own check run, and not that it is running.
func TestHeldTitle(t *testing.T) {
	held := commandDeploy(deploy.Queued)
	held.D.Held, held.D.StartedAt, held.CP = true, time.Time{}, deploy.Checkpoint{}
	checkGolden(t, "checkrun-held", checkRunText(held))
	if c := conclusion(held.D.State); c != "" {
		t.Errorf("a held deploy concludes %q; it has not run", c)
	}
}

// TestWaitingForTheWindow pins what a deploy waiting for its stage says: on its check run and in
// the command's comment, the window (or the freeze) and when it starts, and what people can do.
func TestWaitingForTheWindow(t *testing.T) {
	window := commandDeploy(deploy.Queued)
	window.D.StartedAt, window.CP = time.Time{}, deploy.Checkpoint{Wait: &deploy.Wait{Until: at(3600), At: "Mon Nov 30 09:00 CET",
		Windows: "Mon-Thu 09:00-16:00 Europe/Berlin"}}
	frozen := commandDeploy(deploy.Queued)
	frozen.D.StartedAt, frozen.CP = time.Time{}, deploy.Checkpoint{Wait: &deploy.Wait{Until: at(3600), At: "Mon Jan 4 09:00 CET",
		Freeze: "Year-end freeze", Windows: "Mon-Thu 09:00-16:00 Europe/Berlin"}}
	for _, tt := range []struct {
		name, title string
		v           view
	}{
		{"checkrun-waiting-window", "Waiting for the window at Mon Nov 30 09:00 CET", window},
		{"checkrun-waiting-freeze", "Frozen (Year-end freeze): waiting until Mon Jan 4 09:00 CET", frozen},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.title(); got != tt.title {
				t.Errorf("title = %q, want %q", got, tt.title)
			}
			if c := tt.v.commandComment(); !strings.Contains(c, "### ⏳ Deploying `v1.4.0` (`c4295bd`) to **prod** — "+tt.title) {
				t.Errorf("the command's comment does not say it waits:\n%s", c)
			}
			checkGolden(t, tt.name, checkRunText(tt.v))
		})
	}
}
