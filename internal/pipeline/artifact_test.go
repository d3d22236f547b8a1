package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// prod's role and registry live in another account than nonprod's images.
const (
	crossProdRole = "arn:aws:iam::210987654321:role/stagecoach-prod"
	prodRepoURI   = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/hello"
)

// newPromoteWorld is the seed's order test → alpha → prod for the app hello with artifact:
// promote: test builds, alpha and prod run what the stage before ran. prod's role is in account
// 210987654321 and runs images from that account's own repository; nonprod's repository lets that
// account pull. Each stage has its Deployment (api-<stage>, container api) and its configuration
// Secret hello-<stage>-env in one namespace; prod's Deployment also reads a ConfigMap already.
func newPromoteWorld(t *testing.T) *world {
	t.Helper()
	kc := kubetest.Start(t)
	w := &world{t: t, kc: kc, ns: kc.Namespace(t), aws: awstest.New(t)}
	w.aws.CodeBuild.SetScript(awstest.Script{PhaseDuration: 50 * time.Millisecond})
	w.aws.CodeBuild.SetProjects("hello")
	w.aws.STS.Allow(nonprodRole, "")
	w.aws.STS.Allow(crossProdRole, "")
	w.aws.ECR.AddRepository(prodRepoURI)
	w.aws.ECR.AllowPull(repoURI, "210987654321")
	w.cfgText = fmt.Sprintf(`
credentials:
  nonprod: {role_arn: %q}
  prod: {role_arn: %q}
stages:
  - {name: test, branch: master, trigger: merge, credentials: nonprod,
     kubernetes: {kubeconfig: %[3]q, context: kubetest, namespace: %[4]q}}
  - {name: alpha, branch: alpha, trigger: push, credentials: nonprod, promote_from: test,
     kubernetes: {kubeconfig: %[3]q, context: kubetest, namespace: %[4]q}}
  - {name: prod, branch: prod, trigger: push, credentials: prod, promote_from: alpha,
     kubernetes: {kubeconfig: %[3]q, context: kubetest, namespace: %[4]q}}
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: %[5]s
    artifact: promote
    stages:
      test:
        env_secret: hello-test-env
        rollout_timeout: 2m
        deployments: [{name: api-test, containers: [api]}]
      alpha:
        env_secret: hello-alpha-env
        rollout_timeout: 2m
        deployments: [{name: api-alpha, containers: [api]}]
      prod:
        env_secret: hello-prod-env
        image_repository: %[6]s
        rollout_timeout: 2m
        deployments: [{name: api-prod, containers: [api]}]
`, nonprodRole, crossProdRole, kc.Kubeconfig(), w.ns, repoURI, prodRepoURI)
	cfg, err := config.Parse("artifact_test.yaml", []byte(w.cfgText))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.dbPath = filepath.Join(t.TempDir(), "pipeline.db")
	w.st = w.openStore()
	prod := kubetest.Deployment("api-prod", "api")
	prod.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "hello-flags"}}}}
	w.create(kubetest.Deployment("api-test", "api"), kubetest.Deployment("api-alpha", "api"), prod)
	for _, stage := range []string{"test", "alpha", "prod"} {
		w.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hello-" + stage + "-env"}, Data: map[string][]byte{"APP_KEY": []byte("k")}})
	}
	return w
}

// promoteRunner is the world's runner on st, with an SDK that retries within milliseconds.
func (w *world) promoteRunner(st Store) *Runner {
	cfg := w.aws.Config()
	cfg.Retryer = func() aws.Retryer {
		return awsretry.NewStandard(func(o *awsretry.StandardOptions) { o.MaxBackoff = 10 * time.Millisecond })
	}
	return w.runnerWith(st, cfg, &KubeClusters{}, func(o *Options) { o.MaxBackoff = 200 * time.Millisecond })
}

// through deploys sha to each stage in turn and fails the test unless each succeeds.
func (w *world) through(r *Runner, sha string, stages ...string) []deploy.Deploy {
	w.t.Helper()
	var out []deploy.Deploy
	for _, stage := range stages {
		d := w.drive(r, 90*time.Second, w.ask(deploy.Request{Stage: stage, SHA: sha, Ref: stage}))[0]
		if d.State != deploy.Succeeded {
			w.t.Fatalf("%s: %s: %s", stage, d.State, d.Error)
		}
		out = append(out, d)
	}
	return out
}

func checkpointOf(t *testing.T, d deploy.Deploy) deploy.Checkpoint {
	t.Helper()
	cp, err := deploy.DecodeCheckpoint(d.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func stepNamed(cp deploy.Checkpoint, name string) *deploy.StepRecord {
	for i := range cp.Steps {
		if cp.Steps[i].Name == name {
			return &cp.Steps[i]
		}
	}
	return nil
}

func okCalls(env *awstest.Env, op string) int {
	n := 0
	for _, c := range env.Calls(op) {
		if c.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// envFrom lists what the api container of Deployment name reads its environment from.
func (w *world) envFrom(name string) []string {
	var out []string
	for _, ef := range w.deployment(name).Spec.Template.Spec.Containers[0].EnvFrom {
		switch {
		case ef.SecretRef != nil:
			out = append(out, "secret/"+ef.SecretRef.Name)
		case ef.ConfigMapRef != nil:
			out = append(out, "configmap/"+ef.ConfigMapRef.Name)
		}
	}
	return out
}

// TestPromotedStageRunsTheTestedDigestNeverARebuild: with artifact: promote, the commit is built
// once, for test, with no stage's secret in the build; alpha runs that very digest from the same
// repository, and prod, whose registry is in another account, runs it from there after one copy
// with prod's role. One CodeBuild build for the commit across the three stages; each stage's
// pods read their configuration from the stage's Secret; the reports say which image it is.
func TestPromotedStageRunsTheTestedDigestNeverARebuild(t *testing.T) {
	w := newPromoteWorld(t)
	r := w.promoteRunner(w.st)
	ds := w.through(r, sha1, "test", "alpha", "prod")

	builds := w.aws.CodeBuild.Builds()
	if len(builds) != 1 {
		t.Fatalf("%d builds of %s, want exactly one across test, alpha and prod", len(builds), sha1[:7])
	}
	env := map[string]string{}
	for _, v := range builds[0].Env {
		env[v.Name] = v.Value
		if v.Type == "SECRETS_MANAGER" {
			t.Errorf("the build for every stage read secret %s (%s): a stage's configuration would be baked in", v.Value, v.Name)
		}
	}
	if _, ok := env["STAGE"]; ok || env["ARTIFACT"] != "promote" {
		t.Errorf("build environment = %v, want ARTIFACT=promote and no STAGE", env)
	}
	testCP := checkpointOf(t, ds[0])
	_, digest, ok := deploy.SplitDigest(testCP.Image)
	if !ok || testCP.Artifact == nil || !testCP.Artifact.Built {
		t.Fatalf("test's deploy ran %q with artifact %+v, want a digest built for promotion", testCP.Image, testCP.Artifact)
	}
	want := map[string]string{"api-test": repoURI + "@" + digest, "api-alpha": repoURI + "@" + digest, "api-prod": prodRepoURI + "@" + digest}
	for name, image := range want {
		if got := w.images(name); got != image {
			t.Errorf("%s runs %s, want %s", name, got, image)
		}
	}
	if !w.aws.ECR.Has(prodRepoURI, digest) {
		t.Errorf("prod's registry does not hold %s", digest)
	}
	if n := okCalls(w.aws, "PutImage"); n != 1 {
		t.Errorf("PutImage succeeded %d times, want one copy (to prod's registry; alpha shares test's)", n)
	}
	for _, c := range w.aws.Calls("PutImage") {
		if c.Role != crossProdRole {
			t.Errorf("the copy was written with %q, want prod's role", c.Role)
		}
	}
	for stage, name := range map[string]string{"test": "api-test", "alpha": "api-alpha"} {
		if got := w.envFrom(name); strings.Join(got, ",") != "secret/hello-"+stage+"-env" {
			t.Errorf("%s reads its environment from %v, want the stage's Secret", name, got)
		}
	}
	if got := w.envFrom("api-prod"); strings.Join(got, ",") != "configmap/hello-flags,secret/hello-prod-env" {
		t.Errorf("api-prod reads its environment from %v, want its ConfigMap kept and prod's Secret added", got)
	}
	for i, from := range map[int]string{1: "test", 2: "alpha"} {
		cp := checkpointOf(t, ds[i])
		s := stepNamed(cp, "Promote")
		if s == nil || stepNamed(cp, "Build") != nil {
			t.Fatalf("%s's steps = %+v, want Promote and no Build", ds[i].Stage, cp.Steps)
		}
		if wantDetail := "same image as tested on " + from + " (" + digest + ")"; !strings.HasPrefix(s.Detail, wantDetail) {
			t.Errorf("%s's Promote step says %q, want %q", ds[i].Stage, s.Detail, wantDetail)
		}
		if cp.Artifact.FromDeploy != ds[i-1].ID {
			t.Errorf("%s promoted deploy #%d's image, want #%d's", ds[i].Stage, cp.Artifact.FromDeploy, ds[i-1].ID)
		}
	}
	if s := stepNamed(checkpointOf(t, ds[2]), "Promote"); !strings.Contains(s.Detail, "copied to "+prodRepoURI) {
		t.Errorf("prod's Promote step says %q, want the copy named", s.Detail)
	}
}

// TestPromotionOfAnUntestedCommitIsRefused: a later stage is never built, so a commit with no
// image tested on the stage before is refused in preflight, with the reason, even when an admin
// forced it past the stage order; so is an image built for alpha alone (with its configuration
// baked in, before the app switched to artifact: promote). Nothing is built, copied or rolled out.
func TestPromotionOfAnUntestedCommitIsRefused(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(w *world)
		force string
		want  string
	}{
		{name: "never on alpha, forced past the stage order", force: "hotfix",
			want: "artifact: promote: prod builds nothing, it runs the image tested on alpha, and c4295bd was never built and tested there: deploy it to alpha first"},
		{name: "built for alpha alone", setup: func(w *world) {
			w.seedWith("alpha", sha1, deploy.Succeeded, deploy.Checkpoint{Image: repoURI + "@sha256:" + strings.Repeat("a", 64)})
		}, want: "and deploy #1 there ran an image built for alpha alone, with its configuration baked in"},
		{name: "tested by tag", setup: func(w *world) {
			w.seedWith("alpha", sha1, deploy.Succeeded, deploy.Checkpoint{Image: repoURI + ":v1", Artifact: &deploy.Artifact{Built: true}})
		}, want: "not an image by digest"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newPromoteWorld(t)
			if tt.setup != nil {
				tt.setup(w)
			}
			d := w.drive(w.promoteRunner(w.st), 60*time.Second, w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod", Force: tt.force}))[0]
			if d.State != deploy.Failed || !strings.Contains(d.Error, tt.want) || !strings.HasPrefix(d.Error, "preflight: ") {
				t.Fatalf("deploy = %s: %q, want a preflight refusal saying %q", d.State, d.Error, tt.want)
			}
			if n := len(w.aws.CodeBuild.Builds()); n != 0 {
				t.Errorf("%d builds for a promoted stage", n)
			}
			if n := len(w.aws.Calls("PutImage")) + len(w.aws.Calls("InitiateLayerUpload")); n != 0 {
				t.Errorf("%d writes to a registry", n)
			}
			if got := w.images("api-prod"); got != v1API {
				t.Errorf("prod runs %s, want what it ran", got)
			}
		})
	}
}

// loseCopiedCheckpoint is a store that is unreachable once, when the pipeline saves the
// checkpoint that says the copy is done: as a process killed right after CopyImage returned.
type loseCopiedCheckpoint struct {
	*store.Store
	lost atomic.Bool
}

func (s *loseCopiedCheckpoint) Advance(ctx context.Context, l store.Lease, u store.Update) error {
	if strings.Contains(string(u.Checkpoint), `"copied":true`) && s.lost.CompareAndSwap(false, true) {
		return errors.New("store unreachable")
	}
	return s.Store.Advance(ctx, l, u)
}

// TestCrashMidCopyCopiesOnce stops the copy into prod's registry at each point a crash or an
// outage can: after the blobs went up but before the manifest (PutImage failing past the SDK's
// retries), with PutImage's answer lost, and with the copy done but the checkpoint saying so
// never saved. Each time the resumed step finishes the copy: every blob uploaded once, the
// manifest put once, one build in all, and prod runs the tested digest.
func TestCrashMidCopyCopiesOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault func(w *world)
		lose  bool
		puts  string // the statuses of PutImage's calls: one stored the manifest
	}{
		// Three failures are the SDK's tries: the step fails, and its next try finds every blob.
		{name: "blobs up, manifest not", fault: func(w *world) { w.aws.FailNext("PutImage", 3) }, puts: "500 500 500 200"},
		// The SDK tries again and ECR says the image exists: done, not stored twice.
		{name: "manifest put, answer lost", fault: func(w *world) { w.aws.LoseAnswers("PutImage", 1) }, puts: "500 400"},
		// The resumed step finds the image in prod's registry and calls no PutImage.
		{name: "copied, checkpoint lost", lose: true, puts: "200"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newPromoteWorld(t)
			r := w.promoteRunner(w.st)
			ds := w.through(r, sha1, "test", "alpha")
			_, digest, _ := deploy.SplitDigest(checkpointOf(t, ds[1]).Image)
			st := &loseCopiedCheckpoint{Store: w.st}
			if tt.fault != nil {
				tt.fault(w)
			}
			if tt.lose {
				st.lost.Store(false)
			} else {
				st.lost.Store(true) // never lose it
			}
			pr := w.promoteRunner(st)
			id := w.ask(deploy.Request{Stage: "prod", SHA: sha1, Ref: "prod"})
			d := w.driveThroughFaults(pr, 90*time.Second, id)
			if d.State != deploy.Succeeded {
				t.Fatalf("prod: %s: %s", d.State, d.Error)
			}
			if tt.lose && !st.lost.Load() {
				t.Fatal("the checkpoint after the copy was never lost: the fault did not happen")
			}
			if got, want := w.images("api-prod"), prodRepoURI+"@"+digest; got != want {
				t.Errorf("prod runs %s, want %s", got, want)
			}
			var puts []string
			for _, c := range w.aws.Calls("PutImage") {
				puts = append(puts, fmt.Sprint(c.Status))
			}
			if got := strings.Join(puts, " "); got != tt.puts {
				t.Errorf("PutImage answered %s, want %s: the manifest stored once", got, tt.puts)
			}
			if n := okCalls(w.aws, "CompleteLayerUpload"); n != 3 {
				t.Errorf("%d blobs uploaded, want each of the image's 3 once", n)
			}
			if n := len(w.aws.CodeBuild.Builds()); n != 1 {
				t.Errorf("%d builds, want the one for test", n)
			}
			cp := checkpointOf(t, d)
			if cp.Artifact == nil || !cp.Artifact.Copied {
				t.Errorf("artifact = %+v, want the copy recorded", cp.Artifact)
			}
		})
	}
}

// driveThroughFaults is drive for a store that fails: a failed save leaves the deploy leased
// until the lease lapses, then the runner takes it up again.
func (w *world) driveThroughFaults(r *Runner, limit time.Duration, id int64) deploy.Deploy {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		d, err := w.st.Deploy(context.Background(), id)
		if err != nil {
			w.t.Fatal(err)
		}
		if d.State.Final() {
			return d
		}
		if ctx.Err() != nil {
			w.t.Fatalf("deploy did not end within %s: %s", limit, d.State)
		}
		worked, err := r.RunOnce(ctx)
		if err != nil || !worked {
			time.Sleep(20 * time.Millisecond)
		}
	}
}
