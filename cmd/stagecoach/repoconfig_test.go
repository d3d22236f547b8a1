package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/signin"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// The running service takes a repository's own file from a push to the default branch, and
// refuses one that reaches for what operators keep, each with its stagecoach/config check run on
// the pushed commit; every GitHub call it makes is in GitHub's description.
func TestRepoFileOnTheRunningService(t *testing.T) {
	const repo = "Codertocat/Hello-World"
	gh := githubtest.New(t)
	root := strings.Repeat("e", 40)
	gh.AddCommit(repo, root, nil, "Initial commit", 0)
	gh.SetDefaultBranch(repo, "master")
	gh.SetRef(repo, "master", root)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(appConfig, filepath.Join(dir, "no-kubeconfig"), "none", "test") +
		"    allowed_overrides: [stages.*.buildspec]\n" +
		fmt.Sprintf("signin:\n  api_tokens: [{name: tests, sha256: %s}]\n", signin.HashToken(testToken))
	cfgFile := filepath.Join(dir, "repo-config.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "sqlite:"+filepath.Join(dir, "e2e.db"), map[string]string{
		"STAGECOACH_GITHUB_APP_ID":           fmt.Sprint(gh.AppID()),
		"STAGECOACH_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"STAGECOACH_GITHUB_API_URL":          gh.URL(),
	}, cluster{}, "--config", cfgFile, "--deploy=false")
	gh.SetWebhook(s.url+"/webhook", s.secret)

	checkRun := func(sha string) *githubtest.CheckRun {
		for _, cr := range gh.CheckRuns(repo) {
			if cr.Name == "stagecoach/config" && cr.HeadSHA == sha {
				return &cr
			}
		}
		return nil
	}
	good, bad := strings.Repeat("1", 40), strings.Repeat("2", 40)
	gh.PushFiles(repo, "master", good, "octocat", map[string]string{config.RepoFilePath: "apps:\n  - name: hello\n    stages: {test: {buildspec: ci/test.yml}}\n"})
	eventually(t, "the good file's check run", func() bool { return checkRun(good) != nil })
	if cr := checkRun(good); cr.Conclusion != "success" {
		t.Errorf("good file: %s %s", cr.Conclusion, cr.Summary)
	}
	gh.PushFiles(repo, "master", bad, "octocat", map[string]string{config.RepoFilePath: "apps:\n  - name: hello\n    repo: acme/other\n"})
	eventually(t, "the bad file's check run", func() bool { return checkRun(bad) != nil })
	if cr := checkRun(bad); cr.Conclusion != "failure" || !strings.Contains(cr.Summary, config.RepoFilePath+":3: apps[0].repo:") {
		t.Errorf("bad file: %s %s", cr.Conclusion, cr.Summary)
	}
	// Both pushes deploy test, as any push to master does (recorded; --deploy=false runs none).
	if n := len(s.deploys(t, "?app=hello")); n != 2 {
		t.Errorf("%d deploys recorded, want 2", n)
	}
}

// check-config checks a repository's own file against the server's, as Stagecoach will.
func TestCheckConfigOfARepoFile(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "stagecoach.yml")
	if err := os.WriteFile(evil, []byte("apps:\n  - name: maas-backend\n    image_repository: 999999999999.dkr.ecr.eu-west-1.amazonaws.com/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file string
		fail bool
		want string
	}{
		{"../../config/example-repo.yml", false, "ok\n"},
		{evil, true, evil + ":3: apps[0].image_repository: only the server's configuration sets this"},
	} {
		var out, errOut strings.Builder
		err := run(context.Background(), []string{"check-config", "--repo", "acme/maas-backend", "--repo-file", tt.file, "../../config/example.yaml"},
			func(string) string { return "" }, &out, &errOut)
		if (err != nil) != tt.fail || !strings.HasPrefix(out.String(), tt.want) {
			t.Errorf("%s: %v, printed %q, want %q", tt.file, err, out.String(), tt.want)
		}
	}
}
