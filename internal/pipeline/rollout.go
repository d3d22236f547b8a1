package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/store"
)

// rollout records the images it replaces, sets the new ones, and follows each Deployment's
// rolling update; on failure it sets the recorded images back and follows that rollout too. On
// a slot stage all of it happens in the idle slot, which serves no traffic: a failure there is
// never seen by users, and success leads to the switch. Once an image may have changed, every
// way a deploy can fail for good (a Deployment rejected, retries out of time, a Deployment that
// never becomes healthy) leads to the rollback, so a deploy never ends with some Deployments on
// the new image and some on the old.
func (r *Runner) rollout(ctx context.Context, log *slog.Logger, d deploy.Deploy, lease store.Lease, t target, cp *deploy.Checkpoint) result {
	now := r.o.Now()
	cluster, err := r.clusters.For(t.stage)
	if err != nil {
		return r.orRollBack(log, d, t, cp, r.retry(cp, "connecting to the cluster", err))
	}
	if cp.RollingBack && cp.Switching && !cp.SwitchedBack {
		return r.switchBack(ctx, log, d, t, cluster, cp)
	}
	name := "Rollout"
	if cp.RollingBack {
		name = "Rollback"
	}
	s := cp.Step(name, now)
	if cp.RollingBack && cp.Replaced == nil {
		return r.rolledBack(d, t, cp) // a switch changes no image: pointing the Services back was all
	}
	targets := t.kubeTargets(cp.Slot)
	if cp.Replaced == nil {
		// First record what runs now, in its own checkpoint, so a crash after the change
		// still knows what to roll back to.
		images, err := cluster.Images(ctx, targets)
		if err != nil {
			return r.retry(cp, "reading the current images", err)
		}
		if t.slotted() {
			// Which commit those images are, so that a rollback restores the slot's record too.
			rec, ok, err := r.st.SlotImages(ctx, d.App, d.Stage, cp.Slot)
			if err != nil {
				return r.retry(cp, "reading the record of slot "+cp.Slot, err)
			}
			if ok && sameImages(rec.Images, images) {
				cp.ReplacedSHA, cp.ReplacedDeploy = rec.SHA, rec.DeployID
			}
		}
		cp.Replaced = images
		return result{}
	}
	if !cp.ImagesSet {
		images := cp.Replaced
		cause := fmt.Sprintf("stagecoach: rollback of deploy #%d (%s)", d.ID, cp.RollbackReason)
		sha := cp.ReplacedSHA
		if !cp.RollingBack {
			images = make([]kube.Image, len(cp.Replaced))
			for i, im := range cp.Replaced {
				images[i] = kube.Image{Deployment: im.Deployment, Container: im.Container, Image: cp.Image}
			}
			cause = fmt.Sprintf("stagecoach: deploy #%d of %s to %s", d.ID, deploy.ShortSHA(d.SHA), d.Stage)
			sha = d.SHA
		}
		// Applying the same images again after a crash changes nothing: no second rollout.
		if _, err := r.setImages(ctx, cluster, t, images, cause, sha, strconv.FormatInt(d.ID, 10)); err != nil {
			return r.orRollBack(log, d, t, cp, r.retry(cp, "setting the images", err))
		}
		if t.slotted() && (!cp.RollingBack || cp.ReplacedSHA != "") {
			rec := store.SlotImages{App: d.App, Stage: d.Stage, Slot: cp.Slot, SHA: d.SHA, DeployID: d.ID, Images: images}
			if cp.RollingBack {
				rec.SHA, rec.DeployID = cp.ReplacedSHA, cp.ReplacedDeploy
			}
			if err := r.st.SetSlotImages(ctx, lease, rec); err != nil {
				return r.orRollBack(log, d, t, cp, r.retry(cp, "recording what slot "+cp.Slot+" runs", err))
			}
		}
		log.Info("images set", "rollback", cp.RollingBack, "slot", cp.Slot)
		cp.ImagesSet, cp.RolloutStarted, cp.Completed = true, now, nil
		return result{}
	}
	for _, kt := range targets {
		if slices.Contains(cp.Completed, kt.Deployment) {
			continue
		}
		st, err := cluster.Follow(ctx, kt.Deployment, cp.RolloutStarted, t.as.RolloutTimeout, r.o.FollowBudget, func(h health.Status) {
			cp.Progress = fmt.Sprintf("%s: %s", kt.Deployment, h.Progress())
		})
		if err != nil {
			return r.orRollBack(log, d, t, cp, r.retry(cp, "following the rollout", err))
		}
		s.Detail = cp.Progress
		switch st.Phase {
		case health.Progressing:
			return result{} // the watch budget is spent: continue at once, from a fresh claim
		case health.Failed:
			return r.rollBack(log, cp, fmt.Sprintf("%s: %s", kt.Deployment, st.Message))
		}
		cp.Completed = append(cp.Completed, kt.Deployment)
	}
	now = r.o.Now()
	s.Finish(deploy.StepSucceeded, fmt.Sprintf("%d Deployment(s) updated", len(targets)), now)
	if cp.RollingBack {
		return r.rolledBack(d, t, cp)
	}
	if t.slotted() {
		cp.RolloutDone = true
		if !r.beginVerify(d, t, cp, deploy.VerifyIdle) { // the idle slot's checks come before the switch
			cp.Step("Switch", now)
		}
		return result{} // switch in the next step, from a fresh checkpoint
	}
	if r.beginVerify(d, t, cp, deploy.VerifyLive) {
		return result{} // verified from the next step on: success is the verification's to say
	}
	log.Info("deploy succeeded", "image", cp.Image)
	return result{state: deploy.Succeeded}
}

// switchSlot points every Service of the stage at cp.Slot. It is the whole of a slot switch
// (a rollback of a slot stage) and the last step of a deploy to one. Switching to the slot a
// Service already selects changes nothing, so a crash halfway is finished by running it again.
// Before the first Service moves, the slot must be healthy and run what the switch claims (the
// image this deploy rolled out, or for a switch the commit it names), read from the cluster.
// A failure once a Service may have moved points them all back.
func (r *Runner) switchSlot(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	now := r.o.Now()
	cluster, err := r.clusters.For(t.stage)
	if err != nil {
		return r.orRollBack(log, d, t, cp, r.retry(cp, "connecting to the cluster", err))
	}
	s := cp.Step("Switch", now)
	if !cp.Switching {
		// Never send traffic to a slot with nothing to serve it (a slot Deployment scaled to
		// zero "completes" its rollout too).
		for _, kt := range t.kubeTargets(cp.Slot) {
			st, err := cluster.Status(ctx, kt.Deployment)
			if err != nil {
				return r.orRollBack(log, d, t, cp, r.retry(cp, "reading Deployment "+kt.Deployment, err))
			}
			if st.Desired == 0 || st.Ready < st.Desired {
				return r.orRollBack(log, d, t, cp, r.refuse(s, fmt.Sprintf("slot %s cannot take traffic: Deployment %s has %d of %d pods ready",
					cp.Slot, kt.Deployment, st.Ready, st.Desired)))
			}
		}
		why, err := r.slotProblem(ctx, d, t, cluster, cp)
		if err != nil {
			return r.orRollBack(log, d, t, cp, r.retry(cp, "reading what slot "+cp.Slot+" runs", err))
		}
		if why != "" {
			return r.orRollBack(log, d, t, cp, r.refuse(s, why))
		}
		cp.Switching = true
	}
	cause := fmt.Sprintf("stagecoach: deploy #%d switched %s to slot %s (%s)", d.ID, d.Stage, cp.Slot, deploy.ShortSHA(d.SHA))
	for _, dep := range t.as.Deployments {
		if err := cluster.SwitchService(ctx, dep.Service, cp.Slot, cause, d.SHA, strconv.FormatInt(d.ID, 10)); err != nil {
			return r.orRollBack(log, d, t, cp, r.retry(cp, "switching Service "+dep.Service, err))
		}
	}
	cp.Switched = true
	s.Finish(deploy.StepSucceeded, fmt.Sprintf("%d Service(s) now select slot %s (was %s)", len(t.as.Deployments), cp.Slot, cp.FromSlot), r.o.Now())
	log.Info("slot switched", "slot", cp.Slot, "from", cp.FromSlot)
	if r.beginVerify(d, t, cp, deploy.VerifyLive) {
		return result{} // what users reach now is verified before the deploy succeeds
	}
	return result{state: deploy.Succeeded}
}

// refuse ends the step with why: a failure that retrying cannot change.
func (r *Runner) refuse(s *deploy.StepRecord, why string) result {
	s.Finish(deploy.StepFailed, why, r.o.Now())
	return result{state: deploy.Failed, err: why}
}
