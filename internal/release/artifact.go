package release

import (
	"fmt"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// sameImage is what a release issue says of an app with artifact: promote: the release stage
// runs the very image the tagged commit ran on the stage before, never a rebuild. "" when the
// deploy ran an image built for its stage alone (artifact: build).
func sameImage(d deploy.Deploy, from string) string {
	cp, err := deploy.DecodeCheckpoint(d.Checkpoint)
	if err != nil || cp.Artifact == nil {
		return ""
	}
	if _, digest, ok := deploy.SplitDigest(cp.Image); ok {
		return fmt.Sprintf(" · promoting runs the same image as tested on %s (`%s`), never a rebuild", from, digest)
	}
	return ""
}
