// Package health judges a Kubernetes Deployment's rollout from the Deployment alone: a pure
// function of its spec and status, so it is table-tested from YAML and has no client.
package health

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Phase is how a rollout stands.
type Phase string

// The phases of a rollout.
const (
	Progressing Phase = "progressing"
	Complete    Phase = "complete"
	Failed      Phase = "failed"
)

// Status is a rollout's phase with its pod counts and a sentence for people.
type Status struct {
	Phase     Phase
	Desired   int32
	Updated   int32
	Ready     int32
	Available int32
	Old       int32 // pods not yet replaced
	Message   string
}

// Progress is the line reports show while a rollout runs.
func (s Status) Progress() string {
	return fmt.Sprintf("%d of %d pods updated", s.Updated, s.Desired)
}

// Deployment judges d's rollout. started is when the new template was applied and timeout the
// most it may take (0: only Kubernetes' progress deadline counts).
//
// A rollout is complete when the controller has observed the newest generation and the updated,
// ready and available replicas all equal the desired count with no old replicas left. It has
// failed when the Deployment reports ProgressDeadlineExceeded, or when timeout has passed.
// Conditions are ignored while observedGeneration < generation: right after a change (a rollback
// especially) they still describe the previous template.
func Deployment(d *appsv1.Deployment, started, now time.Time, timeout time.Duration) Status {
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	st := d.Status
	s := Status{
		Desired: desired, Updated: st.UpdatedReplicas, Ready: st.ReadyReplicas, Available: st.AvailableReplicas,
		Old: max(0, st.Replicas-st.UpdatedReplicas),
	}
	timedOut := timeout > 0 && !started.IsZero() && now.Sub(started) > timeout
	if st.ObservedGeneration < d.Generation {
		// The counts describe the previous template: none of the new pods exist yet.
		s.Updated = 0
		s.Phase, s.Message = Progressing, fmt.Sprintf("waiting for the controller to observe generation %d", d.Generation)
		if timedOut {
			s.Phase, s.Message = Failed, fmt.Sprintf("timed out after %s: %s", timeout, s.Message)
		}
		return s
	}
	if c := condition(d, appsv1.DeploymentProgressing); c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
		s.Phase, s.Message = Failed, fmt.Sprintf("progress deadline exceeded: %s (%s)", c.Message, s.Progress())
		return s
	}
	if s.Updated == desired && s.Ready == desired && s.Available == desired && s.Old == 0 {
		s.Phase, s.Message = Complete, fmt.Sprintf("all %d pods updated and available", desired)
		return s
	}
	s.Phase = Progressing
	switch {
	case s.Updated < desired:
		s.Message = s.Progress()
	case s.Old > 0:
		s.Message = fmt.Sprintf("%s; %d old pods terminating", s.Progress(), s.Old)
	default:
		s.Message = fmt.Sprintf("%s; %d of %d available", s.Progress(), s.Available, desired)
	}
	if d.Spec.Paused {
		s.Phase, s.Message = Failed, "the Deployment is paused: "+s.Message
	} else if timedOut {
		s.Phase, s.Message = Failed, fmt.Sprintf("timed out after %s: %s", timeout, s.Message)
	}
	return s
}

func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}
