package kubesim

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
)

func TestImageTag(t *testing.T) {
	for _, tt := range []struct{ image, want string }{
		{"registry.example/api:broken", "broken"},
		{"registry.example:5000/api", ""},
		{"registry.example:5000/api:v1", "v1"},
		{"api:broken@sha256:abcd", "broken"},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:aaaa", ""},
		{"broken", ""},
	} {
		t.Run(tt.image, func(t *testing.T) {
			if got := imageTag(tt.image); got != tt.want {
				t.Errorf("imageTag = %q, want %q", got, tt.want)
			}
		})
	}
}

// SetImages behaves like kube's server-side apply: annotations always, a new generation only for
// a new template, other containers untouched, an unknown container added.
func TestSetImages(t *testing.T) {
	c, _ := seeded(Options{})
	ctx := context.Background()
	gens, err := c.SetImages(ctx, []kube.Image{
		{Deployment: "api", Container: "api", Image: "registry.example/api:v2"},
		{Deployment: "api-prod", Container: "api", Image: "registry.example/api:v1"}, // unchanged
	}, "stagecoach: deploy #7", "c4295bd", "7")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"api": 2, "api-prod": 1}; !maps.Equal(gens, want) {
		t.Errorf("generations = %v, want %v", gens, want)
	}
	wantAnn := map[string]string{kube.ChangeCauseAnnotation: "stagecoach: deploy #7", kube.SHAAnnotation: "c4295bd", kube.DeployAnnotation: "7"}
	for _, name := range []string{"api", "api-prod"} {
		if got := c.deployments[name].annotations; !maps.Equal(got, wantAnn) {
			t.Errorf("%s annotations = %v, want %v", name, got, wantAnn)
		}
	}
	if s, _ := c.Status(ctx, "api-prod"); s.Phase != health.Complete {
		t.Errorf("unchanged images started a rollout: %+v", s)
	}
	images, err := c.Images(ctx, []kube.Target{{Deployment: "api", Containers: []string{"sidecar", "api"}}})
	if err != nil {
		t.Fatal(err)
	}
	if images[0].Image != "registry.example/sidecar:v1" || images[1].Image != "registry.example/api:v2" {
		t.Errorf("images = %+v", images)
	}
	if _, err := c.SetImages(ctx, []kube.Image{{Deployment: "api", Container: "debug", Image: "busybox:1"}}, "c", "s", "8"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Images(ctx, []kube.Target{{Deployment: "api", Containers: []string{"debug"}}}); err != nil {
		t.Errorf("a container set by SetImages is not there: %v", err)
	}
	if _, err := c.SetImages(ctx, []kube.Image{{Deployment: "api", Container: "api", Image: ""}}, "c", "s", "9"); err == nil {
		t.Error("an empty image was accepted")
	}
}

// The status object is what health judges: its counts must be a Deployment's.
func TestStatusCounts(t *testing.T) {
	c, clock := seeded(Options{})
	ctx := context.Background()
	c.AddDeployment("none", 0, map[string]string{"x": "x:v1"}, nil)
	if s, _ := c.Status(ctx, "none"); s.Phase != health.Complete || s.Desired != 0 {
		t.Errorf("0 replicas: %+v", s)
	}
	if _, err := c.SetImages(ctx, []kube.Image{{Deployment: "api", Container: "api", Image: "registry.example/api:v2"}}, "c", "s", "1"); err != nil {
		t.Fatal(err)
	}
	want := []health.Status{
		{Phase: health.Progressing, Desired: 3, Updated: 1, Ready: 3, Available: 3, Old: 3, Message: "1 of 3 pods updated"},
		{Phase: health.Progressing, Desired: 3, Updated: 2, Ready: 3, Available: 3, Old: 2, Message: "2 of 3 pods updated"},
		{Phase: health.Progressing, Desired: 3, Updated: 3, Ready: 3, Available: 3, Old: 1, Message: "3 of 3 pods updated; 1 old pods terminating"},
		{Phase: health.Complete, Desired: 3, Updated: 3, Ready: 3, Available: 3, Old: 0, Message: "all 3 pods updated and available"},
	}
	for i, w := range want {
		if s, err := c.Status(ctx, "api"); err != nil || s != w {
			t.Errorf("after %ds: %+v, %v; want %+v", i, s, err, w)
		}
		clock.After(time.Second)
	}
}
