// Package admission decides whether a deploy may be asked for: the one gate that commands
// (/promote, /deploy, /rollback), check-run buttons, retries and pushes to a guarded stage's
// branch all pass, so each rule is written once. The gate checks, in this order:
//
//  1. authorize: the person may run the command on the stage (package authz: the people
//     configured, team membership and repository permission read from GitHub at the time;
//     --force needs a repository admin);
//  2. lock: a stage locked by someone else takes no commands (a push queues behind the lock);
//  3. stage order: a commit reaches a stage with promote_from only once it succeeded on the stage
//     before (CheckOrder, which the pipeline's preflight applies again);
//  4. release binding: a promotion to the release stage ships a recorded release, at the commit
//     its tag names now on GitHub, and nothing else;
//  5. what the move would drop: commits that the stage's branch (its real head on GitHub) or the
//     stage itself holds and the new commit lacks are listed, and dropped only with --force.
//
// With the stage order goes soak time (CheckSoak): a commit is promoted from a stage with a
// min_soak only once it has run there that long, and the refusal says when it will be. Deploy
// windows and freezes (Hold) refuse nothing: an admitted deploy outside them waits, queued,
// until the stage takes deploys again, and the Decision says until when.
//
// A refusal is Markdown a person reads: why, and who may or what to do instead. The gate never
// records anything; its callers record the deploy, or the refusal, after it decided.
package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/authz"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/markdown"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Store is what the gate reads.
type Store interface {
	Succeeder
	Spans
	LiveDeploys(ctx context.Context, app string) (map[string]deploy.Deploy, error)
	StageLocks(ctx context.Context) ([]store.StageLock, error)
	Releases(ctx context.Context, repo string, limit int) ([]store.Release, error)
}

// Source is where a request comes from.
type Source string

// The sources.
const (
	FromCommand Source = "command" // a comment
	FromButton  Source = "button"  // a check-run button
	FromRetry   Source = "retry"   // Retry, or GitHub's Re-run
	FromPush    Source = "push"    // a push (or merge) to a guarded stage's branch
)

// Request is what someone asks for, as the gate sees it.
type Request struct {
	Source Source
	Verb   string // promote, deploy or rollback: whose approvers decide (config.Stage.Who)
	Action string // what a refusal says they may not do, e.g. "promote to prod"
	Repo   string // owner/name
	Actor  string // the GitHub login who asked (or pushed)
	Stage  *config.Stage
	Apps   []*config.App // the repository's apps that deploy to Stage
	Force  string        // the reason an admin gave for --force; "" when none
	// Target says what the deploy would run. It is called only once the actor is authorized and
	// no lock stands in the way, so a refused person learns nothing about the stages; it returns
	// why there is nothing to deploy (Markdown) instead, when there is not.
	Target func(ctx context.Context) (Target, string, error)
}

// Target is what a request would deploy.
type Target struct {
	SHA    string
	Mode   deploy.Mode
	Branch string         // the stage's branch a promotion moves to SHA; "" when nothing moves
	Before string         // a push: what the branch held before it
	Tag    string         // a promotion to the release stage: the release's tag
	Rel    *store.Release // and the release itself; nil when the request names none
}

// Decision is the gate's answer.
type Decision struct {
	Refusal string // why not, as Markdown for the person; "" when admitted
	Target  Target
	// Dropped is what the deploy takes off the stage: commits its branch or the stage held that
	// the new commit lacks. Not empty only when an admin forced it.
	Dropped Drops
	// BranchHead is where Target.Branch pointed on GitHub when the gate compared it ("" when
	// the branch did not exist); BranchRead says whether it was read. A promotion moves the
	// branch only if it still points there: a push landing meanwhile is not dropped unseen.
	BranchHead string
	BranchRead bool
	// Wait, when set, says the deploy is admitted but will wait for the stage's next deploy
	// window or the end of a freeze (Hold); the pipeline holds it back until then.
	Wait *deploy.Wait
}

// Admitted reports whether the request may go ahead.
func (d Decision) Admitted() bool { return d.Refusal == "" }

// Gate applies the rules.
type Gate struct {
	st     Store
	cfg    *config.Config
	webURL string
	now    func() time.Time
}

// New builds the gate; webURL is GitHub's web root, for links in refusals.
func New(st Store, cfg *config.Config, webURL string) *Gate {
	return &Gate{st: st, cfg: cfg, webURL: strings.TrimSuffix(webURL, "/"), now: time.Now}
}

// WithClock makes the gate read the time from now (soak time, deploy windows); tests use it.
func (g *Gate) WithClock(now func() time.Time) *Gate {
	if now != nil {
		g.now = now
	}
	return g
}

// Admit decides r. Errors are GitHub or store failures worth retrying (classified for the
// job runner); every decision about the request itself is in the Decision.
func (g *Gate) Admit(ctx context.Context, gh *github.Client, r Request) (Decision, error) {
	if why, err := g.authorize(ctx, gh, r); err != nil || why != "" {
		return Decision{Refusal: why}, err
	}
	if why, err := g.lockedOut(ctx, r); err != nil || why != "" {
		return Decision{Refusal: why}, err
	}
	t, why, err := r.Target(ctx)
	if err != nil || why != "" {
		return Decision{Refusal: why}, err
	}
	dec := Decision{Target: t}
	if r.Stage == nil {
		return dec, nil // a pull request's build: it deploys nothing, so only who asks matters
	}
	if why, err := g.order(ctx, r, t); err != nil || why != "" {
		return Decision{Refusal: why}, err
	}
	if why, err := g.tested(ctx, r, t); err != nil || why != "" {
		return Decision{Refusal: why}, err
	}
	if why, err := g.binding(ctx, gh, r, t); err != nil || why != "" {
		return Decision{Refusal: why}, err
	}
	drops, head, read, err := g.drops(ctx, gh, r, t)
	if err != nil {
		return Decision{}, err
	}
	dec.BranchHead, dec.BranchRead = head, read
	if !drops.Empty() {
		if r.Force == "" {
			return Decision{Refusal: drops.Refusal(r, t)}, nil
		}
		dec.Dropped = drops
	}
	if dec.Wait, err = Hold(r.Stage, deploy.Request{SHA: t.SHA, Mode: t.Mode, Force: r.Force}, g.now()); err != nil {
		return Decision{}, err
	}
	return dec, nil
}

// authorize is rule 1. Approvers of a pull request's build (no stage) are people with write
// access.
func (g *Gate) authorize(ctx context.Context, gh *github.Client, r Request) (string, error) {
	var who config.Approvers
	if r.Stage != nil {
		who = r.Stage.Who(r.Verb)
	}
	dec, err := authz.Check(ctx, authz.GitHubDirectory{Client: gh}, who, r.Repo, r.Actor, r.Action, r.Force != "")
	if err != nil {
		return "", githubapp.Classify(err)
	}
	if !dec.Allowed {
		return dec.Reason, nil
	}
	return "", nil
}

// lockedOut is rule 2: a lock by someone else refuses a person's command. A push is no command:
// its deploy queues behind the lock like any automatic deploy (newest wins), and the pipeline
// starts it once the stage is unlocked.
func (g *Gate) lockedOut(ctx context.Context, r Request) (string, error) {
	if r.Stage == nil || r.Source == FromPush {
		return "", nil
	}
	locks, err := g.st.StageLocks(ctx)
	if err != nil {
		return "", err
	}
	for _, l := range locks {
		for _, app := range r.Apps {
			if l.App == app.Name && l.Stage == r.Stage.Name && !strings.EqualFold(l.Owner, r.Actor) {
				return fmt.Sprintf("**%s** is locked by @%s since %s%s%s, so it takes no commands but theirs. "+
					"Ask them, or someone who may lock %s can `/unlock %s`.", r.Stage.Name, l.Owner, l.CreatedAt.UTC().Format("Jan 2 15:04 UTC"),
					LockUntil(l), LockReason(l), r.Stage.Name, r.Stage.Name), nil
			}
		}
	}
	return "", nil
}

// LockUntil says when a lock taken for a while expires, for a sentence: " until Jan 2 17:04
// UTC", or nothing for a lock held until someone unlocks it.
func LockUntil(l store.StageLock) string {
	if l.ExpiresAt.IsZero() {
		return ""
	}
	return " until " + l.ExpiresAt.UTC().Format("Jan 2 15:04 UTC")
}

// LockReason renders a lock's reason for a sentence: ": `reason`", or nothing.
func LockReason(l store.StageLock) string {
	if l.Reason == "" {
		return ""
	}
	return ": " + markdown.Code(l.Reason)
}

// order is rule 3, and soak time with it, for every app of the request.
func (g *Gate) order(ctx context.Context, r Request, t Target) (string, error) {
	if r.Force != "" || t.SHA == "" { // no commit: a promotion that names no release, which binding refuses
		return "", nil
	}
	for _, app := range r.Apps {
		oe, err := CheckOrder(ctx, g.st, g.cfg, app, r.Stage, deploy.Request{SHA: t.SHA, Mode: t.Mode})
		if err != nil || oe != nil {
			if oe == nil {
				return "", err
			}
			return oe.Markdown(), err
		}
		se, err := CheckSoak(ctx, g.st, g.cfg, app, r.Stage, deploy.Request{SHA: t.SHA, Mode: t.Mode}, g.now())
		if err != nil || se != nil {
			if se == nil {
				return "", err
			}
			return se.Markdown(), err
		}
	}
	return "", nil
}

// binding is rule 4: a person's promotion to the release stage ships a recorded release, at the
// commit the release records, which must still be what its tag names on GitHub.
func (g *Gate) binding(ctx context.Context, gh *github.Client, r Request, t Target) (string, error) {
	if r.Verb != "promote" || r.Source == FromPush || r.Stage.Name != g.cfg.Release.Stage {
		return "", nil
	}
	rel := t.Rel
	if rel == nil {
		return g.noRelease(ctx, r)
	}
	tag := markdown.Code(rel.Tag)
	if t.SHA != rel.SHA {
		return fmt.Sprintf("This promotes `%s`, but %s is `%s` now: its tag moved, and what was approved for one commit is not "+
			"approval for another. Nothing was promoted; promote it again from its release issue, which now describes `%s`.",
			deploy.ShortSHA(t.SHA), tag, deploy.ShortSHA(rel.SHA), deploy.ShortSHA(rel.SHA)), nil
	}
	switch rel.State {
	case store.ReleaseRefused:
		return fmt.Sprintf("%s cannot be promoted: %s.", tag, rel.Reason), nil
	case store.ReleaseOpening:
		return fmt.Sprintf("The release issue of %s is still being opened; promote it once it is there.", tag), nil
	}
	owner, name, _ := strings.Cut(r.Repo, "/")
	now, err := PeelTag(ctx, gh, owner, name, rel.Tag)
	switch {
	case isNotFound(err):
		return fmt.Sprintf("The tag %s no longer exists, so there is no release to promote.", tag), nil
	case err != nil:
		return "", githubapp.Classify(fmt.Errorf("resolving tag %s: %w", rel.Tag, err))
	case now != rel.SHA:
		return fmt.Sprintf("%s moved from `%s` to `%s` after its release issue was opened. Nothing was promoted: the release issue "+
			"is being rewritten for `%s`; read it, then promote again.", tag, deploy.ShortSHA(rel.SHA), deploy.ShortSHA(now), deploy.ShortSHA(now)), nil
	}
	return "", nil
}

// noRelease refuses a promotion to the release stage that names no release, and lists the open
// ones.
func (g *Gate) noRelease(ctx context.Context, r Request) (string, error) {
	rels, err := g.st.Releases(ctx, r.Repo, 50)
	if err != nil {
		return "", err
	}
	stage := r.Stage.Name
	var open []string
	for _, rel := range rels {
		if rel.Issue != 0 && (rel.State == store.ReleaseOpen || rel.State == store.ReleaseFailed) {
			open = append(open, fmt.Sprintf("#%d (%s, `%s`)", rel.Issue, markdown.Code(rel.Tag), deploy.ShortSHA(rel.SHA)))
		}
	}
	why := fmt.Sprintf("**%s** ships releases only: comment `/promote %s` on a release issue, or name the release tag: `/promote %s <tag>`. ",
		stage, stage, stage)
	if len(open) == 0 {
		return why + fmt.Sprintf("No release is open: a release tag (%s) on a commit that succeeded on **%s** opens one.",
			strings.Join(codes(g.cfg.Release.Tags), ", "), r.Stage.PromoteFrom), nil
	}
	return why + "Open releases: " + strings.Join(open, ", ") + ".", nil
}

func codes(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = markdown.Code(s)
	}
	return out
}

func isNotFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == 404
}
