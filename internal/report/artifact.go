package report

import (
	"fmt"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// artifactNote is what a report says of the image of an app with artifact: promote: the tested
// image a later stage runs (and where it was copied), or that this build is the one image every
// later stage will run. "" for an app that builds per stage.
func artifactNote(cp deploy.Checkpoint) string {
	a := cp.Artifact
	switch {
	case a.Promoted():
		note := fmt.Sprintf("Same image as tested on **%s** (`%s`, deploy #%d): promoted, not rebuilt", a.From, a.Digest, a.FromDeploy)
		switch {
		case a.Copy() && a.Copied:
			note += fmt.Sprintf("; copied from `%s` to `%s`", a.Source, a.Target)
		case a.Copy():
			note += fmt.Sprintf("; being copied from `%s` to `%s`", a.Source, a.Target)
		}
		return note + "."
	case a != nil && a.Built:
		return "Built once, with no stage's configuration in it: later stages run this digest, never a rebuild."
	}
	return ""
}

// promoting is the headline while a later stage takes the tested image instead of building.
func (v view) promoting() string {
	return fmt.Sprintf("Promoting %s: the %s", deploy.ShortSHA(v.D.SHA), v.CP.Artifact.SameImage())
}
