package repoconfig

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestCheckRunSummaries checks the Markdown of each kind of stagecoach/config check run against
// its golden file (go test ./internal/repoconfig/ -update rewrites them).
func TestCheckRunSummaries(t *testing.T) {
	const commit, before = "1111111111111111111111111111111111111111", "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name string
		p    jobs.RepoConfigCheckRun
	}{
		{"in-force", jobs.RepoConfigCheckRun{Repo: repo, SHA: commit, Blob: "b1", Apps: []string{"web", "worker"}}},
		{"removed", jobs.RepoConfigCheckRun{Repo: repo, SHA: commit}},
		{"refused", jobs.RepoConfigCheckRun{Repo: repo, SHA: commit, Blob: "b2", InForce: before, Problems: []string{
			config.RepoFilePath + `:1: stages: only the server's configuration sets this: the stages, who may promote to them, their credentials tiers and clusters are the operators'`,
			config.RepoFilePath + `:7: apps[0].stages.prod.secret_id: not allowed: the server's configuration lets acme/web's file set only stages.*.buildspec of app web (allowed_overrides)`,
		}}},
		// What a file says comes back in problems (a key, a value): it must not close the block,
		// mention anyone, or hide behind bidirectional overrides.
		{"refused-hostile", jobs.RepoConfigCheckRun{Repo: repo, SHA: commit, Blob: "b3", Problems: []string{
			config.RepoFilePath + ":2: unknown field \"````\\n@acme/everyone <img src=x>\" ",
			config.RepoFilePath + ":3: apps[0].name: no app \"\u202egnp.exe\" is built from acme/web",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summary(tt.p)
			golden := filepath.Join("testdata", "checkrun-"+tt.name+".md")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("summary:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// Refused problems become annotations on their lines of the file, at most GitHub's 50 a
// request; the conclusion says what the summary says.
func TestCheckRunOptions(t *testing.T) {
	var problems []string
	for i := 1; i <= 60; i++ {
		problems = append(problems, config.RepoFilePath+":"+strings.Repeat("1", 1)+": x")
	}
	problems = append(problems, "no line here")
	opts := CheckRunOptions(jobs.RepoConfigCheckRun{Repo: repo, SHA: "abc", Blob: "b", Problems: problems}, "https://github.com")
	if opts.GetConclusion() != "failure" || len(opts.Output.Annotations) != maxAnnotations || opts.Name != CheckName {
		t.Errorf("conclusion %s, %d annotations", opts.GetConclusion(), len(opts.Output.Annotations))
	}
	if a := opts.Output.Annotations[0]; a.GetPath() != config.RepoFilePath || a.GetStartLine() != 1 || a.GetMessage() != "x" {
		t.Errorf("annotation = %+v", a)
	}
	ok := CheckRunOptions(jobs.RepoConfigCheckRun{Repo: repo, SHA: "abc", Blob: "b", Apps: []string{"web"}}, "https://github.com")
	if ok.GetConclusion() != "success" || ok.GetDetailsURL() != "https://github.com/acme/web/blob/abc/"+config.RepoFilePath {
		t.Errorf("in force: %s, %s", ok.GetConclusion(), ok.GetDetailsURL())
	}
}
