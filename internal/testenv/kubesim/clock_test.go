package kubesim

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
)

func TestFakeClock(t *testing.T) {
	c := NewFakeClock(epoch)
	now, _ := c.After(0)
	if got := <-now; !got.Equal(epoch) {
		t.Errorf("After(0) fired at %s", got)
	}
	second, _ := c.After(time.Second)
	cancelled, stop := c.After(time.Second)
	stop()
	if n := c.Waiters(); n != 1 {
		t.Fatalf("%d waiters, want 1 (one was stopped)", n)
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-second:
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Millisecond)
	if got := <-second; !got.Equal(epoch.Add(time.Second)) {
		t.Errorf("fired at %s", got)
	}
	select {
	case <-cancelled:
		t.Error("a stopped wait fired")
	default:
	}
	if n := c.Waiters(); n != 0 {
		t.Errorf("%d waiters left", n)
	}
}

// Everything at once, for the race detector: rollouts followed while images change, Services
// switch and slots are read. Only the outcomes are checked, never timing.
func TestConcurrentUse(t *testing.T) {
	clock := NewFakeClock(epoch)
	c := New(Options{Clock: clock})
	names := []string{"broken", "a", "b", "c"}
	for _, name := range names {
		c.AddDeployment(name, 3, map[string]string{"app": "registry.example/" + name + ":v1"}, map[string]string{kube.SlotLabel: name})
	}
	c.AddService("api", map[string]string{"app": "api", kube.SlotLabel: "a"})
	ctx := context.Background()
	phases := make([]health.Phase, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			image := "registry.example/" + name + ":v2"
			if name == "broken" {
				image = "registry.example/" + name + ":" + BrokenTag
			}
			started := clock.Now()
			if _, err := c.SetImages(ctx, []kube.Image{{Deployment: name, Container: "app", Image: image}}, "c", "s", "1"); err != nil {
				t.Error(err)
				return
			}
			for {
				s, err := c.Follow(ctx, name, started, 0, 2*time.Second, func(health.Status) {})
				if err != nil {
					t.Error(err)
					return
				}
				if s.Phase != health.Progressing {
					phases[i] = s.Phase
					return
				}
			}
		})
	}
	wg.Go(func() {
		for j := range 200 {
			slot := names[1+j%3]
			if err := c.SwitchService(ctx, "api", slot, "c", "s", "1"); err != nil {
				t.Error(err)
			}
			if _, err := c.ServiceSlot(ctx, "api"); err != nil {
				t.Error(err)
			}
			if _, err := c.SlotLabelOf(ctx, slot); err != nil {
				t.Error(err)
			}
			if _, err := c.Status(ctx, slot); err != nil {
				t.Error(err)
			}
			if _, err := c.Images(ctx, []kube.Target{{Deployment: slot, Containers: []string{"app"}}}); err != nil {
				t.Error(err)
			}
		}
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			want := []health.Phase{health.Failed, health.Complete, health.Complete, health.Complete}
			for i := range names {
				if phases[i] != want[i] {
					t.Errorf("%s ended %s, want %s", names[i], phases[i], want[i])
				}
			}
			return
		default:
			clock.Advance(100 * time.Millisecond)
			runtime.Gosched()
		}
	}
}
