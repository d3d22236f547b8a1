package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/store"
)

// target is a deploy's configuration, resolved.
type target struct {
	app     *config.App
	stage   *config.Stage
	as      config.AppStage
	session amazon.Session
}

func (r *Runner) resolve(d deploy.Deploy) (target, error) {
	app, stage := r.cfg.App(d.App), r.cfg.Stage(d.Stage)
	if app == nil || stage == nil {
		return target{}, fmt.Errorf("app %q or stage %q is no longer configured", d.App, d.Stage)
	}
	as, ok := app.Stages[d.Stage]
	if !ok {
		return target{}, fmt.Errorf("app %s has no configuration for stage %s", d.App, d.Stage)
	}
	return target{app: app, stage: stage, as: as,
		session: amazon.Session{Tier: stage.Credentials, Name: amazon.SessionName(d.App, d.Stage, d.SHA)}}, nil
}

func (t target) kubeTargets() []kube.Target {
	var out []kube.Target
	for _, d := range t.as.Deployments {
		out = append(out, kube.Target{Deployment: d.Name, Containers: d.Containers})
	}
	return out
}

// step advances d by one step from its state.
func (r *Runner) step(ctx context.Context, log *slog.Logger, d deploy.Deploy, cp *Checkpoint) result {
	t, err := r.resolve(d)
	if err != nil {
		return result{state: deploy.Failed, err: err.Error()}
	}
	switch d.State {
	case deploy.Queued:
		log.Info("deploy starting")
		cp.step("Preflight", r.o.Now())
		return result{state: deploy.Preflight}
	case deploy.Preflight:
		return r.preflight(ctx, d, t, cp)
	case deploy.Building:
		return r.build(ctx, log, d, t, cp)
	case deploy.RollingOut:
		return r.rollout(ctx, log, d, t, cp)
	}
	return result{state: deploy.Failed, err: "deploy in unexpected state " + string(d.State)}
}

// preflight checks, before anything starts, that everything the deploy needs exists: the
// stage's secret in Secrets Manager, the Deployments and containers, and the Kubernetes Secret
// that holds the key decrypting .env at start-up. Each failure names what, where and the tier.
func (r *Runner) preflight(ctx context.Context, d deploy.Deploy, t target, cp *Checkpoint) result {
	now := r.o.Now()
	s := cp.step("Preflight", now)
	var missing []string
	if err := r.cloud.SecretExists(ctx, t.session, t.as.SecretID); err != nil {
		var nf *amazon.NotFoundError
		if !errors.As(err, &nf) {
			return r.retry(cp, "checking the stage's secret", err)
		}
		missing = append(missing, err.Error())
	}
	if cluster, err := r.clusters.For(t.stage); err != nil {
		missing = append(missing, err.Error()) // a configuration problem: retrying cannot help
	} else {
		if _, err := cluster.Images(ctx, t.kubeTargets()); err != nil {
			var nf *kube.NotFoundError
			if !errors.As(err, &nf) {
				return r.retry(cp, "reading the Deployments", err)
			}
			missing = append(missing, fmt.Sprintf("%s (Kubernetes context %q)", err, t.stage.Kubernetes.Context))
		}
		if err := cluster.SecretExists(ctx, t.as.EnvKeySecret); err != nil {
			var nf *kube.NotFoundError
			if !errors.As(err, &nf) {
				return r.retry(cp, "reading the .env key Secret", err)
			}
			missing = append(missing, fmt.Sprintf("%s: it holds the key that decrypts .env at start-up", err))
		}
	}
	if len(missing) > 0 {
		msg := "preflight: " + strings.Join(missing, "; ")
		s.finish(StepFailed, strings.Join(missing, "; "), now)
		return result{state: deploy.Failed, err: msg}
	}
	s.finish(StepSucceeded, fmt.Sprintf("secret `%s`, %d Deployment(s), Secret `%s`", t.as.SecretID, len(t.as.Deployments), t.as.EnvKeySecret), now)
	cp.Retries = 0
	cp.step("Build", now)
	return result{state: deploy.Building}
}

// imageTag is the tag a deploy's build pushes: the commit's short sha.
func imageTag(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// build starts the build once (the idempotency token makes a repeated start return the same
// build), then looks at it on a schedule until it ends.
func (r *Runner) build(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *Checkpoint) result {
	now := r.o.Now()
	s := cp.step("Build", now)
	if cp.BuildID == "" {
		id, err := r.cloud.StartBuild(ctx, t.session, amazon.BuildInput{
			Project: t.app.CodeBuildProject, SourceVersion: d.SHA, Buildspec: t.as.Buildspec,
			IdempotencyToken: fmt.Sprintf("stagecoach-deploy-%d", d.ID),
			Env: map[string]string{"STAGE": d.Stage, "APP": d.App, "COMMIT_SHA": d.SHA, "IMAGE_TAG": imageTag(d.SHA),
				"IMAGE_REPOSITORY": t.app.ImageRepository, "STAGECOACH_DEPLOY": strconv.FormatInt(d.ID, 10)},
			SecretEnv: map[string]string{"DOTENV_SECRET": t.as.SecretID},
		})
		if err != nil {
			return r.retry(cp, "starting the build", err)
		}
		log.Info("build started", "build", id)
		cp.BuildID, cp.BuildStarted, cp.Retries = id, now, 0
		cp.ExpectedBuild = r.expectedBuild(ctx, d)
		return result{after: r.o.MinPoll}
	}
	b, err := r.cloud.GetBuild(ctx, t.session, cp.BuildID)
	if err != nil {
		return r.retry(cp, "reading the build", err)
	}
	cp.Polls++
	cp.Retries = 0
	cp.BuildPhase, cp.BuildLog = b.Phase, b.LogURL
	s.Link = b.LogURL
	if !b.Started.IsZero() {
		cp.BuildStarted = b.Started
	}
	if !b.Done() {
		s.Detail = fmt.Sprintf("phase %s", b.Phase)
		return result{after: r.nextPoll(now.Sub(cp.BuildStarted), cp.ExpectedBuild)}
	}
	cp.BuildEnded = b.Ended
	if b.Status != "SUCCEEDED" {
		why := fmt.Sprintf("build %s in %s", strings.ToLower(b.Status), b.FailedPhase)
		if b.Message != "" {
			why += ": " + b.Message
		}
		s.finish(StepFailed, why, now)
		return result{state: deploy.Failed, err: why}
	}
	image := t.app.ImageRepository + ":" + imageTag(d.SHA)
	if t.app.ImageReference != "tag" {
		digest, err := r.cloud.ImageDigest(ctx, t.session, t.app.ImageRepository, imageTag(d.SHA))
		if err != nil {
			var nf *amazon.NotFoundError
			if errors.As(err, &nf) {
				s.finish(StepFailed, "the build succeeded but pushed no image: "+err.Error(), now)
				return result{state: deploy.Failed, err: "build pushed no image: " + err.Error()}
			}
			return r.retry(cp, "resolving the image digest", err)
		}
		image = t.app.ImageRepository + "@" + digest
	}
	cp.Image = image
	s.finish(StepSucceeded, "", now)
	cp.step("Rollout", now)
	log.Info("build succeeded", "build", cp.BuildID, "image", image)
	return result{state: deploy.RollingOut}
}

// nextPoll looks at a build often at first and around its expected end, otherwise every MaxPoll.
func (r *Runner) nextPoll(elapsed, expected time.Duration) time.Duration {
	window := 30 * time.Second
	switch {
	case expected > 0 && elapsed > expected-window && elapsed < expected+window:
		return r.o.EndPoll
	case elapsed < window:
		return r.o.MinPoll
	}
	return r.o.MaxPoll
}

// expectedBuild is the median build time of the last successful deploys of the app and stage.
func (r *Runner) expectedBuild(ctx context.Context, d deploy.Deploy) time.Duration {
	ds, err := r.st.ListDeploys(ctx, store.Filter{App: d.App, Stage: d.Stage, State: deploy.Succeeded, Limit: 5})
	if err != nil {
		return 0
	}
	var durs []time.Duration
	for _, x := range ds {
		if cp, err := DecodeCheckpoint(x.Checkpoint); err == nil && !cp.BuildStarted.IsZero() && cp.BuildEnded.After(cp.BuildStarted) {
			durs = append(durs, cp.BuildEnded.Sub(cp.BuildStarted))
		}
	}
	if len(durs) == 0 {
		return 0
	}
	slices.Sort(durs)
	return durs[len(durs)/2]
}

// rollout records the images it replaces, sets the new ones, and follows each Deployment's
// rolling update; on failure it sets the recorded images back and follows that rollout too.
func (r *Runner) rollout(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *Checkpoint) result {
	now := r.o.Now()
	cluster, err := r.clusters.For(t.stage)
	if err != nil {
		return r.retry(cp, "connecting to the cluster", err)
	}
	name := "Rollout"
	if cp.RollingBack {
		name = "Rollback"
	}
	s := cp.step(name, now)
	if cp.Replaced == nil {
		// First record what runs now, in its own checkpoint, so a crash after the change
		// still knows what to roll back to.
		images, err := cluster.Images(ctx, t.kubeTargets())
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
			cause = fmt.Sprintf("stagecoach: deploy #%d of %s to %s", d.ID, short(d.SHA), d.Stage)
		}
		// Applying the same images again after a crash changes nothing: no second rollout.
		if _, err := cluster.SetImages(ctx, images, cause, d.SHA, strconv.FormatInt(d.ID, 10)); err != nil {
			return r.retry(cp, "setting the images", err)
		}
		log.Info("images set", "rollback", cp.RollingBack)
		cp.ImagesSet, cp.RolloutStarted, cp.Completed, cp.Retries = true, now, nil, 0
		return result{}
	}
	for _, dep := range t.as.Deployments {
		if slices.Contains(cp.Completed, dep.Name) {
			continue
		}
		st, err := cluster.Follow(ctx, dep.Name, cp.RolloutStarted, t.as.RolloutTimeout, r.o.FollowBudget, func(h health.Status) {
			cp.Progress = fmt.Sprintf("%s: %s", dep.Name, h.Progress())
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
				s.finish(StepFailed, st.Message, now)
				return result{state: deploy.Failed, err: fmt.Sprintf("rollout failed (%s) and so did the rollback: %s", cp.RollbackReason, st.Message)}
			}
			s.finish(StepFailed, fmt.Sprintf("%s: %s", dep.Name, st.Message), now)
			log.Warn("rollout failed; rolling back", "deployment", dep.Name, "reason", st.Message)
			cp.RollingBack, cp.RollbackReason = true, fmt.Sprintf("%s: %s", dep.Name, st.Message)
			cp.ImagesSet, cp.Completed, cp.Progress = false, nil, ""
			cp.step("Rollback", now)
			return result{}
		}
		cp.Completed = append(cp.Completed, dep.Name)
	}
	s.finish(StepSucceeded, fmt.Sprintf("%d Deployment(s) updated", len(t.as.Deployments)), r.o.Now())
	if cp.RollingBack {
		return result{state: deploy.RolledBack, err: "rolled back: " + cp.RollbackReason}
	}
	log.Info("deploy succeeded", "image", cp.Image)
	return result{state: deploy.Succeeded}
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
