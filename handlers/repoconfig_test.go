package handlers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// repoConfigOn is testConfig with hello's repository allowed to set its buildspecs in its own
// file.
func repoConfigOn(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("repo.yaml", []byte(testConfig+"    allowed_overrides: [stages.*.buildspec]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// editPayload returns the fixture with edit applied to its decoded JSON.
func editPayload(t *testing.T, name string, edit func(p map[string]any)) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(fixture(t, name), &p); err != nil {
		t.Fatal(err)
	}
	edit(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// touching makes the push's one commit modify the repository's own configuration file.
func touching(p map[string]any) {
	p["commits"].([]any)[0].(map[string]any)["modified"] = []any{config.RepoFilePath}
}

func loads(res Result) []jobs.Job {
	var out []jobs.Job
	for _, j := range res.Jobs {
		if j.Kind == jobs.KindRepoConfigLoad {
			out = append(out, j)
		}
	}
	return out
}

// A push to the default branch that changes .github/stagecoach.yml records a job to read it,
// besides what the push deploys; the handler reads nothing from GitHub.
func TestPushChangingTheRepoFileRecordsALoad(t *testing.T) {
	h := &Push{cfg: repoConfigOn(t)}
	tests := []struct {
		name  string
		edit  func(map[string]any)
		loads int
	}{
		{"changes the file", touching, 1},
		{"removes the file", func(p map[string]any) {
			p["commits"].([]any)[0].(map[string]any)["removed"] = []any{config.RepoFilePath}
		}, 1},
		{"changes other files", func(map[string]any) {}, 0},
		{"lists no commits (the branch moved back)", func(p map[string]any) { p["commits"] = []any{} }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.Handle(context.Background(), Event{Name: "push", Delivery: "d1", Payload: editPayload(t, "push.json", tt.edit)})
			if err != nil {
				t.Fatal(err)
			}
			got := loads(res)
			if len(got) != tt.loads {
				t.Fatalf("%d load jobs, want %d: %+v", len(got), tt.loads, res.Jobs)
			}
			if len(res.Deploys) != 1 {
				t.Errorf("the push to master deploys test as before: %+v", res.Deploys)
			}
			if tt.loads == 0 {
				return
			}
			var p jobs.RepoConfigLoad
			if err := json.Unmarshal(got[0].Payload, &p); err != nil {
				t.Fatal(err)
			}
			if p.Repo != "Codertocat/Hello-World" || p.SHA != pushSHA || p.InstallationID != 1 || p.Reason != "push" {
				t.Errorf("payload = %+v", p)
			}
			if got[0].Lane != jobs.RepoConfigLane("Codertocat/Hello-World") || got[0].Key != "repoconfig.load:codertocat/hello-world:"+pushSHA {
				t.Errorf("lane %q, key %q", got[0].Lane, got[0].Key)
			}
		})
	}
}

// A branch that is not the default branch, a pull request's head included, never makes
// Stagecoach read the file: what a pull request changes in it counts once it is merged.
func TestPullRequestHeadConfigIsNeverRead(t *testing.T) {
	cfg := repoConfigOn(t)
	push := editPayload(t, "push.json", func(p map[string]any) {
		touching(p)
		p["ref"] = "refs/heads/add-config"
	})
	res, err := (&Push{cfg: cfg}).Handle(context.Background(), Event{Name: "push", Delivery: "d1", Payload: push})
	if err != nil {
		t.Fatal(err)
	}
	if got := loads(res); len(got) != 0 {
		t.Errorf("a push to a pull request's branch asked to read the file: %+v", got)
	}
	for _, name := range []string{"pull_request_opened.json", "pull_request_synchronize.json"} {
		res, err := (&PullRequest{cfg: cfg}).Handle(context.Background(), Event{Name: "pull_request", Delivery: "d1", Payload: fixture(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		if got := loads(res); len(got) != 0 {
			t.Errorf("%s asked to read the file: %+v", name, got)
		}
	}
}

// Without allowed_overrides (or with repo_config.enabled false) the file is never read.
func TestRepoFileIsNotReadWhenNothingIsAllowed(t *testing.T) {
	for name, cfg := range map[string]*config.Config{
		"no overrides": mustConfig(t),
		"disabled":     mustParseConfig(t, strings.Replace(testConfig, "apps:", "repo_config: {enabled: false}\napps:", 1)+"    allowed_overrides: [stages.*.buildspec]\n"),
	} {
		t.Run(name, func(t *testing.T) {
			res, err := (&Push{cfg: cfg}).Handle(context.Background(), Event{Name: "push", Delivery: "d1", Payload: editPayload(t, "push.json", touching)})
			if err != nil {
				t.Fatal(err)
			}
			if got := loads(res); len(got) != 0 {
				t.Errorf("load jobs: %+v", got)
			}
		})
	}
}

func mustParseConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
