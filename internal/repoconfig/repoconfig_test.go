package repoconfig

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// A good file pushed to the default branch is in force on the next lookup, kept in the store
// with its commit, blob and ETag, and its commit gets a successful stagecoach/config check run.
func TestGoodFileIsPutInForce(t *testing.T) {
	w := newWorld(t)
	w.push(sha('1'), goodFile)
	if got := w.buildspec(); got != "buildspec.yaml" {
		t.Fatalf("before the job ran: %q; the handler must not read GitHub", got)
	}
	w.work()
	if got := w.buildspec(); got != "ci/test.yml" {
		t.Errorf("test buildspec = %q, want the file's ci/test.yml", got)
	}
	if got := w.cfg.App("web").Stages["prod"].Buildspec; got != "buildspec.yaml" {
		t.Errorf("prod buildspec = %q, want the server's", got)
	}
	rc := w.row()
	if rc.Version != 1 || rc.SHA != sha('1') || rc.Content != goodFile || rc.ETag == "" || rc.Blob == "" || rc.Problems != "" {
		t.Errorf("store row = %+v", rc)
	}
	crs := w.checkRuns()
	if len(crs) != 1 || crs[0].HeadSHA != sha('1') || crs[0].Conclusion != "success" || !strings.Contains(crs[0].Summary, "`web`") {
		t.Errorf("check runs = %+v, want one success on the pushed commit", crs)
	}
}

// A file that tries what the server keeps is refused: the last good version stays in force,
// the commit that brought the file gets a failing check run with every problem (file:line, also
// as annotations on those lines), and a push that does not touch the file reads nothing.
func TestInvalidFileKeepsTheLastGoodVersionAndFailsItsCheckRun(t *testing.T) {
	w := newWorld(t)
	w.push(sha('1'), goodFile)
	w.work()
	w.push(sha('2'), evilFile)
	w.work()
	if got := w.buildspec(); got != "ci/test.yml" {
		t.Errorf("after the refused file: %q, want the last good file's ci/test.yml", got)
	}
	if got := w.cfg.App("web").Stages["prod"].SecretID; got != "web/prod" {
		t.Errorf("prod secret = %q: the refused file took effect", got)
	}
	if w.cfg.Stage("prod").Promoters.Users != nil {
		t.Errorf("prod's promoters changed: %+v", w.cfg.Stage("prod").Promoters)
	}
	rc := w.row()
	if rc.Version != 1 || rc.SHA != sha('1') || rc.ReadSHA != sha('2') || !strings.Contains(rc.Problems, config.RepoFilePath+":1: stages:") {
		t.Errorf("store row = %+v", rc)
	}
	crs := w.checkRuns()
	if len(crs) != 2 {
		t.Fatalf("check runs = %+v", crs)
	}
	bad := crs[1]
	if bad.HeadSHA != sha('2') || bad.Conclusion != "failure" {
		t.Errorf("the refused file's check run = %+v, want a failure on its commit", bad)
	}
	for _, want := range []string{config.RepoFilePath + ":1: stages: only the server's configuration sets this",
		config.RepoFilePath + ":7: apps[0].stages.prod.secret_id: not allowed", "`1111111` stays in force"} {
		if !strings.Contains(bad.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, bad.Summary)
		}
	}
	var lines []int
	for _, a := range bad.Annotations {
		if a.Path == config.RepoFilePath && a.AnnotationLevel == "failure" {
			lines = append(lines, a.StartLine)
		}
	}
	if !slices.Equal(lines, []int{1, 7}) {
		t.Errorf("annotated lines %v, want 1 and 7", lines)
	}

	reads := len(w.contentReads())
	w.gh.PushFiles(repo, "master", sha('3'), "alice", map[string]string{"README.md": "hello"})
	w.flush()
	w.work()
	if got := len(w.contentReads()); got != reads {
		t.Errorf("a push that does not change the file read it (%d reads, had %d)", got, reads)
	}

	w.push(sha('4'), betterFile) // fixed: in force again
	w.work()
	if got := w.buildspec(); got != "ci/test-2.yml" || len(w.cfg.App("web").Stages["test"].Deployments[0].Containers) != 2 {
		t.Errorf("after the fixed file: %q, %+v", got, w.cfg.App("web").Stages["test"])
	}
	if rc := w.row(); rc.Version != 2 || rc.SHA != sha('4') || rc.Problems != "" {
		t.Errorf("store row = %+v", rc)
	}
}

// A pull request's head is never read: neither the push to its branch nor the pull request
// makes Stagecoach read the file, and every read (a refresh, here) asks for the default branch
// (no ref), so the pull request's file counts only once merged.
func TestPullRequestHeadFileIsNeverRead(t *testing.T) {
	w := newWorld(t)
	w.push(sha('1'), goodFile)
	w.work()
	head := sha('p')
	w.gh.AddCommit(repo, head, []string{sha('1')}, "Make me a promoter", 0)
	w.gh.SetFiles(repo, head, map[string]string{config.RepoFilePath: evilFile})
	w.gh.PushBranch(repo, "mallory/config", head, "mallory")
	w.gh.OpenPull(repo, githubtest.Pull{Number: 7, Title: "Make me a promoter", HeadRef: "mallory/config", HeadSHA: head, BaseRef: "master", User: "mallory"})
	w.flush()
	w.work()
	if err := w.sync.Request(context.Background(), "refresh", 1); err != nil {
		t.Fatal(err)
	}
	w.work()
	for _, r := range w.contentReads() {
		if r.Query != "" {
			t.Errorf("a read named a ref: %s?%s", r.Path, r.Query)
		}
	}
	if got := w.buildspec(); got != "ci/test.yml" {
		t.Errorf("after the pull request: %q", got)
	}
	for _, cr := range w.checkRuns() {
		if cr.HeadSHA == head {
			t.Errorf("the pull request's head got a configuration check run: %+v", cr)
		}
	}
	if rc := w.row(); rc.ReadSHA != sha('1') || rc.Problems != "" {
		t.Errorf("store row = %+v: the pull request's file was read", rc)
	}
}

// A read of an unchanged file is conditional (304: it costs GitHub's rate limit nothing) and
// reports nothing again; a start reads unconditionally, and reports only a changed verdict.
func TestUnchangedFileIsReadByETag(t *testing.T) {
	w := newWorld(t)
	w.push(sha('1'), goodFile)
	w.work()
	ctx := context.Background()
	if err := w.sync.Request(ctx, "refresh", 1); err != nil {
		t.Fatal(err)
	}
	w.work()
	reads := w.contentReads()
	if last := reads[len(reads)-1]; last.Status != http.StatusNotModified {
		t.Errorf("refresh of an unchanged file answered %d, want 304", last.Status)
	}
	if err := w.sync.Request(ctx, "start", 1); err != nil {
		t.Fatal(err)
	}
	w.work()
	reads = w.contentReads()
	if last := reads[len(reads)-1]; last.Status != http.StatusOK {
		t.Errorf("a start read answered %d, want 200 (unconditional)", last.Status)
	}
	if n := len(w.checkRuns()); n != 1 {
		t.Errorf("%d check runs, want the first only", n)
	}
	if rc := w.row(); rc.Version != 1 {
		t.Errorf("re-reading the same file made version %d", rc.Version)
	}
}

// Removing the file puts the server's apps back, and says so on the removing commit.
func TestRemovedFileRestoresTheServersApps(t *testing.T) {
	w := newWorld(t)
	w.push(sha('1'), goodFile)
	w.work()
	w.push(sha('2'), "")
	w.work()
	if got := w.buildspec(); got != "buildspec.yaml" {
		t.Errorf("after the removal: %q, want the server's", got)
	}
	crs := w.checkRuns()
	if len(crs) != 2 || crs[1].HeadSHA != sha('2') || crs[1].Conclusion != "success" || !strings.Contains(crs[1].Title, "removed") {
		t.Errorf("check runs = %+v", crs)
	}
	if rc := w.row(); rc.Version != 2 || rc.Blob != "" || rc.Content != "" {
		t.Errorf("store row = %+v", rc)
	}
}

// A repository that never had a file gets no check run, and its apps are the server's.
func TestNoFileIsTheServersApps(t *testing.T) {
	w := newWorld(t)
	if err := w.sync.Request(context.Background(), "start", 1); err != nil {
		t.Fatal(err)
	}
	w.work()
	if n := len(w.checkRuns()); n != 0 {
		t.Errorf("%d check runs", n)
	}
	if got := w.buildspec(); got != "buildspec.yaml" {
		t.Errorf("buildspec = %q", got)
	}
}
