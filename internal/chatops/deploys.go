package chatops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/command"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/store"
)

// plan is what a deploying command will do: the requests, the branch to move, and the words
// for the reply.
type plan struct {
	reqs   []deploy.Request
	branch string // the stage's branch to move to sha; "" to leave branches alone
	sha    string
	what   string         // e.g. "**v1.2.0** (`abc1234`)"
	verb   string         // e.g. "promote"
	where  string         // the stage's name, or "pull request #12" for a build
	rel    *store.Release // the release a promotion ships, if any
}

// deployCommand carries out /promote, /deploy and /rollback: authorize, check the lock and the
// stage order, record the deploys held, move the branch, then answer and release them.
func (x *Executor) deployCommand(ctx context.Context, gh *github.Client, o origin, cmd command.Command, pin *pinned) (outcome, error) {
	stage := x.cfg.Stage(cmd.Stage)
	apps := x.appsFor(o.Repo, cmd.Stage)
	if stage == nil || len(apps) == 0 {
		return refused("No app of %s deploys to `%s`.", o.Repo, cmd.Stage), nil
	}
	verb := string(cmd.Verb)
	action := map[command.Verb]string{command.Promote: "promote to " + stage.Name, command.Deploy: "deploy to " + stage.Name,
		command.Rollback: "roll back " + stage.Name}[cmd.Verb]
	dec, err := x.authorize(ctx, gh, o, stage, verb, action, cmd.Force)
	if err != nil || !dec.Allowed {
		return outcome{reply: dec.Reason}, err
	}
	if why, err := x.lockedOut(ctx, o, apps, stage.Name); err != nil || why != "" {
		return outcome{reply: why}, err
	}
	var p plan
	var why string
	switch cmd.Verb {
	case command.Promote:
		p, why, err = x.planPromote(ctx, o, apps, stage, pin)
	case command.Deploy:
		p, why, err = x.planDeploy(ctx, gh, o, apps, stage, cmd.Ref)
	case command.Rollback:
		p, why, err = x.planRollback(ctx, o, apps, stage)
	}
	if err != nil || why != "" {
		return outcome{reply: why}, err
	}
	if cmd.Force {
		for i := range p.reqs {
			p.reqs[i].Force = cmd.Reason
		}
	} else if why, err := x.orderProblem(ctx, apps, stage, p.sha, p.reqs); err != nil || why != "" {
		return outcome{reply: why}, err
	}
	return x.carryOut(ctx, gh, o, p)
}

// lockedOut says why a lock by someone else holds the stage of one of apps.
func (x *Executor) lockedOut(ctx context.Context, o origin, apps []*config.App, stage string) (string, error) {
	locks, err := x.st.StageLocks(ctx)
	if err != nil {
		return "", err
	}
	for _, l := range locks {
		for _, app := range apps {
			if l.App == app.Name && l.Stage == stage && !strings.EqualFold(l.Owner, o.Actor) {
				return fmt.Sprintf("**%s** is locked by @%s since %s%s, so it takes no commands but theirs. "+
					"Ask them, or someone who may lock %s can `/unlock %s`.", stage, l.Owner, l.CreatedAt.UTC().Format("Jan 2 15:04 UTC"),
					lockReason(l), stage, stage), nil
			}
		}
	}
	return "", nil
}

func lockReason(l store.StageLock) string {
	if l.Reason == "" {
		return ""
	}
	return ": “" + l.Reason + "”"
}

// orderProblem enforces the stage order for a commit going to stage, as the pipeline will again:
// it must have succeeded on the stage before, for every app. Saying so now answers at once.
func (x *Executor) orderProblem(ctx context.Context, apps []*config.App, stage *config.Stage, sha string, reqs []deploy.Request) (string, error) {
	if stage.PromoteFrom == "" || len(reqs) == 0 || reqs[0].Mode == deploy.ModeImage || reqs[0].Mode == deploy.ModeSwitch {
		return "", nil
	}
	for _, app := range apps {
		if _, ok := app.Stages[stage.PromoteFrom]; !ok {
			continue
		}
		_, ok, err := x.st.Succeeded(ctx, app.Name, stage.PromoteFrom, sha)
		if err != nil {
			return "", err
		}
		if !ok {
			return fmt.Sprintf("`%s` has not succeeded on **%s**, and **%s** takes only commits that did (the stage order: %s). "+
				"An admin may override it: `/deploy %s %s --force \"the reason\"`.", deploy.ShortSHA(sha), stage.PromoteFrom, stage.Name,
				x.order(stage), stage.Name, deploy.ShortSHA(sha)), nil
		}
	}
	return "", nil
}

// order spells the promotion order ending at stage: "test → alpha → prod".
func (x *Executor) order(stage *config.Stage) string {
	names := []string{stage.Name}
	for cur := stage; cur.PromoteFrom != "" && len(names) < 10; {
		cur = x.cfg.Stage(cur.PromoteFrom)
		if cur == nil {
			break
		}
		names = append([]string{cur.Name}, names...)
	}
	return strings.Join(names, " → ")
}

// planPromote moves stage to the commit live on the stage it promotes from: the release's tag
// on a release issue, a button's commit, or else what runs there now.
func (x *Executor) planPromote(ctx context.Context, o origin, apps []*config.App, stage *config.Stage, pin *pinned) (plan, string, error) {
	if stage.PromoteFrom == "" {
		how := "it is deployed by `/deploy " + stage.Name + " <ref>`"
		if stage.Trigger != config.TriggerNone {
			how = fmt.Sprintf("it deploys on %s to `%s`", map[config.Trigger]string{config.TriggerMerge: "merges", config.TriggerPush: "pushes"}[stage.Trigger], stage.Branch)
		}
		return plan{}, fmt.Sprintf("Nothing is promoted to **%s**: no stage comes before it (%s).", stage.Name, how), nil
	}
	p := plan{branch: stage.Branch, verb: "promote", where: stage.Name}
	switch {
	case pin != nil:
		p.sha, p.what = pin.sha, "`"+deploy.ShortSHA(pin.sha)+"`"
	case o.Issue != 0 && stage.Name == x.cfg.Release.Stage:
		rel, err := x.st.ReleaseByIssue(ctx, o.Repo, o.Issue)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return plan{}, "", err
		}
		if err == nil {
			p.sha, p.rel = rel.SHA, &rel
			p.what = fmt.Sprintf("**%s** (`%s`)", rel.Tag, deploy.ShortSHA(rel.SHA))
		}
	}
	if p.sha == "" {
		shas := map[string]bool{}
		for _, app := range apps {
			live, err := x.st.LiveDeploys(ctx, app.Name)
			if err != nil {
				return plan{}, "", err
			}
			d, ok := live[stage.PromoteFrom]
			if !ok {
				return plan{}, fmt.Sprintf("**%s** has no successful deploy of %s yet, so there is nothing to promote to **%s**.",
					stage.PromoteFrom, app.Name, stage.Name), nil
			}
			shas[d.SHA] = true
			p.sha = d.SHA
		}
		if len(shas) > 1 {
			return plan{}, fmt.Sprintf("The apps of %s run different commits on **%s**, so there is no one commit to move `%s` to. "+
				"Deploy them to %s alike first.", o.Repo, stage.PromoteFrom, stage.Branch, stage.PromoteFrom), nil
		}
		p.what = fmt.Sprintf("`%s` (live on %s)", deploy.ShortSHA(p.sha), stage.PromoteFrom)
	}
	ref := p.branch
	if p.rel != nil {
		ref = p.rel.Tag
	}
	for _, app := range apps {
		p.reqs = append(p.reqs, deploy.Request{App: app.Name, Stage: stage.Name, Repo: o.Repo, SHA: p.sha, Ref: ref,
			InstallationID: o.InstallationID, Trigger: o.trigger(), Held: true})
	}
	return p, "", nil
}

// planDeploy deploys a branch, tag or commit (default: the stage's branch) without moving any
// branch.
func (x *Executor) planDeploy(ctx context.Context, gh *github.Client, o origin, apps []*config.App, stage *config.Stage, ref string) (plan, string, error) {
	if ref == "" {
		ref = stage.Branch
	}
	if ref == "" {
		return plan{}, fmt.Sprintf("**%s** has no branch, so say what to deploy: `/deploy %s <branch, tag or sha>`.", stage.Name, stage.Name), nil
	}
	c, _, err := gh.Repositories.GetCommit(ctx, o.owner(), o.name(), ref, &github.ListOptions{PerPage: 1})
	if err != nil {
		if _, ok := terminal(err); ok {
			return plan{}, fmt.Sprintf("There is no branch, tag or commit `%s` in %s.", ref, o.Repo), nil
		}
		return plan{}, "", githubapp.Classify(fmt.Errorf("resolving %s: %w", ref, err))
	}
	p := plan{sha: c.GetSHA(), verb: "deploy", where: stage.Name}
	p.what = "`" + deploy.ShortSHA(p.sha) + "`"
	if !strings.HasPrefix(p.sha, ref) {
		p.what = fmt.Sprintf("`%s` (`%s`)", ref, deploy.ShortSHA(p.sha))
	}
	for _, app := range apps {
		p.reqs = append(p.reqs, deploy.Request{App: app.Name, Stage: stage.Name, Repo: o.Repo, SHA: p.sha, Ref: ref,
			InstallationID: o.InstallationID, Trigger: o.trigger(), Nonce: o.Key, Held: true})
	}
	return p, "", nil
}

// planRollback puts back what ran on the stage before: on a stage with slots, the other slot,
// at once; otherwise the image of the stage's previous successful deploy, with no build.
func (x *Executor) planRollback(ctx context.Context, o origin, apps []*config.App, stage *config.Stage) (plan, string, error) {
	p := plan{verb: "roll back", where: stage.Name}
	for _, app := range apps {
		live, err := x.st.LiveDeploys(ctx, app.Name)
		if err != nil {
			return plan{}, "", err
		}
		cur, ok := live[stage.Name]
		if !ok {
			return plan{}, fmt.Sprintf("Nothing was deployed to **%s** yet, so there is nothing to roll back.", stage.Name), nil
		}
		earlier, err := x.st.ListDeploys(ctx, store.Filter{App: app.Name, Stage: stage.Name, State: deploy.Succeeded, BeforeID: cur.ID, Limit: 50})
		if err != nil {
			return plan{}, "", err
		}
		req := deploy.Request{App: app.Name, Stage: stage.Name, Repo: o.Repo, InstallationID: o.InstallationID,
			Trigger: o.trigger(), Nonce: o.Key, Held: true}
		if stage.Slotted() {
			curCP, _ := deploy.DecodeCheckpoint(cur.Checkpoint)
			other := stage.Slots[0]
			if curCP.Slot == other {
				other = stage.Slots[1]
			}
			prev, ok := lastOnSlot(earlier, other)
			if !ok {
				return plan{}, fmt.Sprintf("Slot %s of **%s** has never run a successful deploy of %s, so there is nothing to switch back to.", other, stage.Name, app.Name), nil
			}
			req.Mode, req.Slot, req.SHA, req.Ref = deploy.ModeSwitch, other, prev.SHA, prev.Ref
			p.what = fmt.Sprintf("slot %s (`%s`)", other, deploy.ShortSHA(prev.SHA))
		} else {
			prev, ok := firstOther(earlier, cur.SHA)
			if !ok {
				return plan{}, fmt.Sprintf("**%s** has no earlier successful deploy of %s than `%s`, so there is nothing to roll back to.", stage.Name, app.Name, deploy.ShortSHA(cur.SHA)), nil
			}
			req.SHA, req.Ref = prev.SHA, prev.Ref
			if cp, err := deploy.DecodeCheckpoint(prev.Checkpoint); err == nil && cp.Image != "" {
				req.Mode, req.Image = deploy.ModeImage, cp.Image
			}
			p.what = fmt.Sprintf("`%s` (deploy #%d)", deploy.ShortSHA(prev.SHA), prev.ID)
		}
		p.sha = req.SHA
		p.reqs = append(p.reqs, req)
	}
	return p, "", nil
}

// lastOnSlot is the newest deploy in ds (newest first) that left slot serving.
func lastOnSlot(ds []deploy.Deploy, slot string) (deploy.Deploy, bool) {
	for _, d := range ds {
		if cp, err := deploy.DecodeCheckpoint(d.Checkpoint); err == nil && cp.Slot == slot {
			return d, true
		}
	}
	return deploy.Deploy{}, false
}

// firstOther is the newest deploy in ds (newest first) of another commit than sha.
func firstOther(ds []deploy.Deploy, sha string) (deploy.Deploy, bool) {
	for _, d := range ds {
		if d.SHA != sha {
			return d, true
		}
	}
	return deploy.Deploy{}, false
}

// carryOut records the plan's deploys held, moves the branch, and returns the answer with the
// deploys to release. A deploy of the same commit that is running or live already is reported
// instead of started again; one this command's earlier attempt recorded is simply carried on.
func (x *Executor) carryOut(ctx context.Context, gh *github.Client, o origin, p plan) (outcome, error) {
	recorded, err := x.st.RequestDeploys(ctx, p.reqs)
	if err != nil {
		return outcome{}, err
	}
	var ours []int64
	var already []string
	for i, rd := range recorded {
		if rd.New {
			ours = append(ours, rd.ID)
			continue
		}
		d, err := x.st.Deploy(ctx, rd.ID)
		if err != nil {
			return outcome{}, err
		}
		switch {
		case d.Trigger.Delivery == o.Delivery:
			ours = append(ours, d.ID) // recorded by this command's earlier attempt
		case d.Held && d.State == deploy.Queued:
			// Another command recorded it and never finished (its job failed for good): it
			// never started, so this command carries it through instead of leaving it held.
			ours = append(ours, d.ID)
		case d.State == deploy.Succeeded:
			already = append(already, fmt.Sprintf("%s already runs %s on **%s** (deploy #%d, by @%s).", p.reqs[i].App, p.what, p.where, d.ID, d.Trigger.Actor))
		default:
			already = append(already, fmt.Sprintf("%s is deploying %s to **%s** already: deploy #%d is %s.", p.reqs[i].App, p.what, p.where, d.ID,
				strings.ReplaceAll(string(d.State), "_", " ")))
		}
	}
	if len(ours) == 0 {
		return outcome{reply: strings.Join(already, " ")}, nil
	}
	if p.branch != "" {
		if why, err := x.moveBranch(ctx, gh, o, p.branch, p.sha); err != nil {
			return outcome{}, err
		} else if why != "" {
			for _, id := range ours {
				if _, err := x.st.CancelDeploy(ctx, id, why); err != nil {
					return outcome{}, err
				}
			}
			return outcome{reply: why}, nil
		}
	}
	if p.rel != nil && p.rel.State != store.ReleasePromoting {
		p.rel.State, p.rel.PromotedBy, p.rel.Reason = store.ReleasePromoting, o.Actor, ""
		if err := x.st.UpdateRelease(ctx, *p.rel); err != nil {
			return outcome{}, err
		}
	}
	reply := p.doing()
	if p.branch != "" {
		reply += fmt.Sprintf(": `%s` now points at `%s`", p.branch, deploy.ShortSHA(p.sha))
	}
	reply += ". Progress follows in this comment."
	if len(already) > 0 {
		reply += " " + strings.Join(already, " ")
	}
	return outcome{reply: "⏳ " + reply, accepted: true, deploys: ours}, nil
}

// doing says what the plan does, for the reply.
func (p plan) doing() string {
	switch p.verb {
	case "promote":
		return fmt.Sprintf("promoting %s to **%s**", p.what, p.where)
	case "roll back":
		return fmt.Sprintf("rolling **%s** back to %s", p.where, p.what)
	case "build":
		return fmt.Sprintf("building %s of **%s** again", p.what, p.where)
	}
	return fmt.Sprintf("deploying %s to **%s**", p.what, p.where)
}

// moveBranch points branch at sha with a forced update, as the seed's "rebase alpha onto test"
// did by hand, creating the branch if it does not exist. It returns why GitHub refused, if it
// did for good (a protected branch, say); other failures are retried.
func (x *Executor) moveBranch(ctx context.Context, gh *github.Client, o origin, branch, sha string) (string, error) {
	_, _, err := gh.Git.UpdateRef(ctx, o.owner(), o.name(), "heads/"+branch, github.UpdateRef{SHA: sha, Force: github.Ptr(true)})
	if err == nil {
		return "", nil
	}
	msg, final := terminal(err)
	if !final {
		return "", githubapp.Classify(fmt.Errorf("moving %s to %s: %w", branch, deploy.ShortSHA(sha), err))
	}
	if strings.Contains(msg, "does not exist") {
		_, _, err = gh.Git.CreateRef(ctx, o.owner(), o.name(), github.CreateRef{Ref: "refs/heads/" + branch, SHA: sha})
		if err == nil {
			return "", nil
		}
		if msg, final = terminal(err); !final {
			return "", githubapp.Classify(fmt.Errorf("creating %s at %s: %w", branch, deploy.ShortSHA(sha), err))
		}
	}
	return fmt.Sprintf("GitHub would not move `%s` to `%s`: %s. Nothing was deployed.", branch, deploy.ShortSHA(sha), msg), nil
}
