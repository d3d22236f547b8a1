package report

import (
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

const (
	newSHA   = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
	oldSHA   = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	newImage = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	oldImage = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	buildLog = "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
)

// onIssue is a command given in comment 77 on issue #5 by the product owner.
var onIssue = deploy.Trigger{Event: "issue_comment", Delivery: "c1", Issue: 5, Comment: 77, Actor: "po"}

func atMS(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// slotDeploy is a normal deploy of a new commit to prod, a stage with the slots prod and
// prod-backup, rolling out to the idle slot prod-backup.
func slotDeploy(state deploy.State) view {
	d := deploy.Deploy{ID: 8, State: state, CreatedAt: at(0), StartedAt: at(1),
		Request: deploy.Request{App: "hello", Stage: "prod", Repo: "acme/hello", SHA: newSHA, Ref: "prod",
			Trigger: deploy.Trigger{Event: "push", Delivery: "p1", Actor: "lead"}}}
	cp := deploy.Checkpoint{
		Steps: []deploy.StepRecord{
			{Name: "Preflight", Status: deploy.StepSucceeded, Started: at(1), Finished: at(2),
				Detail: "secret `hello/prod`, 1 Deployment(s), Secret `hello-env-key`; deploying to idle slot prod-backup (prod is live)"},
			{Name: "Build", Status: deploy.StepSucceeded, Started: at(2), Finished: at(194), Link: buildLog},
			{Name: "Rollout", Status: deploy.StepRunning, Started: at(194), Detail: "api-prod-backup: 2 of 3 pods updated"},
		},
		BuildPhase: "COMPLETED", BuildStarted: at(2), Image: newImage, ImagesSet: true,
		Progress: "api-prod-backup: 2 of 3 pods updated", Slot: "prod-backup", FromSlot: "prod",
	}
	return view{D: d, CP: cp, Now: at(230), WebURL: "https://github.com", Compare: oldSHA}
}

// switchDeploy is `/rollback prod` on a two-slot stage: the Services go back to slot prod, which
// still runs the commit before.
func switchDeploy(state deploy.State) view {
	d := deploy.Deploy{ID: 9, State: state, CreatedAt: at(0), StartedAt: at(1), FinishedAt: atMS(1850),
		Request: deploy.Request{App: "hello", Stage: "prod", Repo: "acme/hello", SHA: oldSHA, Ref: "prod",
			Trigger: onIssue, Mode: deploy.ModeSwitch, Slot: "prod"}}
	cp := deploy.Checkpoint{
		Steps: []deploy.StepRecord{
			{Name: "Preflight", Status: deploy.StepSucceeded, Started: at(1), Finished: atMS(1600), Detail: "slot prod is healthy"},
			{Name: "Switch", Status: deploy.StepSucceeded, Started: atMS(1600), Finished: atMS(1850),
				Detail: "1 Service(s) now select slot prod (was prod-backup)"},
		},
		Slot: "prod", FromSlot: "prod-backup", Switched: true,
	}
	return view{D: d, CP: cp, Now: at(5), WebURL: "https://github.com", Compare: newSHA}
}

// switchRefused is a slot switch that preflight refused: the slot asked for is live already.
func switchRefused() view {
	v := switchDeploy(deploy.Failed)
	v.D.Error, v.D.FinishedAt = "preflight: slot prod is live already", atMS(1300)
	v.CP = deploy.Checkpoint{Slot: "prod", FromSlot: "prod", Steps: []deploy.StepRecord{
		{Name: "Preflight", Status: deploy.StepFailed, Started: at(1), Finished: atMS(1300), Detail: "slot prod is live already"}}}
	return v
}

// TestGoldenModes pins the check runs of what is not a plain build and rollout: a deploy to a
// two-slot stage, a slot switch (and one refused at preflight), an image rollback, a deploy an
// admin forced past the stage order, and pull-request builds, with the check run each is on.
func TestGoldenModes(t *testing.T) {
	slotSucceeded := slotDeploy(deploy.Succeeded)
	slotSucceeded.D.FinishedAt = atMS(236040)
	slotSucceeded.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(194), Finished: at(236),
		Detail: "1 Deployment(s) updated"}
	slotSucceeded.CP.Steps = append(slotSucceeded.CP.Steps, deploy.StepRecord{Name: "Switch", Status: deploy.StepSucceeded,
		Started: at(236), Finished: atMS(236040), Detail: "1 Service(s) now select slot prod-backup (was prod)"})
	slotSucceeded.CP.Progress, slotSucceeded.CP.RolloutDone, slotSucceeded.CP.Switched = "", true, true

	imageRollback := view{D: deploy.Deploy{ID: 10, State: deploy.Succeeded, CreatedAt: at(0), StartedAt: at(1), FinishedAt: at(53),
		Request: deploy.Request{App: "hello", Stage: "alpha", Repo: "acme/hello", SHA: oldSHA, Ref: "alpha", Trigger: onIssue,
			Mode: deploy.ModeImage, Image: oldImage}},
		CP: deploy.Checkpoint{Image: oldImage, ImagesSet: true, Steps: []deploy.StepRecord{
			{Name: "Preflight", Status: deploy.StepSucceeded, Started: at(1), Finished: at(2), Detail: "secret `hello/alpha`, 1 Deployment(s), Secret `hello-env-key`"},
			{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(2), Finished: at(53), Detail: "1 Deployment(s) updated"},
		}},
		Now: at(60), WebURL: "https://github.com", Compare: newSHA}

	forced := fixture(deploy.Succeeded)
	forced.D.Stage, forced.D.Ref, forced.D.FinishedAt = "prod", "prod", at(241)
	forced.D.Force = "hotfix for the checkout outage; alpha is down for maintenance"
	forced.D.Trigger = deploy.Trigger{Event: "issue_comment", Delivery: "c2", Issue: 5, Comment: 78, Actor: "admin"}
	forced.CP.Steps[0].Detail = "secret `hello/prod`, 2 Deployment(s), Secret `hello-env-key`"
	forced.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(194), Finished: at(241), Detail: "2 Deployment(s) updated"}

	prBuilding := prBuild(deploy.Building)
	prSucceeded := prBuild(deploy.Succeeded)
	prSucceeded.D.FinishedAt = at(195)
	prSucceeded.CP.Steps[1] = deploy.StepRecord{Name: "Build", Status: deploy.StepSucceeded, Started: at(2), Finished: at(195), Link: buildLog}
	prSucceeded.CP.BuildPhase = "COMPLETED"
	prFailed := prBuild(deploy.Failed)
	prFailed.D.Error = "build failed in BUILD: Error while executing command: npm test. Reason: exit status 1"
	prFailed.D.FinishedAt = at(150)
	prFailed.CP.Steps[1] = deploy.StepRecord{Name: "Build", Status: deploy.StepFailed, Started: at(2), Finished: at(150),
		Detail: prFailed.D.Error, Link: buildLog}

	for _, tt := range []struct {
		name  string
		check string // the check run's name
		v     view
	}{
		{"checkrun-slot-rolling-out", "stagecoach/prod", slotDeploy(deploy.RollingOut)},
		{"checkrun-slot-succeeded", "stagecoach/prod", slotSucceeded},
		{"checkrun-switch-succeeded", "stagecoach/prod", switchDeploy(deploy.Succeeded)},
		{"checkrun-switch-refused", "stagecoach/prod", switchRefused()},
		{"checkrun-image-rollback-succeeded", "stagecoach/alpha", imageRollback},
		{"checkrun-forced-succeeded", "stagecoach/prod", forced},
		{"checkrun-pr-build-building", PRBuildCheck, prBuilding},
		{"checkrun-pr-build-succeeded", PRBuildCheck, prSucceeded},
		{"checkrun-pr-build-failed", PRBuildCheck, prFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkRunName(tt.v.D); got != tt.check {
				t.Errorf("check run %q, want %q", got, tt.check)
			}
			checkGolden(t, tt.name, checkRunText(tt.v))
		})
	}
}

// prBuild is the build of pull request #3's head, which deploys nothing.
func prBuild(state deploy.State) view {
	d := deploy.Deploy{ID: 12, State: state, CreatedAt: at(0), StartedAt: at(1),
		Request: deploy.Request{App: "hello", Stage: deploy.PRStage(3), Repo: "acme/hello", SHA: newSHA, Ref: "login-page",
			Mode: deploy.ModePRBuild, Trigger: deploy.Trigger{Event: "pull_request", Delivery: "pr1", PR: 3, Actor: "dev"}}}
	cp := deploy.Checkpoint{
		Steps: []deploy.StepRecord{
			{Name: "Preflight", Status: deploy.StepSucceeded, Started: at(1), Finished: at(1), Detail: "pull request #3, credentials tier pr"},
			{Name: "Build", Status: deploy.StepRunning, Started: at(2), Detail: "phase BUILD", Link: buildLog},
		},
		BuildPhase: "BUILD", BuildStarted: at(2), ExpectedBuild: 3 * time.Minute, BuildLog: buildLog,
	}
	// Compare is set as the reporter would set it (an earlier build of the pull request
	// succeeded): a build deploys nothing, so its check run must not link "changes since".
	return view{D: d, CP: cp, Now: at(80), WebURL: "https://github.com", Compare: oldSHA}
}
