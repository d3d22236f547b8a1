package authz

import (
	"context"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

func TestCheck(t *testing.T) {
	gh := githubtest.New(t)
	gh.SetTeamMember("acme", "product-owners", "pat")
	gh.SetPermission("acme/hello", "root", "admin")
	gh.SetPermission("acme/hello", "dev", "write")
	gh.SetPermission("acme/hello", "guest", "read")
	f, err := githubapp.New(githubapp.Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.Installation(1)
	dir := GitHubDirectory{Client: c}
	prod := config.Approvers{Users: []string{"po", "cto"}, Teams: []string{"acme/product-owners"}}
	tests := []struct {
		name      string
		approvers config.Approvers
		user      string
		force     bool
		allowed   bool
		reason    string
	}{
		{"a named user", prod, "po", false, true, ""},
		{"names are case-insensitive", prod, "PO", false, true, ""},
		{"a team member", prod, "pat", false, true, ""},
		{"anyone else", prod, "dev", false, false, "@dev may not promote to prod: only @po, @cto and members of @acme/product-owners may."},
		{"no approvers: a writer", config.Approvers{}, "dev", false, true, ""},
		{"no approvers: a reader", config.Approvers{}, "guest", false, false, "@guest may not promote to prod: only people with write access to acme/hello may."},
		{"no approvers: a stranger", config.Approvers{}, "stranger", false, false, "@stranger may not promote to prod: only people with write access to acme/hello may."},
		{"forced by an admin who is no approver", prod, "root", true, false, "@root may not promote to prod: only @po, @cto and members of @acme/product-owners may."},
		{"forced by a non-admin approver", prod, "po", true, false, "@po may not promote to prod with `--force`: only admins of acme/hello may skip the stage order."},
		{"forced by an admin", config.Approvers{}, "root", true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Check(context.Background(), dir, tt.approvers, "acme/hello", tt.user, "promote to prod", tt.force)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tt.allowed {
				t.Errorf("allowed = %v, want %v (%s)", d.Allowed, tt.allowed, d.Reason)
			}
			if !tt.allowed && d.Reason == "" {
				t.Error("a refusal without a reason")
			}
			if d.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestWho(t *testing.T) {
	for _, tt := range []struct {
		a    config.Approvers
		want string
	}{
		{config.Approvers{Users: []string{"po"}}, "@po"},
		{config.Approvers{Users: []string{"a", "b", "c"}}, "@a, @b and @c"},
		{config.Approvers{Teams: []string{"acme/po", "acme/leads"}}, "members of @acme/po or @acme/leads"},
		{config.Approvers{Users: []string{"po"}, Teams: []string{"acme/po"}}, "@po and members of @acme/po"},
		{config.Approvers{Users: []string{"po", "cto"}, Teams: []string{"acme/po"}}, "@po, @cto and members of @acme/po"},
	} {
		if got := who(tt.a); got != tt.want {
			t.Errorf("who(%+v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}
