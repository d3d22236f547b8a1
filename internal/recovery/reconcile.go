package recovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// reconcile compares every configured repository's trigger branch heads and release tags with
// what the last pass saw and what Stagecoach recorded, and acts on what it never recorded. One
// repository failing does not keep the others from being reconciled.
func (p *pass) reconcile(ctx context.Context) error {
	app, err := p.r.gh.App()
	if err != nil {
		return err
	}
	var errs []error
	for _, repo := range p.r.repos() {
		if err := p.renew(ctx); err != nil {
			return err
		}
		if err := p.reconcileRepo(ctx, app, repo); err != nil {
			errs = append(errs, fmt.Errorf("reconciling %s: %w", repo, err))
		}
	}
	return joinErrs(errs)
}

func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
}

// repos are the configured repositories, once each, as the configuration spells them.
func (r *Runner) repos() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range r.cfg.Apps {
		if k := strings.ToLower(a.Repo); !seen[k] {
			seen[k] = true
			out = append(out, a.Repo)
		}
	}
	return out
}

func (p *pass) reconcileRepo(ctx context.Context, app *github.Client, repo string) error {
	r := p.r
	owner, name, _ := strings.Cut(repo, "/")
	inst, _, err := app.Apps.GetRepositoryInstallation(ctx, owner, name)
	if notFound(err) {
		r.log.Warn("the GitHub App is not installed on a configured repository: nothing to reconcile", "repo", repo)
		return nil
	}
	if err != nil {
		return fmt.Errorf("finding the App's installation: %w", err)
	}
	gh, err := r.gh.Installation(inst.GetID())
	if err != nil {
		return err
	}
	pl := r.plan(repo)
	read := r.o.Now()
	current, err := p.refs(ctx, gh, repo, pl)
	if err != nil {
		return err
	}
	seen, err := r.st.RecoveryRefs(ctx, repo)
	if err != nil {
		return err
	}
	marker, known := seen[""]
	save := []store.RecoveryRef{{Ref: "", SHA: pl.fingerprint(), ObservedAt: read}}
	if !known || marker.SHA != pl.fingerprint() {
		// The first look at this repository, or at what the configuration now has reconciled
		// (a stage or tag pattern added): what is there now was there before recovery looked,
		// and is not work it missed.
		var drop []string
		for ref := range seen {
			if _, ok := current[ref]; !ok && ref != "" {
				drop = append(drop, ref)
			}
		}
		for ref, sha := range current {
			save = append(save, store.RecoveryRef{Ref: ref, SHA: sha, ObservedAt: read})
		}
		r.log.Info("recovery learns the repository's refs", "repo", repo, "refs", len(current), "first", !known)
		return r.st.SaveRecoveryRefs(ctx, p.l, repo, save, drop)
	}
	for _, ref := range slices.Sorted(maps.Keys(current)) {
		sha := current[ref]
		if p.busy[refKey{strings.ToLower(repo), ref}] {
			continue // a redelivery about it is in flight: the next pass judges the outcome
		}
		last, had := seen[ref]
		if !had || last.SHA != sha {
			// New or moved since the last pass looked: Stagecoach heard of it after that, or
			// never did.
			since := marker.ObservedAt
			if had {
				since = last.ObservedAt
			}
			if err := p.recoverRef(ctx, gh, repo, inst.GetID(), ref, sha, last.SHA, since.Add(-skew)); err != nil {
				return fmt.Errorf("%s: %w", ref, err)
			}
		}
		save = append(save, store.RecoveryRef{Ref: ref, SHA: sha, ObservedAt: read})
	}
	// A tag that is gone is forgotten: made again, it is new. A branch is kept even when GitHub
	// says it is not there: a transient 404 must not make its head look new (and redeploy it
	// over a rollback) when it shows up again.
	var drop []string
	for ref := range seen {
		if _, ok := current[ref]; !ok && strings.HasPrefix(ref, "refs/tags/") && !p.busy[refKey{strings.ToLower(repo), ref}] {
			drop = append(drop, ref)
		}
	}
	return r.st.SaveRecoveryRefs(ctx, p.l, repo, save, drop)
}

// plan is what recovery reconciles in a repository: the branches a stage of one of its apps
// deploys on push or merge, and, when one of its apps deploys to the release stage, the tags
// the release patterns match, listed by their literal prefixes.
type plan struct {
	branches []string
	prefixes []string
	patterns []string
}

func (r *Runner) plan(repo string) plan {
	cfg := r.cfg
	apps := cfg.AppsForRepo(repo)
	deploysTo := func(stage string) bool {
		return slices.ContainsFunc(apps, func(a *config.App) bool { _, ok := a.Stages[stage]; return ok })
	}
	var pl plan
	for _, st := range cfg.Stages {
		if st.Branch != "" && st.Trigger != config.TriggerNone && deploysTo(st.Name) && !slices.Contains(pl.branches, st.Branch) {
			pl.branches = append(pl.branches, st.Branch)
		}
	}
	slices.Sort(pl.branches)
	if rel := cfg.Stage(cfg.Release.Stage); rel != nil && deploysTo(rel.Name) {
		pl.patterns = slices.Sorted(slices.Values(cfg.Release.Tags))
		pl.prefixes = tagPrefixes(pl.patterns)
	}
	return pl
}

// fingerprint names the plan: when the configuration changes what is reconciled, the refs are
// learnt again rather than taken for changes.
func (pl plan) fingerprint() string {
	h := sha256.Sum256([]byte(strings.Join(pl.branches, "\x00") + "\x01" + strings.Join(pl.patterns, "\x00")))
	return "plan:" + hex.EncodeToString(h[:8])
}

// refs reads the plan's refs: each branch's head, and each release tag (its ref's object: for an
// annotated tag, the tag object, as a push names it).
func (p *pass) refs(ctx context.Context, gh *github.Client, repo string, pl plan) (map[string]string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	out := map[string]string{}
	for _, b := range pl.branches {
		got, _, err := gh.Git.GetRef(ctx, owner, name, "heads/"+b)
		if notFound(err) {
			continue // no such branch (yet)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the head of %s: %w", b, err)
		}
		out["refs/heads/"+b] = got.GetObject().GetSHA()
	}
	for _, prefix := range pl.prefixes {
		// One answer holds every match: GitHub does not page matching refs, although its
		// description lists a Link header, and go-github v88 offers no paging for them.
		got, _, err := gh.Git.ListMatchingRefs(ctx, owner, name, "tags/"+prefix)
		if err != nil {
			return nil, fmt.Errorf("listing tags %s*: %w", prefix, err)
		}
		for _, ref := range got {
			if tag, ok := strings.CutPrefix(ref.GetRef(), "refs/tags/"); ok && p.r.cfg.MatchRelease(tag) {
				out[ref.GetRef()] = ref.GetObject().GetSHA()
			}
		}
	}
	return out, nil
}

// tagPrefixes are the literal beginnings of the release tag patterns ("v" of "v*"), each once,
// and none that another already covers: the tags listed are every tag a pattern may match.
func tagPrefixes(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		if i := strings.IndexAny(p, `*?[\`); i >= 0 {
			p = p[:i]
		}
		out = append(out, p)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(slices.Clone(out), func(p string) bool {
		return slices.ContainsFunc(out, func(q string) bool { return q != p && strings.HasPrefix(p, q) })
	})
}

// recoverRef acts on a ref that changed since the last pass looked, unless Stagecoach recorded
// what it implies since: it makes the push event GitHub sends for the change, marked recovered,
// and takes it through the push handler and the intake's durable recording. A push the handler
// leaves to the admission gate (a guarded stage's branch) names the pusher GitHub's activity
// log gives (pusherOf), so the gate decides it as the push GitHub failed to deliver; without
// one it names nobody, and the gate deploys it only as Stagecoach's own recorded move.
func (p *pass) recoverRef(ctx context.Context, gh *github.Client, repo string, installationID int64, ref, sha, before string, since time.Time) error {
	r := p.r
	ev := handlers.Event{Name: "push", Delivery: RecoveredDelivery(repo, ref, sha), Payload: pushPayload(repo, installationID, ref, before, sha, pushedBy{}), Recovered: true}
	res, err := r.routes["push"].Handle(ctx, ev)
	if err != nil {
		return fmt.Errorf("translating the recovered push: %w", err)
	}
	if res.Empty() {
		r.log.Debug("recovered ref change implies nothing", "repo", repo, "ref", ref, "sha", sha, "reason", res.Ignored)
		return nil
	}
	for _, d := range res.Deploys {
		if heard, err := r.st.DeployRequestedSince(ctx, d.App, d.Stage, d.SHA, since); err != nil || heard {
			return err // recorded since the last look: Stagecoach heard of the change
		}
	}
	for _, j := range res.Jobs {
		heard, err := r.st.JobExists(ctx, j.Key)
		if j.Kind == jobs.KindPush && err == nil && !heard {
			// A push to a guarded stage is a job for the admission gate, keyed by its
			// delivery: heard if any push of the commit to the stage was recorded since.
			var p jobs.Push
			if err := json.Unmarshal(j.Payload, &p); err != nil {
				return fmt.Errorf("reading the recovered push: %w", err)
			}
			heard, err = r.st.PushRecordedSince(ctx, p.Repo, p.Stage, p.After, since)
		}
		if err != nil || heard {
			return err
		}
	}
	if gated(res) {
		// Asked only now: a change Stagecoach heard of costs no call.
		by, why, err := pusherOf(ctx, gh, repo, ref, sha, since)
		if err != nil {
			return err
		}
		if by.login == "" {
			r.log.Info("recovered push to a guarded stage names no pusher",
				"repo", repo, "ref", ref, "sha", sha, "why", why)
		} else {
			ev.Payload = pushPayload(repo, installationID, ref, before, sha, by)
			if res, err = r.routes["push"].Handle(ctx, ev); err != nil {
				return fmt.Errorf("translating the recovered push by %s: %w", by.login, err)
			}
		}
	}
	rec, err := r.st.Record(ctx, store.Intake{
		Delivery: store.Delivery{ID: ev.Delivery, Event: ev.Name, Action: res.Action, Repo: res.Repo, InstallationID: res.InstallationID},
		Deploys:  res.Deploys,
		Jobs:     res.Jobs,
	})
	if err != nil {
		return fmt.Errorf("recording the recovered push: %w", err)
	}
	fresh := len(res.Jobs) > 0
	for _, d := range rec.Deploys {
		fresh = fresh || d.New
	}
	if rec.Duplicate || !fresh {
		return nil // recorded before (a crash after recording it), or the same deploy as before
	}
	r.observe(func(o Observer) { o.Recovered("reconciled", ev.Name) })
	r.log.Info("recovered a ref change Stagecoach never heard of", "repo", repo, "ref", ref, "sha", sha,
		"delivery", ev.Delivery, "deploys", len(res.Deploys), "jobs", len(res.Jobs))
	if r.o.Wake != nil {
		r.o.Wake()
	}
	return nil
}

// RecoveredDelivery is the delivery id of the push recovery makes for a ref found at sha: the
// same every time, so the intake records it once, and plainly not GitHub's.
func RecoveredDelivery(repo, ref, sha string) string {
	return "recovered:" + repo + ":" + ref + ":" + sha
}

// zeroSHA is a push's before for a ref that did not exist.
const zeroSHA = "0000000000000000000000000000000000000000"

// gated reports whether a handler's result leaves a push to the admission gate.
func gated(res handlers.Result) bool {
	return slices.ContainsFunc(res.Jobs, func(j jobs.Job) bool { return j.Kind == jobs.KindPush })
}

// pushPayload is the push GitHub sends when ref moves from before to sha, with what handlers
// read of one. Its sender (and pusher) is by, whom GitHub's activity log names; none when by is
// empty: the git API does not say who moved a ref.
func pushPayload(repo string, installationID int64, ref, before, sha string, by pushedBy) []byte {
	if before == "" {
		before = zeroSHA
	}
	owner, name, _ := strings.Cut(repo, "/")
	m := map[string]any{
		"ref": ref, "before": before, "after": sha, "created": before == zeroSHA, "deleted": false, "forced": by.forced,
		"repository":   map[string]any{"full_name": repo, "name": name, "owner": map[string]any{"login": owner}},
		"installation": map[string]any{"id": installationID},
	}
	if by.login != "" {
		m["sender"] = map[string]any{"login": by.login, "type": by.typ}
		m["pusher"] = map[string]any{"name": by.login}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("recovery: encoding a push payload: %v", err)) // maps of strings and numbers always encode
	}
	return b
}
