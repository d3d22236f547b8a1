package chatops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/command"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// Buttons runs jobs.KindCheckRunAction: a press of a button on one of Stagecoach's check runs,
// or GitHub's "Re-run" on one. A button is the command it stands for, given by whoever pressed
// it, and is authorized, checked and answered the same way; the answer goes to the issue or
// pull request the check run's deploy came from, or onto the check run when there is none.
type Buttons struct{ x *Executor }

// Buttons returns the button executor.
func (x *Executor) Buttons() worker.Executor {
	b := &Buttons{x: x}
	return worker.Handle(jobs.KindCheckRunAction, b.press)
}

func (b *Buttons) press(ctx context.Context, _ jobs.Job, a jobs.CheckRunAction) error {
	x := b.x
	gh, err := x.clients.Installation(a.InstallationID)
	if err != nil {
		return jobs.Terminal(err)
	}
	identifier := a.Identifier
	if a.Action == "rerequested" {
		identifier = jobs.ActionRetry
	}
	o := origin{Repo: a.Repo, InstallationID: a.InstallationID, Actor: a.Actor, Event: "check_run", Delivery: a.Delivery,
		Key: "button:" + a.Delivery}
	var cmd command.Command
	var pin *pinned
	var why string
	var d deploy.Deploy
	rel, err := b.release(ctx, a)
	switch {
	case err == nil:
		// The release's Promote button: /promote on the release issue, of the commit the check
		// run is on (a button shown before the tag moved promotes nothing else).
		o.Issue = rel.Issue
		cmd = command.Command{Verb: command.Promote, Stage: x.cfg.Release.Stage}
		pin = &pinned{sha: a.HeadSHA, rel: &rel}
		if identifier != jobs.ActionPromote {
			why = fmt.Sprintf("The release check run has no %s button.", markdown.Code(identifier))
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	case strings.HasPrefix(a.ExternalID, "refused:"):
		// The check run of a refused push: there is nothing to run again.
		cmd = command.Command{Verb: command.Deploy, Stage: strings.TrimPrefix(a.CheckRunName, "stagecoach/")}
		why = fmt.Sprintf("This check run reports a push that was refused; there is nothing to run again. %s", refusedHow(x, cmd.Stage))
	default:
		d, cmd, pin, why, err = b.deployButton(ctx, a, identifier)
		if err != nil {
			return err
		}
		o.Issue = d.Trigger.Issue
		if o.Issue == 0 {
			o.Issue, o.IsPR = d.Trigger.PR, d.Trigger.PR != 0
		}
	}
	rec, err := x.st.RecordCommand(ctx, store.CommandRecord{Key: o.Key, Repo: o.Repo, Issue: o.Issue, Actor: o.Actor,
		Verb: string(cmd.Verb), Stage: cmd.Stage, Args: fmt.Sprintf("button %s on check run %s", identifier, a.CheckRunName)})
	if err != nil {
		return err
	}
	if rec.Outcome != "" {
		return nil
	}
	var out outcome
	switch {
	case why != "":
		out = outcome{reply: why}
	case identifier == jobs.ActionRetry:
		out, err = x.retry(ctx, gh, o, d)
	default:
		out, err = x.run(ctx, gh, o, cmd, pin)
	}
	if err != nil {
		return err
	}
	if o.Issue == 0 && !out.accepted {
		// Nowhere to comment: say it on the check run that was pressed.
		if err := x.noteOnCheckRun(ctx, gh, o, a.CheckRunID, out.reply); err != nil {
			return err
		}
	}
	return x.finish(ctx, gh, o, rec, out)
}

// release is the release a check run belongs to: by its id, or by the release it names in its
// external id ("release:<id>"), which outlives the check run's place in the release (a moved
// tag gets a new check run, but the old one's buttons stay pressable).
func (b *Buttons) release(ctx context.Context, a jobs.CheckRunAction) (store.Release, error) {
	rel, err := b.x.st.ReleaseByCheckRun(ctx, a.Repo, a.CheckRunID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return rel, err
	}
	if id, ok := strings.CutPrefix(a.ExternalID, "release:"); ok {
		if n, perr := strconv.ParseInt(id, 10, 64); perr == nil {
			return b.x.st.ReleaseByID(ctx, a.Repo, n)
		}
	}
	return store.Release{}, err
}

// refusedHow says how to deploy instead of pushing.
func refusedHow(x *Executor, stage string) string {
	if st := x.cfg.Stage(stage); st != nil && st.Name == x.cfg.Release.Stage {
		return fmt.Sprintf("To deploy to **%s**, promote a release: `/promote %s` on its issue.", stage, stage)
	}
	return fmt.Sprintf("To deploy to **%s**, use `/promote %s` or `/deploy %s <sha>`.", stage, stage, stage)
}

// deployButton reads which deploy a button on a deploy check run belongs to and what command it
// stands for.
func (b *Buttons) deployButton(ctx context.Context, a jobs.CheckRunAction, identifier string) (deploy.Deploy, command.Command, *pinned, string, error) {
	id, err := strconv.ParseInt(a.ExternalID, 10, 64)
	if err != nil {
		return deploy.Deploy{}, command.Command{}, nil, "", jobs.Terminal(fmt.Errorf("check run %d has no deploy id (external_id %q)", a.CheckRunID, a.ExternalID))
	}
	d, err := b.x.st.Deploy(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return deploy.Deploy{}, command.Command{}, nil, "", jobs.Terminal(err)
		}
		return deploy.Deploy{}, command.Command{}, nil, "", err
	}
	if !strings.EqualFold(d.Repo, a.Repo) {
		return deploy.Deploy{}, command.Command{}, nil, "", jobs.Terminal(fmt.Errorf("check run %d of %s names deploy %d of %s", a.CheckRunID, a.Repo, d.ID, d.Repo))
	}
	switch identifier {
	case jobs.ActionPromote:
		next := b.x.cfg.NextStages(d.Stage)
		if len(next) == 0 || d.State != deploy.Succeeded {
			return d, command.Command{}, nil, fmt.Sprintf("Deploy #%d to %s cannot be promoted.", d.ID, d.Stage), nil
		}
		return d, command.Command{Verb: command.Promote, Stage: next[0].Name}, &pinned{sha: d.SHA}, "", nil
	case jobs.ActionRollback:
		live, err := b.x.st.LiveDeploys(ctx, d.App)
		if err != nil {
			return d, command.Command{}, nil, "", err
		}
		if cur, ok := live[d.Stage]; !ok || cur.ID != d.ID {
			return d, command.Command{}, nil, fmt.Sprintf("Deploy #%d is no longer what runs on **%s**, so its Rollback button does nothing; `/rollback %s` rolls back what runs now.",
				d.ID, d.Stage, d.Stage), nil
		}
		return d, command.Command{Verb: command.Rollback, Stage: d.Stage}, nil, "", nil
	case jobs.ActionRetry:
		return d, command.Command{Verb: command.Deploy, Stage: d.Stage}, nil, "", nil
	}
	return d, command.Command{}, nil, fmt.Sprintf("Check run %s has no %s button.", a.CheckRunName, markdown.Code(identifier)), nil
}

// noteOnCheckRun adds a refusal to the check run's text, keeping its title and summary.
func (x *Executor) noteOnCheckRun(ctx context.Context, gh *github.Client, o origin, id int64, note string) error {
	run, _, err := gh.Checks.GetCheckRun(ctx, o.owner(), o.name(), id)
	if err != nil {
		return githubapp.Classify(fmt.Errorf("reading check run %d: %w", id, err))
	}
	out := run.GetOutput()
	text := markdown.Limit(fmt.Sprintf("**@%s pressed a button at %s UTC:** %s", o.Actor, x.now().UTC().Format("Jan 2 15:04"), note),
		0, run.GetHTMLURL())
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, o.owner(), o.name(), id, github.UpdateCheckRunOptions{Name: run.GetName(),
		Output: &github.CheckRunOutput{Title: github.Ptr(out.GetTitle()), Summary: github.Ptr(out.GetSummary()), Text: github.Ptr(text)}}); err != nil {
		return githubapp.Classify(fmt.Errorf("noting on check run %d: %w", id, err))
	}
	return nil
}

// retry runs a finished deploy again as it was asked for (the same commit, mode and forced
// reason), as a new deploy, once the admission gate let it (retrying a forced deploy forces
// again, so it needs what forcing needs: an admin).
func (x *Executor) retry(ctx context.Context, gh *github.Client, o origin, d deploy.Deploy) (outcome, error) {
	if !d.State.Final() {
		return refused("Deploy #%d has not finished yet: it is %s.", d.ID, strings.ReplaceAll(string(d.State), "_", " ")), nil
	}
	req := d.Request
	req.Trigger, req.Nonce, req.Held = o.trigger(), o.Key, true
	if req.Trigger.PR == 0 {
		req.Trigger.PR = d.Trigger.PR
	}
	p := plan{reqs: []deploy.Request{req}, sha: d.SHA, what: "`" + deploy.ShortSHA(d.SHA) + "`", verb: "deploy", where: d.Stage}
	stage, action := x.cfg.Stage(d.Stage), "deploy to "+d.Stage
	apps := admission.AppsFor(x.cfg, o.Repo, d.Stage)
	if d.Mode == deploy.ModePRBuild {
		p.verb, p.where, action = "build", fmt.Sprintf("pull request #%d", d.Trigger.PR), fmt.Sprintf("rebuild pull request #%d", d.Trigger.PR)
		stage, apps = nil, nil
	}
	dec, err := x.gate.Admit(ctx, gh, admission.Request{Source: admission.FromRetry, Verb: "deploy", Action: action, Repo: o.Repo,
		Actor: o.Actor, Stage: stage, Apps: apps, Force: d.Force,
		Target: func(context.Context) (admission.Target, string, error) {
			return admission.Target{SHA: d.SHA, Mode: d.Mode}, "", nil
		}})
	if err != nil || !dec.Admitted() {
		return outcome{reply: dec.Refusal}, err
	}
	return x.carryOut(ctx, gh, o, p, dec, d.Force)
}
