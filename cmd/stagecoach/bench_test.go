package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkDeployLatency measures what Stagecoach adds to a deploy, on the service as it runs
// (production poll schedule), the AWS test servers and the real control plane: from the moment
// the build SUCCEEDED to the moment the new image is set on the Deployment, and from the moment
// the rollout is complete to the moment the check run is completed on GitHub. The seed's script
// polls every 30 s. Each iteration is one merged pull request (a 12 s build); the first deploy
// only teaches Stagecoach the build's expected duration and is not measured.
//
//	go test -run '^$' -bench DeployLatency -benchtime 5x ./cmd/stagecoach/
func BenchmarkDeployLatency(b *testing.B) {
	w := newDeployWorld(b, 1100*time.Millisecond) // 11 phases: 12.1 s builds
	base, _ := os.ReadFile("../../handlers/testdata/pull_request_closed_merged.json")
	events := watchDeployment(b, w)
	deployOnce := func(i int) (imageSet, reported time.Duration) {
		sha := fmt.Sprintf("%040x", i+1)
		body := bytes.ReplaceAll(base, []byte(mergeSHA), []byte(sha))
		if code, answer := w.s.deliver(b, "pull_request", fmt.Sprintf("bench-%d", i), body, w.s.secret); code != 202 {
			b.Fatalf("delivery: %d %s", code, answer)
		}
		var id int64
		eventually(b, "the deploy to end", func() bool {
			d := w.s.deploys(b, "?limit=1")[0]
			id = d.ID
			return d.SHA == sha && (d.State == "succeeded" || d.State == "failed" || d.State == "rolled_back")
		})
		eventually(b, "the check run to complete", func() bool {
			for _, r := range w.gh.CheckRuns("Codertocat/Hello-World") {
				if r.HeadSHA == sha && r.Status == "completed" {
					return true
				}
			}
			return false
		})
		build := w.cloud.CodeBuild.Builds()[len(w.cloud.CodeBuild.Builds())-1]
		gen := events.generationOf(sha)
		set, complete := events.at(gen)
		var completed time.Time
		for _, r := range w.gh.Requests() {
			if r.Operation == "checks/update" && bytes.Contains(r.Body, []byte(`"completed"`)) && r.At.After(complete) {
				completed = r.At
				break
			}
		}
		if build.Ended.IsZero() || set.IsZero() || complete.IsZero() || completed.IsZero() {
			b.Fatalf("deploy %d: missing a timestamp: build ended %v, image set %v, rollout complete %v, check run completed %v", id, build.Ended, set, complete, completed)
		}
		return set.Sub(build.Ended), completed.Sub(complete)
	}
	deployOnce(-1) // teaches the expected build duration
	var toImage, toReport []time.Duration
	b.ResetTimer()
	for i := range b.N {
		a, r := deployOnce(i)
		toImage, toReport = append(toImage, a), append(toReport, r)
	}
	b.StopTimer()
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Milliseconds()), name+"-p99-ms")
		b.Logf("%s: %v", name, ds)
	}
	report("build-succeeded-to-image-set", toImage)
	report("rollout-complete-to-check-run-completed", toReport)
}

// deploymentEvents remembers, per generation of the app's Deployment, when the watch first saw
// it (the new image set) and when it first saw that generation's rollout complete.
type deploymentEvents struct {
	mu       sync.Mutex
	set      map[int64]time.Time
	complete map[int64]time.Time
	sha      map[string]int64
}

func (e *deploymentEvents) at(gen int64) (time.Time, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set[gen], e.complete[gen]
}

func (e *deploymentEvents) generationOf(sha string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sha[sha]
}

func watchDeployment(tb testing.TB, w *deployWorld) *deploymentEvents {
	e := &deploymentEvents{set: map[int64]time.Time{}, complete: map[int64]time.Time{}, sha: map[string]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	wt, err := w.kc.Clientset().AppsV1().Deployments(w.ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=api"})
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		for ev := range wt.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			now := time.Now()
			e.mu.Lock()
			if _, seen := e.set[d.Generation]; !seen {
				e.set[d.Generation] = now
				e.sha[d.Annotations["stagecoach.dev/sha"]] = d.Generation
			}
			st := d.Status
			if _, seen := e.complete[d.Generation]; !seen && st.ObservedGeneration >= d.Generation &&
				st.UpdatedReplicas == *d.Spec.Replicas && st.AvailableReplicas == *d.Spec.Replicas && st.Replicas == *d.Spec.Replicas {
				e.complete[d.Generation] = now
			}
			e.mu.Unlock()
		}
	}()
	return e
}
