package pipeline

import (
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/kube"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
)

// serving fails the test unless the Service api selects slot and Stagecoach never wrote to it.
func (w *world) serving(slot string) {
	w.t.Helper()
	svc := w.service("api")
	if !maps.Equal(svc.Spec.Selector, slotSelector(slot)) {
		w.t.Errorf("Service api selects %v, want %v", svc.Spec.Selector, slotSelector(slot))
	}
	if a := svc.Annotations[kube.DeployAnnotation]; a != "" {
		w.t.Errorf("Service api was changed by deploy %s", a)
	}
}

// switchedBy fails the test unless the Service api selects slot and says deploy id of sha did it.
func (w *world) switchedBy(slot string, id int64, sha string) {
	w.t.Helper()
	svc := w.service("api")
	if !maps.Equal(svc.Spec.Selector, slotSelector(slot)) {
		w.t.Errorf("Service api selects %v, want %v (its other labels kept)", svc.Spec.Selector, slotSelector(slot))
	}
	if svc.Annotations[kube.DeployAnnotation] != strconv.FormatInt(id, 10) || svc.Annotations[kube.SHAAnnotation] != sha {
		w.t.Errorf("Service api annotations = %v, want deploy %d of %s", svc.Annotations, id, sha)
	}
}

// TestSlotDeployGoesToIdleSlotThenSwitches proves a build deploy to a two-slot stage changes only
// the idle slot's Deployment, follows its rollout to the end, and only then points the Service at
// it, keeping the Service's other selector labels; the live slot is never touched.
func TestSlotDeployGoesToIdleSlotThenSwitches(t *testing.T) {
	w := newReleaseWorld(t, "")
	w.twoSlots("prod")
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	if cp.Slot != "prod-backup" || cp.FromSlot != "prod" || !cp.Switched {
		t.Errorf("slot %q from %q (switched %v), want prod-backup from prod, switched", cp.Slot, cp.FromSlot, cp.Switched)
	}
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Switch:succeeded")
	if len(cp.Steps) == 4 && cp.Steps[3].Started.Before(cp.Steps[2].Finished) {
		t.Errorf("the switch started at %s, before the rollout ended at %s", cp.Steps[3].Started, cp.Steps[2].Finished)
	}
	if !strings.HasPrefix(cp.Image, repoURI+"@sha256:") {
		t.Errorf("image = %q, want the digest of what was built", cp.Image)
	}
	if want := []kube.Image{{Deployment: "api-prod-backup", Container: "api", Image: v1API}}; len(cp.Replaced) != 1 || cp.Replaced[0] != want[0] {
		t.Errorf("replaced = %+v, want %+v", cp.Replaced, want)
	}

	backup := w.deployment("api-prod-backup")
	if got := backup.Spec.Template.Spec.Containers[0].Image; got != cp.Image {
		t.Errorf("api-prod-backup runs %s, want %s", got, cp.Image)
	}
	if !complete(backup) {
		t.Errorf("api-prod-backup's rollout is not complete: %+v", backup.Status)
	}
	if backup.Spec.Template.Labels[kube.SlotLabel] != "prod-backup" || backup.Spec.Selector.MatchLabels["app"] != "api-prod-backup" {
		t.Errorf("api-prod-backup's labels changed: template %v, selector %v", backup.Spec.Template.Labels, backup.Spec.Selector.MatchLabels)
	}
	w.untouched("api-prod", v1API)
	w.switchedBy("prod-backup", id, sha1)

	builds := w.aws.CodeBuild.Builds()
	if len(builds) != 1 || builds[0].Project != "hello" || builds[0].Buildspec != "buildspec-prod.yaml" || builds[0].SourceVersion != sha1 {
		t.Fatalf("builds = %+v, want one of hello at %s with buildspec-prod.yaml", builds, sha1)
	}
	if !hasEnv(builds[0].Env, "STAGE", "prod", "PLAINTEXT") || !hasEnv(builds[0].Env, "DOTENV_SECRET", "hello/prod", "SECRETS_MANAGER") {
		t.Errorf("build environment = %+v", builds[0].Env)
	}
	assumed := w.aws.STS.AssumeRoleCalls()
	if len(assumed) == 0 {
		t.Fatal("the prod role was never assumed")
	}
	for _, p := range assumed {
		if p.Get("RoleArn") != prodRole || p.Get("RoleSessionName") != "stagecoach-hello-prod-c4295bd" {
			t.Errorf("AssumeRole(%s, %s), want the prod tier's role and the deploy's session", p.Get("RoleArn"), p.Get("RoleSessionName"))
		}
	}
}

// TestFailedRolloutInIdleSlotKeepsLiveSlot proves a rollout that fails in the idle slot is rolled
// back there, the Service never moves off the live slot, and the error says users were spared.
func TestFailedRolloutInIdleSlotKeepsLiveSlot(t *testing.T) {
	w := newReleaseWorld(t, "")
	// The build pushes an image whose rollout crash-loops: its tag marks it broken.
	w.cfg.Apps[0].ImageReference = "tag"
	w.twoSlots("prod")
	id := w.ask(deploy.Request{Stage: "prod", SHA: kubetest.BrokenTag, Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 150*time.Second, id)[0]
	if d.State != deploy.RolledBack {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	for _, want := range []string{"rolled back: api-prod-backup: progress deadline exceeded", "prod kept serving from slot prod"} {
		if !strings.Contains(d.Error, want) {
			t.Errorf("error %q does not say %q", d.Error, want)
		}
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:failed", "Rollback:succeeded")
	if !strings.HasPrefix(cp.Image, repoURI+":broken-prod-") || cp.Switched {
		t.Errorf("image %q, switched %v", cp.Image, cp.Switched)
	}
	backup := w.deployment("api-prod-backup")
	if got := backup.Spec.Template.Spec.Containers[0].Image; got != v1API || !complete(backup) {
		t.Errorf("api-prod-backup runs %s (complete %v) after the rollback, want %s", got, complete(backup), v1API)
	}
	w.untouched("api-prod", v1API)
	w.serving("prod")
}

// TestSlotSwitch proves a slot switch (the rollback of a two-slot stage) only moves the Service,
// with no build and no Deployment change, and that preflight refuses one whose target slot is
// not healthy or is live already, leaving the Service where it was.
func TestSlotSwitch(t *testing.T) {
	healthy := func(w *world) {
		w.create(slotDeployment("prod", "prod", ""))
		w.waitFor("api-prod", "became ready", complete)
	}
	for _, tt := range []struct {
		name    string
		live    string       // the slot the Service selects before
		target  func(*world) // makes api-prod, the slot switched to
		wantErr string       // "" when the switch succeeds
		prefix  bool         // wantErr is the start of the error (the rest names a ReplicaSet)
	}{
		{name: "back to the healthy slot", live: "prod-backup", target: healthy},
		{name: "to a slot that crash-loops", live: "prod-backup",
			target:  func(w *world) { w.create(slotDeployment("prod", "prod", "registry.example/api:broken")) },
			wantErr: "preflight: slot prod is not healthy: Deployment api-prod has 0 of 3 pods ready"},
		// Its old pods are all ready, but a new template never got a pod ready: traffic
		// switched there would find a Deployment Kubernetes itself reports as failed.
		{name: "to a slot whose last rollout is stuck", live: "prod-backup", prefix: true,
			target: func(w *world) {
				healthy(w)
				w.setImage("api-prod", "registry.example/api:broken")
				w.waitFor("api-prod", "exceeded its progress deadline", deadlineExceeded)
			},
			wantErr: "preflight: slot prod is not healthy: Deployment api-prod's rollout has not completed: progress deadline exceeded"},
		{name: "to the live slot", live: "prod", target: healthy, wantErr: "preflight: slot prod is live already"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newReleaseWorld(t, "alpha") // a switch brings back what ran: the stage order does not apply
			w.create(slotDeployment("prod-backup", "prod-backup", ""), slotService(slotSelector(tt.live)), envKeySecret())
			tt.target(w)
			// What an earlier deploy left on slot prod (recorded before slots had records).
			w.seedWith("prod", sha1, deploy.Succeeded, deploy.Checkpoint{Slot: "prod", FromSlot: "prod-backup", Image: v1API, Switched: true})
			id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Mode: deploy.ModeSwitch, Slot: "prod", Nonce: "rollback-1"})
			d := w.drive(w.runner(w.st, "p1"), 30*time.Second, id)[0]
			cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
			if n := len(w.callsTo("codebuild")); n != 0 {
				t.Errorf("%d CodeBuild calls, want none", n)
			}
			if tt.wantErr != "" {
				if matched := d.Error == tt.wantErr || tt.prefix && strings.HasPrefix(d.Error, tt.wantErr); d.State != deploy.Failed || !matched {
					t.Fatalf("deploy = %s: %q, want failed: %q", d.State, d.Error, tt.wantErr)
				}
				wantSteps(t, cp, "Preflight:failed")
				w.serving(tt.live)
				w.untouched("api-prod-backup", v1API)
				return
			}
			if d.State != deploy.Succeeded {
				t.Fatalf("deploy = %s: %s", d.State, d.Error)
			}
			wantSteps(t, cp, "Preflight:succeeded", "Switch:succeeded")
			if cp.Slot != "prod" || cp.FromSlot != "prod-backup" || !cp.Switched || cp.Image != v1API || cp.BuildID != "" {
				t.Errorf("checkpoint = %+v", cp)
			}
			w.switchedBy("prod", id, sha1)
			w.untouched("api-prod", v1API)
			w.untouched("api-prod-backup", v1API)
		})
	}
}

// TestSlotPreflightReportsEveryProblem proves preflight on a slot stage refuses a stage whose
// Service or slot Deployments are set up wrong, naming each one, all in one report, before any
// build or change.
func TestSlotPreflightReportsEveryProblem(t *testing.T) {
	noSlot := "Service api selects no slot: add stagecoach.dev/slot: prod (or prod-backup) to its selector"
	for _, tt := range []struct {
		name    string
		objects func() []any
		noAWS   bool // the stage's Secrets Manager secret is missing too
		want    []string
	}{
		{name: "a Service without the slot label", objects: func() []any {
			return []any{slotDeployment("prod", "prod", ""), slotDeployment("prod-backup", "prod-backup", ""), slotService(slotSelector("")), envKeySecret()}
		}, want: []string{noSlot}},
		{name: "the idle slot's pods labelled as the live slot", objects: func() []any {
			return []any{slotDeployment("prod", "prod", ""), slotDeployment("prod-backup", "prod", ""), slotService(slotSelector("prod")), envKeySecret()}
		}, want: []string{`Deployment api-prod-backup's pods are labelled stagecoach.dev/slot="prod", want "prod-backup": the Service could not tell the slots apart`}},
		{name: "everything at once", noAWS: true, objects: func() []any {
			return []any{slotDeployment("prod", "prod", ""), slotDeployment("prod-backup", "", ""), slotService(slotSelector(""))}
		}, want: []string{
			"secret hello/prod not found in Secrets Manager (eu-west-1) (credentials tier prod)",
			noSlot,
			`Deployment api-prod-backup's pods are labelled stagecoach.dev/slot="", want "prod-backup": the Service could not tell the slots apart`,
			"Secret hello-env-key not found in namespace NS: it holds the key that decrypts .env at start-up",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newReleaseWorld(t, "")
			if tt.noAWS {
				w.freshAWS("hello/alpha")
			}
			w.create(tt.objects()...)
			id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
			d := w.drive(w.runner(w.st, "p1"), 30*time.Second, id)[0]
			want := "preflight: " + strings.ReplaceAll(strings.Join(tt.want, "; "), "NS", w.ns)
			if d.State != deploy.Failed || d.Error != want {
				t.Fatalf("deploy = %s:\n%q\nwant failed:\n%q", d.State, d.Error, want)
			}
			cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
			wantSteps(t, cp, "Preflight:failed")
			if n := len(w.callsTo("codebuild")); n != 0 {
				t.Errorf("%d CodeBuild calls, want none", n)
			}
			for _, name := range []string{"api-prod", "api-prod-backup"} {
				w.untouched(name, v1API)
			}
			if svc := w.service("api"); svc.Annotations[kube.DeployAnnotation] != "" {
				t.Errorf("the Service was changed: %v", svc.Annotations)
			}
		})
	}
}

func hasEnv(env []awstest.EnvVar, name, value, typ string) bool {
	for _, v := range env {
		if v.Name == name && v.Value == value && v.Type == typ {
			return true
		}
	}
	return false
}

// TestNoSwitchToAnEmptySlot proves a deploy whose idle slot is scaled to zero, whose rollout
// therefore "completes" with no pods, rolls the idle slot back instead of pointing the Service
// at nothing.
func TestNoSwitchToAnEmptySlot(t *testing.T) {
	w := newReleaseWorld(t, "")
	empty := slotDeployment("prod-backup", "prod-backup", "")
	zero := int32(0)
	empty.Spec.Replicas = &zero
	w.create(slotDeployment("prod", "prod", ""), empty, slotService(slotSelector("prod")), envKeySecret())
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
	if d.State != deploy.RolledBack || !strings.Contains(d.Error, "slot prod-backup cannot take traffic: Deployment api-prod-backup has 0 of 0 pods ready") {
		t.Fatalf("deploy = %s: %q", d.State, d.Error)
	}
	w.serving("prod")
	if got := w.deployment("api-prod-backup").Spec.Template.Spec.Containers[0].Image; got != v1API {
		t.Errorf("api-prod-backup runs %s after the rollback, want %s", got, v1API)
	}
}
