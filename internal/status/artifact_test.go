package status

import (
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// TestStatusNamesThePromotedImage: /status (and the release issue's "what is where") says which
// image a stage of an app with artifact: promote runs: built once on test, the same image as
// tested on alpha on prod. An app that builds per stage shows nothing more.
func TestStatusNamesThePromotedImage(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	digest := "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	live := func(cp deploy.Checkpoint) *deploy.Deploy {
		return &deploy.Deploy{FinishedAt: now.Add(-time.Hour), Checkpoint: cp.Encode(), Request: deploy.Request{SHA: "abcdef0123", Trigger: deploy.Trigger{Actor: "octocat"}}}
	}
	built := deploy.Checkpoint{Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop@" + digest, Artifact: &deploy.Artifact{Built: true}}
	promoted := &deploy.Artifact{From: "alpha", Digest: digest, Source: "a", Target: "b"}
	for _, tc := range []struct {
		name string
		s    Stage
		want string
	}{
		{"built once", Stage{Name: "test", Live: live(built), Artifact: built.Artifact}, "[`abcdef0`](W/acme/shop/commit/abcdef0123) (built once: `sha256:9f86d081884c`)"},
		{"promoted", Stage{Name: "prod", Live: live(deploy.Checkpoint{}), Artifact: promoted}, "[`abcdef0`](W/acme/shop/commit/abcdef0123) (same image as tested on alpha, `sha256:9f86d081884c`)"},
		{"built per stage", Stage{Name: "prod", Live: live(deploy.Checkpoint{Image: built.Image})}, "[`abcdef0`](W/acme/shop/commit/abcdef0123) |"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Markdown([]App{{Name: "api", Repo: "acme/shop", Stages: []Stage{tc.s}}}, "W", now)
			if !strings.Contains(got, tc.want) {
				t.Errorf("status = %s\nwant it to contain %s", got, tc.want)
			}
		})
	}
}
