package report

import (
	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// The identifiers of the buttons on deploy check runs; GitHub sends them back in a check_run
// requested_action event. At most 20 characters each.
const (
	ActionPromote  = "promote"
	ActionRetry    = "retry"
	ActionRollback = "rollback"
)

// actions are the buttons a finished deploy's check run offers, where they make sense: promote a
// success to the next stage and roll it back when something ran before it; retry a failure.
// Whoever presses one is authorized like the command it stands for.
func (v view) actions() []*github.CheckRunAction {
	d := v.D
	var out []*github.CheckRunAction
	switch d.State {
	case deploy.Succeeded:
		if d.Mode == deploy.ModePRBuild {
			return nil
		}
		if v.Next != "" {
			label := "Promote to " + v.Next
			if len([]rune(label)) > 20 {
				label = "Promote" // "Promote to producti…" reads worse; the description names the stage
			}
			out = append(out, &github.CheckRunAction{Label: label, Identifier: ActionPromote,
				Description: clip("Move "+v.Next+" to this commit and deploy", 40)})
		}
		if v.Compare != "" && v.Compare != d.SHA {
			out = append(out, &github.CheckRunAction{Label: "Rollback", Identifier: ActionRollback,
				Description: clip("Put back what ran on "+d.Stage+" before", 40)})
		}
	case deploy.Failed, deploy.RolledBack:
		out = append(out, &github.CheckRunAction{Label: "Retry", Identifier: ActionRetry,
			Description: clip("Run this deploy again", 40)})
	}
	return out
}
