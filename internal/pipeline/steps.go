package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/store"
)

// target is a deploy's configuration, resolved.
type target struct {
	app     *config.App
	stage   *config.Stage // nil for a pull-request build
	as      config.AppStage
	session amazon.Session
}

func (r *Runner) resolve(d deploy.Deploy, cp *deploy.Checkpoint) (target, error) {
	app, err := r.pinnedApp(d, cp)
	if err != nil {
		return target{}, err
	}
	if d.Mode == deploy.ModePRBuild {
		if !app.PRBuild.Enabled {
			return target{}, fmt.Errorf("app %s no longer builds pull requests (pr_build.enabled is false)", d.App)
		}
		return target{app: app, session: amazon.Session{Tier: "pr", Name: amazon.SessionName(d.App, "pr", d.SHA)}}, nil
	}
	stage := r.cfg.Stage(d.Stage)
	if stage == nil {
		return target{}, fmt.Errorf("stage %q is no longer configured", d.Stage)
	}
	as, ok := app.Stages[d.Stage]
	if !ok {
		return target{}, fmt.Errorf("app %s has no configuration for stage %s", d.App, d.Stage)
	}
	return target{app: app, stage: stage, as: as,
		session: amazon.Session{Tier: stage.Credentials, Name: amazon.SessionName(d.App, d.Stage, d.SHA)}}, nil
}

// pinnedApp is the app's configuration the deploy started with: pinned in its checkpoint at its
// first step (the checkpoint is saved with the step), read back from there at every later one.
func (r *Runner) pinnedApp(d deploy.Deploy, cp *deploy.Checkpoint) (*config.App, error) {
	if len(cp.App) > 0 {
		var app config.App
		if err := json.Unmarshal(cp.App, &app); err != nil {
			return nil, fmt.Errorf("reading the app configuration the deploy started with: %w", err)
		}
		return &app, nil
	}
	app := r.cfg.App(d.App)
	if app == nil {
		return nil, fmt.Errorf("app %q is no longer configured", d.App)
	}
	b, err := json.Marshal(app)
	if err != nil {
		return nil, fmt.Errorf("pinning the app configuration: %w", err)
	}
	cp.App = b
	return app, nil
}

// slotted reports whether the stage switches between two slots.
func (t target) slotted() bool { return t.stage != nil && t.stage.Slotted() }

// kubeTargets are the Deployments a deploy changes: on a slot stage, the copies in slot.
func (t target) kubeTargets(slot string) []kube.Target {
	var out []kube.Target
	for _, d := range t.as.Deployments {
		name := d.Name
		if t.slotted() {
			name = config.SlotDeployment(d.Name, slot)
		}
		out = append(out, kube.Target{Deployment: name, Containers: d.Containers})
	}
	return out
}

// otherSlot is the slot that is not slot.
func (t target) otherSlot(slot string) string {
	if t.stage.Slots[0] == slot {
		return t.stage.Slots[1]
	}
	return t.stage.Slots[0]
}

// step advances d, leased by lease, by one step from its state.
func (r *Runner) step(ctx context.Context, log *slog.Logger, d deploy.Deploy, lease store.Lease, cp *deploy.Checkpoint) result {
	if d.State == deploy.Queued && len(cp.App) == 0 && r.o.RepoConfigs != nil {
		// The deploy is about to pin its app's configuration: not while the repository's own
		// file is being read (a merge that changes it deploys with it), nor before this replica
		// applied the version in force.
		ready, err := r.o.RepoConfigs.Ready(ctx, d.Repo)
		if err != nil {
			return r.retry(cp, "reading the repository's configuration", err)
		}
		if !ready {
			return result{after: time.Second}
		}
	}
	t, err := r.resolve(d, cp)
	if err != nil {
		return result{state: deploy.Failed, err: err.Error()}
	}
	switch d.State {
	case deploy.Queued:
		if res, wait := r.waitForWindow(d, t, cp); wait {
			return res
		}
		log.Info("deploy starting", "mode", string(d.Mode))
		cp.Step("Preflight", r.o.Now())
		return result{state: deploy.Preflight}
	case deploy.Preflight:
		return r.preflight(ctx, d, t, cp)
	case deploy.Building:
		if cp.Artifact.Promoted() {
			return r.promote(ctx, log, d, t, cp)
		}
		return r.build(ctx, log, d, t, cp)
	case deploy.RollingOut:
		if v := cp.Verify; v != nil && !v.Passed && !cp.RollingBack {
			return r.verify(ctx, log, d, t, cp)
		}
		if !cp.RollingBack && (d.Mode == deploy.ModeSwitch || cp.RolloutDone) {
			return r.switchSlot(ctx, log, d, t, cp)
		}
		return r.rollout(ctx, log, d, lease, t, cp)
	}
	return result{state: deploy.Failed, err: "deploy in unexpected state " + string(d.State)}
}

// preflight checks, before anything starts, that the deploy may go where it goes (the stage
// order) and that everything it needs exists: the stage's secret in Secrets Manager, the
// Deployments and containers, the Kubernetes Secret that holds the key decrypting .env at
// start-up, and on a slot stage the Services and the slot to deploy to. Each problem names
// what, where and the tier; all of them are reported at once.
func (r *Runner) preflight(ctx context.Context, d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	now := r.o.Now()
	s := cp.Step("Preflight", now)
	if d.Mode == deploy.ModePRBuild {
		s.Finish(deploy.StepSucceeded, fmt.Sprintf("pull request #%d, credentials tier pr", d.Trigger.PR), now)
		cp.Step("Build", now)
		return result{state: deploy.Building}
	}
	if why, err := r.orderProblem(ctx, d, t); err != nil {
		return r.retry(cp, "checking the stage order", err)
	} else if why != "" {
		s.Finish(deploy.StepFailed, why, now)
		return result{state: deploy.Failed, err: why}
	}
	var missing []string
	if d.Mode == deploy.ModeBuild && !t.app.Promotes() { // a build for promotion reads no stage's secret
		if err := r.cloud.SecretExists(ctx, t.session, t.as.SecretID); err != nil {
			var nf *amazon.NotFoundError
			if !errors.As(err, &nf) {
				return r.retry(cp, "checking the stage's secret", err)
			}
			missing = append(missing, err.Error())
		}
	}
	cluster, err := r.clusters.For(t.stage)
	if err != nil {
		missing = append(missing, err.Error()) // a configuration problem: retrying cannot help
	} else {
		problems, err := r.checkCluster(ctx, d, t, cluster, cp)
		if err != nil {
			return r.retry(cp, "reading the cluster", err)
		}
		missing = append(missing, problems...)
	}
	var promoted *deploy.Artifact
	if d.Mode == deploy.ModeBuild && promotesFrom(t) != "" {
		a, why, err := r.testedImage(ctx, d, t)
		if err != nil {
			return r.retry(cp, "looking for the tested image", err)
		}
		if why != "" {
			missing = append(missing, why)
		}
		promoted = a
	}
	if len(missing) > 0 {
		s.Finish(deploy.StepFailed, strings.Join(missing, "; "), now)
		return result{state: deploy.Failed, err: "preflight: " + strings.Join(missing, "; ")}
	}
	switch d.Mode {
	case deploy.ModeSwitch:
		s.Finish(deploy.StepSucceeded, fmt.Sprintf("slot %s is healthy", cp.Slot), now)
		cp.Step("Switch", now)
		return result{state: deploy.RollingOut}
	case deploy.ModeImage:
		s.Finish(deploy.StepSucceeded, r.preflightDetail(t, cp), now)
		cp.Image = d.Image
		cp.Step("Rollout", now)
		return result{state: deploy.RollingOut}
	}
	s.Finish(deploy.StepSucceeded, r.preflightDetail(t, cp), now)
	if promoted != nil {
		cp.Artifact = promoted
		cp.Step("Promote", now)
		return result{state: deploy.Building}
	}
	cp.Step("Build", now)
	return result{state: deploy.Building}
}

func (r *Runner) preflightDetail(t target, cp *deploy.Checkpoint) string {
	secret, _ := configSecret(t)
	detail := fmt.Sprintf("secret `%s`, %d Deployment(s), Secret `%s`", t.as.SecretID, len(t.as.Deployments), secret)
	if t.app.Promotes() {
		detail = fmt.Sprintf("%d Deployment(s), configuration from Secret `%s`", len(t.as.Deployments), secret)
	}
	if cp.Slot != "" {
		detail += fmt.Sprintf("; deploying to idle slot %s (%s is live)", cp.Slot, cp.FromSlot)
	}
	return detail
}

// orderProblem is the stage order and soak time (admission.CheckOrder and CheckSoak, the rules
// the admission gate applied when the deploy was asked for), checked again where every deploy
// passes: whatever recorded the deploy, it never runs a commit on a stage before the stage it
// comes from, nor before the commit ran there its min_soak.
func (r *Runner) orderProblem(ctx context.Context, d deploy.Deploy, t target) (string, error) {
	oe, err := admission.CheckOrder(ctx, r.st, r.cfg, t.app, t.stage, d.Request)
	if oe != nil || err != nil {
		if oe == nil {
			return "", err
		}
		return oe.Error(), err
	}
	se, err := admission.CheckSoak(ctx, r.st, r.cfg, t.app, t.stage, d.Request, r.o.Now())
	if se == nil {
		return "", err
	}
	return se.Error(), err
}

// checkCluster checks the stage's namespace has what the deploy needs, and on a slot stage picks
// the slot: the idle one for a deploy, the requested (or other) one for a switch. When no slot is
// known to be live (a Service is set up wrong), there is no slot to pick, but both slots'
// Deployments and the Secret are still checked, so that every problem is reported at once.
func (r *Runner) checkCluster(ctx context.Context, d deploy.Deploy, t target, cluster Cluster, cp *deploy.Checkpoint) ([]string, error) {
	var missing []string
	notFound := func(err error, why string) bool {
		var nf *kube.NotFoundError
		if errors.As(err, &nf) {
			missing = append(missing, err.Error()+why)
			return true
		}
		return false
	}
	where := fmt.Sprintf(" (Kubernetes context %q)", t.stage.Kubernetes.Context)
	slots := []string{""} // whose Deployments to check: "" on a stage without slots
	picked := true        // cp.Slot is where the deploy goes
	if t.slotted() {
		live, problems, err := r.liveSlot(ctx, t, cluster)
		if err != nil {
			return nil, err
		}
		if len(problems) > 0 {
			missing = append(missing, problems...)
			slots, picked = t.stage.Slots, false
		} else {
			cp.FromSlot, cp.Slot = live, t.otherSlot(live)
			if d.Mode == deploy.ModeSwitch && d.Slot != "" {
				cp.Slot = d.Slot
			}
			if d.Mode == deploy.ModeSwitch && cp.Slot == live {
				return []string{fmt.Sprintf("slot %s is live already", live)}, nil
			}
			slots = []string{cp.Slot}
		}
	}
	for _, slot := range slots {
		targets := t.kubeTargets(slot)
		if _, err := cluster.Images(ctx, targets); err != nil && !notFound(err, where) {
			return nil, err
		}
		if !t.slotted() {
			continue
		}
		for _, kt := range targets {
			label, err := cluster.SlotLabelOf(ctx, kt.Deployment)
			if err != nil {
				if notFound(err, where) {
					continue
				}
				return nil, err
			}
			if label != slot {
				missing = append(missing, fmt.Sprintf("Deployment %s's pods are labelled %s=%q, want %q: the Service could not tell the slots apart",
					kt.Deployment, kube.SlotLabel, label, slot))
			}
		}
	}
	if d.Mode == deploy.ModeSwitch {
		if !picked {
			return missing, nil // no slot to judge: which one is live is the problem
		}
		for _, kt := range t.kubeTargets(cp.Slot) {
			st, err := cluster.Status(ctx, kt.Deployment)
			if err != nil {
				if notFound(err, where) {
					continue
				}
				return nil, err
			}
			// Ready pods are not enough: a Deployment whose newest template never became ready
			// (a stuck or failed rollout) still has its old pods ready. Only a rollout that
			// completed is a slot to send traffic to.
			switch {
			case st.Ready < st.Desired || st.Desired == 0:
				missing = append(missing, fmt.Sprintf("slot %s is not healthy: Deployment %s has %d of %d pods ready", cp.Slot, kt.Deployment, st.Ready, st.Desired))
			case st.Phase != health.Complete:
				missing = append(missing, fmt.Sprintf("slot %s is not healthy: Deployment %s's rollout has not completed: %s", cp.Slot, kt.Deployment, st.Message))
			}
		}
		if len(missing) > 0 {
			return missing, nil
		}
		// The records may be wrong about what the slot runs; the cluster is not.
		why, err := r.slotProblem(ctx, d, t, cluster, cp)
		if why != "" {
			missing = append(missing, why)
		}
		return missing, err
	}
	secret, why := configSecret(t)
	if err := cluster.SecretExists(ctx, secret); err != nil && !notFound(err, why) {
		return nil, err
	}
	if _, ok := cluster.(secretImageSetter); t.app.Promotes() && !ok {
		missing = append(missing, fmt.Sprintf("this cluster cannot make %s's pods read their configuration from Secret %s (artifact: promote)", t.stage.Name, t.as.EnvSecret))
	}
	return missing, nil
}

// liveSlot reads which slot the stage's Services select. Every Service must select the same
// slot; one that selects none, or another, is a problem to fix by hand, not to guess at.
func (r *Runner) liveSlot(ctx context.Context, t target, cluster Cluster) (string, []string, error) {
	var live string
	var problems []string
	for _, dep := range t.as.Deployments {
		slot, err := cluster.ServiceSlot(ctx, dep.Service)
		var nf *kube.NotFoundError
		switch {
		case errors.As(err, &nf):
			problems = append(problems, err.Error())
			continue
		case err != nil:
			return "", nil, err
		}
		switch {
		case slot == "":
			problems = append(problems, fmt.Sprintf("Service %s selects no slot: add %s: %s (or %s) to its selector", dep.Service, kube.SlotLabel, t.stage.Slots[0], t.stage.Slots[1]))
		case slot != t.stage.Slots[0] && slot != t.stage.Slots[1]:
			problems = append(problems, fmt.Sprintf("Service %s selects slot %q, which is not one of %s", dep.Service, slot, strings.Join(t.stage.Slots, ", ")))
		case live != "" && slot != live:
			problems = append(problems, fmt.Sprintf("Service %s selects slot %s but another Service selects %s", dep.Service, slot, live))
		default:
			live = slot
		}
	}
	return live, problems, nil
}
