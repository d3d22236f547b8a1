package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSetImagesFromSecretKeepsWhatElseTheContainerReads: the image and the stage's Secret go
// in one apply (one rollout); a ConfigMap the container already read is kept, before the Secret.
// Applying it again (a step resumed after a crash) changes nothing: same generation, the Secret
// listed once. The sidecar, whose image Stagecoach does not set, is left alone.
func TestSetImagesFromSecretKeepsWhatElseTheContainerReads(t *testing.T) {
	c, ns := setup(t)
	ctx := context.Background()
	api := c.cs.AppsV1().Deployments(ns)
	d, err := api.Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "FLAG_", ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "flags"}}}}
	if _, err := api.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	image := "210987654321.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	set := func() int64 {
		t.Helper()
		gens, err := c.SetImagesFromSecret(ctx, []Image{{Deployment: "api", Container: "api", Image: image}}, "hello-prod-env", "deploy #8", "c4295bd", "8")
		if err != nil {
			t.Fatal(err)
		}
		return gens["api"]
	}
	first := set()
	if again := set(); again != first {
		t.Errorf("applying the same again moved the generation from %d to %d: a second rollout", first, again)
	}
	got, err := api.Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cts := got.Spec.Template.Spec.Containers
	ef := cts[0].EnvFrom
	if cts[0].Image != image || len(ef) != 2 || ef[0].ConfigMapRef == nil || ef[0].ConfigMapRef.Name != "flags" || ef[0].Prefix != "FLAG_" ||
		ef[1].SecretRef == nil || ef[1].SecretRef.Name != "hello-prod-env" {
		t.Errorf("api runs %s reading %+v, want the image, the ConfigMap kept and then the stage's Secret", cts[0].Image, ef)
	}
	if cts[1].Name != "sidecar" || len(cts[1].EnvFrom) != 0 || cts[1].Image != "registry.example/sidecar:v1" {
		t.Errorf("the sidecar changed: %+v", cts[1])
	}
	if _, err := c.SetImagesFromSecret(ctx, nil, "", "c", "s", "1"); err == nil {
		t.Error("no Secret named, and no error")
	}
}
