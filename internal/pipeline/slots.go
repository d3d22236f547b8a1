package pipeline

import (
	"context"
	"fmt"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// slotProblem checks, against the cluster, that slot cp.Slot runs what a switch to it claims,
// and says what is wrong, or "". A deploy's own switch claims the image it rolled out there. A
// switch (a rollback of a slot stage) claims d.SHA, as the records said when it was planned: the
// slot's Deployments must run exactly the images recorded for the slot, and those must be the
// build of d.SHA. Otherwise traffic could go to a failed build while the deploy recorded an
// older commit as live.
func (r *Runner) slotProblem(ctx context.Context, d deploy.Deploy, t target, cluster Cluster, cp *deploy.Checkpoint) (string, error) {
	running, err := cluster.Images(ctx, t.kubeTargets(cp.Slot))
	if err != nil {
		return "", err
	}
	if d.Mode != deploy.ModeSwitch {
		for _, im := range running {
			if im.Image != cp.Image {
				return fmt.Sprintf("slot %s changed during the deploy: Deployment %s runs %s, not %s that deploy #%d rolled out; nothing was switched",
					cp.Slot, im.Deployment, im.Image, cp.Image, d.ID), nil
			}
		}
		return "", nil
	}
	rec, ok, err := r.slotRecord(ctx, d, t, cp.Slot)
	if err != nil {
		return "", err
	}
	if !ok {
		return fmt.Sprintf("Stagecoach has no record of what slot %s runs, so it cannot tell that it is %s; nothing was switched",
			cp.Slot, deploy.ShortSHA(d.SHA)), nil
	}
	if im, want, differ := firstDifference(rec.Images, running); differ {
		return fmt.Sprintf("slot %s does not run what Stagecoach last put there (%s, deploy #%d): Deployment %s runs %s, not %s; nothing was switched",
			cp.Slot, deploy.ShortSHA(rec.SHA), rec.DeployID, im.Deployment, im.Image, want), nil
	}
	if rec.SHA != d.SHA {
		return fmt.Sprintf("slot %s runs %s (deploy #%d), not %s; nothing was switched", cp.Slot, deploy.ShortSHA(rec.SHA), rec.DeployID,
			deploy.ShortSHA(d.SHA)), nil
	}
	if len(running) > 0 {
		cp.Image = running[0].Image // what the switch put live, for the deploy's record
	}
	return "", nil
}

// slotRecord is what the store recorded slot runs. A slot last deployed before Stagecoach
// recorded slots has no record: then the newest successful deploy that rolled out an image
// there stands in for one.
func (r *Runner) slotRecord(ctx context.Context, d deploy.Deploy, t target, slot string) (store.SlotImages, bool, error) {
	rec, ok, err := r.st.SlotImages(ctx, d.App, d.Stage, slot)
	if err != nil || ok {
		return rec, ok, err
	}
	ds, err := r.st.ListDeploys(ctx, store.Filter{App: d.App, Stage: d.Stage, State: deploy.Succeeded, Limit: 100})
	if err != nil {
		return store.SlotImages{}, false, err
	}
	for _, x := range ds {
		cp, err := deploy.DecodeCheckpoint(x.Checkpoint)
		if err != nil || x.Mode == deploy.ModeSwitch || cp.Slot != slot || cp.Image == "" {
			continue
		}
		rec := store.SlotImages{App: d.App, Stage: d.Stage, Slot: slot, SHA: x.SHA, DeployID: x.ID}
		for _, kt := range t.kubeTargets(slot) {
			for _, c := range kt.Containers {
				rec.Images = append(rec.Images, deploy.Image{Deployment: kt.Deployment, Container: c, Image: cp.Image})
			}
		}
		return rec, true, nil
	}
	return store.SlotImages{}, false, nil
}

// firstDifference finds a container whose image in running is not the one in want, and the
// image want has for it.
func firstDifference(want, running []deploy.Image) (deploy.Image, string, bool) {
	for _, im := range running {
		expected := ""
		for _, w := range want {
			if w.Deployment == im.Deployment && w.Container == im.Container {
				expected = w.Image
			}
		}
		if im.Image != expected {
			if expected == "" {
				expected = "nothing recorded"
			}
			return im, expected, true
		}
	}
	return deploy.Image{}, "", false
}

// sameImages reports whether two lists name the same image for the same containers.
func sameImages(a, b []deploy.Image) bool {
	if len(a) != len(b) {
		return false
	}
	_, _, differ := firstDifference(a, b)
	return !differ
}
