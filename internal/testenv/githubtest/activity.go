package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A repository's activity log, as GitHub keeps it (GET /repos/{owner}/{repo}/activity): every
// update of a branch with who made it, which is how an App learns who moved a ref whose push it
// never received (a ref read from the git API names nobody). Every branch change the server
// makes records one: PushBranch, PushFiles and PushToPull (push, or force_push when the old head
// is not kept), MergePull (pr_merge), a new branch (branch_creation), and the App's own
// git/create-ref and git/update-ref (by the App's bot). SetRef seeds what GitHub held before and
// records nothing; ForgetActivity empties the log, as GitHub's ageing out of old activity does.

// activity is one entry of the log.
type activity struct {
	id            int64
	ref           string // refs/heads/<branch>
	before, after string
	kind          string // activity_type
	actor         string
	at            time.Time
}

// activityPages is GitHub's default page of the activity log; per_page may ask for up to 100.
const activityPages = 30

// activityCursor starts the log's cursors, as GitHub's opaque ones do.
const activityCursor = "act_"

// recordActivityLocked logs a branch change (tags have no activity).
func (s *Server) recordActivityLocked(p push) {
	if !strings.HasPrefix(p.ref, "refs/heads/") {
		return
	}
	kind := "push"
	switch {
	case p.before == zeroSHA:
		kind = "branch_creation"
	case p.merge:
		kind = "pr_merge"
	case p.forced:
		kind = "force_push"
	}
	if s.activity == nil {
		s.activity = map[string][]activity{}
	}
	key := strings.ToLower(p.repo)
	s.activity[key] = append(s.activity[key], activity{id: s.nextIDLocked(), ref: p.ref, before: p.before, after: p.after,
		kind: kind, actor: p.sender, at: time.Now().UTC()})
}

// ForgetActivity empties repo's activity log: its branches' moves so far are older than
// anything GitHub still lists.
func (s *Server) ForgetActivity(repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.activity, strings.ToLower(repo))
}

// activityPeriods are the time_period values, as spans back from now.
var activityPeriods = map[string]time.Duration{
	"day": 24 * time.Hour, "week": 7 * 24 * time.Hour, "month": 30 * 24 * time.Hour,
	"quarter": 91 * 24 * time.Hour, "year": 365 * 24 * time.Hour,
}

var activityTypes = []string{"push", "force_push", "branch_creation", "branch_deletion", "pr_merge", "merge_queue_merge"}

// listActivities answers repos/list-activities: the log filtered by ref (refs/heads/x or x),
// actor, time_period and activity_type, newest first (direction=asc: oldest first), a page at a
// time; the Link header's next names the last entry of the page as the after cursor, and a
// before cursor pages back. Unknown filter values are GitHub's 422.
func (s *Server) listActivities(c *call) (int, any) {
	q := c.r.URL.Query()
	per := activityPages
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return http.StatusUnprocessableEntity, message("per_page must be a positive integer")
		}
		per = min(n, 100)
	}
	dir := q.Get("direction")
	if dir != "" && dir != "asc" && dir != "desc" {
		return http.StatusUnprocessableEntity, message("direction must be asc or desc")
	}
	kind := q.Get("activity_type")
	if kind != "" && !slices.Contains(activityTypes, kind) {
		return http.StatusUnprocessableEntity, message("activity_type is not one of " + strings.Join(activityTypes, ", "))
	}
	var since time.Time
	if v := q.Get("time_period"); v != "" {
		span, ok := activityPeriods[v]
		if !ok {
			return http.StatusUnprocessableEntity, message("time_period must be day, week, month, quarter or year")
		}
		since = time.Now().Add(-span)
	}
	ref := q.Get("ref")
	if ref != "" && !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	var after, before int64 = -1, -1
	for name, dst := range map[string]*int64{"after": &after, "before": &before} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(strings.TrimPrefix(v, activityCursor), 10, 64)
			if !strings.HasPrefix(v, activityCursor) || err != nil {
				return http.StatusUnprocessableEntity, message("Invalid cursor")
			}
			*dst = n
		}
	}
	actor := q.Get("actor")
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []activity
	for _, a := range s.activity[strings.ToLower(c.repo())] {
		if (ref == "" || a.ref == ref) && (kind == "" || a.kind == kind) && (actor == "" || strings.EqualFold(a.actor, actor)) &&
			!a.at.Before(since) {
			list = append(list, a)
		}
	}
	if dir != "asc" {
		slices.Reverse(list)
	}
	// The cursors name an entry: after lists what follows it, before what precedes it.
	if i := slices.IndexFunc(list, func(a activity) bool { return a.id == after }); after >= 0 {
		list = list[i+1:] // i is -1 for an entry no longer listed: from the start
	}
	if i := slices.IndexFunc(list, func(a activity) bool { return a.id == before }); before >= 0 && i >= 0 {
		list = list[max(0, i-per):i]
	}
	out := []any{}
	for i, a := range list {
		if i == per {
			q.Set("after", fmt.Sprintf("%s%d", activityCursor, list[i-1].id))
			q.Del("before")
			c.header.Set("Link", fmt.Sprintf(`<%srepos/%s/activity?%s>; rel="next"`, s.URL(), c.repo(), q.Encode()))
			break
		}
		var who any // nullable-simple-user: a deleted account
		if a.actor != "" {
			who = s.user(a.actor)
		}
		out = append(out, map[string]any{
			"id": a.id, "node_id": fmt.Sprintf("RA_%d", a.id), "before": a.before, "after": a.after, "ref": a.ref,
			"timestamp": stamp(a.at), "activity_type": a.kind, "actor": who,
		})
	}
	return http.StatusOK, out
}
