package report

import (
	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/markdown"
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
			out = append(out, &github.CheckRunAction{Label: label, Identifier: jobs.ActionPromote,
				Description: markdown.Clip("Move "+v.Next+" to this commit and deploy", 40)})
		}
		if v.Compare != "" && v.Compare != d.SHA {
			out = append(out, &github.CheckRunAction{Label: "Rollback", Identifier: jobs.ActionRollback,
				Description: markdown.Clip("Put back what ran on "+d.Stage+" before", 40)})
		}
	case deploy.Failed, deploy.RolledBack:
		out = append(out, &github.CheckRunAction{Label: "Retry", Identifier: jobs.ActionRetry,
			Description: markdown.Clip("Run this deploy again", 40)})
	}
	return out
}
