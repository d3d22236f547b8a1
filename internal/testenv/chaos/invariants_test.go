package chaos

import (
	"strings"
	"testing"
)

// TestChecksCatchWhatTheyGuard feeds the checks the outcomes they exist to catch (and ones they
// must let pass), so that a check which could never fail would show here. The whole run against
// the code before durable reports breaks the report checks for real (see README).
func TestChecksCatchWhatTheyGuard(t *testing.T) {
	t.Run("two deploys running on one target", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			ds   []storedDeploy
			want string
		}{
			{"in turn", []storedDeploy{{id: 1, started: 10, finished: 20}, {id: 2, started: 20, finished: 30}, {id: 3}}, ""},
			{"overlapping", []storedDeploy{{id: 1, started: 10, finished: 25}, {id: 2, started: 20, finished: 30}}, "deploy 2 started while deploy 1 ran"},
			{"one never ended", []storedDeploy{{id: 2, started: 20, finished: 30}, {id: 1, started: 10}}, "deploy 2 started while deploy 1 ran"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if got := strings.Join(overlapping(tt.ds), "; "); got != tt.want {
					t.Errorf("overlapping = %q, want %q", got, tt.want)
				}
			})
		}
	})
	t.Run("an older deploy's change after a newer one's", func(t *testing.T) {
		if got := olderAfterNewer([]clusterChange{{deploy: 3}, {deploy: 5}, {deploy: 9}}); len(got) != 0 {
			t.Errorf("in order: %v", got)
		}
		if got := olderAfterNewer([]clusterChange{{deploy: 3}, {deploy: 5}, {deploy: 4}}); len(got) != 1 || !strings.Contains(got[0], "deploy 4's change after deploy 5's") {
			t.Errorf("out of order: %v", got)
		}
	})
	t.Run("a status after a newer deploy's", func(t *testing.T) {
		// Ids are GitHub's order of creation, whatever order the statuses are listed in.
		if got := statusesAfterNewer([]status{{deploy: 2, id: 30}, {deploy: 1, id: 10}, {deploy: 1, id: 20}}); len(got) != 0 {
			t.Errorf("in order: %v", got)
		}
		if got := statusesAfterNewer([]status{{deploy: 1, id: 10}, {deploy: 2, id: 20}, {deploy: 1, id: 30}}); len(got) != 1 {
			t.Errorf("stale: %v", got)
		}
		retired := []status{{1, 10, "success"}, {2, 20, "in_progress"}, {2, 30, "success"}, {1, 40, "inactive"}}
		if got := statusesAfterNewer(retired); len(got) != 0 {
			t.Errorf("the replaced deployment retired after the newer success: %v", got)
		}
		early := []status{{1, 10, "success"}, {2, 20, "in_progress"}, {1, 30, "inactive"}, {2, 40, "failure"}}
		if got := statusesAfterNewer(early); len(got) != 1 {
			t.Errorf("the live deployment retired while the newer one had not succeeded: %v", got)
		}
		late := []status{{1, 10, "in_progress"}, {2, 20, "success"}, {1, 30, "success"}}
		if got := statusesAfterNewer(late); len(got) != 1 {
			t.Errorf("an older success after a newer one: %v", got)
		}
	})
	t.Run("a reply left waiting", func(t *testing.T) {
		for body, want := range map[string]string{
			"<!-- stagecoach:reply comment:acme/web:7 -->\n@lena ⏳ deploying `abc1234` to **test**. Progress follows in this comment.": "@lena ⏳ deploying `abc1234` to **test**. Progress follows in this comment.",
			"<!-- stagecoach:command-deploy 12 -->\n### ✅ `abc1234` is live on **test**, deployed in 3.1s\n\n| step |":                 "### ✅ `abc1234` is live on **test**, deployed in 3.1s",
		} {
			if got := headline(body); got != want {
				t.Errorf("headline(%q) = %q, want %q", body, got, want)
			}
		}
	})
}
