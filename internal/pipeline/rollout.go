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
)

// rollout records the images it replaces, sets the new ones, and follows each Deployment's
// rolling update; on failure it sets the recorded images back and follows that rollout too. On
// a slot stage all of it happens in the idle slot, which serves no traffic: a failure there is
// never seen by users, and success leads to the switch.
func (r *Runner) rollout(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	now := r.o.Now()
	cluster, err := r.clusters.For(t.stage)
	if err != nil {
		return r.retry(cp, "connecting to the cluster", err)
	}
	name := "Rollout"
	if cp.RollingBack {
		name = "Rollback"
	}
	s := cp.Step(name, now)
	targets := t.kubeTargets(cp.Slot)
	if cp.Replaced == nil {
		// First record what runs now, in its own checkpoint, so a crash after the change
		// still knows what to roll back to.
		images, err := cluster.Images(ctx, targets)
		if err != nil {
			return r.retry(cp, "reading the current images", err)
		}
		cp.Replaced = images
		return result{}
	}
	if !cp.ImagesSet {
		images := cp.Replaced
		cause := fmt.Sprintf("stagecoach: rollback of deploy #%d (%s)", d.ID, cp.RollbackReason)
		if !cp.RollingBack {
			images = make([]kube.Image, len(cp.Replaced))
			for i, im := range cp.Replaced {
				images[i] = kube.Image{Deployment: im.Deployment, Container: im.Container, Image: cp.Image}
			}
			cause = fmt.Sprintf("stagecoach: deploy #%d of %s to %s", d.ID, deploy.ShortSHA(d.SHA), d.Stage)
		}
		// Applying the same images again after a crash changes nothing: no second rollout.
		if _, err := cluster.SetImages(ctx, images, cause, d.SHA, strconv.FormatInt(d.ID, 10)); err != nil {
			return r.retry(cp, "setting the images", err)
		}
		log.Info("images set", "rollback", cp.RollingBack, "slot", cp.Slot)
		cp.ImagesSet, cp.RolloutStarted, cp.Completed, cp.Retries = true, now, nil, 0
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
			return r.retry(cp, "following the rollout", err)
		}
		s.Detail = cp.Progress
		switch st.Phase {
		case health.Progressing:
			return result{} // the watch budget is spent: continue at once, from a fresh claim
		case health.Failed:
			now = r.o.Now()
			if cp.RollingBack {
				s.Finish(deploy.StepFailed, st.Message, now)
				return result{state: deploy.Failed, err: fmt.Sprintf("rollout failed (%s) and so did the rollback: %s", cp.RollbackReason, st.Message)}
			}
			s.Finish(deploy.StepFailed, fmt.Sprintf("%s: %s", kt.Deployment, st.Message), now)
			log.Warn("rollout failed; rolling back", "deployment", kt.Deployment, "reason", st.Message)
			cp.RollingBack, cp.RollbackReason = true, fmt.Sprintf("%s: %s", kt.Deployment, st.Message)
			cp.ImagesSet, cp.Completed, cp.Progress = false, nil, ""
			cp.Step("Rollback", now)
			return result{}
		}
		cp.Completed = append(cp.Completed, kt.Deployment)
	}
	now = r.o.Now()
	s.Finish(deploy.StepSucceeded, fmt.Sprintf("%d Deployment(s) updated", len(targets)), now)
	if cp.RollingBack {
		why := "rolled back: " + cp.RollbackReason
		if cp.Slot != "" {
			why += fmt.Sprintf("; %s kept serving from slot %s, so users never saw the failed version", d.Stage, cp.FromSlot)
		}
		return result{state: deploy.RolledBack, err: why}
	}
	if t.slotted() {
		cp.RolloutDone, cp.Retries = true, 0
		cp.Step("Switch", now)
		return result{} // switch in the next step, from a fresh checkpoint
	}
	log.Info("deploy succeeded", "image", cp.Image)
	return result{state: deploy.Succeeded}
}

// switchSlot points every Service of the stage at cp.Slot. It is the whole of a slot switch
// (a rollback of a slot stage) and the last step of a deploy to one. Switching to the slot a
// Service already selects changes nothing, so a crash halfway is finished by running it again.
func (r *Runner) switchSlot(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	now := r.o.Now()
	cluster, err := r.clusters.For(t.stage)
	if err != nil {
		return r.retry(cp, "connecting to the cluster", err)
	}
	s := cp.Step("Switch", now)
	// Never send traffic to a slot with nothing to serve it (a slot Deployment scaled to zero
	// "completes" its rollout too).
	for _, kt := range t.kubeTargets(cp.Slot) {
		st, err := cluster.Status(ctx, kt.Deployment)
		if err != nil {
			return r.retry(cp, "reading Deployment "+kt.Deployment, err)
		}
		if st.Desired == 0 || st.Ready < st.Desired {
			why := fmt.Sprintf("slot %s cannot take traffic: Deployment %s has %d of %d pods ready; %s still serves from slot %s",
				cp.Slot, kt.Deployment, st.Ready, st.Desired, d.Stage, cp.FromSlot)
			s.Finish(deploy.StepFailed, why, r.o.Now())
			return result{state: deploy.Failed, err: why}
		}
	}
	cause := fmt.Sprintf("stagecoach: deploy #%d switched %s to slot %s (%s)", d.ID, d.Stage, cp.Slot, deploy.ShortSHA(d.SHA))
	for _, dep := range t.as.Deployments {
		if err := cluster.SwitchService(ctx, dep.Service, cp.Slot, cause, d.SHA, strconv.FormatInt(d.ID, 10)); err != nil {
			return r.retry(cp, "switching Service "+dep.Service, err)
		}
	}
	cp.Switched = true
	s.Finish(deploy.StepSucceeded, fmt.Sprintf("%d Service(s) now select slot %s (was %s)", len(t.as.Deployments), cp.Slot, cp.FromSlot), r.o.Now())
	log.Info("slot switched", "slot", cp.Slot, "from", cp.FromSlot)
	return result{state: deploy.Succeeded}
}
