package pipeline

import (
	"fmt"
	"time"

	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// maxWait bounds how long a deploy waiting for its stage's window sleeps before it is looked at
// again: a configuration that changed its windows or freezes meanwhile (a restart with a freeze
// lifted early) is heard within it.
const maxWait = 10 * time.Minute

// waitForWindow holds a queued deploy back while its stage takes no deploys: outside its deploy
// windows, or during a freeze (admission.Hold, the rule the admission gate told the person who
// asked about). This is where every deploy passes before it starts, whatever recorded it — a
// merge, a push, a command, a button, a retry — so none skips the rule. The deploy stays queued,
// with the wait in its checkpoint for reports to show, and is looked at again when the stage
// opens: the store's run_after, which survives a restart, so a window that opens while the
// process is down starts it as soon as one runs. A newer request for the stage supersedes it
// meanwhile, as it would any queued deploy. It returns false when the deploy may start now.
func (r *Runner) waitForWindow(d deploy.Deploy, t target, cp *deploy.Checkpoint) (result, bool) {
	now := r.o.Now()
	w, err := admission.Hold(t.stage, d.Request, now)
	if err != nil {
		return result{state: deploy.Failed, err: fmt.Sprintf("reading the deploy windows of %s: %v", d.Stage, err)}, true
	}
	if w == nil {
		cp.Wait = nil
		return result{}, false
	}
	changed := cp.Wait == nil || !cp.Wait.Until.Equal(w.Until) || cp.Wait.Freeze != w.Freeze
	cp.Wait = w
	return result{after: min(w.Until.Sub(now), maxWait), report: changed}, true
}
