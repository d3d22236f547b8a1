package githubtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"
)

// TestHookDeliveryLog plays what recovery relies on: deliveries that failed (answered 503, or
// not at all) show in the App's delivery log, newest first, a page at a time through the Link
// header's cursor; one attempt shows what was sent; a redelivery through the API is a new
// attempt of the same guid, sent once the call is answered, and it shows in the log too.
func TestHookDeliveryLog(t *testing.T) {
	s, rc := hooked(t)
	s.AddPull("acme/app", Pull{Number: 1, Title: "t", HeadRef: "f", HeadSHA: sha('c')})
	s.Comment("acme/app", 1, "octocat", "one") // 202
	flush(t, s)
	rc.answer.Store(http.StatusServiceUnavailable)
	s.Comment("acme/app", 1, "octocat", "/promote alpha") // 503
	flush(t, s)
	rc.answer.Store(0)
	s.PushBranch("acme/app", "alpha", sha('d'), "lena") // create and push, both unanswered
	flush(t, s)
	rc.answer.Store(http.StatusAccepted)

	app := appClient(t, s, s.AppID(), s.PrivateKeyPEM())
	ctx := context.Background()
	var all []*github.HookDelivery
	pages := 0
	for d, err := range app.Apps.ListHookDeliveriesIter(ctx, &github.ListCursorOptions{PerPage: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		if len(all)%3 == 0 {
			pages++
		}
		all = append(all, d)
	}
	if len(all) != 4 || pages != 2 {
		t.Fatalf("listed %d deliveries in %d pages, want 4 in 2", len(all), pages)
	}
	want := []struct {
		event  string
		status int
		text   string
	}{{"push", 0, "failed to connect to host"}, {"create", 0, "failed to connect to host"},
		{"issue_comment", 503, "Invalid HTTP Response: 503"}, {"issue_comment", 202, "OK"}}
	log := s.Deliveries()
	for i, d := range all {
		w, got := want[i], log[len(log)-1-i]
		if d.GetEvent() != w.event || d.GetStatusCode() != w.status || d.GetStatus() != w.text || d.GetRedelivery() ||
			d.GetID() != got.AttemptID || d.GetGUID() != got.ID || d.GetInstallationID() != 1 || d.GetRepositoryID() == 0 {
			t.Errorf("delivery %d = %v, want %s %d %q, attempt %d of %s", i, d, w.event, w.status, w.text, got.AttemptID, got.ID)
		}
		if i > 0 && !d.GetDeliveredAt().Time.After(all[i-1].GetDeliveredAt().Time) && d.GetID() >= all[i-1].GetID() {
			t.Errorf("delivery %d is not older than delivery %d", i, i-1)
		}
	}

	failed := all[2] // the /promote comment
	one, _, err := app.Apps.GetHookDelivery(ctx, failed.GetID())
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Comment struct{ Body string } `json:"comment"`
	}
	if one.Request == nil || json.Unmarshal(*one.Request.RawPayload, &payload) != nil || payload.Comment.Body != "/promote alpha" ||
		one.Request.GetHeader("X-GitHub-Delivery") != failed.GetGUID() || !strings.HasPrefix(one.Request.GetHeader("X-Hub-Signature-256"), "sha256=") {
		t.Errorf("the attempt's request = %v", one.Request)
	}
	if one.Response == nil || one.Response.GetHeader("Content-Type") == "" {
		t.Errorf("the attempt's response = %v", one.Response)
	}

	// GitHub answers 202, which go-github reports as an *AcceptedError.
	var accepted *github.AcceptedError
	if _, _, err := app.Apps.RedeliverHookDelivery(ctx, failed.GetID()); !errors.As(err, &accepted) {
		t.Fatalf("redelivering: %v, want go-github's AcceptedError for GitHub's 202", err)
	}
	flush(t, s)
	got := rc.deliveries()
	if last := got[len(got)-1]; last.id != failed.GetGUID() || !strings.Contains(string(last.body), "/promote alpha") {
		t.Errorf("the receiver's last delivery is %s %s, want the redelivered comment", last.event, last.id)
	}
	newest, _, err := app.Apps.ListHookDeliveries(ctx, &github.ListCursorOptions{PerPage: 1})
	if err != nil || len(newest) != 1 {
		t.Fatalf("newest = %v, %v", newest, err)
	}
	if n := newest[0]; n.GetGUID() != failed.GetGUID() || !n.GetRedelivery() || n.GetStatusCode() != 202 || n.GetID() <= all[0].GetID() {
		t.Errorf("the redelivery is listed as %v", n)
	}

	_, resp, err := app.Apps.RedeliverHookDelivery(ctx, 12345)
	if status(resp) != http.StatusNotFound {
		t.Errorf("redelivering an unknown attempt: %d %v, want 404", status(resp), err)
	}
	gh, _ := client(t, s) // an installation token is not the App's JWT
	if _, resp, err := gh.Apps.ListHookDeliveries(ctx, nil); status(resp) != http.StatusUnauthorized {
		t.Errorf("listing with an installation token: %d %v, want 401", status(resp), err)
	}
	s.SetWebhook("", nil)
	if _, resp, err := app.Apps.RedeliverHookDelivery(ctx, failed.GetID()); status(resp) != http.StatusUnprocessableEntity {
		t.Errorf("redelivering with no webhook URL: %d %v, want 422", status(resp), err)
	}
}

// TestListMatchingRefs lists tags and branches by prefix, with an annotated tag named by its
// tag object, as GitHub does.
func TestListMatchingRefs(t *testing.T) {
	s := New(t)
	seedHistory(s)
	lightweight := s.CreateTag("acme/app", "v1.0.0", sha('b'), "lena", false)
	annotated := s.CreateTag("acme/app", "v1.1.0", sha('c'), "lena", true)
	s.CreateTag("acme/app", "sprint-3", sha('c'), "lena", false)
	gh, _ := client(t, s)
	refs, _, err := gh.Git.ListMatchingRefs(context.Background(), "acme", "app", "tags/v")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].GetRef() != "refs/tags/v1.0.0" || refs[0].GetObject().GetSHA() != lightweight ||
		refs[1].GetObject().GetType() != "tag" || refs[1].GetObject().GetSHA() != annotated || annotated == sha('c') {
		t.Errorf("tags/v = %v", refs)
	}
	if refs, _, err := gh.Git.ListMatchingRefs(context.Background(), "acme", "app", "heads/"); err != nil || len(refs) != 1 || refs[0].GetRef() != "refs/heads/main" {
		t.Errorf("heads/ = %v, %v", refs, err)
	}
	if refs, _, err := gh.Git.ListMatchingRefs(context.Background(), "acme", "app", "tags/nope"); err != nil || len(refs) != 0 {
		t.Errorf("tags/nope = %v, %v; want none", refs, err)
	}
}
