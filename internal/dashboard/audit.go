package dashboard

import (
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/store"
)

// auditRows is how many of an app's latest commands its admins see.
const auditRows = 10

// commandView is one command of the audit trail, as its repository's admins see it: who asked
// for what, when, what came of it and why.
type commandView struct {
	Actor, Args, Outcome, Class, Reason, Force, IssueURL string
	Issue                                                int
	When                                                 when
}

// commandsOf renders an app's latest commands.
func commandsOf(cs []store.CommandRecord, repoURL string, now time.Time) []commandView {
	out := make([]commandView, 0, len(cs))
	for _, c := range cs {
		v := commandView{Actor: c.Actor, Args: c.Args, Outcome: c.Outcome, Reason: c.Reason, Force: c.Force, Issue: c.Issue, When: at(c.CreatedAt, now)}
		switch c.Outcome {
		case "accepted":
			v.Class = "succeeded"
		case "refused", "failed":
			v.Class = "failed"
		case "":
			v.Outcome, v.Class = "running", "running"
		}
		if c.Issue != 0 {
			v.IssueURL = fmt.Sprintf("%s/issues/%d", repoURL, c.Issue)
		}
		out = append(out, v)
	}
	return out
}
