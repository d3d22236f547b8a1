package dashboard

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/access"
	"github.com/stagecoach/stagecoach/internal/store"
)

// withCommands adds two commands of acme/hello to the world, one forced, one refused.
func withCommands(t *testing.T, d *Dashboard) {
	t.Helper()
	st := d.st.(*store.Store)
	ctx := context.Background()
	for i, c := range []store.CommandRecord{
		{Key: "c1", Repo: "acme/hello", Issue: 22, Actor: "paula", Verb: "promote", Stage: "prod", Args: `/promote prod --force "hotfix"`, Force: "hotfix"},
		{Key: "c2", Repo: "acme/hello", Issue: 22, Actor: "alice", Verb: "promote", Stage: "prod", Args: "/promote prod"},
	} {
		rec, err := st.RecordCommand(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		outcome, reason := "accepted", ""
		if i == 1 {
			outcome, reason = "refused", "only members of @acme/product-owners may"
		}
		if err := st.FinishCommand(ctx, rec.ID, outcome, reason, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPersonWithoutAccessSeesNothingOfTheApp: someone who cannot read the app's repository
// sees neither the app nor anything of its deploys, locks, releases or people.
func TestPersonWithoutAccessSeesNothingOfTheApp(t *testing.T) {
	d := world(t)
	withCommands(t, d)
	for _, v := range []*access.Viewer{access.New("mallory", "", []access.Grant{{Repo: "acme/other", Audit: true}}), nil} {
		w, body := getAs(t, d, v, "/")
		if w.Code != http.StatusOK {
			t.Fatalf("answer %d", w.Code)
		}
		for _, leak := range []string{"acme/hello", "hello-test", "bbbbbbb", "v1.2.0", "sre-sam", "INC-42", "hotfix", "paula", "octocat"} {
			if strings.Contains(body, leak) {
				t.Errorf("viewer %v sees %q", v, leak)
			}
		}
		if !strings.Contains(body, `id="no-access"`) {
			t.Error("the page does not say why it is empty")
		}
	}
}

// TestCommandAuditOnOnlyAdminsPage: a reader sees the app but not its commands (who asked for
// what, the forced reasons); an admin of the repository sees them, the refusal included. (A
// reader does see what was refused lately, in the Refused section: GitHub shows them the same in
// the refusal's reply or check run.)
func TestCommandAuditOnOnlyAdminsPage(t *testing.T) {
	d := world(t)
	withCommands(t, d)
	_, body := getAs(t, d, access.New("lena", "", []access.Grant{{Repo: "acme/hello"}}), "/")
	if !strings.Contains(body, `id="hello-test"`) {
		t.Fatal("a reader does not see the app")
	}
	if strings.Contains(body, "app-hello-audit") || strings.Contains(body, `--force`) {
		t.Error("a reader who is not an admin sees the command audit")
	}
	_, body = getAs(t, d, access.New("sam", "", []access.Grant{{Repo: "ACME/hello", Audit: true}}), "/")
	i := strings.Index(body, `id="app-hello-audit"`)
	if i < 0 {
		t.Fatal("an admin of the repository does not see its command audit")
	}
	audit := body[i:]
	for _, want := range []string{"@paula", `<code>/promote prod --force &#34;hotfix&#34;</code>`, "forced: hotfix",
		"@alice", `<span class="badge failed">refused</span>`, "only members of @acme/product-owners may", `<a href="https://github.com/acme/hello/issues/22">#22</a>`} {
		if !strings.Contains(audit, want) {
			t.Errorf("the admin's audit lacks %s", want)
		}
	}
}

// TestSignedInPersonGetsSignOutFormWithToken: the sign-out form posts the session's form
// token; the local trial has no form.
func TestSignedInPersonGetsSignOutFormWithToken(t *testing.T) {
	d := world(t)
	v := access.New("lena", "", []access.Grant{{Repo: "acme/hello"}})
	v.CSRF = "tok-123"
	_, body := getAs(t, d, v, "/")
	if !strings.Contains(body, `Signed in as <strong>@lena</strong>`) ||
		!strings.Contains(body, `<form method="post" action="/signout"><input type="hidden" name="csrf" value="tok-123">`) {
		t.Errorf("no sign-out form with the token:\n%s", body[:min(len(body), 4000)])
	}
	if _, body := get(t, d, "/"); strings.Contains(body, "/signout") {
		t.Error("the local trial shows a sign-out form")
	}
}
