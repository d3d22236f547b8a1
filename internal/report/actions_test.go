package report

import (
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// TestActions proves which buttons a finished deploy's check run offers: promote a success to
// the next stage and roll it back when something ran on the stage before it, retry a failure,
// and nothing for a deploy that never ran or a pull-request build that worked.
func TestActions(t *testing.T) {
	for _, tt := range []struct {
		name          string
		state         deploy.State
		mode          deploy.Mode
		next, compare string
		want          string // identifiers, in order
	}{
		{name: "succeeded with a next stage and a previous commit", state: deploy.Succeeded, next: "alpha", compare: oldSHA, want: "promote,rollback"},
		{name: "succeeded with a next stage only", state: deploy.Succeeded, next: "alpha", want: "promote"},
		{name: "succeeded with a previous commit only", state: deploy.Succeeded, compare: oldSHA, want: "rollback"},
		{name: "succeeded with neither", state: deploy.Succeeded},
		{name: "succeeded again with the commit that ran before", state: deploy.Succeeded, compare: newSHA},
		{name: "failed", state: deploy.Failed, next: "alpha", compare: oldSHA, want: "retry"},
		{name: "rolled back", state: deploy.RolledBack, next: "alpha", compare: oldSHA, want: "retry"},
		{name: "superseded", state: deploy.Superseded, next: "alpha", compare: oldSHA},
		{name: "cancelled", state: deploy.Cancelled, next: "alpha", compare: oldSHA},
		{name: "still running", state: deploy.RollingOut, next: "alpha", compare: oldSHA},
		{name: "pull-request build succeeded", state: deploy.Succeeded, mode: deploy.ModePRBuild, next: "alpha", compare: oldSHA},
		{name: "pull-request build failed", state: deploy.Failed, mode: deploy.ModePRBuild, want: "retry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := fixture(tt.state)
			v.D.Mode, v.Next, v.Compare = tt.mode, tt.next, tt.compare
			var got []string
			for _, a := range v.actions() {
				got = append(got, a.Identifier)
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("buttons %v, want [%s]", got, tt.want)
			}
		})
	}
}

// TestActionLabels proves the buttons say what they do, and stay within GitHub's limits (a label
// of at most 20 characters, a description of at most 40, an identifier of at most 20) however
// long the stages' names are.
func TestActionLabels(t *testing.T) {
	for _, tt := range []struct {
		name, stage, next string
		labels            string // the labels, in order
		descriptions      string
	}{
		{"short names", "test", "alpha", "Promote to alpha,Rollback", "Move alpha to this commit and deploy,Put back what ran on test before"},
		{"long names", "production-europe-west-1", "production-europe-west-2-canary", "Promote,Rollback",
			"Move production-europe-west-2-canary to…,Put back what ran on production-europe-…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, state := range []deploy.State{deploy.Succeeded, deploy.Failed} {
				v := fixture(state)
				v.D.Stage, v.Next, v.Compare = tt.stage, tt.next, oldSHA
				var labels, descriptions []string
				for _, a := range v.actions() {
					labels, descriptions = append(labels, a.Label), append(descriptions, a.Description)
					for what, s := range map[string]string{"label": a.Label, "identifier": a.Identifier} {
						if n := len([]rune(s)); n > 20 || n == 0 {
							t.Errorf("%s %s %q: %d characters, GitHub allows 1 to 20", state, what, s, n)
						}
					}
					if n := len([]rune(a.Description)); n > 40 || n == 0 {
						t.Errorf("%s description %q: %d characters, GitHub allows 1 to 40", state, a.Description, n)
					}
				}
				if state == deploy.Succeeded && (strings.Join(labels, ",") != tt.labels || strings.Join(descriptions, ",") != tt.descriptions) {
					t.Errorf("labels %q and descriptions %q, want %s and %s", labels, descriptions, tt.labels, tt.descriptions)
				}
				if state == deploy.Failed && strings.Join(labels, ",")+": "+strings.Join(descriptions, ",") != "Retry: Run this deploy again" {
					t.Errorf("failure's buttons %q: %q", labels, descriptions)
				}
			}
		})
	}
}
