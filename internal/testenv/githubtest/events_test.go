package githubtest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"
)

func sha(c byte) string { return strings.Repeat(string(c), 40) }

// seedHistory makes a <- b <- c and a <- d in acme/app, main at a.
func seedHistory(s *Server) {
	s.AddCommit("acme/app", sha('a'), nil, "root", 0)
	s.AddCommit("acme/app", sha('b'), []string{sha('a')}, "second", 0)
	s.AddCommit("acme/app", sha('c'), []string{sha('b')}, "third", 0)
	s.AddCommit("acme/app", sha('d'), []string{sha('a')}, "elsewhere", 0)
	s.SetRef("acme/app", "main", sha('a'))
}

// kinds names deliveries "event" or "event/action", in order.
func kinds(got []received) []string {
	var out []string
	for _, r := range got {
		var p struct{ Action string }
		_ = json.Unmarshal(r.body, &p)
		if p.Action != "" {
			out = append(out, r.event+"/"+p.Action)
		} else {
			out = append(out, r.event)
		}
	}
	return out
}

// checkCommon checks what every delivery carries: this server's repository and installation,
// and the sender with the right type.
func checkCommon(t *testing.T, s *Server, got []received, repo, sender string) {
	t.Helper()
	for _, r := range got {
		var p struct {
			Repository struct {
				Name     string
				FullName string `json:"full_name"`
				HTMLURL  string `json:"html_url"`
				Owner    struct{ Login string }
			}
			Installation struct{ ID int64 }
			Sender       struct{ Login, Type string }
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("%s: %v", r.event, err)
		}
		owner, name, _ := strings.Cut(repo, "/")
		if rp := p.Repository; rp.FullName != repo || rp.Name != name || rp.HTMLURL != "https://github.com/"+repo || rp.Owner.Login != owner {
			t.Errorf("%s: repository %+v", r.event, rp)
		}
		wantType := "User"
		if strings.HasSuffix(sender, "[bot]") {
			wantType = "Bot"
		}
		if p.Installation.ID != 1 || p.Sender.Login != sender || p.Sender.Type != wantType {
			t.Errorf("%s: installation %d, sender %s (%s); want 1, %s (%s)", r.event, p.Installation.ID, p.Sender.Login, p.Sender.Type, sender, wantType)
		}
		if b := string(r.body); strings.Contains(b, "api.github.com") || strings.Contains(b, "Hello-World") || strings.Contains(b, "electron") {
			t.Errorf("%s: the payload still names the example's API or repository", r.event)
		}
	}
}

func TestAPICallsDeliverEvents(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		do    func(t *testing.T, gh *github.Client)
		kinds []string
		check func(t *testing.T, s *Server, got []received)
	}{
		{"create-ref of a branch", func(t *testing.T, gh *github.Client) {
			if _, _, err := gh.Git.CreateRef(ctx, "acme", "app", github.CreateRef{Ref: "refs/heads/alpha", SHA: sha('c')}); err != nil {
				t.Fatal(err)
			}
		}, []string{"create", "push"}, func(t *testing.T, s *Server, got []received) {
			cr := got[0].parsed.(*github.CreateEvent)
			if cr.GetRef() != "alpha" || cr.GetRefType() != "branch" || cr.GetMasterBranch() != "main" {
				t.Errorf("create = %s %s", cr.GetRefType(), cr.GetRef())
			}
			checkPush(t, got[1], "refs/heads/alpha", zeroSHA, sha('c'), true, false, []string{sha('b'), sha('c')})
			if p := got[1].parsed.(*github.PushEvent); p.GetPusher().GetName() != s.BotLogin() || p.GetHeadCommit().GetMessage() != "third" {
				t.Errorf("pusher %q, head commit %q", p.GetPusher().GetName(), p.GetHeadCommit().GetMessage())
			}
		}},
		{"update-ref, a fast-forward", func(t *testing.T, gh *github.Client) {
			if _, _, err := gh.Git.UpdateRef(ctx, "acme", "app", "heads/main", github.UpdateRef{SHA: sha('c')}); err != nil {
				t.Fatal(err)
			}
		}, []string{"push"}, func(t *testing.T, _ *Server, got []received) {
			checkPush(t, got[0], "refs/heads/main", sha('a'), sha('c'), false, false, []string{sha('b'), sha('c')})
		}},
		{"update-ref, forced", func(t *testing.T, gh *github.Client) {
			if _, _, err := gh.Git.UpdateRef(ctx, "acme", "app", "heads/main", github.UpdateRef{SHA: sha('c')}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := gh.Git.UpdateRef(ctx, "acme", "app", "heads/main", github.UpdateRef{SHA: sha('d'), Force: github.Ptr(true)}); err != nil {
				t.Fatal(err)
			}
		}, []string{"push", "push"}, func(t *testing.T, _ *Server, got []received) {
			checkPush(t, got[1], "refs/heads/main", sha('c'), sha('d'), false, true, []string{sha('d')})
		}},
		{"create-ref of a tag", func(t *testing.T, gh *github.Client) {
			if _, _, err := gh.Git.CreateRef(ctx, "acme", "app", github.CreateRef{Ref: "refs/tags/v1.2.0", SHA: sha('a')}); err != nil {
				t.Fatal(err)
			}
		}, []string{"create", "push"}, func(t *testing.T, _ *Server, got []received) {
			if cr := got[0].parsed.(*github.CreateEvent); cr.GetRef() != "v1.2.0" || cr.GetRefType() != "tag" {
				t.Errorf("create = %s %s", cr.GetRefType(), cr.GetRef())
			}
			checkPush(t, got[1], "refs/tags/v1.2.0", zeroSHA, sha('a'), true, false, nil)
			if p := got[1].parsed.(*github.PushEvent); p.GetBaseRef() != "refs/heads/main" || p.GetHeadCommit().GetID() != sha('a') {
				t.Errorf("tag push: base_ref %q, head commit %q", p.GetBaseRef(), p.GetHeadCommit().GetID())
			}
		}},
		{"comment created and edited", func(t *testing.T, gh *github.Client) {
			c, _, err := gh.Issues.CreateComment(ctx, "acme", "app", 7, &github.IssueComment{Body: github.Ptr("Deployed to test")})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := gh.Issues.EditComment(ctx, "acme", "app", c.GetID(), &github.IssueComment{Body: github.Ptr("Deployed to alpha")}); err != nil {
				t.Fatal(err)
			}
		}, []string{"issue_comment/created", "issue_comment/edited"}, func(t *testing.T, s *Server, got []received) {
			for i, body := range []string{"Deployed to test", "Deployed to alpha"} {
				ev := got[i].parsed.(*github.IssueCommentEvent)
				u := ev.GetComment().GetUser()
				if u.GetLogin() != s.BotLogin() || u.GetType() != "Bot" || ev.GetComment().GetBody() != body ||
					ev.GetIssue().GetNumber() != 7 || !ev.GetIssue().IsPullRequest() || ev.GetComment().GetAuthorAssociation() != "NONE" {
					t.Errorf("%s: comment by %s (%s) %q on #%d", ev.GetAction(), u.GetLogin(), u.GetType(), ev.GetComment().GetBody(), ev.GetIssue().GetNumber())
				}
			}
			if from := got[1].parsed.(*github.IssueCommentEvent).GetChanges().GetBody().GetFrom(); from != "Deployed to test" {
				t.Errorf("changes.body.from = %q", from)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rc := hooked(t)
			seedHistory(s)
			s.AddPull("acme/app", Pull{Number: 7, Title: "Deploy", HeadRef: "f", HeadSHA: sha('b')})
			gh, _ := client(t, s)
			tt.do(t, gh)
			flush(t, s)
			got := rc.deliveries()
			if k := kinds(got); !slices.Equal(k, tt.kinds) {
				t.Fatalf("delivered %v, want %v", k, tt.kinds)
			}
			checkCommon(t, s, got, "acme/app", s.BotLogin())
			tt.check(t, s, got)
		})
	}
}

// checkPush checks a push delivery's fields; commits nil means none are listed.
func checkPush(t *testing.T, r received, ref, before, after string, created, forced bool, commits []string) {
	t.Helper()
	p, ok := r.parsed.(*github.PushEvent)
	if !ok {
		t.Fatalf("a %s delivery decoded as %T", r.event, r.parsed)
	}
	var ids []string
	for _, c := range p.Commits {
		ids = append(ids, c.GetID())
	}
	if p.GetRef() != ref || p.GetBefore() != before || p.GetAfter() != after || p.GetCreated() != created ||
		p.GetForced() != forced || p.GetDeleted() || !slices.Equal(ids, commits) {
		t.Errorf("push %s %.7s..%.7s created %v forced %v commits %.7s; want %s %.7s..%.7s created %v forced %v commits %.7s",
			p.GetRef(), p.GetBefore(), p.GetAfter(), p.GetCreated(), p.GetForced(), ids, ref, before, after, created, forced, commits)
	}
	if p.GetRepo().GetFullName() == "" || p.GetSender().GetLogin() == "" || p.GetInstallation().GetID() == 0 {
		t.Errorf("push without repository, sender or installation: %+v", p)
	}
}
