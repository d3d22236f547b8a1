package repoconfig

import (
	"context"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

// Replicas sharing one PostgreSQL apply the same last good version: the one that read the file
// at once, the others when they look (every Poll, and before a deploy of the repository starts);
// a refused file changes none of them; a replica started later applies the version in force at
// its first look.
func TestReplicasApplyTheSameVersionOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	gh := githubtest.New(t)
	a := newWorldOn(t, gh, url)
	b := newWorldOn(t, gh, url) // GitHub delivers to b's intake: any replica takes webhooks
	ctx := context.Background()

	a.push(sha('1'), goodFile)
	if ready, err := b.sync.Ready(ctx, repo); err != nil || ready {
		t.Fatalf("b.Ready while the read is recorded and not run = %v, %v; want false", ready, err)
	}
	a.work() // replica a runs the read
	if got := a.buildspec(); got != "ci/test.yml" {
		t.Errorf("a, which read the file: %q", got)
	}
	if got := b.buildspec(); got != "buildspec.yaml" {
		t.Errorf("b before it looked: %q", got)
	}
	if ready, err := b.sync.Ready(ctx, repo); err != nil || !ready {
		t.Fatalf("b.Ready after the read = %v, %v", ready, err)
	}
	if got := b.buildspec(); got != "ci/test.yml" {
		t.Errorf("b once a deploy of the repository may start: %q, want the version in force", got)
	}

	a.push(sha('2'), evilFile)
	b.work() // this time replica b reads (and refuses) it
	if err := a.sync.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*world{"a": a, "b": b} {
		if got := w.buildspec(); got != "ci/test.yml" {
			t.Errorf("%s after the refused file: %q", name, got)
		}
	}

	a.push(sha('3'), betterFile)
	a.work()
	if err := b.sync.Sync(ctx); err != nil { // what b's poll does
		t.Fatal(err)
	}
	c := newWorldOn(t, gh, url)
	if err := c.sync.Sync(ctx); err != nil { // what a replica does as it starts
		t.Fatal(err)
	}
	for name, w := range map[string]*world{"a": a, "b": b, "c": c} {
		if got := w.buildspec(); got != "ci/test-2.yml" {
			t.Errorf("%s: %q, want the newest version in force", name, got)
		}
		if n := len(w.cfg.App("web").Stages["test"].Deployments[0].Containers); n != 2 {
			t.Errorf("%s: %d containers, want the file's 2", name, n)
		}
	}
	if rc := a.row(); rc.Version != 2 || rc.SHA != sha('3') {
		t.Errorf("store row = %+v", rc)
	}
}

// A read GitHub keeps failing holds deploys of the repository back for MaxWait at most.
func TestReadyDoesNotWaitForeverForARead(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, _, err := w.st.EnqueueJob(ctx, jobs.RepoConfigLoadJob(jobs.RepoConfigLoad{Repo: repo, Reason: "push"}, "stuck")); err != nil {
		t.Fatal(err)
	}
	if ready, err := w.sync.Ready(ctx, repo); err != nil || ready {
		t.Fatalf("Ready with a read just recorded = %v, %v; want false", ready, err)
	}
	later := NewSyncer(w.cfg, w.st, SyncOptions{MaxWait: time.Minute, Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}, quiet())
	if ready, err := later.Ready(ctx, repo); err != nil || !ready {
		t.Errorf("Ready two minutes later = %v, %v; want true", ready, err)
	}
	if ready, err := w.sync.Ready(ctx, "acme/elsewhere"); err != nil || !ready {
		t.Errorf("Ready of a repository whose file is not read = %v, %v", ready, err)
	}
}
