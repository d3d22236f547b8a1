package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// twoRepos is newAPI's three deploys of acme/hello (ids 1-3) plus deploy 4 of acme/secret, and
// a lock, a release and a command in each repository.
func twoRepos(t *testing.T) http.Handler {
	t.Helper()
	h, st := newAPI(t)
	ctx := context.Background()
	if _, err := st.Record(ctx, store.Intake{Delivery: store.Delivery{ID: "s1", Event: "push"},
		Deploys: []deploy.Request{{App: "secret", Stage: "prod", Repo: "acme/secret", SHA: "d4",
			Trigger: deploy.Trigger{Event: "push", Delivery: "s1", Actor: "mallory-target"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"acme/hello", "acme/secret"} {
		app := strings.TrimPrefix(repo, "acme/")
		if _, _, err := st.LockStage(ctx, store.StageLock{App: app, Stage: "prod", Repo: repo, Owner: "sam", Reason: "lock of " + repo}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.CreateRelease(ctx, store.Release{Repo: repo, Tag: "v1-" + app, SHA: "f" + app, State: store.ReleaseOpen}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordCommand(ctx, store.CommandRecord{Key: "c-" + app, Repo: repo, Actor: "sam", Verb: "promote",
			Stage: "prod", Args: "/promote prod --force \"reason in " + repo + "\""}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

var (
	reader = access.New("reader", "", []access.Grant{{Repo: "Acme/Hello"}})
	admin  = access.New("admin", "", []access.Grant{{Repo: "acme/hello", Audit: true}})
)

// TestReaderWithoutAccessCannotReadAnotherReposDeployByID: asking for a deploy of a repository
// one cannot read by its id answers exactly as a deploy that does not exist.
func TestReaderWithoutAccessCannotReadAnotherReposDeployByID(t *testing.T) {
	h := twoRepos(t)
	code, body := getAs(t, h, reader, "/api/v1/deployments/4")
	_, missing := getAs(t, h, reader, "/api/v1/deployments/99")
	if code != http.StatusNotFound || strings.Contains(body, "d4") || strings.Replace(body, "4", "99", 1) != missing {
		t.Errorf("another repository's deploy by id: %d %s (a missing one: %s)", code, body, missing)
	}
	if code, body := getAs(t, h, reader, "/api/v1/deployments/2"); code != 200 || !strings.Contains(body, `"sha": "b2"`) {
		t.Errorf("a readable deploy by id: %d %s", code, body)
	}
}

// TestReaderWithoutAccessCannotListAnotherReposDeploysByFilter: no filter, paging or state
// reaches a deploy of a repository the reader cannot read.
func TestReaderWithoutAccessCannotListAnotherReposDeploysByFilter(t *testing.T) {
	h := twoRepos(t)
	for _, path := range []string{
		"/api/v1/deployments", "/api/v1/deployments?app=secret", "/api/v1/deployments?stage=prod",
		"/api/v1/deployments?state=queued", "/api/v1/deployments?before=5", "/api/v1/deployments?app=secret&limit=1",
	} {
		code, body := getAs(t, h, reader, path)
		if code != 200 || strings.Contains(body, "acme/secret") || strings.Contains(body, "d4") {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	if _, body := getAs(t, h, reader, "/api/v1/deployments"); strings.Count(body, `"repo": "acme/hello"`) != 3 {
		t.Errorf("the reader's own deploys are not all listed: %s", body)
	}
	nobody := access.New("nobody", "", nil)
	if code, body := getAs(t, h, nobody, "/api/v1/deployments"); code != 200 || strings.Contains(body, "acme/") {
		t.Errorf("someone who can read nothing: %d %s", code, body)
	}
}

// TestReaderWithoutAccessSeesNoLocksOrReleasesOfAnotherRepo: locks and releases of another
// repository look like none.
func TestReaderWithoutAccessSeesNoLocksOrReleasesOfAnotherRepo(t *testing.T) {
	h := twoRepos(t)
	if code, body := getAs(t, h, reader, "/api/v1/locks"); code != 200 || strings.Contains(body, "acme/secret") || !strings.Contains(body, "lock of acme/hello") {
		t.Errorf("locks: %d %s", code, body)
	}
	code, body := getAs(t, h, reader, "/api/v1/releases?repo=acme/secret")
	if code != 200 || strings.Contains(body, "v1-secret") {
		t.Errorf("another repository's releases: %d %s", code, body)
	}
	if _, none := getAs(t, h, reader, "/api/v1/releases?repo=acme/nothing"); none != body {
		t.Errorf("another repository's releases differ from a repository without any: %s vs %s", body, none)
	}
	if _, body := getAs(t, h, reader, "/api/v1/releases?repo=acme/hello"); !strings.Contains(body, "v1-hello") {
		t.Errorf("own releases: %s", body)
	}
}

// TestCommandAuditIsForRepositoryAdminsOnly: a reader who is not an admin gets no audit trail
// (actors, forced reasons, refusals), an admin gets their repositories' and no other's.
func TestCommandAuditIsForRepositoryAdminsOnly(t *testing.T) {
	h := twoRepos(t)
	if code, body := getAs(t, h, reader, "/api/v1/commands?repo=acme/hello"); code != http.StatusForbidden || strings.Contains(body, "reason in") {
		t.Errorf("a reader asking for the audit: %d %s", code, body)
	}
	if code, body := getAs(t, h, reader, "/api/v1/commands"); code != 200 || strings.Contains(body, "reason in") {
		t.Errorf("a reader asking for every audit: %d %s", code, body)
	}
	if code, body := getAs(t, h, admin, "/api/v1/commands?repo=acme/secret"); code != http.StatusForbidden || strings.Contains(body, "reason in") {
		t.Errorf("an admin of another repository: %d %s", code, body)
	}
	for _, path := range []string{"/api/v1/commands", "/api/v1/commands?repo=acme/hello"} {
		code, body := getAs(t, h, admin, path)
		if code != 200 || !strings.Contains(body, "reason in acme/hello") || strings.Contains(body, "acme/secret") {
			t.Errorf("an admin, %s: %d %s", path, code, body)
		}
	}
}

// TestRequestWithoutViewerReadsNothing: if the gate were left out, the API refuses rather than
// answering everyone.
func TestRequestWithoutViewerReadsNothing(t *testing.T) {
	h := twoRepos(t)
	for _, path := range []string{"/api/v1/deployments", "/api/v1/deployments/1", "/api/v1/locks", "/api/v1/releases?repo=acme/hello", "/api/v1/commands"} {
		if code, body := getAs(t, h, nil, path); code != http.StatusUnauthorized || strings.Contains(body, "acme/") {
			t.Errorf("%s without a viewer: %d %s", path, code, body)
		}
	}
}
