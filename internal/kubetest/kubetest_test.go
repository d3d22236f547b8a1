package kubetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { Main(m) }

// waitFor watches a Deployment until cond holds, returning every distinct updatedReplicas seen.
func waitFor(t *testing.T, cs kubernetes.Interface, ns, name string, limit time.Duration, cond func(*appsv1.Deployment) bool) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	w, err := cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var seen []int32
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			t.Fatalf("watch error: %v", ev.Object)
		}
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			continue
		}
		if n := d.Status.UpdatedReplicas; len(seen) == 0 || seen[len(seen)-1] != n {
			seen = append(seen, n)
		}
		if cond(d) {
			return seen
		}
	}
	t.Fatalf("Deployment %s/%s: condition not reached within %s (updated replicas seen %v)", ns, name, limit, seen)
	return nil
}

func complete(d *appsv1.Deployment) bool {
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == 3 && s.AvailableReplicas == 3 && s.Replicas == 3
}

func TestRollingUpdatePodByPod(t *testing.T) {
	c := Start(t)
	ns := c.Namespace(t)
	cs := c.Clientset()
	ctx := context.Background()
	started := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, Deployment("api", "api"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, cs, ns, "api", 60*time.Second, complete)
	t.Logf("3 pods up in %s", time.Since(started).Round(time.Millisecond))
	d, _ := cs.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
	d.Spec.Template.Spec.Containers[0].Image = "registry.example/api:v2"
	started = time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := waitFor(t, cs, ns, "api", 60*time.Second, func(d *appsv1.Deployment) bool {
		return d.Generation == 2 && complete(d)
	})
	t.Logf("rolled out in %s; updated replicas went %v", time.Since(started).Round(time.Millisecond), seen)
	if fmt.Sprint(seen[len(seen)-3:]) != "[1 2 3]" {
		t.Errorf("updated replicas went %v, want ...1, 2, 3 (pod by pod)", seen)
	}
}

func TestBrokenImageExceedsProgressDeadline(t *testing.T) {
	c := Start(t)
	ns := c.Namespace(t)
	cs := c.Clientset()
	ctx := context.Background()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, Deployment("api", "api"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, cs, ns, "api", 60*time.Second, complete)
	d, _ := cs.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
	d.Spec.Template.Spec.Containers[0].Image = "registry.example/api:broken"
	if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	waitFor(t, cs, ns, "api", 90*time.Second, func(d *appsv1.Deployment) bool {
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" && d.Status.ObservedGeneration >= d.Generation {
				return true
			}
		}
		return false
	})
	t.Logf("ProgressDeadlineExceeded after %s", time.Since(started).Round(time.Millisecond))
	pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	crashing := 0
	for _, p := range pods.Items {
		for _, st := range p.Status.ContainerStatuses {
			if st.State.Waiting != nil && st.State.Waiting.Reason == "CrashLoopBackOff" {
				crashing++
			}
		}
	}
	if crashing == 0 {
		t.Error("no pod in CrashLoopBackOff")
	}
}

func TestSecrets(t *testing.T) {
	c := Start(t)
	ns := c.Namespace(t)
	cs := c.Clientset()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dotenv-key"}, Data: map[string][]byte{"key": []byte("k")}}
	if _, err := cs.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Secrets(ns).Get(context.Background(), "dotenv-key", metav1.GetOptions{})
	if err != nil || string(got.Data["key"]) != "k" {
		t.Errorf("secret = %+v, %v", got, err)
	}
}
