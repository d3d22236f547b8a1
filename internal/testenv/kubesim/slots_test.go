package kubesim

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/kube"
)

func TestSwitchService(t *testing.T) {
	c, _ := seeded(Options{})
	ctx := context.Background()
	if slot, err := c.ServiceSlot(ctx, "api"); err != nil || slot != "prod" {
		t.Fatalf("ServiceSlot = %q, %v; want prod", slot, err)
	}
	if err := c.SwitchService(ctx, "api", "prod-backup", "stagecoach: deploy #9 of c4295bd to prod", "c4295bd", "9"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app": "api", kube.SlotLabel: "prod-backup"}
	wantAnn := map[string]string{kube.ChangeCauseAnnotation: "stagecoach: deploy #9 of c4295bd to prod", kube.SHAAnnotation: "c4295bd", kube.DeployAnnotation: "9"}
	check := func(when string) {
		t.Helper()
		svc := c.services["api"]
		if !maps.Equal(svc.selector, want) || !maps.Equal(svc.annotations, wantAnn) {
			t.Errorf("%s: selector %v, annotations %v; want %v, %v", when, svc.selector, svc.annotations, want, wantAnn)
		}
	}
	check("after the switch")
	if slot, _ := c.ServiceSlot(ctx, "api"); slot != "prod-backup" {
		t.Errorf("ServiceSlot after the switch = %q", slot)
	}
	// To the live slot again: nothing changes, not even the annotations.
	if err := c.SwitchService(ctx, "api", "prod-backup", "another", "other", "10"); err != nil {
		t.Fatal(err)
	}
	check("after switching to the live slot")
}

func TestSwitchServiceRefusals(t *testing.T) {
	c, _ := seeded(Options{})
	c.AddService("external", nil)
	c.AddService("worker", map[string]string{"app": "worker"})
	ctx := context.Background()
	tests := []struct {
		name, service, slot, wantErr string
	}{
		{"empty slot", "api", "", "no slot given"},
		{"no selector", "external", "prod", "no selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.SwitchService(ctx, tt.service, tt.slot, "c", "s", "1"); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if len(c.services["external"].selector) != 0 {
		t.Errorf("a refused switch wrote a selector: %v", c.services["external"].selector)
	}
	if slot, err := c.ServiceSlot(ctx, "worker"); err != nil || slot != "" {
		t.Errorf("ServiceSlot of a Service without the slot label = %q, %v", slot, err)
	}
	// The first switch of a Service that selects both slots narrows it to one.
	if err := c.SwitchService(ctx, "worker", "prod", "c", "s", "1"); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"app": "worker", kube.SlotLabel: "prod"}; !maps.Equal(c.services["worker"].selector, want) {
		t.Errorf("selector = %v, want %v", c.services["worker"].selector, want)
	}
}

func TestSlotLabelOf(t *testing.T) {
	c, _ := seeded(Options{})
	for _, tt := range []struct{ deployment, want string }{
		{"api-prod", "prod"}, {"api-prod-backup", "prod-backup"}, {"api", ""},
	} {
		t.Run(tt.deployment, func(t *testing.T) {
			if got, err := c.SlotLabelOf(context.Background(), tt.deployment); err != nil || got != tt.want {
				t.Errorf("SlotLabelOf = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// The whole slot deploy as the pipeline does it: images to the idle slot, wait until healthy,
// then switch, and switch back for a rollback.
func TestSlotDeploy(t *testing.T) {
	c, clock := seeded(Options{})
	ctx := context.Background()
	live, _ := c.ServiceSlot(ctx, "api")
	idle := map[string]string{"prod": "prod-backup", "prod-backup": "prod"}[live]
	if got, _ := c.SlotLabelOf(ctx, "api-"+idle); got != idle {
		t.Fatalf("slot label of api-%s = %q", idle, got)
	}
	started := clock.Now()
	if _, err := c.SetImages(ctx, []kube.Image{{Deployment: "api-" + idle, Container: "api", Image: "registry.example/api:v2"}}, "deploy", "abc", "5"); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Status(ctx, "api-"+idle); s.Phase != health.Progressing {
		t.Errorf("idle slot right after the new image: %+v", s)
	}
	if s, _ := c.Follow(ctx, "api-"+idle, started, 0, time.Minute, nil); s.Phase != health.Complete {
		t.Fatalf("idle slot rollout: %+v", s)
	}
	if s, _ := c.Status(ctx, "api-"+live); s.Phase != health.Complete {
		t.Errorf("the live slot was disturbed: %+v", s)
	}
	if err := c.SwitchService(ctx, "api", idle, "deploy", "abc", "5"); err != nil {
		t.Fatal(err)
	}
	if err := c.SwitchService(ctx, "api", live, "rollback", "abc", "6"); err != nil {
		t.Fatal(err)
	}
	if slot, _ := c.ServiceSlot(ctx, "api"); slot != live {
		t.Errorf("after the rollback the Service selects %q, want %q", slot, live)
	}
}
