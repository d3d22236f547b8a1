package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// orRollBack turns res, when it fails the deploy, into the rollback path if anything may have
// changed already: images (once the rollout recorded what it replaces) or, during a switch,
// Services. With nothing changed the deploy just fails.
func (r *Runner) orRollBack(log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint, res result) result {
	if res.state != deploy.Failed || (cp.Replaced == nil && !cp.Switching) {
		return res
	}
	return r.rollBack(log, cp, res.err)
}

// rollBack starts the rollback for why: the Services back to the slot that was live (if the
// switch began), then the images back to what the rollout replaced, each followed to its end.
// If the rollback itself fails, the deploy fails with both reasons: then nothing is left to
// try, and people must look.
func (r *Runner) rollBack(log *slog.Logger, cp *deploy.Checkpoint, why string) result {
	now := r.o.Now()
	failRunning(cp, why, now)
	if cp.RollingBack {
		what := "rollout"
		if cp.Replaced == nil {
			what = "switch"
		}
		return result{state: deploy.Failed, err: fmt.Sprintf("%s failed (%s) and so did the rollback: %s", what, cp.RollbackReason, why)}
	}
	log.Warn("failed; rolling back", "reason", why)
	cp.RollingBack, cp.RollbackReason = true, why
	cp.ImagesSet, cp.Completed, cp.Progress = false, nil, ""
	cp.Retries, cp.RetryingSince = 0, time.Time{} // the rollback has a budget of its own
	cp.Step("Rollback", now)
	return result{}
}

// failRunning marks the step that was running as failed with why.
func failRunning(cp *deploy.Checkpoint, why string, now time.Time) {
	for i := len(cp.Steps) - 1; i >= 0; i-- {
		if cp.Steps[i].Status == deploy.StepRunning {
			cp.Steps[i].Finish(deploy.StepFailed, why, now)
			return
		}
	}
}

// switchBack points every Service of the stage back at the slot that was live before the
// switch began, first thing in a rollback: traffic must not stay split between two versions.
func (r *Runner) switchBack(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cluster Cluster, cp *deploy.Checkpoint) result {
	s := cp.Step("Rollback", r.o.Now())
	sha := ""
	if rec, ok, err := r.st.SlotImages(ctx, d.App, d.Stage, cp.FromSlot); err != nil {
		return r.orRollBack(log, d, t, cp, r.retry(cp, "reading the record of slot "+cp.FromSlot, err))
	} else if ok {
		sha = rec.SHA // the Service's annotations name what it serves again
	}
	cause := fmt.Sprintf("stagecoach: rollback of deploy #%d switched %s back to slot %s (%s)", d.ID, d.Stage, cp.FromSlot, cp.RollbackReason)
	for _, dep := range t.as.Deployments {
		if err := cluster.SwitchService(ctx, dep.Service, cp.FromSlot, cause, sha, strconv.FormatInt(d.ID, 10)); err != nil {
			return r.orRollBack(log, d, t, cp, r.retry(cp, "switching Service "+dep.Service+" back", err))
		}
	}
	cp.SwitchedBack = true
	s.Detail = fmt.Sprintf("%d Service(s) select slot %s again", len(t.as.Deployments), cp.FromSlot)
	log.Info("traffic switched back", "slot", cp.FromSlot)
	return result{}
}

// rolledBack ends a rollback that put everything back.
func (r *Runner) rolledBack(d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	s := cp.Step("Rollback", r.o.Now())
	if s.Status == deploy.StepRunning {
		s.Finish(deploy.StepSucceeded, "", r.o.Now())
	}
	why := "rolled back: " + cp.RollbackReason
	switch {
	case cp.Switching:
		why += fmt.Sprintf("; %s serves from slot %s again", d.Stage, cp.FromSlot)
	case cp.Slot != "":
		why += fmt.Sprintf("; %s kept serving from slot %s, so users never saw the failed version", d.Stage, cp.FromSlot)
	}
	return result{state: deploy.RolledBack, err: why}
}
