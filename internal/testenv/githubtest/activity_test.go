package githubtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"
)

// TestActivityLogNamesWhoMovedEachBranch: every branch update (a push, a force push, a merge,
// a new branch, the App's own ref moves) is in the activity log with who made it, newest first,
// filtered by ref and paged by the Link header's after cursor; tags and seeded refs are not.
func TestActivityLogNamesWhoMovedEachBranch(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	const repo = "acme/app"
	s.AddCommit(repo, sha('e'), nil, "root", 0)
	s.SetRef(repo, "main", sha('e')) // seeded: no activity
	s.SetRef(repo, "alpha", sha('e'))
	s.PushBranch(repo, "alpha", sha('a'), "lena")
	s.AddCommit(repo, sha('b'), []string{sha('e')}, "not on a", 0)
	s.PushBranch(repo, "alpha", sha('b'), "mallory") // drops a: forced
	s.MergePull(repo, Pull{Number: 3, Title: "t", HeadRef: "f", HeadSHA: sha('f')}, sha('m'), "alice")
	s.CreateTag(repo, "v1", sha('m'), "lena", false)
	s.PushBranch(repo, "feature", sha('c'), "bob")
	if _, _, err := gh.Git.UpdateRef(ctx, "acme", "app", "heads/alpha", github.UpdateRef{SHA: sha('m'), Force: github.Ptr(true)}); err != nil {
		t.Fatal(err)
	}

	all, _, err := gh.Repositories.ListRepositoryActivities(ctx, "acme", "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range all {
		got = append(got, fmt.Sprintf("%s %s %.1s>%.1s %s", a.ActivityType, strings.TrimPrefix(a.Ref, "refs/heads/"), a.Before, a.After,
			a.GetActor().GetLogin()))
	}
	want := "force_push alpha b>m stagecoach[bot] | branch_creation feature 0>c bob | pr_merge main e>m alice | " +
		"force_push alpha a>b mallory | push alpha e>a lena"
	if strings.Join(got, " | ") != want {
		t.Errorf("activity =\n%s\nwant\n%s", strings.Join(got, " | "), want)
	}
	if bot := all[0].GetActor(); bot.GetType() != "Bot" || all[0].Timestamp == nil || all[0].NodeID == "" {
		t.Errorf("the App's move: actor %v, timestamp %v", bot, all[0].Timestamp)
	}

	// A ref filter (either spelling) and pages of two, newest first, through the after cursor.
	for _, ref := range []string{"alpha", "refs/heads/alpha"} {
		opts := &github.ListRepositoryActivityOptions{Ref: ref, PerPage: 2}
		var pages []string
		for {
			page, resp, err := gh.Repositories.ListRepositoryActivities(ctx, "acme", "app", opts)
			if err != nil {
				t.Fatal(err)
			}
			var p []string
			for _, a := range page {
				p = append(p, a.GetActor().GetLogin())
			}
			pages = append(pages, strings.Join(p, ","))
			if resp.After == "" {
				break
			}
			opts.After = resp.After
		}
		if got := strings.Join(pages, " / "); got != "stagecoach[bot],mallory / lena" {
			t.Errorf("ref %s in pages of two = %s", ref, got)
		}
	}
	asc, _, err := gh.Repositories.ListRepositoryActivities(ctx, "acme", "app",
		&github.ListRepositoryActivityOptions{Direction: "asc", ActivityType: "force_push", Actor: "MALLORY", TimePeriod: "day"})
	if err != nil || len(asc) != 1 || asc[0].After != sha('b') {
		t.Errorf("filtered by type, actor and period: %v, %v", asc, err)
	}

	_, _, err = gh.Repositories.ListRepositoryActivities(ctx, "acme", "app", &github.ListRepositoryActivityOptions{ActivityType: "tag_push"})
	if er, ok := err.(*github.ErrorResponse); !ok || er.Response.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("an unknown activity_type: %v, want 422", err)
	}
	s.ForgetActivity(repo)
	if left, _, err := gh.Repositories.ListRepositoryActivities(ctx, "acme", "app", nil); err != nil || len(left) != 0 {
		t.Errorf("after ForgetActivity: %d entries, %v", len(left), err)
	}
}
