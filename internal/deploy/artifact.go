package deploy

import (
	"fmt"
	"strings"
)

// Artifact is what a deploy of an app with artifact: promote knows of its image, kept in its
// checkpoint: that it was built with no stage's configuration in it (so later stages may run
// it), or which tested image it promotes and whether the copy into the stage's registry is done.
// A deploy of an app that builds per stage has none.
type Artifact struct {
	// Built: this deploy built the image, for the first stage of the promotion order, with no
	// stage's configuration baked in.
	Built bool `json:"built,omitempty"`
	// From is the stage whose successful deploy (FromDeploy) ran Source@Digest: the image
	// promoted, never rebuilt.
	From       string `json:"from,omitempty"`
	FromDeploy int64  `json:"from_deploy,omitempty"`
	Source     string `json:"source,omitempty"` // the repository the tested image ran from
	Digest     string `json:"digest,omitempty"` // sha256:...
	// Target is the repository the stage runs images from; when it is not Source the image is
	// copied there (Copied once done).
	Target string `json:"target,omitempty"`
	Copied bool   `json:"copied,omitempty"`
}

// Promoted reports whether the deploy runs an image tested on an earlier stage.
func (a *Artifact) Promoted() bool { return a != nil && a.From != "" }

// Copy reports whether the image goes into another repository than it was tested from.
func (a *Artifact) Copy() bool { return a.Promoted() && a.Target != a.Source }

// SameImage is how reports name a promoted image: "same image as tested on alpha (sha256:…)".
func (a *Artifact) SameImage() string {
	if !a.Promoted() {
		return ""
	}
	return fmt.Sprintf("same image as tested on %s (%s)", a.From, a.Digest)
}

// SplitDigest splits an image reference repository@sha256:... into its repository and digest;
// ok is false for a reference by tag.
func SplitDigest(image string) (repository, digest string, ok bool) {
	repository, digest, ok = strings.Cut(image, "@")
	if !ok || !strings.HasPrefix(digest, "sha256:") || repository == "" {
		return "", "", false
	}
	return repository, digest, true
}

// ShortDigest is a digest as people read it: sha256: and its first twelve hex digits.
func ShortDigest(digest string) string {
	if len(digest) > len("sha256:")+12 {
		return digest[:len("sha256:")+12]
	}
	return digest
}
