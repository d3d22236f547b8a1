package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/pipeline"
	"github.com/stagecoach/stagecoach/internal/testenv/kubesim"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// replicas is how many pods each of the app's Deployments runs: enough to watch a rollout go
// pod by pod, few enough to keep the story short.
const replicas = 2

// initialImage is what the stages run before the sandbox's first deploy.
const initialImage = imageRepository + ":initial"

// cluster is where the stages run: namespaces on a real control plane, or simulated ones.
type cluster struct {
	k    *Kube
	cs   kubernetes.Interface
	ns   map[string]string // stage -> namespace
	sims map[string]*kubesim.Cluster
}

// newCluster makes each stage's namespace with the app's Deployments, the Secret holding its
// .env key and, on prod, the two slots and the Service that switches between them.
func newCluster(ctx context.Context, k *Kube, stages []string) (*cluster, error) {
	c := &cluster{k: k, ns: map[string]string{}, sims: map[string]*kubesim.Cluster{}}
	if k == nil {
		for _, st := range stages {
			sim := kubesim.New(kubesim.Options{Namespace: st})
			sim.AddSecret(envKeySecret)
			for _, d := range objects(st) {
				sim.AddDeployment(d.Name, replicas, map[string]string{"api": initialImage}, d.Spec.Template.Labels)
			}
			if st == "prod" {
				sim.AddService("api", map[string]string{"app": "api", kube.SlotLabel: "prod"})
			}
			c.ns[st], c.sims[st] = st, sim
		}
		return c, nil
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: k.Kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("sandbox: the Kubernetes configuration: %w", err)
	}
	if c.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("sandbox: a Kubernetes client: %w", err)
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	for _, st := range stages {
		ns := fmt.Sprintf("sandbox-%s-%s", st, hex.EncodeToString(suffix[:]))
		if err := c.seed(ctx, st, ns); err != nil {
			return nil, fmt.Errorf("sandbox: preparing namespace %s: %w", ns, err)
		}
		c.ns[st] = ns
	}
	return c, nil
}

// seed makes one stage's namespace on the real control plane.
func (c *cluster) seed(ctx context.Context, stage, ns string) error {
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"stagecoach.dev/sandbox": "true"}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: envKeySecret}, Data: map[string][]byte{"key": []byte("sandbox")}}
	if _, err := c.cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return err
	}
	for _, d := range objects(stage) {
		if _, err := c.cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if stage == "prod" {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "api", kube.SlotLabel: "prod"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
		if _, err := c.cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// objects are a stage's Deployments: api, or on prod one per slot.
func objects(stage string) []*appsv1.Deployment {
	if stage != "prod" {
		return []*appsv1.Deployment{deployment("api", map[string]string{"app": "api"})}
	}
	var out []*appsv1.Deployment
	for _, slot := range slots {
		out = append(out, deployment(config.SlotDeployment("api", slot), map[string]string{"app": "api", kube.SlotLabel: slot}))
	}
	return out
}

func deployment(name string, labels map[string]string) *appsv1.Deployment {
	n, deadline := int32(replicas), int32(8)
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n, ProgressDeadlineSeconds: &deadline,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &zero}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: initialImage}}}},
		},
	}
}

// clusters are the simulated stages for the pipeline; nil on a real control plane, where the
// configuration's kubeconfig says where each stage is.
func (c *cluster) clusters() pipeline.Clusters {
	if c.k != nil {
		return nil
	}
	return simClusters(c.sims)
}

// simClusters gives each stage its simulated namespace.
type simClusters map[string]*kubesim.Cluster

// For implements pipeline.Clusters.
func (s simClusters) For(st *config.Stage) (pipeline.Cluster, error) {
	c, ok := s[st.Name]
	if !ok {
		return nil, fmt.Errorf("the sandbox simulates no stage %q", st.Name)
	}
	return c, nil
}

func (c *cluster) describe() string {
	if c.k == nil {
		return "simulated cluster (no Kubernetes: pods are simulated, rollouts follow Kubernetes' rules)"
	}
	return c.k.Description
}

// liveSlot is the slot prod's Service selects now, read from the cluster itself.
func (c *cluster) liveSlot(ctx context.Context) (string, error) {
	if c.k == nil {
		return c.sims["prod"].ServiceSlot(ctx, "api")
	}
	svc, err := c.cs.CoreV1().Services(c.ns["prod"]).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return svc.Spec.Selector[kube.SlotLabel], nil
}

// close removes the namespaces the sandbox made on a real control plane.
func (c *cluster) close() {
	if c.cs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ns := range c.ns {
		_ = c.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	}
}

// image is the image container runs in stage's Deployment name, read from the cluster itself.
func (c *cluster) image(ctx context.Context, stage, name, container string) (string, error) {
	if c.k == nil {
		ims, err := c.sims[stage].Images(ctx, []kube.Target{{Deployment: name, Containers: []string{container}}})
		if err != nil {
			return "", err
		}
		return ims[0].Image, nil
	}
	d, err := c.cs.AppsV1().Deployments(c.ns[stage]).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, ct := range d.Spec.Template.Spec.Containers {
		if ct.Name == container {
			return ct.Image, nil
		}
	}
	return "", fmt.Errorf("no container %s in Deployment %s", container, name)
}
