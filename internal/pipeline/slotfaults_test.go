package pipeline

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const sha2 = "2222222222222222222222222222222222222222"

// slotDeploymentOf is slotDeployment for any Deployment name: <name>-<slot>, its pods labelled
// component: name and with their slot.
func slotDeploymentOf(name, slot string) *appsv1.Deployment {
	d := kubetest.Deployment(config.SlotDeployment(name, slot), name)
	labels := maps.Clone(d.Spec.Template.Labels)
	labels["component"], labels[kube.SlotLabel] = name, slot
	d.Spec.Template.Labels = labels
	return d
}

// twoServices makes prod's app run two Deployments, api and worker, each with its Service, and
// creates both slots of each, the Services selecting live.
func (w *world) twoServices(live string) {
	w.t.Helper()
	as := w.cfg.Apps[0].Stages["prod"]
	as.Deployments = []config.Deployment{{Name: "api", Containers: []string{"api"}, Service: "api"},
		{Name: "worker", Containers: []string{"worker"}, Service: "worker"}}
	w.cfg.Apps[0].Stages["prod"] = as
	worker := slotService(map[string]string{"component": "worker", kube.SlotLabel: live})
	worker.Name = "worker"
	w.create(slotDeploymentOf("api", "prod"), slotDeploymentOf("api", "prod-backup"),
		slotDeploymentOf("worker", "prod"), slotDeploymentOf("worker", "prod-backup"),
		slotService(slotSelector(live)), worker, envKeySecret())
}

// TestPartialServiceSwitchIsSwitchedBack: the deploy rolls out to the idle slot, switches the
// Service api, and the cluster's policy refuses to switch worker. Traffic must not stay split
// between two versions: api is switched back, the idle slot's images are put back, and the
// deploy ends rolled back.
func TestPartialServiceSwitchIsSwitchedBack(t *testing.T) {
	w := newReleaseWorld(t, "")
	w.twoServices("prod")
	w.admissionPolicy("", "services", `object.metadata.name != 'worker' || object.spec.selector == oldObject.spec.selector`,
		func(ctx context.Context) error {
			_, err := w.kc.Clientset().CoreV1().Services(w.ns).Patch(ctx, "worker", types.MergePatchType,
				[]byte(`{"spec":{"selector":{"stagecoach.dev/slot":"probe"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		})
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 120*time.Second, id)[0]
	if d.State != deploy.RolledBack || !strings.Contains(d.Error, "switching Service worker") || !strings.Contains(d.Error, "prod serves from slot prod again") {
		t.Fatalf("deploy = %s: %q, want rolled back after worker's switch was refused", d.State, d.Error)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Switch:failed", "Rollback:succeeded")
	for _, name := range []string{"api", "worker"} {
		svc := w.service(name)
		if got := svc.Spec.Selector[kube.SlotLabel]; got != "prod" || svc.Spec.Selector["component"] != name {
			t.Errorf("Service %s selects %v, want slot prod", name, svc.Spec.Selector)
		}
		idle := w.deployment(name + "-prod-backup")
		if got := idle.Spec.Template.Spec.Containers[0].Image; got != "registry.example/"+name+":v1" {
			t.Errorf("%s-prod-backup runs %s after the rollback, want its old image", name, got)
		}
		w.untouched(name+"-prod", "registry.example/"+name+":v1")
	}
}

// recordSlot records, as a deploy of sha to prod would have, that slot runs image.
func (w *world) recordSlot(slot, sha, image string) int64 {
	w.t.Helper()
	ctx := context.Background()
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha, Trigger: deploy.Trigger{Event: "push", Delivery: "rec-" + sha, Actor: "octocat"}})
	d, lease, err := w.st.ClaimDeploy(ctx, "seed", time.Minute)
	if err != nil || d.ID != id {
		w.t.Fatalf("claiming deploy %d: got %d, %v", id, d.ID, err)
	}
	rec := store.SlotImages{App: "hello", Stage: "prod", Slot: slot, SHA: sha, DeployID: id,
		Images: []deploy.Image{{Deployment: "api-" + slot, Container: "api", Image: image}}}
	if err := w.st.SetSlotImages(ctx, lease, rec); err != nil {
		w.t.Fatal(err)
	}
	cp := deploy.Checkpoint{Slot: slot, Image: image, Switched: true}
	if err := w.st.Advance(ctx, lease, store.Update{State: deploy.Succeeded, Checkpoint: cp.Encode()}); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// TestRollbackNeverSwitchesToAFailedBuild: /rollback prod switches to the other slot and claims
// the commit the records say last succeeded there. When the slot runs something else (a later
// deploy failed there halfway, or someone changed it), the switch is refused with what the slot
// really runs, and traffic stays where it is; it used to go to the failed build while the deploy
// recorded the old commit as live.
func TestRollbackNeverSwitchesToAFailedBuild(t *testing.T) {
	failedBuild := repoURI + ":failed-build"
	for _, tt := range []struct {
		name    string
		history func(w *world) // what happened on slot prod before the rollback
		want    string         // the refusal, with "#N" for the deploy it names
	}{
		{"a failed deploy left its build there (records from before slots had them)", func(w *world) {
			w.seedWith("prod", sha1, deploy.Succeeded, deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup", Image: v1API, Switched: true})
			w.setImage("api-prod", failedBuild)
			w.seedWith("prod", sha2, deploy.Failed, deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup", Image: failedBuild})
		}, "preflight: slot prod does not run what Stagecoach last put there (c4295bd, deploy #N): Deployment api-prod runs " +
			failedBuild + ", not " + v1API + "; nothing was switched"},
		{"the slot's record says another commit", func(w *world) {
			w.seedWith("prod", sha1, deploy.Succeeded, deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup", Image: v1API, Switched: true})
			w.setImage("api-prod", failedBuild)
			w.recordSlot("prod", sha2, failedBuild)
		}, "preflight: slot prod runs 2222222 (deploy #N), not c4295bd; nothing was switched"},
		{"someone changed the slot by hand", func(w *world) {
			w.recordSlot("prod", sha1, v1API)
			w.setImage("api-prod", "registry.example/api:hotfix")
		}, "preflight: slot prod does not run what Stagecoach last put there (c4295bd, deploy #N): Deployment api-prod runs " +
			"registry.example/api:hotfix, not " + v1API + "; nothing was switched"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newReleaseWorld(t, "alpha")
			w.twoSlots("prod-backup")
			tt.history(w)
			w.waitFor("api-prod", "became ready", complete) // a healthy slot: only what it runs is wrong
			// What /rollback prod asks for: slot prod, and the commit last successful there.
			id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Mode: deploy.ModeSwitch, Slot: "prod", Nonce: "rollback-1"})
			d := w.drive(w.runner(w.st, "p1"), 30*time.Second, id)[0]
			if d.State != deploy.Failed || !matchesDeployRef(d.Error, tt.want) {
				t.Fatalf("deploy = %s: %q\nwant failed: %q", d.State, d.Error, tt.want)
			}
			w.serving("prod-backup")
		})
	}
}

// matchesDeployRef compares got with want, where "#N" in want stands for any deploy number.
func matchesDeployRef(got, want string) bool {
	before, after, ok := strings.Cut(want, "#N")
	if !ok {
		return got == want
	}
	rest, ok := strings.CutPrefix(got, before+"#")
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, "0123456789")
	return rest == after
}

// TestRollbackAfterAFailedDeployStillSwitches: the slots' records follow real deploys. sha1
// goes live on prod-backup, sha2 on prod; a broken deploy to prod-backup is rolled back there,
// which restores sha1's images and the record with them. /rollback prod then switches back to
// prod-backup, claiming sha1, and the check against the cluster lets it.
func TestRollbackAfterAFailedDeployStillSwitches(t *testing.T) {
	w := newReleaseWorld(t, "")
	w.twoSlots("prod")
	r := w.runner(w.st, "p1")
	push := func(sha string) deploy.Deploy {
		id := w.ask(deploy.Request{Stage: "prod", SHA: sha, Ref: "prod", Trigger: deploy.Trigger{Event: "push", Delivery: "push-" + sha, Actor: "octocat"}})
		return w.drive(r, 150*time.Second, id)[0]
	}
	first := push(sha1)
	if first.State != deploy.Succeeded {
		t.Fatalf("first deploy = %s: %s", first.State, first.Error)
	}
	if second := push(sha2); second.State != deploy.Succeeded {
		t.Fatalf("second deploy = %s: %s", second.State, second.Error)
	}
	w.cfg.Apps[0].ImageReference = "tag" // the next build's image is its tag, which crash-loops
	if broken := push(kubetest.BrokenTag); broken.State != deploy.RolledBack {
		t.Fatalf("broken deploy = %s: %s", broken.State, broken.Error)
	}
	rec, ok, err := w.st.SlotImages(context.Background(), "hello", "prod", "prod-backup")
	firstCP, _ := deploy.DecodeCheckpoint(first.Checkpoint)
	if err != nil || !ok || rec.SHA != sha1 || rec.DeployID != first.ID || len(rec.Images) != 1 || rec.Images[0].Image != firstCP.Image {
		t.Fatalf("record of prod-backup after the rollback = %+v, %v, %v; want sha1's image from deploy %d", rec, ok, err, first.ID)
	}
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Mode: deploy.ModeSwitch, Slot: "prod-backup", Nonce: "rollback-1"})
	d := w.drive(r, 30*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("rollback = %s: %s", d.State, d.Error)
	}
	w.switchedBy("prod-backup", id, sha1)
	if got := w.deployment("api-prod-backup").Spec.Template.Spec.Containers[0].Image; got != firstCP.Image {
		t.Errorf("prod-backup runs %s, want %s", got, firstCP.Image)
	}
}
