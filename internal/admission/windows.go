package admission

import (
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// Hold is the rule of deploy windows and freezes, the one the gate tells people about and the
// pipeline enforces on every deploy before it starts (whatever recorded it: a merge, a push, a
// command, a button, a retry): a deploy to a stage outside its windows, or while a freeze holds
// it, waits, queued, until the stage next takes deploys. It returns that wait, or nil when the
// deploy may start at now.
//
// What does not wait: a rollback (an earlier image, or a slot switch: it only puts back what
// ran before, and an emergency rollback that waited for Monday would be no rollback), and what
// an admin forced with a reason. A pull request's build deploys nothing.
func Hold(stage *config.Stage, r deploy.Request, now time.Time) (*deploy.Wait, error) {
	if stage == nil || r.Force != "" || r.Mode == deploy.ModeImage || r.Mode == deploy.ModeSwitch || r.Mode == deploy.ModePRBuild {
		return nil, nil
	}
	cal, err := stage.Calendar()
	if err != nil || cal == nil {
		return nil, err
	}
	s := cal.At(now)
	if s.Open {
		return nil, nil
	}
	until := s.Next
	if until.IsZero() {
		// No opening within reach (cannot happen to a valid calendar): look again in a day
		// rather than never.
		until = now.Add(24 * time.Hour)
	}
	w := &deploy.Wait{Until: until, At: cal.Format(until), Windows: cal.Describe()}
	if s.Freeze != nil {
		w.Freeze = s.Freeze.Reason
	}
	return w, nil
}
