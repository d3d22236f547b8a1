package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

func setup(t *testing.T) (*Cluster, string) {
	t.Helper()
	kc := kubetest.Start(t)
	ns := kc.Namespace(t)
	for _, d := range []*appsv1.Deployment{kubetest.Deployment("api", "api", "sidecar"), kubetest.Deployment("worker", "worker")} {
		if _, err := kc.Clientset().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Connect(kc.Kubeconfig(), "kubetest", ns, false)
	if err != nil {
		t.Fatal(err)
	}
	return c, ns
}

func follow(t *testing.T, c *Cluster, name string, started time.Time) (health.Status, []string) {
	t.Helper()
	var progress []string
	for range 30 {
		s, err := c.Follow(context.Background(), name, started, 2*time.Minute, 5*time.Second, func(s health.Status) {
			if len(progress) == 0 || progress[len(progress)-1] != s.Progress() {
				progress = append(progress, s.Progress())
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.Phase != health.Progressing {
			return s, progress
		}
	}
	t.Fatalf("%s: rollout did not end", name)
	return health.Status{}, nil
}

func TestSetImagesAndFollow(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	targets := []Target{{Deployment: "api", Containers: []string{"api"}}, {Deployment: "worker", Containers: []string{"worker"}}}
	for _, name := range []string{"api", "worker"} {
		if s, _ := follow(t, c, name, time.Now()); s.Phase != health.Complete {
			t.Fatalf("initial rollout of %s: %+v", name, s)
		}
	}
	before, err := c.Images(ctx, targets)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 || before[0].Image != "registry.example/api:v1" {
		t.Fatalf("images = %+v", before)
	}
	next := []Image{
		{Deployment: "api", Container: "api", Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:aaaa"},
		{Deployment: "worker", Container: "worker", Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:aaaa"},
	}
	started := time.Now()
	if _, err := c.SetImages(ctx, next, "stagecoach: deploy #7 of c4295bd to test", "c4295bd", "7"); err != nil {
		t.Fatal(err)
	}
	s, progress := follow(t, c, "api", started)
	if s.Phase != health.Complete {
		t.Fatalf("rollout = %+v", s)
	}
	t.Logf("api rolled out in %s: %v", time.Since(started).Round(time.Millisecond), progress)
	after, _ := c.Images(ctx, targets)
	if after[0].Image != next[0].Image || after[1].Image != next[1].Image {
		t.Errorf("images after = %+v", after)
	}
	d, _ := c.cs.AppsV1().Deployments(c.namespace).Get(ctx, "api", metav1.GetOptions{})
	if d.Annotations[ChangeCauseAnnotation] != "stagecoach: deploy #7 of c4295bd to test" || d.Annotations[SHAAnnotation] != "c4295bd" {
		t.Errorf("annotations = %v", d.Annotations)
	}
	if img := d.Spec.Template.Spec.Containers[1].Image; img != "registry.example/sidecar:v1" {
		t.Errorf("the sidecar's image changed to %s", img)
	}
	owned := false
	for _, mf := range d.ManagedFields {
		if mf.Manager == FieldManager {
			owned = true
		}
	}
	if !owned {
		t.Error("no managed fields for the stagecoach field manager")
	}
}

func TestBrokenRolloutFailsAndRollsBack(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	follow(t, c, "worker", time.Now())
	before, _ := c.Images(ctx, []Target{{Deployment: "worker", Containers: []string{"worker"}}})
	started := time.Now()
	if _, err := c.SetImages(ctx, []Image{{Deployment: "worker", Container: "worker", Image: "registry.example/worker:broken"}}, "bad", "bad", "8"); err != nil {
		t.Fatal(err)
	}
	s, _ := follow(t, c, "worker", started)
	if s.Phase != health.Failed {
		t.Fatalf("broken rollout = %+v", s)
	}
	t.Logf("failed after %s: %s", time.Since(started).Round(time.Millisecond), s.Message)
	if _, err := c.SetImages(ctx, before, "rollback", "old", "8"); err != nil {
		t.Fatal(err)
	}
	if s, _ := follow(t, c, "worker", time.Now()); s.Phase != health.Complete {
		t.Fatalf("rollback = %+v", s)
	}
	after, _ := c.Images(ctx, []Target{{Deployment: "worker", Containers: []string{"worker"}}})
	if after[0].Image != before[0].Image {
		t.Errorf("image after rollback = %s, want %s", after[0].Image, before[0].Image)
	}
}

func TestMissingThingsAreNamed(t *testing.T) {
	c, ns := setup(t)
	ctx := context.Background()
	var nf *NotFoundError
	if _, err := c.Images(ctx, []Target{{Deployment: "nope", Containers: []string{"x"}}}); !errors.As(err, &nf) || nf.Namespace != ns {
		t.Errorf("missing Deployment: %v", err)
	}
	if _, err := c.Images(ctx, []Target{{Deployment: "api", Containers: []string{"nope"}}}); !errors.As(err, &nf) || nf.What != "container nope in Deployment api" {
		t.Errorf("missing container: %v", err)
	}
	if err := c.SecretExists(ctx, "dotenv-key"); !errors.As(err, &nf) || nf.What != "Secret dotenv-key" {
		t.Errorf("missing secret: %v", err)
	}
}
