// Package kube is the Kubernetes adapter of the pipeline: it reads the images a stage's
// Deployments run, sets new ones with server-side apply (field manager "stagecoach"), and
// follows the rollout with a watch. It judges rollouts with package health and knows nothing of
// deploys, builds or GitHub.
//
// # Slots
//
// A stage may have two slots (say prod and prod-backup), so a deploy can go to the idle one,
// wait until it is healthy, and only then take traffic, and a rollback is a switch back with no
// build. The conventions are fixed:
//
//   - a Deployment configured as "api" on a slot stage is one Deployment per slot, named
//     "<name>-<slot>" (api-prod, api-prod-backup), whose pod template carries the label
//     SlotLabel ("stagecoach.dev/slot") = <slot>;
//   - the Service (the configured name, e.g. "api") selects the live slot by SlotLabel = <slot>
//     among its other selector labels (app: api, ...), which Stagecoach never touches.
//
// ServiceSlot reads which slot is live, SlotLabelOf checks a slot Deployment carries its label,
// Status checks it is healthy, and SwitchService moves the traffic. Only the verbs the ClusterRole
// in deploy/rbac.yaml grants are used: get, list, watch and patch.
package kube

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/health"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager owns the fields Stagecoach sets, so `kubectl get -o yaml --show-managed-fields`
// tells who changed an image.
const FieldManager = "stagecoach"

// Annotations Stagecoach sets on a Deployment or Service it changes.
const (
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	SHAAnnotation         = "stagecoach.dev/sha"
	DeployAnnotation      = "stagecoach.dev/deploy"
)

// Target is one Deployment and the containers in it that run the app's image.
type Target struct {
	Deployment string
	Containers []string
}

// Image is the image one container of one Deployment runs (package deploy's type: the pipeline
// records it in a deploy's checkpoint).
type Image = deploy.Image

// Cluster is one namespace of one cluster.
type Cluster struct {
	cs        kubernetes.Interface
	namespace string
}

// Connect builds a Cluster from a kubeconfig (path "" uses the default loading rules) and
// context, or from the in-cluster service account.
func Connect(kubeconfig, kubeContext, namespace string, inCluster bool) (*Cluster, error) {
	var rc *rest.Config
	var err error
	if inCluster {
		rc, err = rest.InClusterConfig()
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if kubeconfig != "" {
			rules.ExplicitPath = kubeconfig
		}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
			&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config (context %q): %w", kubeContext, err)
	}
	return New(rc, namespace)
}

// New builds a Cluster from a REST config.
func New(rc *rest.Config, namespace string) (*Cluster, error) {
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "stagecoach"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Cluster{cs: cs, namespace: namespace}, nil
}

// NotFoundError names what is missing and where.
type NotFoundError struct{ What, Namespace string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s not found in namespace %s", e.What, e.Namespace)
}

// Images returns the current image of every target container, in target order. A missing
// Deployment or container is a *NotFoundError.
func (c *Cluster) Images(ctx context.Context, targets []Target) ([]Image, error) {
	var out []Image
	for _, t := range targets {
		d, err := c.deployment(ctx, t.Deployment)
		if err != nil {
			return nil, err
		}
		for _, name := range t.Containers {
			i := slices.IndexFunc(d.Spec.Template.Spec.Containers, func(ct corev1.Container) bool { return ct.Name == name })
			if i < 0 {
				return nil, &NotFoundError{What: fmt.Sprintf("container %s in Deployment %s", name, t.Deployment), Namespace: c.namespace}
			}
			out = append(out, Image{Deployment: t.Deployment, Container: name, Image: d.Spec.Template.Spec.Containers[i].Image})
		}
	}
	return out, nil
}

// SecretExists reports whether the named Secret exists (its data is never read).
func (c *Cluster) SecretExists(ctx context.Context, name string) error {
	_, err := c.cs.CoreV1().Secrets(c.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &NotFoundError{What: "Secret " + name, Namespace: c.namespace}
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s/%s: %w", c.namespace, name, err)
	}
	return nil
}

// SetImages applies the images, one Deployment at a time, and records why on each: the
// change-cause, the sha and the deploy. It returns the generation each Deployment reached, which
// the rollout must be observed at.
func (c *Cluster) SetImages(ctx context.Context, images []Image, cause, sha, deployID string) (map[string]int64, error) {
	return c.setImages(ctx, images, "", cause, sha, deployID)
}

// setImages is SetImages; when envSecret is not "", each container also reads its environment
// from that Secret (SetImagesFromSecret).
func (c *Cluster) setImages(ctx context.Context, images []Image, envSecret, cause, sha, deployID string) (map[string]int64, error) {
	byDeployment := map[string][]Image{}
	var order []string
	for _, im := range images {
		if _, ok := byDeployment[im.Deployment]; !ok {
			order = append(order, im.Deployment)
		}
		byDeployment[im.Deployment] = append(byDeployment[im.Deployment], im)
	}
	gens := map[string]int64{}
	for _, name := range order {
		podSpec := corev1ac.PodSpec()
		envFrom, err := c.envFrom(ctx, name, envSecret)
		if err != nil {
			return nil, err
		}
		for _, im := range byDeployment[name] {
			ct := corev1ac.Container().WithName(im.Container).WithImage(im.Image)
			if envSecret != "" {
				ct.WithEnvFrom(envFrom[im.Container]...)
			}
			podSpec.WithContainers(ct)
		}
		ac := appsv1ac.Deployment(name, c.namespace).
			WithAnnotations(map[string]string{ChangeCauseAnnotation: cause, SHAAnnotation: sha, DeployAnnotation: deployID}).
			WithSpec(appsv1ac.DeploymentSpec().WithTemplate(corev1ac.PodTemplateSpec().WithSpec(podSpec)))
		// Force: the image field usually belongs to whoever created the Deployment (kubectl);
		// deploying is exactly taking it over.
		d, err := c.cs.AppsV1().Deployments(c.namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err != nil {
			return nil, fmt.Errorf("setting images on Deployment %s/%s: %w", c.namespace, name, err)
		}
		gens[name] = d.Generation
	}
	return gens, nil
}

// Follow watches one Deployment until its rollout completes or fails, or until ctx ends or
// budget passes, whichever is first; it calls progress (which may be nil) on every change of pod
// counts. It returns the last status seen; a status still Progressing means "look again later".
// A missing Deployment is a *NotFoundError.
func (c *Cluster) Follow(ctx context.Context, name string, started time.Time, timeout, budget time.Duration, progress func(health.Status)) (health.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if progress == nil {
		progress = func(health.Status) {}
	}
	api := c.cs.AppsV1().Deployments(c.namespace)
	d, err := c.deployment(ctx, name)
	if err != nil {
		return health.Status{}, err
	}
	last := health.Deployment(d, started, time.Now(), timeout)
	progress(last)
	if last.Phase != health.Progressing {
		return last, nil
	}
	w, err := api.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: d.ResourceVersion,
	})
	if err != nil {
		return last, fmt.Errorf("watching Deployment %s/%s: %w", c.namespace, name, err)
	}
	defer w.Stop()
	// A timer wakes the loop so a rollout that stops sending events still times out.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, nil // budget spent: the caller looks again later
		case <-tick.C:
			if s := health.Deployment(d, started, time.Now(), timeout); s.Phase == health.Failed {
				progress(s)
				return s, nil
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return last, nil // the server closed the watch: look again later
			}
			switch ev.Type {
			case watch.Deleted:
				return health.Status{Phase: health.Failed, Message: fmt.Sprintf("Deployment %s/%s was deleted", c.namespace, name)}, nil
			case watch.Error:
				return last, fmt.Errorf("watching Deployment %s/%s: %v", c.namespace, name, apierrors.FromObject(ev.Object))
			}
			nd, ok := ev.Object.(*appsv1.Deployment)
			if !ok {
				continue
			}
			d = nd
			s := health.Deployment(d, started, time.Now(), timeout)
			if s != last {
				progress(s)
				last = s
			}
			if s.Phase != health.Progressing {
				return s, nil
			}
		}
	}
}

// deployment reads one Deployment; a missing one is a *NotFoundError, so every method names it
// the same way.
func (c *Cluster) deployment(ctx context.Context, name string) (*appsv1.Deployment, error) {
	d, err := c.cs.AppsV1().Deployments(c.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, &NotFoundError{What: "Deployment " + name, Namespace: c.namespace}
	}
	if err != nil {
		return nil, fmt.Errorf("reading Deployment %s/%s: %w", c.namespace, name, err)
	}
	return d, nil
}
