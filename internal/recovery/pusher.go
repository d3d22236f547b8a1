package recovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"
)

// activityPage is how many of a ref's newest activities one look reads: only the newest counts,
// the rest guard against entries GitHub lists with the same timestamp.
const activityPage = 10

// pushedBy is who moved a branch to its head, as GitHub's activity log says.
type pushedBy struct {
	login, typ string // typ: "User" or "Bot", as a push's sender.type
	forced     bool   // a force_push: the move dropped commits
}

// pusherOf asks GitHub's activity log (GET /repos/{owner}/{repo}/activity, one call) who moved
// ref to sha. A reconciled push to a guarded stage is decided by who pushed it, and a ref read
// from the git API names nobody; the activity log does. Only the ref's newest activity counts,
// and only when it moved the ref to sha no earlier than since (the time recovery last saw the
// ref elsewhere, less the clock skew): an older move to the same commit, or a log that lags,
// never lends a pusher to a move it does not show. It returns "" when the log does not say
// (nothing matches, GitHub refuses the App the log: 403, 404, 410, 422), and an error only for a
// failure worth trying again next pass.
func pusherOf(ctx context.Context, gh *github.Client, repo, ref, sha string, since time.Time) (pushedBy, string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	list, _, err := gh.Repositories.ListRepositoryActivities(ctx, owner, name, &github.ListRepositoryActivityOptions{
		Ref: ref, Direction: "desc", PerPage: activityPage})
	if refused(err) {
		return pushedBy{}, fmt.Sprintf("GitHub refused the activity log (%v)", err), nil
	}
	if err != nil {
		return pushedBy{}, "", fmt.Errorf("reading who pushed %s: %w", ref, err)
	}
	var newest *github.RepositoryActivity
	for _, a := range list {
		if a.Ref != ref && "refs/heads/"+a.Ref != ref || a.Timestamp == nil {
			continue // not the ref asked for, or not when: never trusted
		}
		if newest == nil || a.Timestamp.After(newest.Timestamp.Time) {
			newest = a
		}
	}
	switch {
	case newest == nil:
		return pushedBy{}, "the activity log lists no move of the branch", nil
	case !strings.EqualFold(newest.After, sha):
		return pushedBy{}, fmt.Sprintf("the branch's newest activity moved it to %.7s, not to its head", newest.After), nil
	case newest.ActivityType == "branch_deletion":
		return pushedBy{}, "the branch's newest activity deleted it", nil
	case newest.Timestamp.Before(since):
		return pushedBy{}, "the branch's newest activity is older than the change recovery found", nil
	case newest.GetActor().GetLogin() == "":
		return pushedBy{}, "the activity names no account (a deleted one)", nil
	}
	typ := newest.GetActor().GetType()
	if typ == "" {
		typ = "User"
	}
	return pushedBy{login: newest.GetActor().GetLogin(), typ: typ, forced: newest.ActivityType == "force_push"}, "", nil
}

// refused reports GitHub's answers that say the App may not read the log, or not this way:
// retrying would get the same.
func refused(err error) bool {
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return false
	}
	switch er.Response.StatusCode {
	case http.StatusForbidden, http.StatusNotFound, http.StatusGone, http.StatusUnprocessableEntity:
		// A 403 that is a rate limit is no refusal: go-github reports those as their own types.
		return true
	}
	return false
}
