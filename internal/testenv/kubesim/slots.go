package kubesim

import (
	"context"
	"fmt"

	"github.com/stagecoach/stagecoach/internal/kube"
)

// ServiceSlot returns the slot the Service's selector points at (its kube.SlotLabel), "" when
// the selector has none. A missing Service is a *kube.NotFoundError.
func (c *Cluster) ServiceSlot(ctx context.Context, service string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("reading Service %s/%s: %w", c.o.Namespace, service, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	svc, ok := c.services[service]
	if !ok {
		return "", c.notFound("Service " + service)
	}
	return svc.selector[kube.SlotLabel], nil
}

// SwitchService points the Service's selector at slot, keeping its other selector labels, and
// annotates it with the change-cause, sha and deploy, with package kube's rules: switching to
// the live slot changes nothing (not even the annotations), an empty slot or a Service with no
// selector is refused, and a missing Service is a *kube.NotFoundError.
func (c *Cluster) SwitchService(ctx context.Context, service, slot, cause, sha, deployID string) error {
	if slot == "" {
		return fmt.Errorf("switching Service %s/%s: no slot given", c.o.Namespace, service)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("switching Service %s/%s to slot %s: %w", c.o.Namespace, service, slot, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	svc, ok := c.services[service]
	if !ok {
		return c.notFound("Service " + service)
	}
	if len(svc.selector) == 0 {
		return fmt.Errorf("switching Service %s/%s to slot %s: it has no selector to add %s to", c.o.Namespace, service, slot, kube.SlotLabel)
	}
	if svc.selector[kube.SlotLabel] == slot {
		return nil
	}
	svc.selector[kube.SlotLabel] = slot
	svc.annotations[kube.ChangeCauseAnnotation] = cause
	svc.annotations[kube.SHAAnnotation] = sha
	svc.annotations[kube.DeployAnnotation] = deployID
	return nil
}

// SlotLabelOf returns the kube.SlotLabel of the Deployment's pod template ("" when it has
// none). A missing Deployment is a *kube.NotFoundError.
func (c *Cluster) SlotLabelOf(ctx context.Context, deployment string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("reading Deployment %s/%s: %w", c.o.Namespace, deployment, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.deployments[deployment]
	if !ok {
		return "", c.notFound("Deployment " + deployment)
	}
	return d.labels[kube.SlotLabel], nil
}
