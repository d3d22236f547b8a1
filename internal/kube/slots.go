package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SlotLabel is the label that names a slot: on a slot Deployment's pod template, and in the
// selector of the Service that sends traffic to the live slot.
const SlotLabel = "stagecoach.dev/slot"

// ServiceSlot returns the slot the Service's selector points at, "" when its selector has no
// SlotLabel (it is not a slot Service, or not yet). A missing Service is a *NotFoundError.
func (c *Cluster) ServiceSlot(ctx context.Context, service string) (string, error) {
	svc, err := c.cs.CoreV1().Services(c.namespace).Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", &NotFoundError{What: "Service " + service, Namespace: c.namespace}
	}
	if err != nil {
		return "", fmt.Errorf("reading Service %s/%s: %w", c.namespace, service, err)
	}
	return svc.Spec.Selector[SlotLabel], nil
}

// SwitchService points the Service's selector at slot (SlotLabel = slot), keeping its other
// selector labels, and records why on the Service with the change-cause, sha and deploy
// annotations. Switching to the slot that is already live changes nothing, not even the
// annotations: they keep describing the switch that made the slot live, and a step retried
// after a crash writes nothing twice. A missing Service is a *NotFoundError; a Service with no
// selector at all is refused, since adding only SlotLabel would make it select the pods of
// every app in that slot.
func (c *Cluster) SwitchService(ctx context.Context, service, slot, cause, sha, deployID string) error {
	if slot == "" {
		return fmt.Errorf("switching Service %s/%s: no slot given", c.namespace, service)
	}
	api := c.cs.CoreV1().Services(c.namespace)
	svc, err := api.Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &NotFoundError{What: "Service " + service, Namespace: c.namespace}
	}
	if err != nil {
		return fmt.Errorf("reading Service %s/%s: %w", c.namespace, service, err)
	}
	if len(svc.Spec.Selector) == 0 {
		return fmt.Errorf("switching Service %s/%s to slot %s: it has no selector to add %s to", c.namespace, service, slot, SlotLabel)
	}
	if svc.Spec.Selector[SlotLabel] == slot {
		return nil
	}
	// A JSON merge patch, not server-side apply: spec.selector is an atomic map for apply, so
	// an applied configuration holding only SlotLabel would replace the whole selector and drop
	// app: api and the rest, making the Service select every pod of the slot. Applying the whole
	// selector read a moment before would instead race with anyone editing the other labels, and
	// take their ownership. A merge patch merges maps key by key on the server: it sets exactly
	// SlotLabel and the three annotations, in one atomic write, with the patch verb the RBAC
	// grants. The field manager records the write as Stagecoach's, and since the selector is
	// atomic Stagecoach then owns all of it: whoever re-applies the Service's manifest with
	// server-side apply gets a conflict on spec.selector instead of silently moving traffic.
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{
			ChangeCauseAnnotation: cause, SHAAnnotation: sha, DeployAnnotation: deployID,
		}},
		"spec": map[string]any{"selector": map[string]string{SlotLabel: slot}},
	})
	if err != nil {
		return fmt.Errorf("encoding the switch of Service %s/%s: %w", c.namespace, service, err)
	}
	_, err = api.Patch(ctx, service, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return &NotFoundError{What: "Service " + service, Namespace: c.namespace}
	}
	if err != nil {
		return fmt.Errorf("switching Service %s/%s to slot %s: %w", c.namespace, service, slot, err)
	}
	return nil
}

// SlotLabelOf returns the SlotLabel of the Deployment's pod template ("" when it has none), so
// preflight can check that a slot Deployment really carries its slot: a Service switched to a
// slot whose pods lack the label would select nothing. A missing Deployment is a *NotFoundError.
func (c *Cluster) SlotLabelOf(ctx context.Context, deployment string) (string, error) {
	d, err := c.deployment(ctx, deployment)
	if err != nil {
		return "", err
	}
	return d.Spec.Template.Labels[SlotLabel], nil
}

// Status judges the Deployment's rollout now, without waiting: what Follow's first look
// computes, with no start time and no timeout, so only the Deployment itself (its counts and its
// progress deadline) decides. It is how a slot is checked healthy before traffic is switched to
// it. A missing Deployment is a *NotFoundError.
func (c *Cluster) Status(ctx context.Context, name string) (health.Status, error) {
	d, err := c.deployment(ctx, name)
	if err != nil {
		return health.Status{}, err
	}
	return health.Deployment(d, time.Time{}, time.Now(), 0), nil
}
