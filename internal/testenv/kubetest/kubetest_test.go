package kubetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { Main(m) }

// watchDeployment follows a Deployment from resourceVersion rv (so no event after it is missed)
// until done returns true.
func watchDeployment(t *testing.T, cs kubernetes.Interface, ns, name, rv string, limit time.Duration, done func(*appsv1.Deployment) bool) *appsv1.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	w, err := cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv})
	if err != nil {
		t.Fatalf("watching Deployment %s/%s: %v", ns, name, err)
	}
	defer w.Stop()
	var last *appsv1.Deployment
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			t.Fatalf("watching Deployment %s/%s: %v", ns, name, ev.Object)
		}
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			continue
		}
		last = d
		if done(d) {
			return d
		}
	}
	t.Fatalf("Deployment %s/%s: not done within %s; last status %+v", ns, name, limit, last)
	return nil
}

// current is true once the controller has acted on the latest spec: until then the status
// (conditions included) describes the previous one.
func current(d *appsv1.Deployment) bool { return d.Status.ObservedGeneration >= d.Generation }

func complete(d *appsv1.Deployment) bool {
	s := d.Status
	return current(d) && s.UpdatedReplicas == 3 && s.AvailableReplicas == 3 && s.Replicas == 3
}

// createComplete creates the test Deployment and waits for its first rollout.
func createComplete(t *testing.T, cs kubernetes.Interface, ns string) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Create(context.Background(), Deployment("api", "api"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return watchDeployment(t, cs, ns, "api", d.ResourceVersion, time.Minute, complete)
}

func setImage(t *testing.T, cs kubernetes.Interface, d *appsv1.Deployment, image string) *appsv1.Deployment {
	t.Helper()
	d = d.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = image
	d, err := cs.AppsV1().Deployments(d.Namespace).Update(context.Background(), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("setting image %s: %v", image, err)
	}
	return d
}

func TestRollingUpdateGoesPodByPod(t *testing.T) {
	c := Start(t)
	ns, cs := c.Namespace(t), c.Clientset()
	started := time.Now()
	d := createComplete(t, cs, ns)
	t.Logf("first rollout (3 pods) complete in %s", time.Since(started).Round(time.Millisecond))

	started = time.Now()
	d = setImage(t, cs, d, "registry.example/api:v2")
	var updated []int32
	watchDeployment(t, cs, ns, "api", d.ResourceVersion, time.Minute, func(d *appsv1.Deployment) bool {
		if !current(d) {
			return false
		}
		s := d.Status
		// maxUnavailable 0: never fewer than 3 available. (maxSurge 1 bounds the pods the
		// controller asks for, but status.replicas sums the ReplicaSets' own statuses, which
		// lag each other on a busy machine: it can read 5 for a moment. The surge shows in the
		// updated count going up one pod at a time, below.)
		if s.AvailableReplicas < 3 {
			t.Errorf("available %d during the rollout; want at least 3", s.AvailableReplicas)
		}
		if len(updated) == 0 || updated[len(updated)-1] != s.UpdatedReplicas {
			updated = append(updated, s.UpdatedReplicas)
		}
		return complete(d)
	})
	t.Logf("rolled out to v2 in %s; updatedReplicas went %v", time.Since(started).Round(time.Millisecond), updated)
	// The controller may first report the new generation before it has created a pod.
	if len(updated) > 0 && updated[0] == 0 {
		updated = updated[1:]
	}
	if !slices.Equal(updated, []int32{1, 2, 3}) {
		t.Errorf("updatedReplicas went %v, want 1, 2, 3 (one pod at a time)", updated)
	}
	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=api"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image != "registry.example/api:v2" {
			t.Errorf("pod %s still runs %s after the rollout", p.Name, p.Spec.Containers[0].Image)
		}
	}
}

func TestBrokenImageExceedsProgressDeadline(t *testing.T) {
	c := Start(t)
	ns, cs := c.Namespace(t), c.Clientset()
	d := createComplete(t, cs, ns)

	started := time.Now()
	d = setImage(t, cs, d, "registry.example/api:"+BrokenTag)
	d = watchDeployment(t, cs, ns, "api", d.ResourceVersion, time.Minute, func(d *appsv1.Deployment) bool {
		for _, cond := range d.Status.Conditions {
			if current(d) && cond.Type == appsv1.DeploymentProgressing {
				return cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded"
			}
		}
		return false
	})
	t.Logf("Progressing=False/ProgressDeadlineExceeded %s after the update (progressDeadlineSeconds %d)",
		time.Since(started).Round(time.Millisecond), *d.Spec.ProgressDeadlineSeconds)
	// maxUnavailable 0 kept every old pod serving; maxSurge 1 allowed one broken pod.
	if s := d.Status; s.UpdatedReplicas != 1 || s.AvailableReplicas != 3 {
		t.Errorf("updated %d, available %d; want 1 broken pod beside 3 available old ones", s.UpdatedReplicas, s.AvailableReplicas)
	}
	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=api"})
	if err != nil {
		t.Fatal(err)
	}
	broken := 0
	for _, p := range pods.Items {
		if p.Spec.Containers[0].Image != "registry.example/api:"+BrokenTag {
			continue
		}
		broken++
		if podReady(&p) {
			t.Errorf("broken pod %s is Ready", p.Name)
		}
		if st := p.Status.ContainerStatuses; len(st) != 1 || st[0].State.Waiting == nil || st[0].State.Waiting.Reason != "CrashLoopBackOff" {
			t.Errorf("broken pod %s: container statuses %+v, want waiting in CrashLoopBackOff", p.Name, st)
		}
	}
	if broken != 1 {
		t.Errorf("%d pods run the broken image, want 1", broken)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestReadyDelay(t *testing.T) {
	c := Start(t)
	ns, cs := c.Namespace(t), c.Clientset()
	for _, tc := range []struct {
		name, annotation string
		atLeast          time.Duration
	}{
		{name: "default", atLeast: time.Second},
		{name: "annotated", annotation: "3s", atLeast: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name, Annotations: map[string]string{}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:v1"}}},
			}
			if tc.annotation != "" {
				pod.Annotations[ReadyDelayAnnotation] = tc.annotation
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			created := time.Now()
			pod, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + tc.name, ResourceVersion: pod.ResourceVersion})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			for ev := range w.ResultChan() {
				if p, ok := ev.Object.(*corev1.Pod); ok && podReady(p) {
					took := time.Since(created)
					t.Logf("Ready %s after creation", took.Round(time.Millisecond))
					if took < tc.atLeast {
						t.Errorf("Ready after %s, want at least %s", took, tc.atLeast)
					}
					if p.Spec.NodeName == "" || p.Status.PodIP == "" {
						t.Errorf("Ready pod has node %q and IP %q, want both set", p.Spec.NodeName, p.Status.PodIP)
					}
					return
				}
			}
			t.Fatal("pod never became Ready")
		})
	}
}

func TestSecretRoundTrip(t *testing.T) {
	c := Start(t)
	ns, cs := c.Namespace(t), c.Clientset()
	ctx := context.Background()
	want := map[string][]byte{"key": []byte("dotenv-key-for-tests"), "empty": {}}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-env-key"}, Data: want}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Secrets(ns).Get(ctx, "app-env-key", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != len(want) || string(got.Data["key"]) != string(want["key"]) || len(got.Data["empty"]) != 0 {
		t.Errorf("read back keys %v, want %v", keys(got.Data), keys(want))
	}
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "no-such-secret", metav1.GetOptions{}); err == nil {
		t.Error("reading a missing Secret succeeded")
	}
}

// keys lists a Secret's keys only: tests never print secret values.
func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestBinDirMissing(t *testing.T) {
	t.Setenv("STAGECOACH_K8S_BIN", "")
	t.Setenv("STAGECOACH_K8S_CACHE", t.TempDir())
	if dir, err := BinDir(); !errors.Is(err, ErrNoBinaries) {
		t.Errorf("BinDir() in an empty cache = %q, %v; want ErrNoBinaries", dir, err)
	}
	t.Setenv("STAGECOACH_K8S_BIN", t.TempDir())
	if dir, err := BinDir(); !errors.Is(err, ErrNoBinaries) {
		t.Errorf("BinDir() with STAGECOACH_K8S_BIN empty = %q, %v; want ErrNoBinaries", dir, err)
	}
}

func TestNamespaceName(t *testing.T) {
	for _, tc := range []struct {
		test string
		n    int64
		want string
	}{
		{"TestRollout", 1, "testrollout-1"},
		{"TestRollout/broken_image", 7, "testrollout-broken-image-7"},
		{"Test_Ünïcode//x", 12, "test-n-code-x-12"},
		{"///", 3, "kubetest-3"},
		{"TestAVeryLongNameThatGoesOnAndOnPastTheSixtyThreeCharacterLimitOfALabel", 100,
			"testaverylongnamethatgoesonandonpastthesixtythreecharacterl-100"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got := namespaceName(tc.test, tc.n)
			if got != tc.want {
				t.Errorf("namespaceName(%q, %d) = %q, want %q", tc.test, tc.n, got, tc.want)
			}
			if len(got) > 63 {
				t.Errorf("%q is longer than a DNS label may be", got)
			}
		})
	}
}
