package admission

import (
	"context"
	"fmt"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// PromotesFrom is the stage whose tested image app's deploys to stage run: with artifact:
// promote, the stage's promote_from when the app deploys there too. "" means the stage builds
// (the first stage of the order, a stage outside it, or an app that builds per stage).
func PromotesFrom(app *config.App, stage *config.Stage) string {
	if stage == nil || !app.Promotes() || stage.PromoteFrom == "" {
		return ""
	}
	if _, ok := app.Stages[stage.PromoteFrom]; !ok {
		return ""
	}
	return stage.PromoteFrom
}

// TestedImage is the rule of artifact: promote that both the gate and the pipeline's preflight
// apply: a later stage runs the image sha ran on the stage before (its successful deploy there, as
// recorded), provided that image was built once for promotion or promoted itself, and is never
// rebuilt, not even by --force. It returns the image to promote, or why there is none; nil and
// "" when the stage builds.
func TestedImage(ctx context.Context, st Succeeder, app *config.App, stage *config.Stage, sha string) (*deploy.Artifact, string, error) {
	from := PromotesFrom(app, stage)
	if from == "" {
		return nil, "", nil
	}
	prev, ok, err := st.Succeeded(ctx, app.Name, from, sha)
	if err != nil {
		return nil, "", err
	}
	first := fmt.Sprintf("artifact: promote: %s builds nothing, it runs the image tested on %s", stage.Name, from)
	if !ok {
		return nil, fmt.Sprintf("%s, and %s was never built and tested there: deploy it to %s first", first, deploy.ShortSHA(sha), from), nil
	}
	cp, err := deploy.DecodeCheckpoint(prev.Checkpoint)
	if err != nil {
		return nil, fmt.Sprintf("%s, and deploy #%d's record there is unreadable: %v", first, prev.ID, err), nil
	}
	repo, digest, byDigest := deploy.SplitDigest(cp.Image)
	switch {
	case cp.Artifact == nil:
		return nil, fmt.Sprintf("%s, and deploy #%d there ran an image built for %s alone, with its configuration baked in "+
			"(built before artifact: promote, or a rollback): deploy %s to %s again", first, prev.ID, from, deploy.ShortSHA(sha), from), nil
	case !byDigest:
		return nil, fmt.Sprintf("%s, and deploy #%d there ran %q, not an image by digest", first, prev.ID, cp.Image), nil
	}
	return &deploy.Artifact{From: from, FromDeploy: prev.ID, Source: repo, Digest: digest, Target: app.Repository(stage.Name)}, "", nil
}

// tested is the gate's side of TestedImage: a command or push that would deploy a commit with
// no tested image to a later stage of an app with artifact: promote is refused before anything
// moves. An image rollback or slot switch brings back what ran, so it is not asked.
func (g *Gate) tested(ctx context.Context, r Request, t Target) (string, error) {
	if t.SHA == "" || t.Mode == deploy.ModeImage || t.Mode == deploy.ModeSwitch {
		return "", nil
	}
	for _, app := range r.Apps {
		_, why, err := TestedImage(ctx, g.st, app, r.Stage, t.SHA)
		if err != nil || why != "" {
			return why, err
		}
	}
	return "", nil
}
