package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMergeDeploysToTest is the pipeline end to end, as a user sees it: a merged pull request's
// webhook goes in; a CodeBuild build (AWS test servers), a rolling update on a real
// kube-apiserver, a completed check run, a GitHub Deployment with its statuses and one comment on
// the pull request come out, with every GitHub request checked against GitHub's description.
func TestMergeDeploysToTest(t *testing.T) {
	w := newDeployWorld(t, 50*time.Millisecond)
	s, gh, kc, ns, ctx := w.s, w.gh, w.kc, w.ns, context.Background()

	body, _ := os.ReadFile("../../handlers/testdata/pull_request_closed_merged.json")
	if code, answer := s.deliver(t, "pull_request", "merge-1", body, s.secret); code != 202 {
		t.Fatalf("delivery: %d %s", code, answer)
	}
	eventually(t, "the deploy to succeed", func() bool {
		d := s.deploys(t, "")[0]
		if d.State == "failed" || d.State == "rolled_back" {
			t.Fatalf("deploy %s", d.State)
		}
		return d.State == "succeeded"
	})
	eventually(t, "the reports to reach GitHub", func() bool {
		runs := gh.CheckRuns("Codertocat/Hello-World")
		return len(runs) == 1 && runs[0].Status == "completed" && len(gh.Comments("Codertocat/Hello-World", 2)) == 1
	})
	run := gh.CheckRuns("Codertocat/Hello-World")[0]
	if run.Conclusion != "success" || !strings.HasPrefix(run.Title, "Deployed c4295bd to test in ") || !strings.Contains(run.Summary, "| Rollout | ✅ succeeded |") {
		t.Errorf("check run = %s / %s:\n%s", run.Conclusion, run.Title, run.Summary)
	}
	deps := gh.Deployments("Codertocat/Hello-World")
	if len(deps) != 1 || deps[0].Environment != "test" || *deps[0].AutoMerge || len(deps[0].Contexts) != 0 || *deps[0].Production {
		t.Fatalf("deployments = %+v", deps)
	}
	var states []string
	for _, st := range deps[0].Statuses {
		states = append(states, st.State)
	}
	if strings.Join(states, ",") != "queued,in_progress,success" {
		t.Errorf("deployment statuses = %v, want queued, in_progress, success", states)
	}
	c := gh.Comments("Codertocat/Hello-World", 2)[0]
	if !strings.Contains(c.Body, "<!-- stagecoach:deploy hello/test -->") || !strings.Contains(c.Body, "This pull request is live on **test**") {
		t.Errorf("comment = %s", c.Body)
	}
	got, _ := kc.Clientset().AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
	if img := got.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:") {
		t.Errorf("api runs %s", img)
	}
	// The service's metrics saw the same calls and the deploy's end. Every answer uses one of the
	// test server's 5000 an hour, and the gauge shows the last one Stagecoach saw; the server
	// records a request only once its answer is written, so the two agree once both have caught
	// up with the last answer.
	var metricsText string
	eventually(t, "the rate-limit gauge to show GitHub's last answer", func() bool {
		resp, err := http.Get(s.internal + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metricsText = string(b)
		return strings.Contains(metricsText, fmt.Sprintf("stagecoach_github_rate_limit_remaining %d\n", 5000-len(gh.Requests())))
	})
	for _, want := range []string{
		`stagecoach_deploy_duration_seconds_count{result="succeeded",stage="test"} 1`,
		`stagecoach_aws_requests_total{code="200",service="codebuild"}`,
		`stagecoach_aws_requests_total{code="200",service="sts"} 1`,
		`stagecoach_github_requests_total{code="201"}`,
		`stagecoach_deploys{state="succeeded"} 1`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// A whole deploy costs at most 12 GitHub calls, plus the progress updates made while a step
	// ran; recovery's pass at start (its own User-Agent) is no part of it.
	total := 0
	for _, r := range gh.Requests() {
		if !strings.HasSuffix(r.UserAgent, "(recovery)") {
			total++
		}
	}
	stepChanges := 4 // preflight, building, rolling_out, succeeded
	progress := gh.Count("checks/update") - stepChanges
	t.Logf("GitHub calls: %d (%d check-run updates, %d of them progress while a step ran)", total, gh.Count("checks/update"), max(progress, 0))
	if total-max(progress, 0) > 12 {
		t.Errorf("%d GitHub calls beyond progress updates, want at most 12: %v", total-max(progress, 0), operations(gh))
	}
}

func operations(gh *githubtest.Server) []string {
	var ops []string
	for _, r := range gh.Requests() {
		ops = append(ops, fmt.Sprintf("%s=%d", r.Operation, r.Status))
	}
	return ops
}

// deployWorld is a running Stagecoach wired to the GitHub and AWS test servers and to a
// namespace on the real control plane with the app's Deployment and .env key Secret.
type deployWorld struct {
	s     *testServer
	gh    *githubtest.Server
	cloud *awstest.Env
	kc    *kubetest.Cluster
	ns    string
}

func newDeployWorld(t testing.TB, phase time.Duration) *deployWorld {
	kc := kubetest.Start(t)
	ns := kc.Namespace(t)
	ctx := context.Background()
	dep := kubetest.Deployment("api", "api")
	if _, err := kc.Clientset().AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Clientset().CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hello-env-key"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cloud := awstest.New(t)
	cloud.CodeBuild.SetScript(awstest.Script{PhaseDuration: phase})
	cloud.Secrets.Add("hello/test")
	awsEnv(t, cloud)
	gh := githubtest.New(t)
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600)
	s := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "e2e.db"), map[string]string{
		"STAGECOACH_GITHUB_APP_ID": fmt.Sprint(gh.AppID()), "STAGECOACH_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"STAGECOACH_GITHUB_API_URL": gh.URL(),
	}, cluster{kubeconfig: kc.Kubeconfig(), context: "kubetest", namespace: ns})

	return &deployWorld{s: s, gh: gh, cloud: cloud, kc: kc, ns: ns}
}
