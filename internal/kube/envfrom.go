package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// SetImagesFromSecret is SetImages for an image that carries no stage's configuration (an app
// with artifact: promote): in the same change, so in one rollout, each container also reads its
// environment from the stage's Secret envSecret (envFrom secretRef). A container's envFrom is
// one list that an apply replaces whole, so what else it reads (a ConfigMap, another Secret) is
// read from the Deployment and kept, in its order; the Secret is added once, at the end.
func (c *Cluster) SetImagesFromSecret(ctx context.Context, images []Image, envSecret, cause, sha, deployID string) (map[string]int64, error) {
	if envSecret == "" {
		return nil, fmt.Errorf("setting images with their configuration: no Secret named")
	}
	return c.setImages(ctx, images, envSecret, cause, sha, deployID)
}

// envFrom returns, per container of the Deployment, the envFrom list to apply: its own, with
// the Secret added unless it is there. Nothing is read when envSecret is "".
func (c *Cluster) envFrom(ctx context.Context, deployment, envSecret string) (map[string][]*corev1ac.EnvFromSourceApplyConfiguration, error) {
	if envSecret == "" {
		return nil, nil
	}
	d, err := c.deployment(ctx, deployment)
	if err != nil {
		return nil, err
	}
	out := map[string][]*corev1ac.EnvFromSourceApplyConfiguration{}
	for _, ct := range d.Spec.Template.Spec.Containers {
		var list []*corev1ac.EnvFromSourceApplyConfiguration
		has := false
		for _, ef := range ct.EnvFrom {
			list = append(list, envFromSource(ef))
			if ef.SecretRef != nil && ef.SecretRef.Name == envSecret {
				has = true
			}
		}
		if !has {
			list = append(list, corev1ac.EnvFromSource().WithSecretRef(corev1ac.SecretEnvSource().WithName(envSecret)))
		}
		out[ct.Name] = list
	}
	return out, nil
}

// envFromSource is an envFrom entry as an apply configuration, unchanged.
func envFromSource(ef corev1.EnvFromSource) *corev1ac.EnvFromSourceApplyConfiguration {
	ac := corev1ac.EnvFromSource()
	if ef.Prefix != "" {
		ac.WithPrefix(ef.Prefix)
	}
	if r := ef.SecretRef; r != nil {
		s := corev1ac.SecretEnvSource().WithName(r.Name)
		if r.Optional != nil {
			s.WithOptional(*r.Optional)
		}
		ac.WithSecretRef(s)
	}
	if r := ef.ConfigMapRef; r != nil {
		m := corev1ac.ConfigMapEnvSource().WithName(r.Name)
		if r.Optional != nil {
			m.WithOptional(*r.Optional)
		}
		ac.WithConfigMapRef(m)
	}
	return ac
}
