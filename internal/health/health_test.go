package health

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

func load(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &d
}

func TestDeployment(t *testing.T) {
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		file    string
		elapsed time.Duration
		timeout time.Duration
		phase   Phase
		updated int32
		message string
	}{
		{"progressing-first-pod.yaml", time.Second, time.Minute, Progressing, 1, "1 of 3 pods updated"},
		{"complete.yaml", time.Second, time.Minute, Complete, 3, "all 3 pods updated and available"},
		{"old-pod-terminating.yaml", time.Second, time.Minute, Progressing, 3, "3 of 3 pods updated; 1 old pods terminating"},
		{"not-ready.yaml", time.Second, time.Minute, Progressing, 3, "3 of 3 pods updated; 2 of 3 available"},
		{"deadline-exceeded.yaml", time.Second, time.Minute, Failed, 1, `progress deadline exceeded: ReplicaSet "api-7d9c" has timed out progressing. (1 of 3 pods updated)`},
		{"stale-deadline-after-rollback.yaml", time.Second, time.Minute, Progressing, 0, "waiting for the controller to observe generation 4"},
		{"stale-deadline-after-rollback.yaml", 2 * time.Minute, time.Minute, Failed, 0, "timed out after 1m0s: waiting for the controller to observe generation 4"},
		{"progressing-first-pod.yaml", 2 * time.Minute, time.Minute, Failed, 1, "timed out after 1m0s: 1 of 3 pods updated"},
		{"progressing-first-pod.yaml", 2 * time.Hour, 0, Progressing, 1, "1 of 3 pods updated"},
		{"paused.yaml", time.Second, time.Minute, Failed, 0, "the Deployment is paused: 0 of 2 pods updated"},
		{"default-replicas.yaml", time.Second, time.Minute, Complete, 1, "all 1 pods updated and available"},
		{"complete.yaml", 2 * time.Minute, time.Minute, Complete, 3, "all 3 pods updated and available"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.elapsed.String(), func(t *testing.T) {
			s := Deployment(load(t, tt.file), start, start.Add(tt.elapsed), tt.timeout)
			if s.Phase != tt.phase || s.Updated != tt.updated || s.Message != tt.message {
				t.Errorf("got %s %d %q, want %s %d %q", s.Phase, s.Updated, s.Message, tt.phase, tt.updated, tt.message)
			}
		})
	}
}
