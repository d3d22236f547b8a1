package kubesim

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BrokenTag is the image tag whose pods never become ready, as in the test control plane
// (package kubetest): a rollout to it fails at the progress deadline. So does a tag that starts
// with it and a dash ("broken-prod-7": the pipeline's tag for a build of a commit named "broken").
const BrokenTag = "broken"

// container is one container of a pod template.
type container struct{ name, image string }

// pod is one simulated pod: the template it was made from and when it becomes ready.
type pod struct {
	template string    // templateKey of the pod's template
	readyAt  time.Time // zero: never (a broken image)
}

func (p pod) ready(at time.Time) bool { return !p.readyAt.IsZero() && !p.readyAt.After(at) }

// deployment is one simulated Deployment and its controller. The simulation is evaluated
// lazily: advance replays every event (a pod becoming ready) up to a given time, so nothing runs
// in the background and a FakeClock fully decides the outcome.
//
// The controller rolls like kubetest's Deployments, maxSurge 1 and maxUnavailable 0: one new pod
// is started; when it is ready an old pod is removed (at once: there is no grace period) and the
// next new pod started, until every pod runs the new template. Old pods that are not ready go
// first, which is what makes a rollback after a broken rollout immediate, as in Kubernetes where
// the old ReplicaSet still has its ready pods.
type deployment struct {
	name        string
	replicas    int32
	containers  []container // in the order they were added
	labels      map[string]string
	annotations map[string]string
	generation  int64
	pods        []pod
	at          time.Time // the simulation has run up to here
	progressed  time.Time // the last progress of the current rollout
}

// templateKey identifies a pod template by its containers' images: pods of the current
// template are "updated", the others old.
func (d *deployment) templateKey() string {
	var b strings.Builder
	for _, c := range d.containers {
		fmt.Fprintf(&b, "%s=%s\n", c.name, c.image)
	}
	return b.String()
}

// replicaSet is the name Kubernetes would give the current template's ReplicaSet, for messages.
func (d *deployment) replicaSet() string {
	h := fnv.New32a()
	h.Write([]byte(d.templateKey()))
	return fmt.Sprintf("%s-%08x", d.name, h.Sum32())
}

// broken reports whether a pod of the current template would never become ready: one of its
// containers runs an image tagged BrokenTag.
func (d *deployment) broken() bool {
	return slices.ContainsFunc(d.containers, func(c container) bool {
		tag := imageTag(c.image)
		return tag == BrokenTag || strings.HasPrefix(tag, BrokenTag+"-")
	})
}

// imageTag is the tag of an image reference ("" for none): "repo:5000/app:v1@sha256:…" → "v1".
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	name := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(name, ":"); i >= 0 {
		return name[i+1:]
	}
	return ""
}

// advance runs the controller up to now (never backwards).
func (d *deployment) advance(now time.Time, podDelay time.Duration) {
	for {
		next := d.nextReady()
		if next.IsZero() || next.After(now) {
			break
		}
		d.at, d.progressed = next, next // a new pod became ready: progress
		d.reconcile(podDelay)
	}
	if now.After(d.at) {
		d.at = now
	}
}

// nextReady is the earliest time after d.at a pod becomes ready (zero: none will).
func (d *deployment) nextReady() time.Time {
	var next time.Time
	for _, p := range d.pods {
		if p.readyAt.After(d.at) && (next.IsZero() || p.readyAt.Before(next)) {
			next = p.readyAt
		}
	}
	return next
}

// reconcile makes the controller's moves at d.at until none is left.
func (d *deployment) reconcile(podDelay time.Duration) {
	current := d.templateKey()
	for {
		var updated, ready int32
		unreadyOld, readyOld := -1, -1
		for i, p := range d.pods {
			isNew, isReady := p.template == current, p.ready(d.at)
			if isNew {
				updated++
			}
			if isReady {
				ready++
			}
			switch {
			case !isNew && !isReady && unreadyOld < 0:
				unreadyOld = i
			case !isNew && isReady && readyOld < 0:
				readyOld = i
			}
		}
		switch {
		case unreadyOld >= 0: // costs no availability
			d.pods = slices.Delete(d.pods, unreadyOld, unreadyOld+1)
		case readyOld >= 0 && ready > d.replicas: // maxUnavailable 0: only what is surplus
			d.pods = slices.Delete(d.pods, readyOld, readyOld+1)
		case updated < d.replicas && int32(len(d.pods)) < d.replicas+1: // maxSurge 1
			p := pod{template: current}
			if !d.broken() {
				p.readyAt = d.at.Add(podDelay)
			}
			d.pods = append(d.pods, p)
		default:
			return
		}
		d.progressed = d.at
	}
}

// complete reports whether every pod runs the current template and is ready.
func (d *deployment) complete() bool {
	current := d.templateKey()
	return int32(len(d.pods)) == d.replicas && !slices.ContainsFunc(d.pods, func(p pod) bool {
		return p.template != current || !p.ready(d.at)
	})
}

// nextChange is the earliest time after d.at at which the Deployment's status changes by
// itself (zero: never, until someone changes it): a pod becoming ready, or the progress
// deadline passing.
func (d *deployment) nextChange(deadline time.Duration) time.Time {
	next := d.nextReady()
	if dl := d.progressed.Add(deadline); !d.complete() && dl.After(d.at) && (next.IsZero() || dl.Before(next)) {
		next = dl
	}
	return next
}

// object is the Deployment as the API server would return it at d.at, with the status the
// controller would have written, so package health judges it exactly as it judges a real one.
func (d *deployment) object(namespace string, deadline time.Duration) *appsv1.Deployment {
	current := d.templateKey()
	var updated, ready int32
	for _, p := range d.pods {
		if p.template == current {
			updated++
		}
		if p.ready(d.at) {
			ready++
		}
	}
	replicas, deadlineSeconds := d.replicas, int32(deadline/time.Second)
	spec := corev1.PodSpec{}
	for _, c := range d.containers {
		spec.Containers = append(spec.Containers, corev1.Container{Name: c.name, Image: c.image})
	}
	obj := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: d.name, Namespace: namespace, Generation: d.generation, Annotations: maps.Clone(d.annotations)},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, ProgressDeadlineSeconds: &deadlineSeconds,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(d.labels)}, Spec: spec},
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: d.generation, // the simulated controller observes at once
			Replicas:           int32(len(d.pods)), UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: ready, UnavailableReplicas: max(0, replicas-ready),
		},
	}
	available := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
		Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."}
	if ready < replicas {
		available.Status, available.Reason, available.Message = corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	}
	progressing := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
		Reason: "ReplicaSetUpdated", Message: fmt.Sprintf("ReplicaSet %q is progressing.", d.replicaSet())}
	switch {
	case d.complete():
		progressing.Reason, progressing.Message = "NewReplicaSetAvailable", fmt.Sprintf("ReplicaSet %q has successfully progressed.", d.replicaSet())
	case !d.at.Before(d.progressed.Add(deadline)):
		// Kubernetes' own words, which health reports as a failure.
		progressing.Status, progressing.Reason = corev1.ConditionFalse, "ProgressDeadlineExceeded"
		progressing.Message = fmt.Sprintf("ReplicaSet %q has timed out progressing.", d.replicaSet())
	}
	obj.Status.Conditions = []appsv1.DeploymentCondition{available, progressing}
	return obj
}
