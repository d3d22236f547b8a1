package report

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/kube"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func fixture(state deploy.State) view {
	d := deploy.Deploy{ID: 7, State: state, CreatedAt: at(0), StartedAt: at(1),
		Request: deploy.Request{App: "hello", Stage: "test", Repo: "acme/hello", SHA: "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
			Trigger: deploy.Trigger{Event: "pull_request", PR: 2, Actor: "octocat"}}}
	cp := deploy.Checkpoint{
		Steps: []deploy.StepRecord{
			{Name: "Preflight", Status: deploy.StepSucceeded, Started: at(1), Finished: at(2), Detail: "secret `hello/test`, 2 Deployment(s), Secret `hello-env-key`"},
			{Name: "Build", Status: deploy.StepSucceeded, Started: at(2), Finished: at(194),
				Link: "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fhello"},
			{Name: "Rollout", Status: deploy.StepRunning, Started: at(194), Detail: "api: 2 of 3 pods updated"},
		},
		BuildPhase: "COMPLETED", BuildStarted: at(2), ExpectedBuild: 3 * time.Minute, Progress: "api: 2 of 3 pods updated",
		Image:    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Replaced: []kube.Image{{Deployment: "api", Container: "api", Image: "registry.example/api:v1"}},
	}
	return view{D: d, CP: cp, Now: at(230), WebURL: "https://github.com", Compare: "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}
}

// TestGolden pins the check runs and pull-request comments of a normal build-and-rollout deploy
// to a stage without slots, from building to rolled back.
func TestGolden(t *testing.T) {
	building := fixture(deploy.Building)
	building.CP.Steps = building.CP.Steps[:2]
	building.CP.Steps[1] = deploy.StepRecord{Name: "Build", Status: deploy.StepRunning, Started: at(2), Detail: "phase BUILD",
		Link: "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1"}
	building.CP.BuildPhase, building.CP.Image, building.Now = "BUILD", "", at(80)

	succeeded := fixture(deploy.Succeeded)
	succeeded.D.FinishedAt = at(241)
	succeeded.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepSucceeded, Started: at(194), Finished: at(241), Detail: "2 Deployment(s) updated"}

	failed := fixture(deploy.Failed)
	failed.D.Error = "build failed in BUILD: Error while executing command: docker build . Reason: exit status 1"
	failed.D.FinishedAt = at(150)
	failed.CP.Steps = failed.CP.Steps[:2]
	failed.CP.Steps[1] = deploy.StepRecord{Name: "Build", Status: deploy.StepFailed, Started: at(2), Finished: at(150), Detail: failed.D.Error,
		Link: "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1"}
	failed.CP.Image = ""

	rolledBack := fixture(deploy.RolledBack)
	rolledBack.D.Error = `rolled back: api: progress deadline exceeded: ReplicaSet "api-7d9c" has timed out progressing. (1 of 3 pods updated)`
	rolledBack.D.FinishedAt = at(320)
	rolledBack.CP.Steps[2] = deploy.StepRecord{Name: "Rollout", Status: deploy.StepFailed, Started: at(194), Finished: at(290), Detail: `api: progress deadline exceeded`}
	rolledBack.CP.Steps = append(rolledBack.CP.Steps, deploy.StepRecord{Name: "Rollback", Status: deploy.StepSucceeded, Started: at(290), Finished: at(320), Detail: "2 Deployment(s) updated"})

	for _, tt := range []struct {
		name string
		text string
	}{
		{"checkrun-building", building.title() + "\n\n" + building.summary()},
		{"checkrun-rolling-out", fixture(deploy.RollingOut).title() + "\n\n" + fixture(deploy.RollingOut).summary()},
		{"checkrun-succeeded", succeeded.title() + "\n\n" + succeeded.summary()},
		{"checkrun-build-failed", failed.title() + "\n\n" + failed.summary()},
		{"checkrun-rolled-back", rolledBack.title() + "\n\n" + rolledBack.summary()},
		{"comment-succeeded", succeeded.comment()},
		{"comment-rolled-back", rolledBack.comment()},
	} {
		t.Run(tt.name, func(t *testing.T) { checkGolden(t, tt.name, tt.text) })
	}
}

// checkGolden compares text with testdata/<name>.md, which -update rewrites.
func checkGolden(t *testing.T, name, text string) {
	t.Helper()
	golden := filepath.Join("testdata", name+".md")
	if *update {
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, golden, text)
	}
}

// checkRunText is what a check run shows: its title, then its summary.
func checkRunText(v view) string { return v.title() + "\n\n" + v.summary() }

// TestStatusDescriptionFitsGitHub proves a Deployment status's description never exceeds GitHub's
// 140 characters, however long the error.
func TestStatusDescriptionFitsGitHub(t *testing.T) {
	v := fixture(deploy.Failed)
	v.D.Error = string(make([]byte, 500))
	if n := len([]rune(v.statusDescription())); n > 140 {
		t.Errorf("description of %d characters; GitHub allows 140", n)
	}
}

// TestWebURL proves links go to GitHub's web root, for github.com and GitHub Enterprise alike.
func TestWebURL(t *testing.T) {
	for api, web := range map[string]string{
		"https://api.github.com/":         "https://github.com",
		"https://ghe.example.com/api/v3/": "https://ghe.example.com",
		"http://127.0.0.1:4000/":          "http://127.0.0.1:4000",
	} {
		if got := WebURL(api); got != web {
			t.Errorf("WebURL(%s) = %s, want %s", api, got, web)
		}
	}
}

// TestBuildOutputInACheckRunMentionsNobodyAndFitsGitHub: a failed build's message is the build's
// own output, which a pull request's author controls; in a check run or a pull-request comment it
// mentions nobody, opens no HTML, and a huge one is cut to GitHub's 65,535 characters with a link
// (GitHub refuses the whole report otherwise).
func TestBuildOutputInACheckRunMentionsNobodyAndFitsGitHub(t *testing.T) {
	v := fixture(deploy.Failed)
	v.D.Error = "build failed in BUILD: @acme/everyone <img src=x> " + strings.Repeat("npm ERR! a very long line of output ", 3000)
	v.D.Force = "hotfix @acme/sre"
	v.D.FinishedAt = at(150)
	v.CP.Steps[1] = deploy.StepRecord{Name: "Build", Status: deploy.StepFailed, Started: at(2), Finished: at(150), Detail: v.D.Error}
	for name, body := range map[string]string{"summary": v.summary(), "comment": v.comment(), "command comment": v.commandComment()} {
		if len(body) > 65535 {
			t.Errorf("%s: %d bytes, over GitHub's limit", name, len(body))
		}
		if !strings.Contains(body, "[Read the whole]("+v.commitURL()+")") {
			t.Errorf("%s: cut without a link to the whole", name)
		}
		if strings.Contains(body, "@acme/everyone") || strings.Contains(body, "<img") {
			t.Errorf("%s: the build's output mentions or opens HTML", name)
		}
		if strings.Contains(body, "by @octocat: hotfix @acme/sre") {
			t.Errorf("%s: the force reason is not in a code span", name)
		}
	}
}
