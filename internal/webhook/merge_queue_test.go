package webhook

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMergeQueueDeliveriesRecordNothingHere: through the intake, a push to a merge queue's
// branch is answered 202 with the reason and records no work, and merge_group is routed (not
// "not handled") and, for an app that does not build merge groups, records nothing either.
func TestMergeQueueDeliveriesRecordNothingHere(t *testing.T) {
	for _, tt := range []struct{ event, file, body string }{
		{"push", "push_merge_queue.json", "a merge queue's branch"},
		{"merge_group", "merge_group_checks_requested.json", "builds merge groups (pr_build.merge_queue)"},
	} {
		t.Run(tt.event, func(t *testing.T) {
			rec := &fakeRecorder{}
			w := httptest.NewRecorder()
			newIntake(t, rec).ServeHTTP(w, signed(tt.event, "mq-"+tt.event, fixture(t, tt.file)))
			if w.Code != 202 || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("answer %d %s, want 202 with %q", w.Code, w.Body, tt.body)
			}
			if len(rec.got) != 0 {
				t.Errorf("recorded %+v", rec.got)
			}
		})
	}
}
