package config

import (
	"maps"
	"slices"
)

// promotion checks what an app's stages say about artifacts: with artifact: promote each stage
// names the Secret its configuration comes from (the image carries none) and no Secrets Manager
// secret (no build reads one); with artifact: build no stage names a repository of its own (only
// a promotion copies images there).
func (v *validator) promotion(p string, app App) {
	if app.Artifact != ArtifactBuild && app.Artifact != ArtifactPromote {
		return // said once, as the artifact
	}
	for _, stage := range slices.Sorted(maps.Keys(app.Stages)) {
		as, sp := app.Stages[stage], p+".stages."+stage
		if !app.Promotes() {
			if as.ImageRepository != "" {
				v.add(sp+".image_repository", "only artifact: promote runs a stage's images from a repository of its own (it copies the tested image there); "+
					"with artifact: build every stage's build pushes to the app's image_repository: set artifact: promote or remove this")
			}
			continue
		}
		if _, set := v.c.lines[sp+".env_secret"]; !set {
			v.addAt(v.c.line(sp), sp+".env_secret", "required with artifact: promote: the image is built once for every stage and carries no stage's "+
				"configuration, so the stage's pods read it at start-up from this Kubernetes Secret")
		}
		if as.SecretID != "" {
			v.add(sp+".secret_id", "not used with artifact: promote: the one build reads no stage's secret (its image would carry that stage's "+
				"configuration to every stage); the stage's configuration goes in the Kubernetes Secret env_secret names: remove this")
		}
	}
}

// ConfigSecret is the Kubernetes Secret the app's pods on stage need at start-up, which
// Stagecoach checks exists before a deploy: with artifact: promote the stage's configuration
// (env_secret), else the key that decrypts the .env baked into the image (env_key_secret).
func (a *App) ConfigSecret(stage string) string {
	if a.Promotes() {
		return a.Stages[stage].EnvSecret
	}
	return a.Stages[stage].EnvKeySecret
}
