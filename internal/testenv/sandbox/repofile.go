package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// The scenes of the repository's own configuration (config.RepoFilePath on master): the
// sandbox's server configuration lets the repository set test's buildspec and nothing else
// (allowed_overrides: [stages.test.buildspec]).

// repoBuildspec is the buildspec the repository's file gives test.
const repoBuildspec = "ci/buildspec-eks.yaml"

// The repository's files: one the server's configuration allows, and one that reaches for what
// only operators set (line 3: where the release images go).
const (
	goodRepoFile = "apps:\n  - name: " + app + "\n    stages:\n      test: {buildspec: " + repoBuildspec + "}\n"
	evilRepoFile = "apps:\n  - name: " + app + "\n    image_repository: 999999999999.dkr.ecr.eu-west-1.amazonaws.com/exfiltrate\n"
)

// repoFileScenes push the two files to master, the allowed one first.
func (w *World) repoFileScenes() []step {
	good, evil := commit("the repository's stagecoach.yml"), commit("alice's stagecoach.yml")
	return []step{
		{fmt.Sprintf("@lena pushes %s to master: test builds with %s", config.RepoFilePath, repoBuildspec), func(ctx context.Context) (string, error) {
			run, d, err := w.pushRepoFile(ctx, lead, good, goodRepoFile)
			if err != nil {
				return "", err
			}
			if run.Conclusion != "success" {
				return "", fmt.Errorf("the %s check run on %s concluded %s:\n%s", run.Name, deploy.ShortSHA(good), run.Conclusion, run.Summary)
			}
			return fmt.Sprintf("%s on %s: “%s”; the push deployed test too (deploy #%d)", run.Name, deploy.ShortSHA(good), run.Title, d.ID), nil
		}},
		{fmt.Sprintf("@alice pushes a %s that sends the images to another account's registry", config.RepoFilePath), func(ctx context.Context) (string, error) {
			run, d, err := w.pushRepoFile(ctx, developer, evil, evilRepoFile)
			if err != nil {
				return "", err
			}
			where := config.RepoFilePath + ":3: apps[0].image_repository: "
			if run.Conclusion != "failure" || !strings.Contains(run.Summary, where) {
				return "", fmt.Errorf("the %s check run on %s concluded %s without naming %q:\n%s", run.Name, deploy.ShortSHA(evil), run.Conclusion, where, run.Summary)
			}
			// The last good file stays in force: the push's deploy built with its buildspec, and
			// pushed to the operators' registry.
			var spec string
			for _, b := range w.AWS.CodeBuild.Builds() {
				if b.SourceVersion == evil {
					spec = b.Buildspec
				}
			}
			if spec != repoBuildspec || !strings.HasPrefix(d.Image, imageRepository+"@") {
				return "", fmt.Errorf("deploy #%d of the refused file built with buildspec %q and runs %s, want %s from %s", d.ID, spec, d.Image, repoBuildspec, imageRepository)
			}
			return fmt.Sprintf("%s failed on %s: “%s”; deploy #%d still built with %s, the last good file's, into the operators' registry",
				run.Name, deploy.ShortSHA(evil), strings.ReplaceAll(firstLineOf(run.Summary, where), "`", ""), d.ID, repoBuildspec), nil
		}},
	}
}

// pushRepoFile has who push a commit sha to master changing the repository's file to content,
// and waits for its stagecoach/config check run and for the push's deploy to test to succeed.
func (w *World) pushRepoFile(ctx context.Context, who, sha, content string) (githubtest.CheckRun, apiDeploy, error) {
	after, err := w.lastDeploy(ctx, "test")
	if err != nil {
		return githubtest.CheckRun{}, apiDeploy{}, err
	}
	w.GitHub.PushFiles(repo, "master", sha, who, map[string]string{config.RepoFilePath: content})
	var run githubtest.CheckRun
	err = w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, r := range w.GitHub.CheckRuns(repo) {
			if r.Name == "stagecoach/config" && r.HeadSHA == sha && r.Status == "completed" {
				run = r
				return "", true, nil
			}
		}
		return "stagecoach/config on " + deploy.ShortSHA(sha), false, nil
	})
	if err != nil {
		return run, apiDeploy{}, err
	}
	d, err := w.awaitDeploy(ctx, "test", sha, after)
	if err != nil {
		return run, d, err
	}
	if d.State != "succeeded" {
		return run, d, fmt.Errorf("the push's deploy to test ended %s: %s", d.State, d.Error)
	}
	return run, d, nil
}
