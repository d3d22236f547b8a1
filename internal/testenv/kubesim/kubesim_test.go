package kubesim

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
)

// cluster is the method set the pipeline needs of a stage's cluster. Both the real adapter and
// the simulation must have it, identically: this fails to compile the moment they drift apart.
type cluster interface {
	Images(ctx context.Context, targets []kube.Target) ([]kube.Image, error)
	SecretExists(ctx context.Context, name string) error
	SetImages(ctx context.Context, images []kube.Image, cause, sha, deployID string) (map[string]int64, error)
	Follow(ctx context.Context, name string, started time.Time, timeout, budget time.Duration, progress func(health.Status)) (health.Status, error)
	ServiceSlot(ctx context.Context, service string) (string, error)
	SwitchService(ctx context.Context, service, slot, cause, sha, deployID string) error
	SlotLabelOf(ctx context.Context, deployment string) (string, error)
	Status(ctx context.Context, name string) (health.Status, error)
}

var (
	_ cluster = (*Cluster)(nil)
	_ cluster = (*kube.Cluster)(nil)
)

var epoch = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// jumpClock is virtual time for single-goroutine tests: waiting for d moves the clock by d at
// once, so a Follow runs through a whole rollout instantly and always the same way.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(max(0, d))
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch, func() {}
}

// seeded is a cluster on a jumpClock with a 3-replica Deployment api (containers api and
// sidecar), a slot pair api-prod / api-prod-backup behind the Service api, and a Secret.
func seeded(o Options) (*Cluster, *jumpClock) {
	clock := &jumpClock{now: epoch}
	o.Clock = clock
	c := New(o)
	c.AddDeployment("api", 3, map[string]string{"api": "registry.example/api:v1", "sidecar": "registry.example/sidecar:v1"}, map[string]string{"app": "api"})
	for _, slot := range []string{"prod", "prod-backup"} {
		c.AddDeployment("api-"+slot, 3, map[string]string{"api": "registry.example/api:v1"}, map[string]string{"app": "api", kube.SlotLabel: slot})
	}
	c.AddService("api", map[string]string{"app": "api", kube.SlotLabel: "prod"})
	c.AddSecret("api-env-key")
	return c, clock
}

func TestString(t *testing.T) {
	if s := New(Options{Namespace: "prod"}).String(); !strings.Contains(s, "simulated cluster (no Kubernetes)") || !strings.Contains(s, "prod") {
		t.Errorf("String() = %q; it must say it is simulated, and which namespace", s)
	}
}

func TestFollow(t *testing.T) {
	const noTimeout = time.Duration(0)
	tests := []struct {
		name      string
		opts      Options
		images    map[string]string // container → image on Deployment api
		timeout   time.Duration
		budget    time.Duration
		wantPhase health.Phase
		want      []string // every status message progress heard, in order; the last is returned
		wantTook  time.Duration
	}{
		{
			name: "pod by pod to complete", images: map[string]string{"api": "registry.example/api:v2"}, budget: time.Minute,
			wantPhase: health.Complete, wantTook: 3 * time.Second,
			want: []string{"1 of 3 pods updated", "2 of 3 pods updated", "3 of 3 pods updated; 1 old pods terminating", "all 3 pods updated and available"},
		},
		{
			name: "slower pods", opts: Options{PodStartDelay: 5 * time.Second}, images: map[string]string{"api": "registry.example/api:v2"}, budget: time.Minute,
			wantPhase: health.Complete, wantTook: 15 * time.Second,
			want: []string{"1 of 3 pods updated", "2 of 3 pods updated", "3 of 3 pods updated; 1 old pods terminating", "all 3 pods updated and available"},
		},
		{
			name: "budget ends first", images: map[string]string{"api": "registry.example/api:v2"}, budget: 1500 * time.Millisecond,
			wantPhase: health.Progressing, wantTook: 1500 * time.Millisecond,
			want: []string{"1 of 3 pods updated", "2 of 3 pods updated"},
		},
		{
			name: "broken image fails at the progress deadline", images: map[string]string{"api": "registry.example/api:broken"}, budget: time.Minute,
			wantPhase: health.Failed, wantTook: 8 * time.Second,
			want: []string{"1 of 3 pods updated", `progress deadline exceeded: ReplicaSet "api-`},
		},
		{
			name: "broken sidecar, shorter deadline", opts: Options{ProgressDeadline: 3 * time.Second},
			images: map[string]string{"sidecar": "registry.example/sidecar:broken@sha256:abcd"}, budget: time.Minute,
			wantPhase: health.Failed, wantTook: 3 * time.Second,
			want: []string{"1 of 3 pods updated", "progress deadline exceeded: "},
		},
		{
			name: "our timeout before the deadline", images: map[string]string{"api": "registry.example/api:v2"}, timeout: 2 * time.Second, budget: time.Minute,
			wantPhase: health.Failed, wantTook: 2*time.Second + time.Nanosecond,
			want: []string{"1 of 3 pods updated", "2 of 3 pods updated", "3 of 3 pods updated; 1 old pods terminating", "timed out after 2s: 3 of 3 pods updated; 1 old pods terminating"},
		},
		{
			name: "same images: no rollout", images: map[string]string{"api": "registry.example/api:v1"}, timeout: noTimeout, budget: time.Minute,
			wantPhase: health.Complete, want: []string{"all 3 pods updated and available"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clock := seeded(tt.opts)
			ctx := context.Background()
			var images []kube.Image
			for name, image := range tt.images {
				images = append(images, kube.Image{Deployment: "api", Container: name, Image: image})
			}
			started := clock.Now()
			if _, err := c.SetImages(ctx, images, "cause", "sha", "1"); err != nil {
				t.Fatal(err)
			}
			var heard []string
			s, err := c.Follow(ctx, "api", started, tt.timeout, tt.budget, func(s health.Status) { heard = append(heard, s.Message) })
			if err != nil {
				t.Fatal(err)
			}
			if s.Phase != tt.wantPhase || len(heard) == 0 || s.Message != heard[len(heard)-1] {
				t.Errorf("Follow = %s %q (heard %q), want %s", s.Phase, s.Message, heard, tt.wantPhase)
			}
			if len(heard) != len(tt.want) {
				t.Fatalf("progress heard %q, want %q", heard, tt.want)
			}
			for i := range heard {
				if !strings.HasPrefix(heard[i], tt.want[i]) {
					t.Errorf("progress[%d] = %q, want %q…", i, heard[i], tt.want[i])
				}
			}
			if took := clock.Now().Sub(started); took != tt.wantTook {
				t.Errorf("took %s of simulated time, want %s", took, tt.wantTook)
			}
		})
	}
}

// A rollback after a broken rollout is immediate, as on a real cluster: the old pods are still
// there and ready, and the broken one is removed first.
func TestRollbackAfterBrokenIsImmediate(t *testing.T) {
	c, clock := seeded(Options{})
	ctx := context.Background()
	before, err := c.Images(ctx, []kube.Target{{Deployment: "api", Containers: []string{"api"}}})
	if err != nil {
		t.Fatal(err)
	}
	gens, err := c.SetImages(ctx, []kube.Image{{Deployment: "api", Container: "api", Image: "registry.example/api:broken"}}, "bad", "bad", "2")
	if err != nil || gens["api"] != 2 {
		t.Fatalf("SetImages = %v, %v; want generation 2", gens, err)
	}
	if s, _ := c.Follow(ctx, "api", clock.Now(), 0, time.Minute, nil); s.Phase != health.Failed {
		t.Fatalf("broken rollout = %+v", s)
	}
	if s, _ := c.Status(ctx, "api"); s.Phase != health.Failed {
		t.Errorf("Status after the deadline = %+v, want failed", s)
	}
	gens, err = c.SetImages(ctx, before, "rollback", "old", "2")
	if err != nil || gens["api"] != 3 {
		t.Fatalf("SetImages = %v, %v; want generation 3", gens, err)
	}
	at := clock.Now()
	if s, err := c.Status(ctx, "api"); err != nil || s.Phase != health.Complete || s.Old != 0 {
		t.Errorf("Status right after the rollback = %+v, %v; want complete", s, err)
	}
	if clock.Now() != at {
		t.Error("the rollback took simulated time")
	}
}

// A Follow waiting on a rollout wakes when the Deployment is changed, as a watch would, without
// the clock moving.
func TestFollowWakesOnChange(t *testing.T) {
	clock := NewFakeClock(epoch)
	c := New(Options{Clock: clock})
	c.AddDeployment("worker", 2, map[string]string{"worker": "registry.example/worker:v1"}, nil)
	ctx := context.Background()
	if _, err := c.SetImages(ctx, []kube.Image{{Deployment: "worker", Container: "worker", Image: "registry.example/worker:broken"}}, "bad", "bad", "3"); err != nil {
		t.Fatal(err)
	}
	done := make(chan health.Status)
	go func() {
		s, err := c.Follow(ctx, "worker", clock.Now(), 0, time.Minute, nil)
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	clock.BlockUntil(1) // Follow waits for the progress deadline
	if _, err := c.SetImages(ctx, []kube.Image{{Deployment: "worker", Container: "worker", Image: "registry.example/worker:v1"}}, "back", "old", "3"); err != nil {
		t.Fatal(err)
	}
	if s := <-done; s.Phase != health.Complete {
		t.Errorf("Follow after the change = %+v, want complete", s)
	}
	if !clock.Now().Equal(epoch) {
		t.Errorf("the clock moved to %s", clock.Now())
	}
	if n := clock.Waiters(); n != 0 {
		t.Errorf("Follow left %d timers behind", n)
	}
}

// A cancelled context ends Follow like a spent budget: the last status, no error.
func TestFollowContextEnds(t *testing.T) {
	clock := NewFakeClock(epoch)
	c := New(Options{Clock: clock})
	c.AddDeployment("worker", 1, map[string]string{"worker": "registry.example/worker:v1"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := c.SetImages(ctx, []kube.Image{{Deployment: "worker", Container: "worker", Image: "registry.example/worker:v2"}}, "c", "s", "4"); err != nil {
		t.Fatal(err)
	}
	done := make(chan health.Status)
	go func() {
		s, err := c.Follow(ctx, "worker", clock.Now(), 0, time.Minute, nil)
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	clock.BlockUntil(1)
	cancel()
	if s := <-done; s.Phase != health.Progressing || s.Updated != 1 {
		t.Errorf("Follow after cancel = %+v, want progressing with 1 updated", s)
	}
	if _, err := c.Status(ctx, "worker"); !errors.Is(err, context.Canceled) {
		t.Errorf("Status with a cancelled context: %v", err)
	}
}

func TestMissingThingsAreNamed(t *testing.T) {
	c, clock := seeded(Options{Namespace: "prod"})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		what string
	}{
		{"Images: Deployment", func() error {
			_, err := c.Images(ctx, []kube.Target{{Deployment: "nope", Containers: []string{"x"}}})
			return err
		}, "Deployment nope"},
		{"Images: container", func() error {
			_, err := c.Images(ctx, []kube.Target{{Deployment: "api", Containers: []string{"api", "nope"}}})
			return err
		}, "container nope in Deployment api"},
		{"SecretExists", func() error { return c.SecretExists(ctx, "dotenv-key") }, "Secret dotenv-key"},
		{"SetImages", func() error {
			_, err := c.SetImages(ctx, []kube.Image{{Deployment: "nope", Container: "x", Image: "y:1"}}, "c", "s", "1")
			return err
		}, "Deployment nope"},
		{"Follow", func() error {
			_, err := c.Follow(ctx, "nope", clock.Now(), time.Minute, time.Minute, nil)
			return err
		}, "Deployment nope"},
		{"Status", func() error { _, err := c.Status(ctx, "nope"); return err }, "Deployment nope"},
		{"SlotLabelOf", func() error { _, err := c.SlotLabelOf(ctx, "nope"); return err }, "Deployment nope"},
		{"ServiceSlot", func() error { _, err := c.ServiceSlot(ctx, "nope"); return err }, "Service nope"},
		{"SwitchService", func() error { return c.SwitchService(ctx, "nope", "prod", "c", "s", "1") }, "Service nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nf *kube.NotFoundError
			if err := tt.call(); !errors.As(err, &nf) || nf.What != tt.what || nf.Namespace != "prod" {
				t.Errorf("error = %v, want a *kube.NotFoundError for %s in prod", err, tt.what)
			}
		})
	}
	if err := c.SecretExists(ctx, "api-env-key"); err != nil {
		t.Errorf("SecretExists of a seeded Secret: %v", err)
	}
}
