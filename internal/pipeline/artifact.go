package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/kube"
)

// An app with artifact: promote builds its image once, for the first stage of its promotion
// order, with no stage's configuration in it; every later stage runs that exact digest, never a
// rebuild. Preflight finds the image the commit ran on the stage before (the deploy of that
// commit that succeeded there, as the store recorded it) and refuses when there is none. The
// Promote step then copies it into the stage's own registry when that is another repository
// (another account's, say) with ECR's image APIs, and the rollout sets it by digest with the
// stage's Secret as the containers' configuration. Each part is checkpointed, and the copy is
// idempotent: a deploy killed mid-copy finishes the copy when it resumes, copying nothing
// twice and building nothing.

// imageCopier is the part of Cloud that copies an image between registries (amazon.AWS).
type imageCopier interface {
	CopyImage(ctx context.Context, s amazon.Session, in amazon.CopyInput) (amazon.Copied, error)
}

// secretImageSetter is a Cluster that can set images whose configuration comes from a Secret
// (kube.Cluster).
type secretImageSetter interface {
	SetImagesFromSecret(ctx context.Context, images []kube.Image, envSecret, cause, sha, deployID string) (map[string]int64, error)
}

// promotesFrom is the stage whose tested image a deploy to t's stage runs ("" when it builds).
func promotesFrom(t target) string { return admission.PromotesFrom(t.app, t.stage) }

// testedImage finds the image to promote, or why there is none (admission.TestedImage, the
// rule the gate applied when the deploy was asked for): applied again where every deploy passes.
func (r *Runner) testedImage(ctx context.Context, d deploy.Deploy, t target) (*deploy.Artifact, string, error) {
	return admission.TestedImage(ctx, r.st, t.app, t.stage, d.SHA)
}

// promote is the step that stands where a build would: the tested image, copied into the
// stage's registry when that is another repository. CopyImage finds an image the target has and
// copies nothing; blobs a stopped copy uploaded are reused. So a crash anywhere in here, or
// before the checkpoint saying it is done, is finished by running the step again.
func (r *Runner) promote(ctx context.Context, log *slog.Logger, d deploy.Deploy, t target, cp *deploy.Checkpoint) result {
	now := r.o.Now()
	s := cp.Step("Promote", now)
	a := cp.Artifact
	detail := a.SameImage()
	if a.Copy() && !a.Copied {
		copier, ok := r.cloud.(imageCopier)
		if !ok {
			return r.refuse(s, "artifact: promote: this Stagecoach cannot copy images between registries")
		}
		got, err := copier.CopyImage(ctx, t.session, amazon.CopyInput{Source: a.Source, Target: a.Target, Digest: a.Digest, Tag: imageTag(d)})
		if err != nil {
			var refused *amazon.RefusedError
			if errors.As(err, &refused) {
				return r.refuse(s, "copying the tested image: "+err.Error())
			}
			return r.retry(cp, fmt.Sprintf("copying the tested image to %s", a.Target), err)
		}
		a.Copied = true
		if got.Already {
			detail += fmt.Sprintf("; %s had it already", a.Target)
		} else {
			detail += fmt.Sprintf("; copied to %s (%d blob(s), %s; %d reused)", a.Target, got.Blobs, mib(got.Bytes), got.Reused)
		}
		log.Info("tested image copied", "digest", a.Digest, "from", a.Source, "to", a.Target, "blobs", got.Blobs, "already", got.Already)
	}
	cp.Image = a.Target + "@" + a.Digest
	s.Finish(deploy.StepSucceeded, detail, now)
	cp.Step("Rollout", now)
	return result{state: deploy.RollingOut}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// setImages sets the images; for an app with artifact: promote, whose images carry no stage's
// configuration, the containers read it from the stage's Secret, in the same change.
func (r *Runner) setImages(ctx context.Context, cluster Cluster, t target, images []kube.Image, cause, sha, deployID string) (map[string]int64, error) {
	if !t.app.Promotes() {
		return cluster.SetImages(ctx, images, cause, sha, deployID)
	}
	ss, ok := cluster.(secretImageSetter)
	if !ok {
		return nil, fmt.Errorf("artifact: promote: the cluster of %s cannot reference the Secret %s", t.stage.Name, t.as.EnvSecret)
	}
	return ss.SetImagesFromSecret(ctx, images, t.as.EnvSecret, cause, sha, deployID)
}

// configSecret is the Kubernetes Secret a stage's pods need at start-up, and why: the key that
// decrypts the .env baked into the image, or with artifact: promote the configuration itself.
func configSecret(t target) (name, why string) {
	if t.app.Promotes() {
		return t.app.ConfigSecret(t.stage.Name), ": it holds the stage's configuration, which an image built once for every stage does not carry (artifact: promote)"
	}
	return t.as.EnvKeySecret, ": it holds the key that decrypts .env at start-up"
}

// promotionBuild makes a build input one for every stage: no stage's secret (the .env the
// seed's builds bake in) and no STAGE, so nothing of a stage's configuration can end up in the
// image; ARTIFACT=promote tells the buildspec so.
func promotionBuild(in *amazon.BuildInput) {
	delete(in.Env, "STAGE")
	in.Env["ARTIFACT"] = "promote"
	in.SecretEnv = nil
}
