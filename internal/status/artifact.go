package status

import (
	"fmt"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// imageNote says, for an app with artifact: promote, which image a stage runs: the one built
// there for every stage, or the same image as tested on the stage before. "" otherwise.
func imageNote(s Stage) string {
	a := s.Artifact
	switch {
	case a.Promoted():
		return fmt.Sprintf(" (same image as tested on %s, `%s`)", a.From, deploy.ShortDigest(a.Digest))
	case a != nil && a.Built && s.Live != nil:
		if cp, err := deploy.DecodeCheckpoint(s.Live.Checkpoint); err == nil {
			if _, digest, ok := deploy.SplitDigest(cp.Image); ok {
				return fmt.Sprintf(" (built once: `%s`)", deploy.ShortDigest(digest))
			}
		}
	}
	return ""
}
