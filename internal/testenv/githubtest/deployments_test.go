package githubtest

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"
)

// TestAutoInactiveAsDescribed: a success adds inactive to the prior deployments of its
// environment that are not production and succeeded, unless auto_inactive is false; a
// deployment made later, one of a production environment, of another environment, or one that
// failed keeps its state. Statuses keep their environment_url.
func TestAutoInactiveAsDescribed(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	s.SetRef("acme/app", "main", strings.Repeat("a", 40))
	deployment := func(env string, prod bool) int64 {
		t.Helper()
		d, _, err := gh.Repositories.CreateDeployment(ctx, "acme", "app", &github.DeploymentRequest{Ref: github.Ptr("main"),
			Environment: github.Ptr(env), AutoMerge: github.Ptr(false), RequiredContexts: &[]string{}, ProductionEnvironment: github.Ptr(prod)})
		if err != nil {
			t.Fatal(err)
		}
		return d.GetID()
	}
	send := func(id int64, state string, auto *bool) {
		t.Helper()
		st, _, err := gh.Repositories.CreateDeploymentStatus(ctx, "acme", "app", id, &github.DeploymentStatusRequest{State: github.Ptr(state),
			EnvironmentURL: github.Ptr("https://test.app.example/"), AutoInactive: auto})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetEnvironmentURL() != "https://test.app.example/" {
			t.Errorf("status environment_url = %q", st.GetEnvironmentURL())
		}
	}
	last := func() map[int64]string {
		out := map[int64]string{}
		for _, d := range s.Deployments("acme/app") {
			out[d.ID] = d.Statuses[len(d.Statuses)-1].State
		}
		return out
	}
	prior, failed, prodPrior, other := deployment("test", false), deployment("test", false), deployment("prod", true), deployment("qa", false)
	send(prior, "success", nil)
	send(failed, "failure", nil)
	send(prodPrior, "success", nil)
	send(other, "success", nil)
	kept := deployment("test", false)
	send(kept, "success", github.Ptr(false)) // auto_inactive false: the prior one stays
	if got := last()[prior]; got != "success" {
		t.Errorf("auto_inactive false made the prior deployment %s", got)
	}
	current, prod := deployment("test", false), deployment("prod", true)
	later := deployment("test", false)
	send(later, "success", nil)
	send(current, "success", nil) // created before later: later is not prior to it
	send(prod, "success", nil)
	want := map[int64]string{prior: "inactive", failed: "failure", prodPrior: "success", other: "success", kept: "inactive",
		current: "success", prod: "success", later: "success"}
	for id, st := range last() {
		if st != want[id] {
			t.Errorf("deployment %d ends %s, want %s", id, st, want[id])
		}
	}
}

// TestDeploymentStatusURLsAreURIs: the description answers log_url and environment_url as
// "format": "uri"; the server refuses a status whose links would not be one.
func TestDeploymentStatusURLsAreURIs(t *testing.T) {
	s := New(t)
	gh, _ := client(t, s)
	ctx := context.Background()
	s.SetRef("acme/app", "main", strings.Repeat("a", 40))
	d, _, err := gh.Repositories.CreateDeployment(ctx, "acme", "app", &github.DeploymentRequest{Ref: github.Ptr("main"),
		Environment: github.Ptr("test"), AutoMerge: github.Ptr(false), RequiredContexts: &[]string{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name        string
		log, env    string
		wantRefused bool
	}{
		{"absolute", "https://github.com/acme/app/runs/1", "https://test.app.example/", false},
		{"none", "", "", false},
		{"a relative log", "/acme/app/runs/1", "", true},
		{"a script", "", "javascript:alert(1)", true},
		{"no host", "", "https:///x", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &github.DeploymentStatusRequest{State: github.Ptr("in_progress")}
			if tt.log != "" {
				req.LogURL = github.Ptr(tt.log)
			}
			if tt.env != "" {
				req.EnvironmentURL = github.Ptr(tt.env)
			}
			_, _, err := gh.Repositories.CreateDeploymentStatus(ctx, "acme", "app", d.GetID(), req)
			if (err != nil) != tt.wantRefused {
				t.Errorf("status with log_url %q environment_url %q: %v, want refused %v", tt.log, tt.env, err, tt.wantRefused)
			}
		})
	}
}
