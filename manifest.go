// Package stagecoach holds what belongs to the repository as a whole rather than to one of its
// packages: the GitHub App's manifest, app.yml, built into the binary so that commands run far
// from a checkout (stagecoach doctor in the service's own container) still have it.
package stagecoach

import _ "embed" // app.yml

// AppManifest is app.yml: the App's permissions and events, each with its reason.
//
//go:embed app.yml
var AppManifest []byte
