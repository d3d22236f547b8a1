package githubtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-github/v88/github"
)

// The contents API serves a file as it stands on the default branch (or at a ref), with an
// ETag that a conditional request turns into 304; the commits API finds the commits that
// changed a path; a push lists the paths its commits added, modified and removed.
func TestContentsAndCommitsOfAPath(t *testing.T) {
	s, rc := hooked(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	const repo, file = "acme/web", ".github/stagecoach.yml"
	base, one, two, pr := sha('1'), sha('2'), sha('3'), sha('4')
	s.SetRef(repo, "main", base)
	s.SetFiles(repo, base, map[string]string{"README.md": "hello"})
	s.PushFiles(repo, "main", one, "alice", map[string]string{file: "apps: []\n"})
	s.AddCommit(repo, pr, []string{one}, "a pull request's change", 0)
	s.SetFiles(repo, pr, map[string]string{file: "stages: []\n"})
	s.SetRef(repo, "feature", pr)

	fc, _, resp, err := gh.Repositories.GetContents(ctx, "acme", "web", file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fc.GetContent(); got != "apps: []\n" || fc.GetSHA() != blobSHA("apps: []\n") {
		t.Errorf("default branch: %q (blob %s), want the default branch's file", got, fc.GetSHA())
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	fc, _, _, err = gh.Repositories.GetContents(ctx, "acme", "web", file, &github.RepositoryContentGetOptions{Ref: "feature"})
	if got, _ := fc.GetContent(); err != nil || got != "stages: []\n" {
		t.Errorf("at feature: %q, %v", got, err)
	}

	conditional := func() int {
		req, err := gh.NewRequest(ctx, "GET", "repos/acme/web/contents/"+file, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("If-None-Match", etag)
		resp, err := gh.Do(req, nil)
		var er *github.ErrorResponse
		if err != nil && !errors.As(err, &er) {
			t.Fatal(err)
		}
		return status(resp)
	}
	if got := conditional(); got != http.StatusNotModified {
		t.Errorf("unchanged file, If-None-Match its ETag: %d, want 304", got)
	}
	s.PushFiles(repo, "main", two, "alice", nil, file)
	if got := conditional(); got != http.StatusNotFound {
		t.Errorf("removed file: %d, want 404", got)
	}

	commits, _, err := gh.Repositories.ListCommits(ctx, "acme", "web", &github.CommitsListOptions{Path: file, ListOptions: github.ListOptions{PerPage: 1}})
	if err != nil || len(commits) != 1 || commits[0].GetSHA() != two {
		t.Errorf("the last commit that changed the file: %v, %v; want %s", commits, err, two)
	}
	all, _, err := gh.Repositories.ListCommits(ctx, "acme", "web", &github.CommitsListOptions{Path: file})
	if err != nil || len(all) != 2 || all[1].GetSHA() != one {
		t.Errorf("history of the file: %d commits, %v; want %s and %s", len(all), err, two, one)
	}

	flush(t, s)
	var added, removed []string
	for _, d := range rc.deliveries() {
		var p struct {
			Commits []struct{ Added, Modified, Removed []string }
		}
		if d.event != "push" {
			continue
		}
		if err := json.Unmarshal(d.body, &p); err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Commits {
			added, removed = append(added, c.Added...), append(removed, c.Removed...)
		}
	}
	if len(added) != 1 || added[0] != file || len(removed) != 1 || removed[0] != file {
		t.Errorf("pushes listed added %v and removed %v, want the file in each", added, removed)
	}
}
