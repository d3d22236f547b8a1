package githubtest

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-github/v88/github"
)

// TestPersonActions plays what people do on GitHub and checks the deliveries, decoded by
// go-github, and the state the API then shows.
func TestPersonActions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		sender string
		do     func(s *Server)
		kinds  []string
		check  func(t *testing.T, s *Server, gh *github.Client, got []received)
	}{
		{"merge a pull request", "octocat", func(s *Server) {
			s.MergePull("acme/app", Pull{Number: 7, Title: "Deploy hello", HeadRef: "feature", HeadSHA: sha('e'), User: "hubot"}, sha('m'), "octocat")
		}, []string{"push", "pull_request/closed"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			checkPush(t, got[0], "refs/heads/main", sha('a'), sha('m'), false, false, []string{sha('m')})
			ev := got[1].parsed.(*github.PullRequestEvent)
			pr := ev.GetPullRequest()
			if ev.GetNumber() != 7 || !pr.GetMerged() || pr.GetMergedBy().GetLogin() != "octocat" || pr.GetMergeCommitSHA() != sha('m') ||
				pr.GetBase().GetRef() != "main" || pr.GetBase().GetSHA() != sha('a') || pr.GetHead().GetRef() != "feature" || pr.GetHead().GetSHA() != sha('e') ||
				pr.GetState() != "closed" || pr.GetUser().GetLogin() != "hubot" || pr.GetMergedAt().IsZero() {
				t.Errorf("pull_request closed: %+v", pr)
			}
			if ref, _ := s.Ref("acme/app", "main"); ref != sha('m') {
				t.Errorf("main = %s, want the merge commit", ref)
			}
			c, _, err := gh.Repositories.GetCommit(ctx, "acme", "app", "main", nil)
			if err != nil || c.GetCommit().GetMessage() != "Deploy hello (#7)" || len(c.Parents) != 1 || c.Parents[0].GetSHA() != sha('a') {
				t.Errorf("merge commit = %v, %v", c, err)
			}
			if p, _, err := gh.PullRequests.Get(ctx, "acme", "app", 7); err != nil || !p.GetMerged() || p.GetMergedBy().GetLogin() != "octocat" {
				t.Errorf("pulls/get = %v, %v", p, err)
			}
		}},
		{"open a pull request from a fork", "outsider", func(s *Server) {
			s.OpenPull("acme/app", Pull{Number: 8, Title: "Fix typo", HeadRepo: "outsider/app", HeadRef: "patch-1", HeadSHA: sha('f'), User: "outsider"})
		}, []string{"pull_request/opened"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			pr := got[0].parsed.(*github.PullRequestEvent).GetPullRequest()
			head, base := pr.GetHead(), pr.GetBase()
			if head.GetRepo().GetFullName() != "outsider/app" || !head.GetRepo().GetFork() || head.GetRepo().GetOwner().GetLogin() != "outsider" ||
				head.GetLabel() != "outsider:patch-1" || base.GetRepo().GetFullName() != "acme/app" || base.GetSHA() != sha('a') ||
				pr.GetState() != "open" || pr.GetMerged() || pr.GetNumber() != 8 {
				t.Errorf("fork pull request: head %s %s, base %s", head.GetLabel(), head.GetRepo().GetFullName(), base.GetRepo().GetFullName())
			}
			if _, ok := s.Ref("acme/app", "patch-1"); ok {
				t.Error("a fork's branch appeared in the base repository")
			}
			if ref, _ := s.Ref("acme/app", "refs/pull/8/head"); ref != sha('f') {
				t.Errorf("refs/pull/8/head = %q", ref)
			}
			cmp, _, err := gh.Repositories.CompareCommits(ctx, "acme", "app", "main", sha('f'), nil)
			if err != nil || cmp.GetAheadBy() != 1 {
				t.Errorf("compare main...head = %v, %v", cmp, err)
			}
		}},
		{"push to a pull request", "hubot", func(s *Server) {
			s.OpenPull("acme/app", Pull{Number: 9, Title: "Work", HeadRef: "work", HeadSHA: sha('e'), User: "hubot"})
			s.PushToPull("acme/app", 9, sha('f'))
		}, []string{"pull_request/opened", "push", "pull_request/synchronize"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			checkPush(t, got[1], "refs/heads/work", sha('e'), sha('f'), false, false, []string{sha('f')})
			ev := got[2].parsed.(*github.PullRequestEvent)
			if ev.GetBefore() != sha('e') || ev.GetAfter() != sha('f') || ev.GetPullRequest().GetHead().GetSHA() != sha('f') {
				t.Errorf("synchronize %.7s..%.7s head %.7s", ev.GetBefore(), ev.GetAfter(), ev.GetPullRequest().GetHead().GetSHA())
			}
		}},
		{"push to a pull request from a fork", "outsider", func(s *Server) {
			s.OpenPull("acme/app", Pull{Number: 9, Title: "Work", HeadRepo: "outsider/app", HeadRef: "work", HeadSHA: sha('e'), User: "outsider"})
			s.PushToPull("acme/app", 9, sha('f'))
		}, []string{"pull_request/opened", "pull_request/synchronize"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			if ev := got[1].parsed.(*github.PullRequestEvent); ev.GetPullRequest().GetHead().GetRepo().GetFullName() != "outsider/app" {
				t.Errorf("synchronize head repo %s", ev.GetPullRequest().GetHead().GetRepo().GetFullName())
			}
		}},
		{"push a new branch, then force it", "lead", func(s *Server) {
			s.PushBranch("acme/app", "alpha", sha('c'), "lead")
			s.PushBranch("acme/app", "alpha", sha('d'), "lead")
		}, []string{"create", "push", "push"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			if cr := got[0].parsed.(*github.CreateEvent); cr.GetRef() != "alpha" || cr.GetRefType() != "branch" {
				t.Errorf("create %s %s", cr.GetRefType(), cr.GetRef())
			}
			checkPush(t, got[1], "refs/heads/alpha", zeroSHA, sha('c'), true, false, []string{sha('b'), sha('c')})
			checkPush(t, got[2], "refs/heads/alpha", sha('c'), sha('d'), false, true, []string{sha('d')})
			p := got[2].parsed.(*github.PushEvent)
			if p.GetPusher().GetName() != "lead" || p.GetHeadCommit().GetID() != sha('d') || p.GetCompare() == "" {
				t.Errorf("pusher %q, head commit %q", p.GetPusher().GetName(), p.GetHeadCommit().GetID())
			}
		}},
		{"push a lightweight tag", "lead", func(s *Server) {
			s.CreateTag("acme/app", "v1.0.0", sha('b'), "lead", false)
		}, []string{"create", "push"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			if cr := got[0].parsed.(*github.CreateEvent); cr.GetRef() != "v1.0.0" || cr.GetRefType() != "tag" || cr.GetPusherType() != "user" {
				t.Errorf("create %s %s", cr.GetRefType(), cr.GetRef())
			}
			checkPush(t, got[1], "refs/tags/v1.0.0", zeroSHA, sha('b'), true, false, nil)
			if ref, _, err := gh.Git.GetRef(ctx, "acme", "app", "tags/v1.0.0"); err != nil || ref.GetObject().GetType() != "commit" {
				t.Errorf("tag ref = %v, %v", ref, err)
			}
		}},
		{"move a tag by force", "lead", func(s *Server) {
			s.CreateTag("acme/app", "v1.0.0", sha('b'), "lead", false)
			s.MoveTag("acme/app", "v1.0.0", sha('c'), "lead")
		}, []string{"create", "push", "push"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			checkPush(t, got[2], "refs/tags/v1.0.0", sha('b'), sha('c'), false, true, nil)
			if ref, _, err := gh.Git.GetRef(ctx, "acme", "app", "tags/v1.0.0"); err != nil || ref.GetObject().GetSHA() != sha('c') {
				t.Errorf("tag ref = %v, %v", ref, err)
			}
		}},
		{"push an annotated tag", "lead", func(s *Server) {
			s.CreateTag("acme/app", "v2.0.0", sha('c'), "lead", true)
		}, []string{"create", "push"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			p := got[1].parsed.(*github.PushEvent)
			tagSHA := p.GetAfter()
			if tagSHA == sha('c') || len(tagSHA) != 40 || p.GetHeadCommit().GetID() != sha('c') || p.GetRef() != "refs/tags/v2.0.0" {
				t.Errorf("annotated tag push: after %s, head commit %s", tagSHA, p.GetHeadCommit().GetID())
			}
			ref, _, err := gh.Git.GetRef(ctx, "acme", "app", "tags/v2.0.0")
			if err != nil || ref.GetObject().GetType() != "tag" || ref.GetObject().GetSHA() != tagSHA {
				t.Fatalf("tag ref = %v, %v", ref, err)
			}
			tag, _, err := gh.Git.GetTag(ctx, "acme", "app", tagSHA)
			if err != nil || tag.GetObject().GetSHA() != sha('c') || tag.GetObject().GetType() != "commit" || tag.GetTag() != "v2.0.0" || tag.GetTagger().GetName() != "lead" {
				t.Errorf("git/get-tag = %v, %v", tag, err)
			}
			if c, _, err := gh.Repositories.GetCommit(ctx, "acme", "app", "v2.0.0", nil); err != nil || c.GetSHA() != sha('c') {
				t.Errorf("the tag name resolves to %v, %v; want its commit", c, err)
			}
		}},
		{"comment on a pull request, then edit it", "octocat", func(s *Server) {
			id := s.Comment("acme/app", 7, "octocat", "/promote alpha")
			s.EditComment("acme/app", id, "octocat", "/promote prod")
		}, []string{"issue_comment/created", "issue_comment/edited"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			for i, body := range []string{"/promote alpha", "/promote prod"} {
				ev := got[i].parsed.(*github.IssueCommentEvent)
				c := ev.GetComment()
				if c.GetBody() != body || c.GetUser().GetLogin() != "octocat" || c.GetUser().GetType() != "User" ||
					c.GetAuthorAssociation() != "MEMBER" || !ev.GetIssue().IsPullRequest() || ev.GetIssue().GetNumber() != 7 {
					t.Errorf("%s: %q by %s (%s, %s) on #%d", ev.GetAction(), c.GetBody(), c.GetUser().GetLogin(), c.GetUser().GetType(),
						c.GetAuthorAssociation(), ev.GetIssue().GetNumber())
				}
			}
			if from := got[1].parsed.(*github.IssueCommentEvent).GetChanges().GetBody().GetFrom(); from != "/promote alpha" {
				t.Errorf("changes.body.from = %q", from)
			}
			id := got[0].parsed.(*github.IssueCommentEvent).GetComment().GetID()
			c, _, err := gh.Issues.GetComment(ctx, "acme", "app", id)
			if err != nil || c.GetBody() != "/promote prod" || c.GetUser().GetLogin() != "octocat" {
				t.Errorf("issues/get-comment = %v, %v", c, err)
			}
		}},
		{"press a check run's button", "lead", func(s *Server) {
			s.PressButton("acme/app", s.CheckRuns("acme/app")[0].ID, "promote", "lead")
		}, []string{"check_run/requested_action"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			checkCheckRun(t, s, got[0])
			if id := got[0].parsed.(*github.CheckRunEvent).GetRequestedAction().Identifier; id != "promote" {
				t.Errorf("requested_action.identifier = %q", id)
			}
		}},
		{"re-run a check run", "lead", func(s *Server) {
			s.Rerequest("acme/app", s.CheckRuns("acme/app")[0].ID, "lead")
		}, []string{"check_run/rerequested"}, func(t *testing.T, s *Server, gh *github.Client, got []received) {
			checkCheckRun(t, s, got[0])
			if got[0].parsed.(*github.CheckRunEvent).RequestedAction != nil {
				t.Error("a rerequested check run carries a requested_action")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rc := hooked(t)
			seedHistory(s)
			s.SetTeamMember("acme", "releasers", "octocat")
			s.AddPull("acme/app", Pull{Number: 7, Title: "Deploy", HeadRef: "f", HeadSHA: sha('b')})
			gh, _ := client(t, s)
			if _, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{
				Name: "stagecoach/alpha", HeadSHA: sha('a'), ExternalID: github.Ptr("deploy-12"), Status: github.Ptr("in_progress"),
				Actions: []*github.CheckRunAction{{Label: "Promote", Description: "to prod", Identifier: "promote"}},
			}); err != nil {
				t.Fatal(err)
			}
			tt.do(s)
			flush(t, s)
			got := rc.deliveries()
			if k := kinds(got); !slices.Equal(k, tt.kinds) {
				t.Fatalf("delivered %v, want %v", k, tt.kinds)
			}
			checkCommon(t, s, got, "acme/app", tt.sender)
			tt.check(t, s, gh, got)
		})
	}
}

func checkCheckRun(t *testing.T, s *Server, r received) {
	t.Helper()
	cr := r.parsed.(*github.CheckRunEvent).GetCheckRun()
	if cr.GetName() != "stagecoach/alpha" || cr.GetExternalID() != "deploy-12" || cr.GetHeadSHA() != sha('a') ||
		cr.GetApp().GetID() != s.AppID() || cr.GetID() != s.CheckRuns("acme/app")[0].ID || cr.GetCheckSuite().GetHeadBranch() != "main" {
		t.Errorf("check_run %s (%s) on %s, app %d, suite branch %q", cr.GetName(), cr.GetExternalID(), cr.GetHeadSHA(), cr.GetApp().GetID(), cr.GetCheckSuite().GetHeadBranch())
	}
}

// TestAuthorAssociation derives comment.author_association from what the test seeded.
func TestAuthorAssociation(t *testing.T) {
	tests := []struct{ user, want string }{
		{"acme", "OWNER"},
		{"octocat", "MEMBER"},
		{"contractor", "COLLABORATOR"},
		{"hubot", "CONTRIBUTOR"},
		{"stranger", "NONE"},
		{"reader-revoked", "NONE"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			s, rc := hooked(t)
			s.SetTeamMember("acme", "releasers", "octocat")
			s.SetPermission("acme/app", "contractor", "write")
			s.SetPermission("acme/app", "reader-revoked", "none")
			s.AddPull("acme/app", Pull{Number: 1, State: "closed", Merged: true, HeadRef: "x", HeadSHA: sha('1'), User: "hubot"})
			s.AddPull("acme/app", Pull{Number: 2, HeadRef: "y", HeadSHA: sha('2')})
			s.Comment("acme/app", 2, tt.user, "hello")
			flush(t, s)
			got := rc.deliveries()
			if len(got) != 1 {
				t.Fatalf("%d deliveries", len(got))
			}
			if a := got[0].parsed.(*github.IssueCommentEvent).GetComment().GetAuthorAssociation(); a != tt.want {
				t.Errorf("author_association = %s, want %s", a, tt.want)
			}
		})
	}
}

// TestIssuesGet answers issues/get for an issue and, in its issue form, a pull request.
func TestIssuesGet(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	if a, _, err := appClient(t, s, s.AppID(), s.PrivateKeyPEM()).Apps.Get(ctx, ""); err != nil || a.GetSlug() != "stagecoach" || s.BotLogin() != "stagecoach[bot]" {
		t.Errorf("GET /app = %v, %v; bot %q", a, err, s.BotLogin())
	}
	s.AddPull("acme/app", Pull{Number: 4, Title: "A change", HeadRef: "x", HeadSHA: sha('4'), User: "hubot", Labels: []string{"deploy"}})
	is, _, err := gh.Issues.Create(ctx, "acme", "app", &github.IssueRequest{Title: github.Ptr("Release v1")})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := gh.Issues.Get(ctx, "acme", "app", is.GetNumber())
	if err != nil || got.GetTitle() != "Release v1" || got.IsPullRequest() || got.GetUser().GetLogin() != s.BotLogin() {
		t.Errorf("issue = %v, %v", got, err)
	}
	pr, _, err := gh.Issues.Get(ctx, "acme", "app", 4)
	if err != nil || !pr.IsPullRequest() || pr.GetTitle() != "A change" || pr.GetUser().GetLogin() != "hubot" || len(pr.Labels) != 1 {
		t.Errorf("pull request as an issue = %v, %v", pr, err)
	}
	if _, resp, _ := gh.Issues.Get(ctx, "acme", "app", 99); status(resp) != 404 {
		t.Errorf("unknown issue: status %d, want 404", status(resp))
	}
	if _, resp, _ := gh.Issues.GetComment(ctx, "acme", "app", 99); status(resp) != 404 {
		t.Errorf("unknown comment: status %d, want 404", status(resp))
	}
	if _, resp, _ := gh.Git.GetTag(ctx, "acme", "app", sha('9')); status(resp) != 404 {
		t.Errorf("unknown tag object: status %d, want 404", status(resp))
	}
}

// TestMisuseIsAProblem: actions GitHub would refuse change nothing and are reported.
func TestMisuseIsAProblem(t *testing.T) {
	tests := []struct {
		name string
		do   func(s *Server)
	}{
		{"comment on nothing", func(s *Server) { s.Comment("acme/app", 42, "octocat", "hi") }},
		{"edit an unknown comment", func(s *Server) { s.EditComment("acme/app", 42, "octocat", "hi") }},
		{"press a button the run lacks", func(s *Server) { s.PressButton("acme/app", s.CheckRuns("acme/app")[0].ID, "deploy", "lead") }},
		{"press a button of no run", func(s *Server) { s.PressButton("acme/app", 1, "promote", "lead") }},
		{"re-run no run", func(s *Server) { s.Rerequest("acme/app", 1, "lead") }},
		{"push to no pull request", func(s *Server) { s.PushToPull("acme/app", 3, sha('3')) }},
		{"tag twice", func(s *Server) {
			s.CreateTag("acme/app", "v1", sha('a'), "lead", false)
			s.CreateTag("acme/app", "v1", sha('a'), "lead", false)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &collector{TB: t}
			s := New(sink)
			rc := newReceiver(t)
			s.SetWebhook(rc.srv.URL, secret)
			gh, _ := client(t, s)
			if _, _, err := gh.Checks.CreateCheckRun(context.Background(), "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: sha('a'),
				Actions: []*github.CheckRunAction{{Label: "Promote", Description: "d", Identifier: "promote"}}}); err != nil {
				t.Fatal(err)
			}
			tt.do(s)
			flush(t, s)
			if p := s.Problems(); len(p) != 1 {
				t.Errorf("problems = %q, want one", p)
			}
			if k := kinds(rc.deliveries()); len(k) > 2 {
				t.Errorf("delivered %v", k)
			}
			if errs := sink.finish(); len(errs) != 1 {
				t.Errorf("reported at cleanup: %d errors, want 1", len(errs))
			}
		})
	}
}
