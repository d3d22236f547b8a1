package recovery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/store"
)

// delivery is one delivery of the log (a guid) with the attempts of it the pass listed.
type delivery struct {
	guid, event, action string
	first               time.Time            // the oldest attempt listed
	firstID             int64                // its id: GitHub's ids grow with time, finer than its seconds
	latest              *github.HookDelivery // the newest attempt listed
	ok                  bool                 // an attempt was answered 2xx
}

// deliveries lists the delivery log back to a little before the checkpoint, redelivers what
// failed and records what became of earlier redeliveries. It returns the new checkpoint and
// whether redeliveries are in flight.
func (p *pass) deliveries(ctx context.Context) (time.Time, bool, error) {
	r := p.r
	app, err := r.gh.App()
	if err != nil {
		return time.Time{}, false, err
	}
	now := r.o.Now()
	since := now.Add(-r.o.MaxAge)
	if c := p.l.Checkpoint; !c.IsZero() && c.Add(-overlap).After(since) {
		since = c.Add(-overlap)
	}
	byGUID, checkpoint, err := p.list(ctx, app, since)
	if err != nil {
		return time.Time{}, false, err
	}
	if checkpoint.IsZero() || checkpoint.Before(p.l.Checkpoint) {
		checkpoint = p.l.Checkpoint
	}
	guids := make([]string, 0, len(byGUID))
	for g := range byGUID {
		guids = append(guids, g)
	}
	known, err := r.st.Redeliveries(ctx, guids)
	if err != nil {
		return time.Time{}, false, err
	}
	p.busy = map[refKey]bool{}
	inFlight := false
	// Oldest first, so redeliveries reach the intake in the order GitHub first sent them.
	ds := make([]*delivery, 0, len(byGUID))
	for _, d := range byGUID {
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b *delivery) int {
		if c := a.first.Compare(b.first); c != 0 {
			return c
		}
		return cmp.Compare(a.firstID, b.firstID)
	})
	for _, d := range ds {
		rec, seen := known[d.guid]
		if d.ok {
			if seen && rec.State == store.Redelivered {
				if err := p.recovered(ctx, d, rec); err != nil {
					return time.Time{}, false, err
				}
			}
			continue
		}
		flight, err := p.failed(ctx, app, d, rec, seen)
		if err != nil {
			return time.Time{}, false, err
		}
		inFlight = inFlight || flight
	}
	// Redeliveries asked for lately whose outcome is still unseen keep their refs busy, even
	// when the listing no longer shows their delivery.
	pending, err := r.st.PendingRedeliveries(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, rec := range pending {
		if now.Sub(rec.UpdatedAt) < overlap {
			inFlight = true
			if rec.Ref != "" {
				p.busy[refKey{strings.ToLower(rec.Repo), rec.Ref}] = true
			}
		}
	}
	return checkpoint, inFlight, nil
}

// list reads the log, newest first, back to since, grouped by guid; checkpoint is the newest
// attempt's time.
func (p *pass) list(ctx context.Context, app *github.Client, since time.Time) (map[string]*delivery, time.Time, error) {
	out := map[string]*delivery{}
	var checkpoint time.Time
	opts := &github.ListCursorOptions{PerPage: pageSize}
	for page := 0; ; page++ {
		if page == maxPages {
			p.r.log.Warn("recovery listed the most deliveries a pass may; older ones were not examined", "older_than", checkpoint.String())
			return out, checkpoint, nil
		}
		items, resp, err := app.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("listing the App's webhook deliveries: %w", err)
		}
		for _, it := range items {
			at := it.GetDeliveredAt().Time
			if at.Before(since) {
				return out, checkpoint, nil // newest first: the rest is older still
			}
			if at.After(checkpoint) {
				checkpoint = at
			}
			d := out[it.GetGUID()]
			if d == nil {
				d = &delivery{guid: it.GetGUID(), event: it.GetEvent(), action: it.GetAction(), first: at, firstID: it.GetID(), latest: it}
				out[d.guid] = d
			}
			if at.Before(d.first) || (at.Equal(d.first) && it.GetID() < d.firstID) {
				d.first, d.firstID = at, it.GetID()
			}
			if it.GetID() > d.latest.GetID() {
				d.latest = it
			}
			d.ok = d.ok || it.GetStatusCode()/100 == 2
		}
		if resp.Cursor == "" {
			return out, checkpoint, nil
		}
		opts.Cursor = resp.Cursor
		if err := p.renew(ctx); err != nil {
			return nil, time.Time{}, err
		}
	}
}

// recovered records that a redelivery was answered 2xx: the missed work is in.
func (p *pass) recovered(ctx context.Context, d *delivery, rec store.Redelivery) error {
	rec.State, rec.AttemptID, rec.Reason = store.RedeliveryRecovered, d.latest.GetID(), ""
	if err := p.r.st.SaveRedelivery(ctx, p.l, rec); err != nil {
		return err
	}
	p.r.observe(func(o Observer) { o.Recovered("redelivered", d.event) })
	p.r.log.Info("missed delivery recovered", "guid", d.guid, "event", d.event, "action", d.action,
		"repo", rec.Repo, "ref", rec.Ref, "redeliveries", rec.Attempts)
	return nil
}

// failed decides what to do with a delivery none of whose listed attempts succeeded, and does
// it. It reports whether a redelivery of it is in flight.
func (p *pass) failed(ctx context.Context, app *github.Client, d *delivery, rec store.Redelivery, seen bool) (bool, error) {
	r := p.r
	switch {
	case seen && rec.State != store.Redelivered:
		return false, nil // recovered, stale or abandoned before
	case seen && d.latest.GetID() <= rec.AttemptID:
		// The attempt GitHub makes for our redelivery has not shown up yet.
		if rec.Ref != "" {
			p.busy[refKey{strings.ToLower(rec.Repo), rec.Ref}] = true
		}
		return true, nil
	}
	// Each failed delivery acted on may cost three calls to GitHub: keep the lease meanwhile.
	if err := p.renew(ctx); err != nil {
		return false, err
	}
	if !seen {
		rec = store.Redelivery{GUID: d.guid, Event: d.event, Action: d.action}
	}
	rec.AttemptID = d.latest.GetID()
	status := d.latest.GetStatusCode()
	var why string
	switch {
	case status == 400 || status == 413:
		why = fmt.Sprintf("the intake refused its payload (%d)", status)
	case r.o.Now().Sub(d.first) > r.o.MaxAge:
		why = "older than max_age (" + r.o.MaxAge.String() + ")"
	case rec.Attempts >= maxAttempts:
		why = fmt.Sprintf("redelivered %d times, never answered 2xx", rec.Attempts)
	}
	if why != "" {
		return false, p.leave(ctx, d, rec, store.RedeliveryAbandoned, why)
	}
	if d.event == "push" || (d.event == "pull_request" && d.action == "closed") {
		moved, err := p.about(ctx, app, d, &rec)
		if err != nil {
			return false, err
		}
		if moved != "" {
			return false, p.leave(ctx, d, rec, store.RedeliveryStale, moved)
		}
	}
	// Counted before it is asked for: a crash in between costs one attempt of the bound, never
	// an unbounded number of redeliveries.
	rec.State, rec.Attempts, rec.Reason = store.Redelivered, rec.Attempts+1, ""
	if err := r.st.SaveRedelivery(ctx, p.l, rec); err != nil {
		return false, err
	}
	var accepted *github.AcceptedError // GitHub answers 202, which go-github reports as an error
	if _, _, err := app.Apps.RedeliverHookDelivery(ctx, rec.AttemptID); err != nil && !errors.As(err, &accepted) {
		return false, fmt.Errorf("redelivering %s delivery %s: %w", d.event, d.guid, err)
	}
	if rec.Ref != "" {
		p.busy[refKey{strings.ToLower(rec.Repo), rec.Ref}] = true
	}
	r.observe(func(o Observer) { o.Redelivery("requested") })
	r.log.Info("redelivering a failed delivery", "guid", d.guid, "event", d.event, "action", d.action,
		"status", status, "attempt", rec.Attempts, "repo", rec.Repo, "ref", rec.Ref)
	return true, nil
}

// leave records a failed delivery recovery does not redeliver, and why.
func (p *pass) leave(ctx context.Context, d *delivery, rec store.Redelivery, state store.RedeliveryState, why string) error {
	rec.State, rec.Reason = state, why
	if err := p.r.st.SaveRedelivery(ctx, p.l, rec); err != nil {
		return err
	}
	outcome := "abandoned"
	if state == store.RedeliveryStale {
		outcome = "stale"
	}
	p.r.observe(func(o Observer) { o.Redelivery(outcome) })
	p.r.log.Warn("failed delivery not redelivered", "guid", d.guid, "event", d.event, "action", d.action,
		"repo", rec.Repo, "ref", rec.Ref, "reason", why)
	return nil
}

// hookPayload is what recovery reads of a push or pull_request payload.
type hookPayload struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Repository struct {
		FullName string `json:"full_name"`
	}
	Installation struct{ ID int64 }
	PullRequest  struct {
		Merged         bool   `json:"merged"`
		MergeCommitSHA string `json:"merge_commit_sha"`
		Base           struct{ Ref string }
	} `json:"pull_request"`
}

// about reads what a failed push or merge was about (its repository and branch go into rec) and
// says why it is stale, if it is: its branch of a configured repository has moved on from the
// commit it would deploy. Redelivered, it would deploy an older commit over a newer one.
func (p *pass) about(ctx context.Context, app *github.Client, d *delivery, rec *store.Redelivery) (string, error) {
	full, _, err := app.Apps.GetHookDelivery(ctx, d.latest.GetID())
	if err != nil {
		return "", fmt.Errorf("reading %s delivery %s: %w", d.event, d.guid, err)
	}
	var pl hookPayload
	if full.Request == nil || full.Request.RawPayload == nil || json.Unmarshal(*full.Request.RawPayload, &pl) != nil {
		return "", nil // nothing to judge by: redeliver, and let the intake judge
	}
	rec.Repo = pl.Repository.FullName
	var branch, sha string
	switch {
	case d.event == "push":
		rec.Ref = pl.Ref
		if b, ok := strings.CutPrefix(pl.Ref, "refs/heads/"); ok && !pl.Deleted {
			branch, sha = b, pl.After
		}
	case pl.PullRequest.Merged && pl.PullRequest.MergeCommitSHA != "":
		branch, sha = pl.PullRequest.Base.Ref, pl.PullRequest.MergeCommitSHA
		rec.Ref = "refs/heads/" + branch
	}
	if branch == "" || len(p.r.cfg.AppsForRepo(rec.Repo)) == 0 || len(p.r.cfg.StagesOnBranch(branch)) == 0 {
		return "", nil // deploys nothing: no newer commit to keep
	}
	head, err := p.head(ctx, pl.Installation.ID, rec.Repo, branch)
	if err != nil {
		return "", err
	}
	switch head {
	case sha:
		return "", nil
	case "":
		return fmt.Sprintf("branch %s is gone", branch), nil
	}
	return fmt.Sprintf("branch %s has moved on from %s to %s", branch, deploy.ShortSHA(sha), deploy.ShortSHA(head)), nil
}

// head reads a branch's head once a pass; "" when the branch is gone.
func (p *pass) head(ctx context.Context, installationID int64, repo, branch string) (string, error) {
	key := strings.ToLower(repo) + "\x00" + branch
	if h, ok := p.heads[key]; ok {
		return h, nil
	}
	gh, err := p.r.gh.Installation(installationID)
	if err != nil {
		return "", err
	}
	owner, name, _ := strings.Cut(repo, "/")
	ref, _, err := gh.Git.GetRef(ctx, owner, name, "heads/"+branch)
	switch {
	case notFound(err):
		p.heads[key] = ""
	case err != nil:
		return "", fmt.Errorf("reading the head of %s in %s: %w", branch, repo, err)
	default:
		p.heads[key] = ref.GetObject().GetSHA()
	}
	return p.heads[key], nil
}
