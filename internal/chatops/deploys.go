package chatops

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/command"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/markdown"
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

// target is the plan as the admission gate sees it.
func (p plan) target() admission.Target {
	t := admission.Target{SHA: p.sha, Branch: p.branch, Rel: p.rel}
	if len(p.reqs) > 0 {
		t.Mode = p.reqs[0].Mode
	}
	if p.rel != nil {
		t.Tag = p.rel.Tag
	}
	return t
}

// deployCommand carries out /promote, /deploy and /rollback: the admission gate decides (who
// may, the lock, the stage order, the release, what the move would drop), then the deploys are
// recorded held, the branch moved, and they are released with the answer.
func (x *Executor) deployCommand(ctx context.Context, gh *github.Client, o origin, cmd command.Command, pin *pinned) (outcome, error) {
	stage := x.cfg.Stage(cmd.Stage)
	apps := admission.AppsFor(x.cfg, o.Repo, cmd.Stage)
	if stage == nil || len(apps) == 0 {
		return refused("No app of %s deploys to %s.", o.Repo, markdown.Code(cmd.Stage)), nil
	}
	force := ""
	if cmd.Force {
		force = cmd.Reason
	}
	src := admission.FromCommand
	if o.Event == "check_run" {
		src = admission.FromButton
	}
	var p plan
	dec, err := x.gate.Admit(ctx, gh, admission.Request{Source: src, Verb: string(cmd.Verb), Repo: o.Repo, Actor: o.Actor,
		Stage: stage, Apps: apps, Force: force,
		Action: map[command.Verb]string{command.Promote: "promote to " + stage.Name, command.Deploy: "deploy to " + stage.Name,
			command.Rollback: "roll back " + stage.Name}[cmd.Verb],
		Target: func(ctx context.Context) (admission.Target, string, error) {
			var why string
			var err error
			switch cmd.Verb {
			case command.Promote:
				p, why, err = x.planPromote(ctx, o, apps, stage, pin, cmd.Ref)
			case command.Deploy:
				p, why, err = x.planDeploy(ctx, gh, o, apps, stage, cmd.Ref)
			case command.Rollback:
				p, why, err = x.planRollback(ctx, o, apps, stage)
			}
			return p.target(), why, err
		}})
	if err != nil {
		return outcome{}, err
	}
	if !dec.Admitted() {
		return outcome{reply: dec.Refusal}, x.cancelHeld(ctx, o, dec.Refusal)
	}
	for i := range p.reqs {
		p.reqs[i].Force = force
	}
	return x.carryOut(ctx, gh, o, p, dec, force)
}

// cancelHeld cancels the deploys an earlier attempt of this command recorded, held, before it
// died: this attempt's gate refused, so they must never start (nor wait, held, for ever).
func (x *Executor) cancelHeld(ctx context.Context, o origin, why string) error {
	ds, err := x.st.DeploysByDelivery(ctx, o.Delivery)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Held && d.State == deploy.Queued {
			if _, err := x.st.CancelDeploy(ctx, d.ID, "refused when its command was retried: "+why); err != nil {
				return err
			}
		}
	}
	return nil
}

// planPromote moves stage to the commit live on the stage it promotes from (a button's commit,
// when a button asked); on the release stage, to a release's commit (planRelease).
func (x *Executor) planPromote(ctx context.Context, o origin, apps []*config.App, stage *config.Stage, pin *pinned, tag string) (plan, string, error) {
	if stage.PromoteFrom == "" {
		how := "it is deployed by `/deploy " + stage.Name + " <ref>`"
		if stage.Trigger != config.TriggerNone {
			how = fmt.Sprintf("it deploys on %s to `%s`", map[config.Trigger]string{config.TriggerMerge: "merges", config.TriggerPush: "pushes"}[stage.Trigger], stage.Branch)
		}
		return plan{}, fmt.Sprintf("Nothing is promoted to **%s**: no stage comes before it (%s).", stage.Name, how), nil
	}
	p := plan{branch: stage.Branch, verb: "promote", where: stage.Name}
	if stage.Name == x.cfg.Release.Stage {
		return x.planRelease(ctx, o, apps, stage, pin, tag, p)
	}
	if tag != "" {
		return plan{}, fmt.Sprintf("A tag names a release, and only **%s** takes releases: `/promote %s` moves `%s` to what runs on **%s**.",
			x.cfg.Release.Stage, stage.Name, stage.Branch, stage.PromoteFrom), nil
	}
	if pin != nil {
		p.sha, p.what = pin.sha, "`"+deploy.ShortSHA(pin.sha)+"`"
		return p.requests(o, apps, stage, p.branch), "", nil
	}
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
	return p.requests(o, apps, stage, p.branch), "", nil
}

// planRelease promotes a release: the one the command names by tag, the one whose issue it is
// given on (a release check run's button counts as given there), or the release of the commit a
// deploy's Promote button was shown on. With none, the plan has no release and the gate refuses,
// naming the open ones. A button promotes the commit it was shown on, which the gate holds to
// the release's.
func (x *Executor) planRelease(ctx context.Context, o origin, apps []*config.App, stage *config.Stage, pin *pinned, tag string, p plan) (plan, string, error) {
	var rel store.Release
	err := store.ErrNotFound
	switch {
	case tag != "":
		rel, err = x.st.ReleaseByTag(ctx, o.Repo, tag)
		if errors.Is(err, store.ErrNotFound) {
			return plan{}, fmt.Sprintf("%s is no release of %s: a release opens when a tag matching %s is pushed on a commit that "+
				"succeeded on **%s**.", markdown.Code(tag), o.Repo, strings.Join(codes(x.cfg.Release.Tags), " or "), stage.PromoteFrom), nil
		}
	case pin != nil && pin.rel != nil:
		rel, err = *pin.rel, nil
	case pin != nil:
		rel, err = x.releaseOf(ctx, o.Repo, pin.sha)
	case o.Issue != 0:
		rel, err = x.st.ReleaseByIssue(ctx, o.Repo, o.Issue)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		if pin != nil {
			p.sha = pin.sha
		}
		return p, "", nil
	case err != nil:
		return plan{}, "", err
	}
	p.rel, p.sha = &rel, rel.SHA
	if pin != nil {
		p.sha = pin.sha
	}
	p.what = fmt.Sprintf("%s (`%s`)", markdown.Code(rel.Tag), deploy.ShortSHA(p.sha))
	return p.requests(o, apps, stage, rel.Tag), "", nil
}

// releaseOf is the newest release of sha in repo that was not refused.
func (x *Executor) releaseOf(ctx context.Context, repo, sha string) (store.Release, error) {
	rels, err := x.st.Releases(ctx, repo, 50)
	if err != nil {
		return store.Release{}, err
	}
	for _, r := range rels {
		if r.SHA == sha && r.State != store.ReleaseRefused {
			return r, nil
		}
	}
	return store.Release{}, store.ErrNotFound
}

// requests adds the plan's held deploy requests of p.sha, named by ref, one per app.
func (p plan) requests(o origin, apps []*config.App, stage *config.Stage, ref string) plan {
	for _, app := range apps {
		p.reqs = append(p.reqs, deploy.Request{App: app.Name, Stage: stage.Name, Repo: o.Repo, SHA: p.sha, Ref: ref,
			InstallationID: o.InstallationID, Trigger: o.trigger(), Held: true})
	}
	return p
}

func codes(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = markdown.Code(s)
	}
	return out
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
	if err := command.ValidRef(ref); err != nil { // a command's ref is checked when parsed; a configured branch here
		return plan{}, fmt.Sprintf("%s is not a branch, tag or sha: %v.", markdown.Code(ref), err), nil
	}
	c, _, err := gh.Repositories.GetCommit(ctx, o.owner(), o.name(), escapeRef(ref), &github.ListOptions{PerPage: 1})
	if err != nil {
		if _, ok := terminal(err); ok {
			return plan{}, fmt.Sprintf("There is no branch, tag or commit %s in %s, so nothing was deployed.", markdown.Code(ref), o.Repo), nil
		}
		return plan{}, "", githubapp.Classify(fmt.Errorf("resolving %s: %w", ref, err))
	}
	if !fullSHA.MatchString(c.GetSHA()) {
		return plan{}, fmt.Sprintf("GitHub resolved %s to no commit, so nothing was deployed.", markdown.Code(ref)), nil
	}
	p := plan{sha: c.GetSHA(), verb: "deploy", where: stage.Name}
	p.what = "`" + deploy.ShortSHA(p.sha) + "`"
	if !strings.HasPrefix(p.sha, ref) {
		p.what = fmt.Sprintf("%s (`%s`)", markdown.Code(ref), deploy.ShortSHA(p.sha))
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
func (x *Executor) carryOut(ctx context.Context, gh *github.Client, o origin, p plan, dec admission.Decision, force string) (outcome, error) {
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
	if p.branch != "" && dec.BranchRead {
		// The gate compared the branch as it was then; a push that landed since would be
		// dropped unseen by the forced move.
		now, err := admission.BranchHead(ctx, gh, o.Repo, p.branch)
		if err != nil {
			return outcome{}, err
		}
		if now != dec.BranchHead && now != p.sha {
			why := fmt.Sprintf("`%s` moved to `%s` while this was being decided, so it was not moved again and nothing was deployed. "+
				"Give the command again: it will say what the move would drop now.", p.branch, deploy.ShortSHA(now))
			for _, id := range ours {
				if _, err := x.st.CancelDeploy(ctx, id, why); err != nil {
					return outcome{}, err
				}
			}
			return outcome{reply: why}, nil
		}
	}
	if p.branch != "" {
		// Recorded before the move: the push GitHub sends for it is then known as Stagecoach's.
		if err := x.st.RecordBranchMove(ctx, store.BranchMove{Repo: o.Repo, Branch: p.branch, SHA: p.sha, CommandKey: o.Key, DeployIDs: ours}); err != nil {
			return outcome{}, err
		}
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
	out := outcome{reply: "⏳ " + reply, accepted: true, deploys: ours}
	if dec.Wait != nil {
		// Admitted, but the stage is outside its windows or frozen: say so at once (the
		// progress this comment becomes shows the wait too).
		out.reply += "\n\n" + dec.Wait.Markdown(p.where)
		out.note = dec.Wait.Text()
	}
	if !dec.Dropped.Empty() {
		out.reply = strings.Replace(out.reply, "Progress follows in this comment.", "Progress follows in the next comment.", 1)
		out.reply += "\n\n" + dec.Dropped.Forced(o.Actor, force)
		out.note, out.keep = "forced: dropped "+dec.Dropped.Summary(), true
	}
	return out, nil
}

// fullSHA is a commit's whole sha, as GitHub names commits.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// escapeRef escapes each part of a ref for an API path (go-github puts it there as given); the
// slashes between parts stay, as GitHub reads branch names with slashes.
func escapeRef(ref string) string {
	parts := strings.Split(ref, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
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
