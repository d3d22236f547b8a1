package pipeline

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/kube"
)

// TestImageModeRollsOutWithoutBuilding proves a rollback to an image built before (ModeImage)
// starts no build and sets exactly that image, following the rollout to its end: on a plain
// stage on every Deployment, on a two-slot stage in the idle slot, which then goes live.
func TestImageModeRollsOutWithoutBuilding(t *testing.T) {
	image := repoURI + "@sha256:" + strings.Repeat("5e", 32)
	for _, tt := range []struct {
		name    string
		world   func(t *testing.T) *world
		stage   string
		changed []string // the Deployments that must run image
		steps   []string
	}{
		{name: "a plain stage", stage: "test", changed: []string{"api", "worker"},
			world: newWorld, steps: []string{"Preflight:succeeded", "Rollout:succeeded"}},
		{name: "a two-slot stage", stage: "prod", changed: []string{"api-prod-backup"},
			world: func(t *testing.T) *world { w := newReleaseWorld(t, "alpha"); w.twoSlots("prod"); return w },
			steps: []string{"Preflight:succeeded", "Rollout:succeeded", "Switch:succeeded"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.world(t)
			// The stage order does not apply to a rollback (prod promotes from alpha, where this never ran).
			id := w.ask(deploy.Request{Stage: tt.stage, SHA: sha1, Mode: deploy.ModeImage, Image: image, Nonce: "rollback-1"})
			d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
			if d.State != deploy.Succeeded {
				t.Fatalf("deploy = %s: %s", d.State, d.Error)
			}
			if n := w.aws.CodeBuild.StartBuildCalls(); n != 0 || len(w.aws.CodeBuild.Builds()) != 0 {
				t.Errorf("StartBuild called %d times, want never", n)
			}
			if calls := w.callsTo("codebuild"); len(calls) != 0 {
				t.Errorf("CodeBuild calls: %+v", calls)
			}
			cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
			wantSteps(t, cp, tt.steps...)
			if cp.Image != image || cp.BuildID != "" {
				t.Errorf("checkpoint image %q, build %q; want %s and no build", cp.Image, cp.BuildID, image)
			}
			if len(cp.Replaced) != len(tt.changed) {
				t.Errorf("replaced = %+v, want the images of %v", cp.Replaced, tt.changed)
			}
			for _, name := range tt.changed {
				dep := w.deployment(name)
				if got := dep.Spec.Template.Spec.Containers[0].Image; got != image || !complete(dep) {
					t.Errorf("%s runs %s (rollout complete %v), want %s", name, got, complete(dep), image)
				}
				if dep.Annotations[kube.DeployAnnotation] != strconv.FormatInt(id, 10) {
					t.Errorf("%s annotations = %v, want deploy %d", name, dep.Annotations, id)
				}
			}
			if tt.stage == "prod" {
				w.untouched("api-prod", v1API)
				w.switchedBy("prod-backup", id, sha1)
			}
		})
	}
}

// TestStageOrder proves a stage with promote_from takes a commit only once it succeeded on that
// stage: anything else fails at preflight, before any AWS call or cluster change, with an error
// naming the stage before, the commit and the way out (--force); a forced deploy and a commit
// that succeeded there go through to the end.
func TestStageOrder(t *testing.T) {
	for _, tt := range []struct {
		name    string
		seed    deploy.State // how the commit's deploy to alpha ended ("" for never deployed there)
		seedSHA string       // the commit deployed to alpha (default sha1)
		force   string
		refused bool
	}{
		{name: "never deployed to alpha", refused: true},
		{name: "failed on alpha", seed: deploy.Failed, refused: true},
		{name: "another commit succeeded on alpha", seed: deploy.Succeeded, seedSHA: "2222222222222222222222222222222222222222", refused: true},
		{name: "forced as a hotfix", force: "hotfix"},
		{name: "succeeded on alpha", seed: deploy.Succeeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newReleaseWorld(t, "alpha")
			w.twoSlots("prod")
			if tt.seed != "" {
				sha := tt.seedSHA
				if sha == "" {
					sha = sha1
				}
				w.seed("alpha", sha, tt.seed)
			}
			id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Force: tt.force})
			d := w.drive(w.runner(w.st, "p1"), 90*time.Second, id)[0]
			cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
			if tt.refused {
				if d.State != deploy.Failed {
					t.Fatalf("deploy = %s: %s, want refused", d.State, d.Error)
				}
				for _, want := range []string{"stage order", deploy.ShortSHA(sha1), "alpha", "--force"} {
					if !strings.Contains(d.Error, want) {
						t.Errorf("error %q does not mention %q", d.Error, want)
					}
				}
				wantSteps(t, cp, "Preflight:failed")
				if calls := w.aws.Calls(""); len(calls) != 0 {
					t.Errorf("%d AWS calls before the refusal, want none (first: %s %s)", len(calls), calls[0].Service, calls[0].Operation)
				}
				w.untouched("api-prod-backup", v1API)
				w.serving("prod")
				return
			}
			if d.State != deploy.Succeeded {
				t.Fatalf("deploy = %s: %s", d.State, d.Error)
			}
			if d.Force != tt.force {
				t.Errorf("force reason = %q, want %q", d.Force, tt.force)
			}
			wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded", "Rollout:succeeded", "Switch:succeeded")
			if n := len(w.aws.CodeBuild.Builds()); n != 1 {
				t.Errorf("%d builds, want 1", n)
			}
			w.switchedBy("prod-backup", id, sha1)
		})
	}
}

// TestPullRequestBuild proves a pull-request build runs in the pr_build project with its
// buildspec, under the pr tier's role only, with no Secrets Manager variable at all, changes
// nothing in any cluster, and succeeds when the build does.
func TestPullRequestBuild(t *testing.T) {
	w := newReleaseWorld(t, "alpha") // not a stage: the stage order never applies
	w.twoSlots("prod")
	id := w.ask(deploy.Request{Stage: deploy.PRStage(5), SHA: sha1, Ref: "feature", Mode: deploy.ModePRBuild,
		Trigger: deploy.Trigger{Event: "pull_request", Delivery: "pr5", PR: 5, Actor: "octocat"}})
	d := w.drive(w.runner(w.st, "p1"), 60*time.Second, id)[0]
	if d.State != deploy.Succeeded {
		t.Fatalf("pull-request build = %s: %s", d.State, d.Error)
	}
	cp, _ := deploy.DecodeCheckpoint(d.Checkpoint)
	wantSteps(t, cp, "Preflight:succeeded", "Build:succeeded")
	if cp.Image != "" || cp.Replaced != nil {
		t.Errorf("a pull-request build deployed: image %q, replaced %+v", cp.Image, cp.Replaced)
	}
	builds := w.aws.CodeBuild.Builds()
	if len(builds) != 1 {
		t.Fatalf("%d builds, want 1", len(builds))
	}
	b := builds[0]
	if b.Project != "hello-pr" || b.Buildspec != "ci/pull-request.yaml" || b.SourceVersion != sha1 || b.Status != "SUCCEEDED" {
		t.Errorf("build = %+v, want hello-pr with ci/pull-request.yaml at %s", b, sha1)
	}
	for _, v := range b.Env {
		if v.Type == "SECRETS_MANAGER" || strings.Contains(v.Value, "hello/") {
			t.Errorf("a pull-request build was given a secret: %+v", v)
		}
	}
	if !hasEnv(b.Env, "PULL_REQUEST", "5", "PLAINTEXT") || !hasEnv(b.Env, "COMMIT_SHA", sha1, "PLAINTEXT") {
		t.Errorf("build environment = %+v", b.Env)
	}
	assumed := w.aws.STS.AssumeRoleCalls()
	if len(assumed) == 0 {
		t.Fatal("no role was assumed")
	}
	for _, p := range assumed {
		if p.Get("RoleArn") != prRole || p.Get("RoleSessionName") != "stagecoach-hello-pr-c4295bd" {
			t.Errorf("AssumeRole(%s, %s), want only the pr tier's role", p.Get("RoleArn"), p.Get("RoleSessionName"))
		}
	}
	for _, c := range w.aws.Calls("") {
		if c.Service != "sts" && c.Role != prRole {
			t.Errorf("%s %s signed by %q, want the pr role", c.Service, c.Operation, c.Role)
		}
		if c.Service == "secretsmanager" {
			t.Errorf("a pull-request build called Secrets Manager: %s", c.Operation)
		}
	}
	w.untouched("api-prod", v1API)
	w.untouched("api-prod-backup", v1API)
	w.serving("prod")
}
