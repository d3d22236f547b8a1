package githubtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"
)

// client is a real go-github client of installation 1, authenticated through ghinstallation,
// and the plain HTTP client under it for requests go-github would not send.
func client(t *testing.T, s *Server) (*github.Client, *http.Client) {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	itr := ghinstallation.NewFromAppsTransport(atr, 1)
	return newClient(t, s, itr), &http.Client{Transport: itr}
}

// appClient is a go-github client authenticated as the App itself (JWT).
func appClient(t *testing.T, s *Server, id int64, key []byte) *github.Client {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, id, key)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, s, atr)
}

func newClient(t *testing.T, s *Server, rt http.RoundTripper) *github.Client {
	t.Helper()
	base := s.URL()
	c, err := github.NewClient(github.WithTransport(rt), github.WithURLs(&base, &base))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(resp *github.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func TestInstallationTokenAndAppAuth(t *testing.T) {
	s := New(t, WithAppID(77))
	gh, hc := client(t, s)
	ctx := context.Background()
	if _, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: "a"}); err != nil {
		t.Fatal(err)
	}
	tok, err := hc.Transport.(*ghinstallation.Transport).Token(ctx)
	if err != nil || !strings.HasPrefix(tok, "ghs_") {
		t.Errorf("token %q, %v", tok, err)
	}
	if n := s.Count("apps/create-installation-access-token"); n != 1 {
		t.Errorf("%d tokens issued, want 1", n)
	}

	app := appClient(t, s, 77, s.PrivateKeyPEM())
	a, _, err := app.Apps.Get(ctx, "")
	if err != nil || a.GetID() != 77 {
		t.Errorf("app = %v, %v", a, err)
	}
	inst, _, err := app.Apps.ListInstallations(ctx, nil)
	if err != nil || len(inst) != 1 || inst[0].GetAppID() != 77 {
		t.Errorf("installations = %v, %v", inst, err)
	}
	if _, _, err := gh.Apps.GetRepositoryInstallation(ctx, "acme", "app"); err == nil {
		t.Error("an installation token was accepted where an App JWT is needed")
	}
	if _, _, err := app.Apps.GetRepositoryInstallation(ctx, "acme", "app"); err != nil {
		t.Error(err)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})
	for name, c := range map[string]*github.Client{
		"a JWT signed by another key": appClient(t, s, 77, otherPEM),
		"a JWT for another App":       appClient(t, s, 78, s.PrivateKeyPEM()),
	} {
		if _, resp, err := c.Apps.Get(ctx, ""); status(resp) != http.StatusUnauthorized {
			t.Errorf("%s: status %d, %v; want 401", name, status(resp), err)
		}
	}
	anon := newClient(t, s, http.DefaultTransport)
	if _, resp, _ := anon.Checks.GetCheckRun(ctx, "acme", "app", 1); status(resp) != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", status(resp))
	}
	bad := newClient(t, s, roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("Authorization", "token ghs_forged")
		return http.DefaultTransport.RoundTrip(r)
	}))
	if _, resp, _ := bad.Checks.GetCheckRun(ctx, "acme", "app", 1); status(resp) != http.StatusUnauthorized {
		t.Errorf("forged token: status %d, want 401", status(resp))
	}
	if rl, _, err := anon.RateLimit.Get(ctx); err != nil || rl.GetCore().Limit != 5000 {
		t.Errorf("rate limit = %v, %v", rl, err)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckRunLifecycle(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	cr, _, err := gh.Checks.CreateCheckRun(ctx, "acme", "app", github.CreateCheckRunOptions{
		Name: "stagecoach/test", HeadSHA: "abc", Status: github.Ptr("queued"), ExternalID: github.Ptr("7"),
		Output: &github.CheckRunOutput{Title: github.Ptr("Queued"), Summary: github.Ptr("waiting")},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = gh.Checks.UpdateCheckRun(ctx, "acme", "app", cr.GetID(), github.UpdateCheckRunOptions{
		Name: "stagecoach/test", Status: github.Ptr("completed"), Conclusion: github.Ptr("success"),
		Output: &github.CheckRunOutput{Title: github.Ptr("Deployed"), Summary: github.Ptr("done")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := gh.Checks.GetCheckRun(ctx, "acme", "app", cr.GetID())
	if err != nil || got.GetConclusion() != "success" || got.GetOutput().GetTitle() != "Deployed" || got.GetCompletedAt().IsZero() {
		t.Fatalf("get = %+v, %v", got, err)
	}
	runs := s.CheckRuns("acme/app")
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].ExternalID != "7" || runs[0].Updates != 1 || runs[0].Summary != "done" {
		t.Errorf("stored = %+v", runs)
	}
	if _, resp, _ := gh.Checks.GetCheckRun(ctx, "acme", "app", cr.GetID()+1); status(resp) != http.StatusNotFound {
		t.Errorf("unknown check run: status %d, want 404", status(resp))
	}
	if _, resp, _ := gh.Checks.GetCheckRun(ctx, "acme", "other", cr.GetID()); status(resp) != http.StatusNotFound {
		t.Errorf("check run of another repository: status %d, want 404", status(resp))
	}
	if s.Count("checks/create") != 1 || s.Count("checks/update") != 1 || s.Count("checks/get") != 1 {
		t.Errorf("requests: %+v", s.Requests())
	}
}

func TestDeployments(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	sha := strings.Repeat("a", 40)
	s.SetRef("acme/app", "main", sha)
	// GitHub's defaults (auto_merge, every status context) refuse here, as NOTES.md warns.
	if _, resp, _ := gh.Repositories.CreateDeployment(ctx, "acme", "app", &github.DeploymentRequest{Ref: github.Ptr("main")}); status(resp) != http.StatusConflict {
		t.Errorf("deployment with GitHub's defaults: status %d, want 409", status(resp))
	}
	var ids []int64
	for range 2 {
		d, _, err := gh.Repositories.CreateDeployment(ctx, "acme", "app", &github.DeploymentRequest{
			Ref: github.Ptr("main"), Environment: github.Ptr("test"), AutoMerge: github.Ptr(false),
			RequiredContexts: &[]string{}, Description: github.Ptr("hello to test"), ProductionEnvironment: github.Ptr(false),
		})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetSHA() != sha {
			t.Errorf("deployment sha %q, want the ref's %q", d.GetSHA(), sha)
		}
		if _, _, err := gh.Repositories.CreateDeploymentStatus(ctx, "acme", "app", d.GetID(), &github.DeploymentStatusRequest{
			State: github.Ptr("success"), LogURL: github.Ptr("https://ci.example/1"), Description: github.Ptr("deployed"),
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.GetID())
	}
	_, resp, _ := gh.Repositories.CreateDeploymentStatus(ctx, "acme", "app", ids[0], &github.DeploymentStatusRequest{
		State: github.Ptr("failure"), Description: github.Ptr(strings.Repeat("x", 141))})
	if status(resp) != http.StatusUnprocessableEntity {
		t.Errorf("141-character description: status %d, want 422", status(resp))
	}
	if _, resp, _ := gh.Repositories.CreateDeploymentStatus(ctx, "acme", "app", 999, &github.DeploymentStatusRequest{State: github.Ptr("success")}); status(resp) != http.StatusNotFound {
		t.Errorf("status of an unknown deployment: %d, want 404", status(resp))
	}
	deps := s.Deployments("acme/app")
	if len(deps) != 2 || deps[0].Environment != "test" || *deps[0].AutoMerge || deps[0].Contexts == nil {
		t.Fatalf("deployments = %+v", deps)
	}
	// The second success made the first deployment inactive, as GitHub does.
	var states []string
	for _, st := range deps[0].Statuses {
		states = append(states, st.State)
	}
	if strings.Join(states, ",") != "success,inactive" {
		t.Errorf("first deployment's states = %v", states)
	}
	listed, _, err := gh.Repositories.ListDeployments(ctx, "acme", "app", &github.DeploymentsListOptions{Environment: "test"})
	if err != nil || len(listed) != 2 || listed[0].GetID() != ids[1] {
		t.Errorf("listed = %v, %v; want newest first", listed, err)
	}
	if listed, _, _ := gh.Repositories.ListDeployments(ctx, "acme", "app", &github.DeploymentsListOptions{Environment: "prod"}); len(listed) != 0 {
		t.Errorf("environment filter: %d deployments, want 0", len(listed))
	}
}

func TestIssuesCommentsReactionsLabels(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	is, _, err := gh.Issues.Create(ctx, "acme", "app", &github.IssueRequest{Title: github.Ptr("Release v1.2"), Body: github.Ptr("tracking")})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Issues.Edit(ctx, "acme", "app", is.GetNumber(), &github.IssueRequest{State: github.Ptr("closed")}); err != nil {
		t.Fatal(err)
	}
	if _, resp, _ := gh.Issues.Edit(ctx, "acme", "app", 99, &github.IssueRequest{State: github.Ptr("closed")}); status(resp) != http.StatusNotFound {
		t.Errorf("editing an unknown issue: status %d, want 404", status(resp))
	}
	var first *github.IssueComment
	for i := range 3 {
		c, _, err := gh.Issues.CreateComment(ctx, "acme", "app", is.GetNumber(), &github.IssueComment{Body: github.Ptr("comment " + string(rune('a'+i)))})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = c
		}
	}
	if _, _, err := gh.Issues.EditComment(ctx, "acme", "app", first.GetID(), &github.IssueComment{Body: github.Ptr("edited")}); err != nil {
		t.Fatal(err)
	}
	// Page through the comments one at a time, following the Link header.
	var bodies []string
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 1}}
	for {
		page, resp, err := gh.Issues.ListComments(ctx, "acme", "app", is.GetNumber(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			bodies = append(bodies, c.GetBody())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if strings.Join(bodies, ",") != "edited,comment b,comment c" {
		t.Errorf("listed comments = %q", bodies)
	}
	r, resp, err := gh.Reactions.CreateIssueCommentReaction(ctx, "acme", "app", first.GetID(), "rocket")
	if err != nil || r.GetContent() != "rocket" || resp.StatusCode != http.StatusCreated {
		t.Errorf("reaction = %v, %v", r, err)
	}
	if _, resp, _ := gh.Reactions.CreateIssueCommentReaction(ctx, "acme", "app", first.GetID(), "rocket"); status(resp) != http.StatusOK {
		t.Errorf("the same reaction again: status %d, want 200", status(resp))
	}
	if _, resp, _ := gh.Reactions.CreateIssueCommentReaction(ctx, "acme", "app", 1, "eyes"); status(resp) != http.StatusNotFound {
		t.Errorf("reaction to an unknown comment: status %d, want 404", status(resp))
	}
	comments := s.Comments("acme/app", is.GetNumber())
	if len(comments) != 3 || comments[0].Edits != 1 || len(comments[0].Reactions) != 1 {
		t.Errorf("stored comments = %+v", comments)
	}

	if _, resp, _ := gh.Issues.GetLabel(ctx, "acme", "app", "deployed-test"); status(resp) != http.StatusNotFound {
		t.Errorf("unknown label: status %d, want 404", status(resp))
	}
	if _, _, err := gh.Issues.CreateLabel(ctx, "acme", "app", &github.Label{Name: github.Ptr("deployed-test"), Color: github.Ptr("0e8a16")}); err != nil {
		t.Fatal(err)
	}
	if _, resp, _ := gh.Issues.CreateLabel(ctx, "acme", "app", &github.Label{Name: github.Ptr("deployed-test"), Color: github.Ptr("0e8a16")}); status(resp) != http.StatusUnprocessableEntity {
		t.Errorf("label created twice: status %d, want 422", status(resp))
	}
	if l, _, err := gh.Issues.GetLabel(ctx, "acme", "app", "deployed-test"); err != nil || l.GetColor() != "0e8a16" {
		t.Errorf("label = %v, %v", l, err)
	}
	labels, _, err := gh.Issues.AddLabelsToIssue(ctx, "acme", "app", is.GetNumber(), []string{"deployed-test", "release"})
	if err != nil || len(labels) != 2 {
		t.Errorf("labels = %v, %v", labels, err)
	}
	if got := s.Issues("acme/app"); len(got) != 1 || got[0].State != "closed" || strings.Join(got[0].Labels, ",") != "deployed-test,release" {
		t.Errorf("stored issues = %+v", got)
	}
	if _, resp, _ := gh.Issues.AddLabelsToIssue(ctx, "acme", "app", 42, []string{"x"}); status(resp) != http.StatusNotFound {
		t.Errorf("labels on an unknown issue: status %d, want 404", status(resp))
	}
}

func TestRefsCommitsAndPulls(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	sha := func(c byte) string { return strings.Repeat(string(c), 40) }
	// a <- b <- c on main; d on feature/x from b; e merged PR 7 on main after c.
	s.AddCommit("acme/app", sha('a'), nil, "root", 0)
	s.AddCommit("acme/app", sha('b'), []string{sha('a')}, "second", 0)
	s.AddCommit("acme/app", sha('c'), []string{sha('b')}, "third", 0)
	s.AddCommit("acme/app", sha('d'), []string{sha('b')}, "feature work", 0)
	s.SetRef("acme/app", "main", sha('c'))
	s.SetRef("acme/app", "heads/feature/x", sha('d'))

	ref, _, err := gh.Git.GetRef(ctx, "acme", "app", "heads/feature/x")
	if err != nil || ref.GetObject().GetSHA() != sha('d') || ref.GetRef() != "refs/heads/feature/x" {
		t.Fatalf("ref = %v, %v", ref, err)
	}
	if _, resp, _ := gh.Git.GetRef(ctx, "acme", "app", "heads/nope"); status(resp) != http.StatusNotFound {
		t.Errorf("unknown ref: status %d, want 404", status(resp))
	}
	if _, _, err := gh.Git.CreateRef(ctx, "acme", "app", github.CreateRef{Ref: "refs/heads/env/test", SHA: sha('b')}); err != nil {
		t.Fatal(err)
	}
	if _, resp, _ := gh.Git.CreateRef(ctx, "acme", "app", github.CreateRef{Ref: "refs/heads/env/test", SHA: sha('b')}); status(resp) != http.StatusUnprocessableEntity {
		t.Errorf("ref created twice: status %d, want 422", status(resp))
	}
	// b -> c is a fast-forward; c -> d is not, and needs force.
	if _, _, err := gh.Git.UpdateRef(ctx, "acme", "app", "heads/env/test", github.UpdateRef{SHA: sha('c')}); err != nil {
		t.Errorf("fast-forward: %v", err)
	}
	if _, resp, _ := gh.Git.UpdateRef(ctx, "acme", "app", "heads/env/test", github.UpdateRef{SHA: sha('d')}); status(resp) != http.StatusUnprocessableEntity {
		t.Errorf("non-fast-forward without force: status %d, want 422", status(resp))
	}
	if _, _, err := gh.Git.UpdateRef(ctx, "acme", "app", "refs/heads/env/test", github.UpdateRef{SHA: sha('d'), Force: github.Ptr(true)}); err != nil {
		t.Errorf("forced update: %v", err)
	}
	if got, _ := s.Ref("acme/app", "env/test"); got != sha('d') {
		t.Errorf("env/test = %s, want %s", got, sha('d'))
	}

	cmp, _, err := gh.Repositories.CompareCommits(ctx, "acme", "app", "main", "feature/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.GetStatus() != "diverged" || cmp.GetAheadBy() != 1 || cmp.GetBehindBy() != 1 || cmp.GetMergeBaseCommit().GetSHA() != sha('b') ||
		len(cmp.Commits) != 1 || cmp.Commits[0].GetSHA() != sha('d') {
		t.Errorf("compare = %s ahead %d behind %d base %s", cmp.GetStatus(), cmp.GetAheadBy(), cmp.GetBehindBy(), cmp.GetMergeBaseCommit().GetSHA())
	}
	cmp, _, err = gh.Repositories.CompareCommits(ctx, "acme", "app", sha('a'), "main", nil)
	if err != nil || cmp.GetStatus() != "ahead" || len(cmp.Commits) != 2 || cmp.Commits[0].GetSHA() != sha('b') {
		t.Errorf("compare a...main = %v, %v; want b, c oldest first", cmp, err)
	}
	if _, resp, _ := gh.Repositories.CompareCommits(ctx, "acme", "app", "main", "nope", nil); status(resp) != http.StatusNotFound {
		t.Errorf("compare with an unknown head: status %d, want 404", status(resp))
	}

	s.AddCommit("acme/app", sha('e'), []string{sha('c')}, "Deploy hello (#7)\n\nbody", 7)
	s.SetRef("acme/app", "main", sha('e'))
	c, _, err := gh.Repositories.GetCommit(ctx, "acme", "app", "main", nil)
	if err != nil || c.GetSHA() != sha('e') || c.GetCommit().GetMessage() != "Deploy hello (#7)\n\nbody" || c.Parents[0].GetSHA() != sha('c') {
		t.Errorf("commit = %v, %v", c, err)
	}
	prs, _, err := gh.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "app", sha('e'), nil)
	if err != nil || len(prs) != 1 || prs[0].GetNumber() != 7 || prs[0].GetTitle() != "Deploy hello (#7)" {
		t.Errorf("pulls for commit = %v, %v", prs, err)
	}
	s.AddPull("acme/app", Pull{Number: 8, Title: "Open work", HeadRef: "feature/x", HeadSHA: sha('d'), User: "hubot"})
	pr, _, err := gh.PullRequests.Get(ctx, "acme", "app", 8)
	if err != nil || pr.GetState() != "open" || pr.GetMerged() || pr.GetHead().GetRef() != "feature/x" || pr.GetBase().GetSHA() != sha('e') || pr.GetUser().GetLogin() != "hubot" {
		t.Errorf("pull = %v, %v", pr, err)
	}
	if _, resp, _ := gh.PullRequests.Get(ctx, "acme", "app", 9); status(resp) != http.StatusNotFound {
		t.Errorf("unknown pull request: status %d, want 404", status(resp))
	}
}

func TestPeopleAndManifest(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	s.SetTeamMember("acme", "releasers", "octocat")
	s.SetPermission("acme/app", "octocat", "maintain")
	if m, _, err := gh.Teams.GetTeamMembershipBySlug(ctx, "acme", "releasers", "octocat"); err != nil || m.GetState() != "active" {
		t.Errorf("membership = %v, %v", m, err)
	}
	if _, resp, _ := gh.Teams.GetTeamMembershipBySlug(ctx, "acme", "releasers", "hubot"); status(resp) != http.StatusNotFound {
		t.Errorf("non-member: status %d, want 404", status(resp))
	}
	p, _, err := gh.Repositories.GetPermissionLevel(ctx, "acme", "app", "octocat")
	if err != nil || p.GetPermission() != "write" || p.GetRoleName() != "maintain" {
		t.Errorf("permission = %v, %v", p, err)
	}
	if p, _, _ := gh.Repositories.GetPermissionLevel(ctx, "acme", "app", "hubot"); p.GetPermission() != "none" {
		t.Errorf("stranger's permission = %q, want none", p.GetPermission())
	}

	s.AddManifestCode("abc123")
	anon := newClient(t, s, http.DefaultTransport)
	cfg, _, err := anon.Apps.CompleteAppManifest(ctx, "abc123")
	if err != nil || cfg.GetID() != s.AppID() || cfg.GetWebhookSecret() == "" || cfg.GetWebhookSecret() != s.WebhookSecret() || !strings.Contains(cfg.GetPEM(), "PRIVATE KEY") {
		t.Errorf("manifest conversion = %v, %v", cfg, err)
	}
	if _, resp, _ := anon.Apps.CompleteAppManifest(ctx, "abc123"); status(resp) != http.StatusNotFound {
		t.Errorf("a code used twice: status %d, want 404", status(resp))
	}
}
