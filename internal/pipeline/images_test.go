package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
)

// TestBuildingProdLeavesAlphasImageAlone: every stage's build bakes its own .env into the image,
// so each pushes its own tag, <sha12>-<stage>-<deploy>, and the digest is read for that tag.
// Building the same commit for prod leaves the image alpha runs alone: its tag still names
// alpha's build, and under image_reference: tag alpha's Deployment still runs alpha's image. In
// an ECR repository with immutable tags both builds push (one tag for every stage failed the
// second push), and so does a second deploy of the commit to prod.
func TestBuildingProdLeavesAlphasImageAlone(t *testing.T) {
	for _, ref := range []string{"digest", "tag"} {
		t.Run(ref, func(t *testing.T) {
			w := newReleaseWorld(t, "alpha")
			w.cfg.App("hello").ImageReference = ref
			w.aws.ECR.SetImmutable(repoURI)
			w.create(kubetest.Deployment("api", "api"))
			w.twoSlots("prod")
			r := w.runner(w.st, "p1")
			alpha := w.drive(r, 90*time.Second, w.ask(deploy.Request{Stage: "alpha", SHA: sha1, Ref: "alpha"}))[0]
			if alpha.State != deploy.Succeeded {
				t.Fatalf("alpha: %s: %s", alpha.State, alpha.Error)
			}
			alphaTag := fmt.Sprintf("%s-alpha-%d", sha1[:12], alpha.ID)
			alphaDigest, alphaRuns := w.aws.ECR.Digest(repoURI, alphaTag), w.images("api")
			prod := w.drive(r, 90*time.Second, w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod"}))[0]
			if prod.State != deploy.Succeeded {
				t.Fatalf("prod: %s: %s", prod.State, prod.Error)
			}
			prodTag := fmt.Sprintf("%s-prod-%d", sha1[:12], prod.ID)
			if alphaDigest == "" || w.aws.ECR.Digest(repoURI, alphaTag) != alphaDigest {
				t.Errorf("alpha's tag %s: %q before prod's build, %q after", alphaTag, alphaDigest, w.aws.ECR.Digest(repoURI, alphaTag))
			}
			prodDigest := w.aws.ECR.Digest(repoURI, prodTag)
			if prodDigest == "" || prodDigest == alphaDigest {
				t.Errorf("prod's tag %s names %q (alpha's: %q)", prodTag, prodDigest, alphaDigest)
			}
			if got := w.images("api"); got != alphaRuns {
				t.Errorf("alpha runs %s after prod's build, want %s", got, alphaRuns)
			}
			want := map[string]string{"digest": repoURI + "@" + alphaDigest, "tag": repoURI + ":" + alphaTag}[ref]
			if alphaRuns != want {
				t.Errorf("alpha runs %s, want %s", alphaRuns, want)
			}
			if got := w.images("api-prod-backup"); !strings.HasSuffix(got, map[string]string{"digest": prodDigest, "tag": prodTag}[ref]) {
				t.Errorf("prod's idle slot runs %s, want prod's own image", got)
			}
			// The same commit to prod again (after a rollback, say) builds and pushes again.
			again := w.drive(r, 90*time.Second, w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Nonce: "again"}))[0]
			if again.State != deploy.Succeeded {
				t.Fatalf("prod again: %s: %s", again.State, again.Error)
			}
			var tags []string
			for _, b := range w.aws.CodeBuild.Builds() {
				for _, v := range b.Env {
					if v.Name == "IMAGE_TAG" {
						tags = append(tags, v.Value)
					}
				}
			}
			if want := fmt.Sprintf("%s %s %s-prod-%d", alphaTag, prodTag, sha1[:12], again.ID); strings.Join(tags, " ") != want {
				t.Errorf("builds pushed %v, want %s", tags, want)
			}
		})
	}
}
