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

	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// imageTag is the tag a deploy's build pushes: the commit's short sha, the stage and the
// deploy, "<sha12>-<stage>-<deploy id>". Each stage's build bakes that stage's .env into its
// image, so each stage needs its own tag: one tag for every stage let building alpha overwrite
// the image test runs (with image_reference: tag), let a concurrent build swap it between the
// push and the digest lookup, and broke on ECR's immutable tags as soon as a commit was
// promoted. The deploy's id keeps a rebuild of the same commit for the same stage (a retry, a
// promotion after a rollback, which bakes the stage's secret as it is now) from needing to
// overwrite a tag either.
func imageTag(d deploy.Deploy) string {
	sha := d.SHA
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return fmt.Sprintf("%s-%s-%d", sha, d.Stage, d.ID)
}

// buildInput is what CodeBuild is asked to build. A pull-request build gets the pr tier's
// project and buildspec and no secret at all: the code it runs is not reviewed yet.
func buildInput(d deploy.Deploy, t target) amazon.BuildInput {
	in := amazon.BuildInput{
		Project: t.app.CodeBuildProject, SourceVersion: d.SHA, Buildspec: t.as.Buildspec,
		IdempotencyToken: fmt.Sprintf("stagecoach-deploy-%d", d.ID),
		Env: map[string]string{"STAGE": d.Stage, "APP": d.App, "COMMIT_SHA": d.SHA, "IMAGE_TAG": imageTag(d),
			"IMAGE_REPOSITORY": t.app.Repository(d.Stage), "STAGECOACH_DEPLOY": strconv.FormatInt(d.ID, 10)},
		SecretEnv: map[string]string{"DOTENV_SECRET": t.as.SecretID},
	}
	if d.Mode == deploy.ModeBuild && t.app.Promotes() {
		promotionBuild(&in)
	}
	if d.Mode == deploy.ModePRBuild {
		in.Project, in.Buildspec, in.SecretEnv = t.app.PRBuild.CodeBuildProject, t.app.PRBuild.Buildspec, nil
		in.Env = map[string]string{"APP": d.App, "COMMIT_SHA": d.SHA, "PULL_REQUEST": strconv.Itoa(d.Trigger.PR),
			"STAGECOACH_DEPLOY": strconv.FormatInt(d.ID, 10)}
	}
	return in
}

// lookBack is how long before its Build step began a deploy's build may have started by
// CodeBuild's clock: the clocks of CodeBuild and of whichever replica began the step differ.
const lookBack = 15 * time.Minute

// build starts the build once, then looks at it on a schedule until it ends. A start may have
// reached CodeBuild before without its build id reaching the checkpoint (a crash, a lost answer,
// a store outage), so before every start it looks for a build of this deploy (its id and commit
// are in the build's environment) and follows that one instead. The idempotency token covers
// the same case for five minutes, which is all CodeBuild honours it for.
func (r *Runner) build(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	now := r.o.Now()
	s := cp.Step("Build", now)
	if cp.BuildID == "" {
		in := buildInput(d, t)
		id, found, err := r.cloud.FindBuild(ctx, t.session, amazon.BuildQuery{Project: in.Project, SourceVersion: in.SourceVersion,
			Env: in.Env, Since: s.Started.Add(-lookBack)})
		if err != nil {
			return r.retry(cp, "looking for the deploy's build", err)
		}
		if found {
			log.Info("found the build a start before this one began", "build", id)
		} else if id, err = r.cloud.StartBuild(ctx, t.session, in); err != nil {
			return r.retry(cp, "starting the build", err)
		} else {
			log.Info("build started", "build", id)
		}
		cp.BuildID, cp.BuildStarted = id, now
		cp.ExpectedBuild = r.expectedBuild(ctx, d)
		return result{after: r.o.MinPoll}
	}
	// A running build is followed for as long as it runs; only failing to read it counts
	// against the step's time budget, and every answer starts that count again.
	b, err := r.cloud.GetBuild(ctx, t.session, cp.BuildID)
	if err != nil {
		return r.retry(cp, "reading the build", err)
	}
	cp.Polls++
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
		s.Finish(deploy.StepFailed, why, now)
		return result{state: deploy.Failed, err: why}
	}
	if d.Mode == deploy.ModePRBuild {
		s.Finish(deploy.StepSucceeded, "", now)
		log.Info("pull-request build succeeded", "build", cp.BuildID)
		return result{state: deploy.Succeeded}
	}
	tag := imageTag(d)
	repo := t.app.Repository(d.Stage) // the app's, unless the first stage of a promotion has its own
	image := repo + ":" + tag
	if t.app.ImageReference != "tag" {
		digest, err := r.cloud.ImageDigest(ctx, t.session, repo, tag)
		if err != nil {
			var nf *amazon.NotFoundError
			if errors.As(err, &nf) {
				s.Finish(deploy.StepFailed, "the build succeeded but pushed no image: "+err.Error(), now)
				return result{state: deploy.Failed, err: "build pushed no image: " + err.Error()}
			}
			return r.retry(cp, "resolving the image digest", err)
		}
		image = repo + "@" + digest
	}
	cp.Image = image
	if t.app.Promotes() {
		cp.Artifact = &deploy.Artifact{Built: true} // later stages run this very image
	}
	s.Finish(deploy.StepSucceeded, "", now)
	cp.Step("Rollout", now)
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
		if cp, err := deploy.DecodeCheckpoint(x.Checkpoint); err == nil && !cp.BuildStarted.IsZero() && cp.BuildEnded.After(cp.BuildStarted) {
			durs = append(durs, cp.BuildEnded.Sub(cp.BuildStarted))
		}
	}
	if len(durs) == 0 {
		return 0
	}
	slices.Sort(durs)
	return durs[len(durs)/2]
}
