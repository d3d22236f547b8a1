package release

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// ranPromoted records a successful deploy of sha to stage that ran image with the artifact
// record of artifact: promote, as the pipeline leaves it.
func (w *world) ranPromoted(stage, sha, image string, a *deploy.Artifact) {
	w.t.Helper()
	ctx := context.Background()
	rd, err := w.st.RequestDeploys(ctx, []deploy.Request{{App: "hello", Stage: stage, Repo: repo, SHA: sha, Ref: stage, InstallationID: 1,
		Trigger: deploy.Trigger{Event: "push", Delivery: "seed-" + stage + "-" + sha[:3], Actor: "lead"}}})
	if err != nil {
		w.t.Fatal(err)
	}
	cp := deploy.Checkpoint{Image: image, Artifact: a}
	for _, st := range []deploy.State{deploy.Preflight, deploy.Succeeded} {
		d, l, err := w.st.ClaimDeploy(ctx, "seed", time.Minute)
		if err != nil || d.ID != rd[0].ID {
			w.t.Fatalf("seeding: claimed %d, %v", d.ID, err)
		}
		w.now = w.now.Add(time.Minute)
		if err := w.st.Advance(ctx, l, store.Update{State: st, Release: true, Checkpoint: cp.Encode()}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// TestReleaseOfAPromotedImageNamesTheTestedDigest: for an app with artifact: promote, the release
// issue says prod gets the same image as tested on alpha, by digest; an image built for alpha
// alone (artifact: build) gets no such line.
func TestReleaseOfAPromotedImageNamesTheTestedDigest(t *testing.T) {
	const digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	const image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@" + digest
	w := newWorld(t)
	w.ran("prod", shaA, "po", deploy.Succeeded, 4*time.Minute, deploy.Trigger{})
	w.now = w.now.Add(48 * time.Hour)
	w.ranPromoted("test", shaC, image, &deploy.Artifact{Built: true})
	w.ranPromoted("alpha", shaC, image, &deploy.Artifact{From: "test", FromDeploy: 2, Source: strings.Split(image, "@")[0], Digest: digest,
		Target: strings.Split(image, "@")[0]})
	w.tag("v1.2.0", shaC, false)
	issues := w.gh.Issues(repo)
	if len(issues) != 1 {
		t.Fatalf("issues = %+v", issues)
	}
	golden(t, "issue-promoted", issues[0].Body)
	if want := "same image as tested on alpha (`" + digest + "`)"; !strings.Contains(issues[0].Body, want) {
		t.Errorf("the issue does not say %s", want)
	}
	if got := sameImage(deploy.Deploy{Checkpoint: (&deploy.Checkpoint{Image: image}).Encode()}, "alpha"); got != "" {
		t.Errorf("an image built for alpha alone: %q", got)
	}
}
