package chatops

import (
	"context"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// TestPromotionOfAnUntestedImageIsRefusedBeforeTheBranchMoves: once hello builds once and
// promotes the digest, `/promote alpha` of a commit that test ran as an image built for test
// alone (before the switch) is refused by the gate with the reason: no deploy is recorded and
// alpha's branch does not move. The same commit built for promotion is promoted.
func TestPromotionOfAnUntestedImageIsRefusedBeforeTheBranchMoves(t *testing.T) {
	image := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:" + strings.Repeat("9", 64)
	for _, tt := range []struct {
		name     string
		artifact *deploy.Artifact
		want     string
	}{
		{name: "built for test alone", want: "ran an image built for test alone, with its configuration baked in"},
		{name: "built for promotion", artifact: &deploy.Artifact{Built: true}, want: "alpha"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			app := w.cfg.App("hello")
			app.Artifact = config.ArtifactPromote
			for name, as := range app.Stages {
				as.SecretID, as.EnvSecret = "", "hello-"+name+"-env"
				app.Stages[name] = as
			}
			w.live("test", shaC, "dev", deploy.Checkpoint{Image: image, Artifact: tt.artifact})
			got := w.say(7, "lead", "/promote alpha")
			ds, _ := w.st.ListDeploys(context.Background(), store.Filter{Stage: "alpha"})
			alpha, _ := w.gh.Ref(repo, "alpha")
			if tt.artifact == nil {
				if !strings.Contains(got, tt.want) {
					t.Errorf("answer = %q\nwant it to contain %q", got, tt.want)
				}
				if len(ds) != 0 || alpha != shaA {
					t.Errorf("refused, yet %d deploy(s) to alpha recorded and alpha at %s", len(ds), alpha)
				}
				return
			}
			if len(ds) != 1 || ds[0].SHA != shaC || alpha != shaC {
				t.Errorf("answer %q; deploys to alpha %+v, alpha at %s: want ccccccc promoted", got, ds, alpha)
			}
		})
	}
}
