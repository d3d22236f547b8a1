package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/verify"
)

// beginVerify starts the verification of phase when the deploy has any there, and reports
// whether it did. Only a build deploy is verified: a rollback (an image or a slot switch) puts
// back what ran, and verified, before, and must not be held up or rolled back in turn.
func (r *Runner) beginVerify(d deploy.Deploy, t target, cp *deploy.Checkpoint, phase string) bool {
	if d.Mode != deploy.ModeBuild {
		return false
	}
	now := r.o.Now()
	checks := verify.Checks(t.as.Verify.HTTP, phase, cp.Slot, now)
	project := ""
	if phase == deploy.VerifyLive {
		project = t.as.Verify.CodeBuildProject
	}
	if len(checks) == 0 && project == "" {
		return false
	}
	cp.Verify = &deploy.Verification{Phase: phase, Checks: checks, BuildProject: project, Started: now}
	cp.Progress = cp.Verify.Progress()
	cp.Step(cp.Verify.StepName(), now).Detail = cp.Progress
	return true
}

// verify runs one round of the deploy's verification: it asks every HTTP check that is due once
// and records the answers, and starts or looks at the CodeBuild verify build. Every round is a
// step of its own, saved with the checkpoint, so a replica killed mid-verify leaves the answers
// so far and the build's id to the next, which carries on: the deploy passes only once every
// check has passed. A check or build that failed rolls the deploy back (on a slot stage after
// the switch, traffic goes back first).
func (r *Runner) verify(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	v := cp.Verify
	s := cp.Step(v.StepName(), r.o.Now())
	next, err := verify.Round(ctx, r.o.Checker, v.Checks, r.o.Now)
	if err != nil {
		return result{retry: "verifying: " + err.Error()} // the step was stopped: nothing was recorded
	}
	if v.BuildProject != "" && v.BuildStatus == "" {
		if res, stop := r.verifyBuild(ctx, log, d, t, cp); stop {
			return res
		}
	}
	now := r.o.Now()
	cp.Progress = v.Progress()
	s.Detail = cp.Progress
	for _, c := range v.Checks {
		if c.Result == deploy.CheckFailed {
			// Why is the last answer's reason (a status, a body that did not match, no answer),
			// or that the good answers came too late; the body itself is the report's to show.
			return r.rollBack(log, cp, fmt.Sprintf("verification failed: check %s (%s): %s", c.Name, c.URL, c.Why))
		}
	}
	if v.BuildStatus != "" && v.BuildStatus != "SUCCEEDED" {
		return r.rollBack(log, cp, fmt.Sprintf("verification failed: CodeBuild project %s: %s", v.BuildProject, v.BuildWhy))
	}
	after := time.Duration(0)
	if !next.IsZero() {
		after = max(next.Sub(now), 0)
	}
	if v.BuildProject != "" && v.BuildStatus == "" {
		poll := r.nextPoll(now.Sub(v.Started), 0)
		if next.IsZero() || poll < after {
			after = poll
		}
		return result{after: after}
	}
	if !next.IsZero() {
		return result{after: after}
	}
	v.Passed = true
	s.Finish(deploy.StepSucceeded, cp.Progress, now)
	cp.Progress = ""
	if v.Phase == deploy.VerifyIdle {
		log.Info("idle slot verified", "slot", cp.Slot)
		cp.Step("Switch", now)
		return result{}
	}
	log.Info("deploy verified; succeeded", "image", cp.Image)
	return result{state: deploy.Succeeded}
}

// verifyBuildInput is the CodeBuild verify project's build: the deployed commit, with the
// stage's credentials tier (the deploy's session) and no stage secret.
func verifyBuildInput(d deploy.Deploy, t target, cp *deploy.Checkpoint) amazon.BuildInput {
	return amazon.BuildInput{Project: cp.Verify.BuildProject, SourceVersion: d.SHA, Buildspec: t.as.Verify.Buildspec,
		IdempotencyToken: fmt.Sprintf("stagecoach-verify-%d", d.ID),
		Env: map[string]string{"STAGE": d.Stage, "APP": d.App, "COMMIT_SHA": d.SHA, "IMAGE": cp.Image,
			"STAGECOACH_DEPLOY": strconv.FormatInt(d.ID, 10), "STAGECOACH_VERIFY": "1"}}
}

// verifyBuild starts the verify build once (looking first for one a start before this one
// began, as the build step does), then follows it to its end. It says whether the round stops
// here with res: a failure to reach CodeBuild is retried, and one that retrying cannot change
// rolls the deploy back.
func (r *Runner) verifyBuild(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint) (result, bool) {
	v := cp.Verify
	if v.BuildID == "" {
		in := verifyBuildInput(d, t, cp)
		id, found, err := r.cloud.FindBuild(ctx, t.session, amazon.BuildQuery{Project: in.Project, SourceVersion: in.SourceVersion,
			Env: in.Env, Since: v.Started.Add(-lookBack)})
		if err != nil {
			return r.orRollBack(log, d, t, cp, r.retry(cp, "looking for the verify build", err)), true
		}
		if !found {
			if id, err = r.cloud.StartBuild(ctx, t.session, in); err != nil {
				return r.orRollBack(log, d, t, cp, r.retry(cp, "starting the verify build", err)), true
			}
		}
		log.Info("verify build started", "build", id, "found", found)
		v.BuildID = id
		return result{}, false
	}
	b, err := r.cloud.GetBuild(ctx, t.session, v.BuildID)
	if err != nil {
		return r.orRollBack(log, d, t, cp, r.retry(cp, "reading the verify build", err)), true
	}
	v.BuildPhase, v.BuildLog = b.Phase, b.LogURL
	cp.Step(v.StepName(), r.o.Now()).Link = b.LogURL
	if b.Done() {
		v.BuildStatus = b.Status
		if b.Status != "SUCCEEDED" {
			v.BuildWhy = fmt.Sprintf("build %s in %s", strings.ToLower(b.Status), b.FailedPhase)
			if b.Message != "" {
				v.BuildWhy += ": " + b.Message
			}
		}
	}
	return result{}, false
}
