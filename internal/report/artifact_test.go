package report

import (
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

const testedDigest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// promotedFixture is a deploy of an app with artifact: promote to prod: the image tested on
// alpha (deploy #6), copied into prod's registry in another account.
func promotedFixture(state deploy.State) view {
	v := fixture(state)
	v.D.Stage, v.D.ID = "prod", 8
	v.D.Trigger = deploy.Trigger{Event: "issue_comment", Actor: "paula", Issue: 1}
	a := &deploy.Artifact{From: "alpha", FromDeploy: 6, Source: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello", Digest: testedDigest,
		Target: "210987654321.dkr.ecr.eu-west-1.amazonaws.com/hello", Copied: true}
	v.CP = deploy.Checkpoint{Artifact: a, Image: a.Target + "@" + a.Digest, Steps: []deploy.StepRecord{
		{Name: "Preflight", Status: deploy.StepSucceeded, Started: at(1), Finished: at(2), Detail: "1 Deployment(s), configuration from Secret `hello-prod-env`"},
		{Name: "Promote", Status: deploy.StepSucceeded, Started: at(2), Finished: at(9),
			Detail: a.SameImage() + "; copied to " + a.Target + " (3 blob(s), 6.0 MiB; 0 reused)"},
		{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(9), Finished: at(40), Detail: "1 Deployment(s) updated"},
	}}
	v.D.FinishedAt = at(40)
	return v
}

// TestPromotedCheckRunSaysWhichTestedImage pins the check run of a promoted deploy: it names the
// stage the image was tested on and its digest, and the copy; and the headline while it promotes.
// A build for promotion says later stages run it.
func TestPromotedCheckRunSaysWhichTestedImage(t *testing.T) {
	succeeded := promotedFixture(deploy.Succeeded)
	promoting := promotedFixture(deploy.Building)
	promoting.CP.Steps = promoting.CP.Steps[:2]
	promoting.CP.Steps[1].Status, promoting.CP.Steps[1].Finished, promoting.CP.Steps[1].Detail = deploy.StepRunning, time.Time{}, ""
	promoting.CP.Image, promoting.Now, promoting.D.FinishedAt = "", at(5), time.Time{}
	promoting.CP.Artifact = &deploy.Artifact{From: "alpha", FromDeploy: 6, Source: succeeded.CP.Artifact.Source, Digest: testedDigest, Target: succeeded.CP.Artifact.Target}
	built := fixture(deploy.Succeeded)
	built.D.FinishedAt = at(241)
	built.CP.Artifact = &deploy.Artifact{Built: true}
	built.CP.Steps[0].Detail = "1 Deployment(s), configuration from Secret `hello-test-env`"
	built.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(194), Finished: at(241), Detail: "1 Deployment(s) updated"}
	for _, tt := range []struct{ name, text string }{
		{"checkrun-promoted-succeeded", succeeded.title() + "\n\n" + succeeded.summary()},
		{"checkrun-promoting", promoting.title() + "\n\n" + promoting.summary()},
		{"checkrun-built-for-promotion", built.title() + "\n\n" + built.summary()},
	} {
		t.Run(tt.name, func(t *testing.T) { checkGolden(t, tt.name, tt.text) })
	}
	if want := "same image as tested on alpha (" + testedDigest + ")"; !strings.Contains(succeeded.summary(), want) {
		t.Errorf("summary does not say %q", want)
	}
	if got := promoting.title(); !strings.HasPrefix(got, "Promoting c4295bd: the same image as tested on alpha (sha256:") {
		t.Errorf("title while promoting = %q", got)
	}
}
