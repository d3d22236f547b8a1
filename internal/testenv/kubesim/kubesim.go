// Package kubesim is a simulated cluster, for `stagecoach sandbox` when no Kubernetes control
// plane is available: nothing in it is Kubernetes, and it says so (String). It has the method set
// of the pipeline's Cluster and the semantics of package kube (the same errors, annotations, slot
// conventions and health judgement), so the pipeline drives it exactly as it drives a real one.
//
// Its user seeds it with AddDeployment, AddService and AddSecret. A seeded Deployment starts
// fully rolled out. After SetImages changes a Deployment's images, its pods are replaced one by
// one, as a rolling update with maxSurge 1 and maxUnavailable 0 does: each new pod is ready
// Options.PodStartDelay after it starts, then an old pod goes. A pod running an image tagged
// "broken" (BrokenTag) never becomes ready, so that rollout stops, and fails
// Options.ProgressDeadline after its last progress with ProgressDeadlineExceeded, which package
// health reports as Failed, exactly as on a real cluster. Setting the old images back rolls back
// at once, because the old pods are still there and ready.
//
// The slot conventions are package kube's: a slot Deployment's pod template carries
// kube.SlotLabel, and a Service selects the live slot by it. The simulation has no scheduler,
// nodes, ReplicaSets or endpoints; a Service is only its selector and annotations.
//
// Time comes from Options.Clock. The simulation is evaluated lazily when a method looks at it,
// from the clock alone, so it runs no goroutines and a FakeClock makes it deterministic. All
// methods are safe for concurrent use.
package kubesim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
)

// Options tune the simulation. Zero values take the defaults.
type Options struct {
	// Namespace is the namespace errors name, like a real stage's (default "sandbox").
	Namespace string
	// PodStartDelay is how long a new pod takes to become ready (default 1 s, as in kubetest).
	PodStartDelay time.Duration
	// ProgressDeadline is how long a rollout may go without progress before it fails (default
	// 8 s, the progressDeadlineSeconds of kubetest's Deployments).
	ProgressDeadline time.Duration
	// Clock is the simulation's time (default: the real clock).
	Clock Clock
}

// Cluster is one simulated namespace.
type Cluster struct {
	o Options

	mu          sync.Mutex
	deployments map[string]*deployment
	services    map[string]*service
	secrets     map[string]bool
	// changed is closed, and replaced, whenever a Deployment is changed from outside (seeded or
	// given new images), so a waiting Follow looks again at once, as a watch event would wake it.
	changed chan struct{}
}

// service is a simulated Service: only what slots need.
type service struct {
	selector    map[string]string
	annotations map[string]string
}

// New returns an empty simulated cluster.
func New(o Options) *Cluster {
	if o.Namespace == "" {
		o.Namespace = "sandbox"
	}
	if o.PodStartDelay <= 0 {
		o.PodStartDelay = time.Second
	}
	if o.ProgressDeadline <= 0 {
		o.ProgressDeadline = 8 * time.Second
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return &Cluster{o: o, deployments: map[string]*deployment{}, services: map[string]*service{},
		secrets: map[string]bool{}, changed: make(chan struct{})}
}

// String says what this is, for logs and the sandbox's banner: a simulation, not Kubernetes.
func (c *Cluster) String() string {
	return fmt.Sprintf("simulated cluster (no Kubernetes), namespace %s", c.o.Namespace)
}

// AddDeployment seeds (or replaces) a Deployment with replicas pods (a negative count is 0),
// fully rolled out and ready. containers maps each container's name to its image; labels are
// the pod template's labels (give a slot Deployment its kube.SlotLabel here). The maps are copied.
func (c *Cluster) AddDeployment(name string, replicas int, containers map[string]string, labels map[string]string) {
	d := &deployment{name: name, replicas: int32(max(0, replicas)), labels: maps.Clone(labels),
		annotations: map[string]string{}, generation: 1}
	// Sorted, so the template (and the ReplicaSet name in messages) is the same on every run.
	for _, n := range slices.Sorted(maps.Keys(containers)) {
		d.containers = append(d.containers, container{name: n, image: containers[n]})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d.at = c.o.Clock.Now()
	d.progressed = d.at
	for range d.replicas {
		d.pods = append(d.pods, pod{template: d.templateKey(), readyAt: d.at})
	}
	c.deployments[name] = d
	c.notifyLocked()
}

// AddService seeds (or replaces) a Service with the selector (copied).
func (c *Cluster) AddService(name string, selector map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.services[name] = &service{selector: maps.Clone(selector), annotations: map[string]string{}}
}

// AddSecret seeds a Secret (it has no data: SecretExists never reads any).
func (c *Cluster) AddSecret(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets[name] = true
}

func (c *Cluster) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Cluster) notFound(what string) error {
	return &kube.NotFoundError{What: what, Namespace: c.o.Namespace}
}

// deploymentLocked returns the Deployment advanced to now; a missing one is a
// *kube.NotFoundError.
func (c *Cluster) deploymentLocked(name string) (*deployment, error) {
	d, ok := c.deployments[name]
	if !ok {
		return nil, c.notFound("Deployment " + name)
	}
	d.advance(c.o.Clock.Now(), c.o.PodStartDelay)
	return d, nil
}

// Images returns the current image of every target container, in target order. A missing
// Deployment or container is a *kube.NotFoundError.
func (c *Cluster) Images(ctx context.Context, targets []kube.Target) ([]kube.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading Deployments in %s: %w", c.o.Namespace, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []kube.Image
	for _, t := range targets {
		d, ok := c.deployments[t.Deployment]
		if !ok {
			return nil, c.notFound("Deployment " + t.Deployment)
		}
		for _, name := range t.Containers {
			i := slices.IndexFunc(d.containers, func(ct container) bool { return ct.name == name })
			if i < 0 {
				return nil, c.notFound(fmt.Sprintf("container %s in Deployment %s", name, t.Deployment))
			}
			out = append(out, kube.Image{Deployment: t.Deployment, Container: name, Image: d.containers[i].image})
		}
	}
	return out, nil
}

// SecretExists reports whether the named Secret was seeded; a missing one is a
// *kube.NotFoundError.
func (c *Cluster) SecretExists(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reading Secret %s/%s: %w", c.o.Namespace, name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.secrets[name] {
		return c.notFound("Secret " + name)
	}
	return nil
}

// SetImages sets the images, one Deployment at a time in the order first named, and records
// why on each (the change-cause, sha and deploy annotations), as package kube's server-side
// apply does: a container not in the template is added, and images equal to the current ones
// start no rollout and keep the generation. Otherwise the generation is incremented and a
// rollout starts now. It returns the generation each Deployment reached. A missing Deployment
// stops it there with a *kube.NotFoundError (the Deployments before it keep their new images,
// as with the real apply); kube's apply would be refused, since it may not create Deployments.
func (c *Cluster) SetImages(ctx context.Context, images []kube.Image, cause, sha, deployID string) (map[string]int64, error) {
	byDeployment := map[string][]kube.Image{}
	var order []string
	for _, im := range images {
		if _, ok := byDeployment[im.Deployment]; !ok {
			order = append(order, im.Deployment)
		}
		byDeployment[im.Deployment] = append(byDeployment[im.Deployment], im)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Even when a later Deployment fails, the earlier ones changed: wake their Follows.
	defer c.notifyLocked()
	gens := map[string]int64{}
	for _, name := range order {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("setting images on Deployment %s/%s: %w", c.o.Namespace, name, err)
		}
		d, err := c.deploymentLocked(name)
		if err != nil {
			return nil, fmt.Errorf("setting images on Deployment %s/%s: %w", c.o.Namespace, name, err)
		}
		for _, im := range byDeployment[name] {
			if im.Image == "" { // the API server's validation refuses it too
				return nil, fmt.Errorf("setting images on Deployment %s/%s: container %s: empty image", c.o.Namespace, name, im.Container)
			}
		}
		before := d.templateKey()
		for _, im := range byDeployment[name] {
			if i := slices.IndexFunc(d.containers, func(ct container) bool { return ct.name == im.Container }); i >= 0 {
				d.containers[i].image = im.Image
			} else {
				d.containers = append(d.containers, container{name: im.Container, image: im.Image})
			}
		}
		d.annotations[kube.ChangeCauseAnnotation] = cause
		d.annotations[kube.SHAAnnotation] = sha
		d.annotations[kube.DeployAnnotation] = deployID
		if d.templateKey() != before {
			d.generation++
			d.progressed = d.at
			d.reconcile(c.o.PodStartDelay)
		}
		gens[name] = d.generation
	}
	return gens, nil
}

// Status judges the Deployment's rollout now, without waiting, with no start time and no
// timeout, as package kube's Status does. A missing Deployment is a *kube.NotFoundError.
func (c *Cluster) Status(ctx context.Context, name string) (health.Status, error) {
	s, _, _, err := c.look(ctx, name, time.Time{}, 0)
	return s, err
}

// look judges the Deployment now and returns, for Follow, when it next changes by itself and
// the channel that says it was changed from outside.
func (c *Cluster) look(ctx context.Context, name string, started time.Time, timeout time.Duration) (health.Status, time.Time, <-chan struct{}, error) {
	if err := ctx.Err(); err != nil {
		return health.Status{}, time.Time{}, nil, fmt.Errorf("reading Deployment %s/%s: %w", c.o.Namespace, name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.deploymentLocked(name)
	if err != nil {
		return health.Status{}, time.Time{}, nil, err
	}
	s := health.Deployment(d.object(c.o.Namespace, c.o.ProgressDeadline), started, d.at, timeout)
	return s, d.nextChange(c.o.ProgressDeadline), c.changed, nil
}

// Follow follows one Deployment's rollout until it completes or fails, or until ctx ends or
// budget passes on the simulation's clock, whichever is first, as package kube's Follow does:
// it calls progress (which may be nil) with the first status and on every change of it, and
// returns the last status seen; one still Progressing means "look again later". Failure is
// health's judgement: the progress deadline, or timeout after started. A missing Deployment is
// a *kube.NotFoundError.
func (c *Cluster) Follow(ctx context.Context, name string, started time.Time, timeout, budget time.Duration, progress func(health.Status)) (health.Status, error) {
	if progress == nil {
		progress = func(health.Status) {}
	}
	end := c.o.Clock.Now().Add(budget)
	last, next, changed, err := c.look(ctx, name, started, timeout)
	if err != nil {
		return health.Status{}, err
	}
	progress(last)
	for last.Phase == health.Progressing {
		now := c.o.Clock.Now()
		if !now.Before(end) {
			return last, nil // budget spent: the caller looks again later
		}
		// Wake exactly when something can change: a pod's readiness, the progress deadline,
		// the timeout (health fails only once it is strictly past), or the end of the budget.
		wake := end
		if !next.IsZero() && next.Before(wake) {
			wake = next
		}
		if timeout > 0 && !started.IsZero() {
			if t := started.Add(timeout + time.Nanosecond); t.After(now) && t.Before(wake) {
				wake = t
			}
		}
		timer, stop := c.o.Clock.After(wake.Sub(now))
		select {
		case <-ctx.Done():
			stop()
			return last, nil // as kube: the caller looks again later
		case <-changed:
		case <-timer:
		}
		stop()
		s, nx, ch, err := c.look(ctx, name, started, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return last, nil
			}
			return last, err
		}
		next, changed = nx, ch
		if s != last {
			progress(s)
			last = s
		}
	}
	return last, nil
}
