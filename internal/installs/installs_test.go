package installs

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

const testConfig = `
credentials:
  nonprod: {role_arn: "arn:aws:iam::123456789012:role/n"}
  prod: {role_arn: "arn:aws:iam::123456789012:role/p"}
apps:
  - {name: api, repo: acme/api}
  - {name: web, repo: Acme/Web}
  - {name: other, repo: someone/else}
`

// TestCoverage: an installation covers the configured apps of its account whose repositories it
// lists, or all of them when it lists none ("All repositories"); apps of other accounts are not
// its business.
func TestCoverage(t *testing.T) {
	cfg, err := config.Parse("installs.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	e := New(cfg, slog.New(slog.DiscardHandler))
	for _, tt := range []struct {
		name             string
		in               jobs.Installation
		covered, missing []string
	}{
		{"selected repositories", jobs.Installation{Account: "acme", Repos: []string{"acme/api"}}, []string{"api"}, []string{"web"}},
		{"names are case-insensitive", jobs.Installation{Account: "ACME", Repos: []string{"acme/api", "acme/web"}}, []string{"api", "web"}, nil},
		{"all repositories", jobs.Installation{Account: "acme"}, []string{"api", "web"}, nil},
		{"another account", jobs.Installation{Account: "elsewhere", Repos: []string{"elsewhere/x"}}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			covered, missing := e.Coverage(tt.in)
			if !slices.Equal(covered, tt.covered) || !slices.Equal(missing, tt.missing) {
				t.Errorf("coverage = %v, %v; want %v, %v", covered, missing, tt.covered, tt.missing)
			}
		})
	}
}

// TestRunWarns: an installation that leaves out a configured app's repository, or the App's
// removal, is a warning that names the apps.
func TestRunWarns(t *testing.T) {
	cfg, err := config.Parse("installs.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		in   jobs.Installation
		want string
	}{
		{"a repository left out", jobs.Installation{InstallationID: 7, Action: "created", Account: "acme", Repos: []string{"acme/api"}},
			`level=WARN msg="configured apps whose repository this installation does not include`},
		{"removed", jobs.Installation{InstallationID: 7, Action: "deleted", Account: "acme"},
			`level=WARN msg="the GitHub App was removed or suspended: Stagecoach can no longer report or answer for these apps" installation=7 account=acme action=deleted delivery="" apps="[api web]"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			payload, _ := json.Marshal(tt.in)
			if err := e.Executor().Run(context.Background(), jobs.Job{Kind: jobs.KindInstallation, Payload: payload}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), tt.want) {
				t.Errorf("logs:\n%s\nwant %s", logs.String(), tt.want)
			}
		})
	}
	if err := New(cfg, slog.New(slog.DiscardHandler)).Executor().Run(context.Background(), jobs.Job{Kind: jobs.KindInstallation, Payload: []byte("{")}); !jobs.IsTerminal(err) {
		t.Errorf("a malformed payload: %v, want a terminal error", err)
	}
}
