package pipeline

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
)

// healthServer is an app's health endpoint: each request gets the next answer of a script (the
// last one repeats); an answer with hang set holds the request until its client gives up.
type healthServer struct {
	*httptest.Server
	mu      sync.Mutex
	script  []answer
	asked   int
	paths   []string      // of every request, in order
	hanging chan struct{} // closed when a hanging answer began
}

type answer struct {
	status int
	body   string
	hang   bool
}

func newHealthServer(t *testing.T, script ...answer) *healthServer {
	h := &healthServer{script: script, hanging: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		a := h.script[min(h.asked, len(h.script)-1)]
		h.asked++
		h.paths = append(h.paths, r.URL.Path)
		h.mu.Unlock()
		if a.hang {
			close(h.hanging)
			<-r.Context().Done()
			return
		}
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *healthServer) requests() int { h.mu.Lock(); defer h.mu.Unlock(); return h.asked }

// verifyWith makes the app's stage verify with one HTTP check of url: 3 answers of 200 in a row,
// every 100 ms, within 1.5 s. (A check meant to pass gets verifyFor's long duration instead: a
// busy machine must not fail it; one meant to fail fails sooner, never later, when slow.)
func (w *world) verifyWith(stage, url string) { w.verifyFor(stage, url, 1500*time.Millisecond) }

func (w *world) verifyFor(stage, url string, duration time.Duration) {
	as := w.cfg.Apps[0].Stages[stage]
	as.Verify.HTTP = []config.HTTPCheck{{Name: "health", URL: url, Status: 200, Body: "ok", Interval: 100 * time.Millisecond,
		Timeout: time.Second, Successes: 3, Duration: duration}}
	w.cfg.Apps[0].Stages[stage] = as
}

// TestVerifiedDeploySucceeds: a deploy whose check answers as expected succeeds only after it
// answered so three times in a row, with the Verify step after the rollout.
func TestVerifiedDeploySucceeds(t *testing.T) {
	w := newWorld(t)
	h := newHealthServer(t, answer{status: 503, body: "starting"}, answer{status: 200, body: "ok"})
	w.verifyFor("test", h.URL+"/healthz", time.Minute)
	id := w.request("d1", sha1)
	d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Verify:succeeded")
	if cp.Verify == nil {
		t.Fatal("the deploy succeeded without verifying")
	}
	if c := cp.Verify.Checks[0]; c.Result != deploy.CheckPassed || c.Answers != 4 || c.InRow != 3 || h.requests() != 4 {
		t.Errorf("check = %+v after %d requests, want passed after one 503 and three 200s", c, h.requests())
	}
	if got := w.images("api"); got != cp.Image {
		t.Errorf("api runs %s, want %s", got, cp.Image)
	}
}

// TestFailedVerificationRollsBackTheRollout: a deploy whose check keeps answering 503 is rolled
// back to the images that ran before, and the error names the check and its last answer.
func TestFailedVerificationRollsBackTheRollout(t *testing.T) {
	w := newWorld(t)
	h := newHealthServer(t, answer{status: 503, body: "down:\n database unreachable"})
	w.verifyWith("test", h.URL+"/healthz")
	id := w.request("d1", sha1)
	d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
	if d.State != deploy.RolledBack {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	want := "rolled back: verification failed: check health (" + h.URL + "/healthz): status 503, want 200"
	if d.Error != want {
		t.Errorf("error = %q\nwant    %q", d.Error, want)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Verify:failed", "Rollback:succeeded")
	for _, name := range []string{"api", "worker"} {
		if got := w.images(name); got != "registry.example/"+name+":v1" {
			t.Errorf("%s runs %s after the rollback", name, got)
		}
	}
	if n := h.requests(); n < 3 {
		t.Errorf("asked %d times: a check fails only once too few asks are left before its deadline", n)
	}
}

// TestFailedVerificationOnProdSwitchesTrafficBack: on a two-slot stage the check of what users
// reach runs after the switch; when it fails, the Service selects the slot that was live again,
// and the idle slot's Deployment gets its old image back.
func TestFailedVerificationOnProdSwitchesTrafficBack(t *testing.T) {
	w := newReleaseWorld(t, "")
	w.twoSlots("prod")
	h := newHealthServer(t, answer{status: 500, body: "internal error"})
	w.verifyWith("prod", h.URL+"/healthz")
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 120*time.Second, id)[0]
	if d.State != deploy.RolledBack {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	for _, want := range []string{"verification failed: check health", "status 500, want 200", "prod serves from slot prod again"} {
		if !strings.Contains(d.Error, want) {
			t.Errorf("error %q does not say %q", d.Error, want)
		}
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Switch:succeeded", "Verify:failed", "Rollback:succeeded")
	if !cp.Switched || !cp.SwitchedBack {
		t.Errorf("switched %v, switched back %v: want both", cp.Switched, cp.SwitchedBack)
	}
	if svc := w.service("api"); !maps.Equal(svc.Spec.Selector, slotSelector("prod")) {
		t.Errorf("Service api selects %v, want slot prod again", svc.Spec.Selector)
	}
	if got := w.deployment("api-prod-backup").Spec.Template.Spec.Containers[0].Image; got != v1API {
		t.Errorf("api-prod-backup runs %s after the rollback, want %s", got, v1API)
	}
	w.untouched("api-prod", v1API)
}

// TestSlotDeployVerifiedBeforeAndAfterTheSwitch: on a two-slot stage the idle slot's check
// ({slot}) passes before the Service moves, the check of what users reach after, and only then
// does the deploy succeed.
func TestSlotDeployVerifiedBeforeAndAfterTheSwitch(t *testing.T) {
	w := newReleaseWorld(t, "")
	w.twoSlots("prod")
	h := newHealthServer(t, answer{status: 200, body: "ok"})
	w.verifyFor("prod", h.URL+"/healthz", time.Minute)
	as := w.cfg.Apps[0].Stages["prod"]
	idle := as.Verify.HTTP[0]
	idle.Name, idle.URL = "idle", h.URL+"/"+config.SlotPlaceholder+"/healthz"
	as.Verify.HTTP = append(as.Verify.HTTP, idle)
	w.cfg.Apps[0].Stages["prod"] = as
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 120*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Verify idle slot:succeeded", "Switch:succeeded", "Verify:succeeded")
	h.mu.Lock()
	paths := strings.Join(h.paths, " ")
	h.mu.Unlock()
	if want := "/prod-backup/healthz /prod-backup/healthz /prod-backup/healthz /healthz /healthz /healthz"; paths != want {
		t.Errorf("requests %s, want the idle slot's three, then the public check's three", paths)
	}
	w.switchedBy("prod-backup", id, sha1)
}

// TestFailedIdleSlotVerificationNeverSwitches: a check naming {slot} asks the idle slot before
// the switch; when it fails, the Service never moves and users never see the failed version.
func TestFailedIdleSlotVerificationNeverSwitches(t *testing.T) {
	w := newReleaseWorld(t, "")
	w.twoSlots("prod")
	h := newHealthServer(t, answer{status: 404, body: "no such slot"})
	w.verifyWith("prod", h.URL+"/"+config.SlotPlaceholder+"/healthz")
	id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Trigger: deploy.Trigger{Event: "push", Delivery: "d1", Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 120*time.Second, id)[0]
	if d.State != deploy.RolledBack {
		t.Fatalf("deploy = %s: %s", d.State, d.Error)
	}
	for _, want := range []string{"check health (" + h.URL + "/prod-backup/healthz): status 404", "prod kept serving from slot prod"} {
		if !strings.Contains(d.Error, want) {
			t.Errorf("error %q does not say %q", d.Error, want)
		}
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Verify idle slot:failed", "Rollback:succeeded")
	w.serving("prod")
}

// TestReplicaKilledWhileVerifyingDoesNotPassIt: a replica that answered once and was then killed
// in the middle of a request (its step stopped, as a lost lease or SIGKILL stops it) leaves the
// answers so far in the store; the replica that takes the deploy over carries on counting, and
// the deploy whose check then fails is rolled back, never passed.
func TestReplicaKilledWhileVerifyingDoesNotPassIt(t *testing.T) {
	w := newWorld(t)
	h := newHealthServer(t, answer{status: 200, body: "ok"}, answer{hang: true}, answer{status: 503, body: "down"})
	w.verifyWith("test", h.URL+"/healthz")
	id := w.request("d1", sha1)
	first := w.runner(w.st, "first")
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	go func() { <-h.hanging; kill() }()
	for ctx.Err() == nil {
		if d, err := w.st.Deploy(context.Background(), id); err != nil || d.State.Final() {
			t.Fatalf("the deploy ended (%s: %s) before its check was asked a second time (%v)", d.State, d.Error, err)
		}
		worked, err := first.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		if !worked {
			time.Sleep(20 * time.Millisecond) // nothing due: as drive does
		}
	}
	cp := w.checkpoint(id)
	if cp.Verify == nil || cp.Verify.Checks[0].Answers != 1 || cp.Verify.Checks[0].InRow != 1 {
		t.Fatalf("killed with verify %+v, want the one answer before the kill recorded, and not the one cut short", cp.Verify)
	}
	d := w.drive(w.runner(w.openStore(), "restarted"), 90*time.Second, id)[0]
	if d.State != deploy.RolledBack || !strings.Contains(d.Error, "verification failed: check health") {
		t.Fatalf("after the restart: %s: %s", d.State, d.Error)
	}
	cp, _ = deploy.DecodeCheckpoint(d.Checkpoint)
	if c := cp.Verify.Checks[0]; c.Answers != h.requests()-1 {
		t.Errorf("%d answers recorded of %d requests: want all but the one cut short", c.Answers, h.requests())
	}
	if got := w.images("api"); got != "registry.example/api:v1" {
		t.Errorf("api runs %s after the rollback", got)
	}
}

// TestFailedVerifyBuildRollsBackTheRollout: a CodeBuild verify project runs at the deployed
// commit, with the image and no stage secret, once the rollout is done; a failed build rolls the
// deploy back, and a passing one lets it succeed.
func TestFailedVerifyBuildRollsBackTheRollout(t *testing.T) {
	for _, tt := range []struct {
		name  string
		build awstest.Script
		state deploy.State
		err   string
	}{
		{"the verify build fails", awstest.Script{PhaseDuration: 50 * time.Millisecond, FailIn: "BUILD", Message: "smoke tests: 3 of 41 failed"},
			deploy.RolledBack, "rolled back: verification failed: CodeBuild project hello-smoke: build failed in BUILD: smoke tests: 3 of 41 failed"},
		{"the verify build passes", awstest.Script{PhaseDuration: 50 * time.Millisecond}, deploy.Succeeded, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.aws.CodeBuild.Queue(awstest.Script{PhaseDuration: 50 * time.Millisecond}, tt.build)
			as := w.cfg.Apps[0].Stages["test"]
			as.Verify = config.Verify{CodeBuildProject: "hello-smoke", Buildspec: "buildspec-verify.yaml"}
			w.cfg.Apps[0].Stages["test"] = as
			id := w.request("d1", sha1)
			d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
			if d.State != tt.state || d.Error != tt.err {
				t.Fatalf("deploy = %s: %q, want %s: %q", d.State, d.Error, tt.state, tt.err)
			}
			cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
			builds := w.aws.CodeBuild.Builds()
			if len(builds) != 2 {
				t.Fatalf("builds = %+v, want the deploy's and the verify build", builds)
			}
			v := builds[1]
			if v.Project != "hello-smoke" || v.SourceVersion != sha1 || v.Buildspec != "buildspec-verify.yaml" || !hasEnv(v.Env, "STAGECOACH_VERIFY", "1", "PLAINTEXT") ||
				!hasEnv(v.Env, "IMAGE", cp.Image, "PLAINTEXT") || !hasEnv(v.Env, "STAGE", "test", "PLAINTEXT") {
				t.Errorf("verify build = %+v", v)
			}
			for _, e := range v.Env {
				if e.Type != "PLAINTEXT" {
					t.Errorf("the verify build got %s %s: it reads no stage secret", e.Type, e.Name)
				}
			}
			want := cp.Image
			if tt.state == deploy.RolledBack {
				want = "registry.example/api:v1"
			}
			if got := w.images("api"); got != want {
				t.Errorf("api runs %s, want %s", got, want)
			}
		})
	}
}
