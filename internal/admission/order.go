package admission

import (
	"context"
	"fmt"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// Succeeder finds a commit's successful deploy to a stage.
type Succeeder interface {
	Succeeded(ctx context.Context, app, stage, sha string) (deploy.Deploy, bool, error)
}

// OrderError says a commit may not go to a stage: it has not succeeded on the stage before.
type OrderError struct {
	SHA, From, Stage string
	Order            string // the promotion order ending at Stage: "test → alpha → prod"
}

// Error is the plain text a deploy's error and a check-run title show.
func (e *OrderError) Error() string {
	return fmt.Sprintf("stage order: %s has not succeeded on %s, and %s takes only commits that did (%s); "+
		"an admin may override it with `/deploy %s %s --force \"the reason\"`", deploy.ShortSHA(e.SHA), e.From, e.Stage, e.Order,
		e.Stage, deploy.ShortSHA(e.SHA))
}

// Markdown is the refusal a person reads.
func (e *OrderError) Markdown() string {
	return fmt.Sprintf("`%s` has not succeeded on **%s**, and **%s** takes only commits that did (the stage order: %s). "+
		"An admin may override it: `/deploy %s %s --force \"the reason\"`.", deploy.ShortSHA(e.SHA), e.From, e.Stage, e.Order,
		e.Stage, deploy.ShortSHA(e.SHA))
}

// CheckOrder is the stage order, the one rule both the gate and the pipeline's preflight apply:
// app's deploy of r.SHA to stage needs a successful deploy of that commit to the stage's
// promote_from, unless an admin forced it (r.Force) or it only brings back what ran on the stage
// before (an image rollback or a slot switch). An app that skips the stage before has nothing
// to have succeeded on. It returns nil when the deploy may go.
func CheckOrder(ctx context.Context, st Succeeder, cfg *config.Config, app *config.App, stage *config.Stage, r deploy.Request) (*OrderError, error) {
	from := stage.PromoteFrom
	if from == "" || r.Force != "" || r.Mode == deploy.ModeImage || r.Mode == deploy.ModeSwitch || r.Mode == deploy.ModePRBuild {
		return nil, nil
	}
	if _, ok := app.Stages[from]; !ok {
		return nil, nil
	}
	_, ok, err := st.Succeeded(ctx, app.Name, from, r.SHA)
	if err != nil || ok {
		return nil, err
	}
	return &OrderError{SHA: r.SHA, From: from, Stage: stage.Name, Order: Order(cfg, stage)}, nil
}

// Order spells the promotion order ending at stage: "test → alpha → prod".
func Order(cfg *config.Config, stage *config.Stage) string {
	names := []string{stage.Name}
	for cur := stage; cur.PromoteFrom != "" && len(names) < 10; {
		cur = cfg.Stage(cur.PromoteFrom)
		if cur == nil {
			break
		}
		names = append([]string{cur.Name}, names...)
	}
	return strings.Join(names, " → ")
}
