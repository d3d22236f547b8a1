// Package ghcreate makes the objects Stagecoach creates on GitHub exactly once, whatever crashes
// or fails between GitHub's answer and the store's commit. Before a create call it records, in
// the store, that the object a key names is about to be created; after it, the object's id.
// A retry that finds the record without an id may have created the object already, so it looks
// it up on GitHub first, by what identifies it there: a check run by its external_id, a comment
// or an issue by the hidden marker in its body, a GitHub Deployment by its payload, a
// Deployment status by its state. Only when that finds nothing is the object created.
//
// The lookups cost GitHub calls only after an attempt that may have created the object; the
// first attempt, which almost always succeeds, creates directly.
package ghcreate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/store"
)

// Log is where the creates are recorded: the store.
type Log interface {
	BeginWrite(ctx context.Context, key string) (store.Write, error)
	EndWrite(ctx context.Context, key string, objectID int64) error
}

// Once returns the id of the object key names: the one recorded, else (after an attempt that
// may have created it) the one find finds, else a new one from create, which it reports by
// created. find returns 0 when there is none. Errors of find and create are classified for the
// job runner.
func Once(ctx context.Context, log Log, key string, find, create func(context.Context) (int64, error)) (id int64, created bool, err error) {
	w, err := log.BeginWrite(ctx, key)
	if err != nil {
		return 0, false, err
	}
	if w.ObjectID != 0 {
		return w.ObjectID, false, nil
	}
	if w.Attempted {
		if id, err = find(ctx); err != nil {
			return 0, false, githubapp.Classify(fmt.Errorf("looking up %s before creating it again: %w", key, err))
		}
	}
	if id == 0 {
		if id, err = create(ctx); err != nil {
			return 0, false, githubapp.Classify(fmt.Errorf("creating %s: %w", key, err))
		}
		created = true
	}
	if err := log.EndWrite(ctx, key, id); err != nil {
		return 0, false, err
	}
	return id, created, nil
}

// CheckRun finds the check run named name on sha whose external_id is externalID.
func CheckRun(ctx context.Context, gh *github.Client, owner, repo, sha, name, externalID string) (int64, error) {
	opts := &github.ListCheckRunsOptions{CheckName: github.Ptr(name), Filter: github.Ptr("all"), ListOptions: github.ListOptions{PerPage: 100}}
	for {
		res, resp, err := gh.Checks.ListCheckRunsForRef(ctx, owner, repo, sha, opts)
		if err != nil {
			return 0, err
		}
		for _, cr := range res.CheckRuns {
			if cr.GetExternalID() == externalID {
				return cr.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}

// Comment finds the comment on issue that the App's bot user (bot, "<slug>[bot]") made with
// marker in its body. A comment by anyone else carrying the marker is not Stagecoach's and is
// never picked.
func Comment(ctx context.Context, gh *github.Client, owner, repo string, issue int, bot, marker string) (int64, error) {
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := gh.Issues.ListComments(ctx, owner, repo, issue, opts)
		if err != nil {
			return 0, err
		}
		for _, c := range cs {
			if strings.EqualFold(c.GetUser().GetLogin(), bot) && strings.Contains(c.GetBody(), marker) {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}

// Issue finds the issue labelled label that the App's bot user opened with marker in its body;
// it returns its number.
func Issue(ctx context.Context, gh *github.Client, owner, repo, label, bot, marker string) (int64, error) {
	opts := &github.IssueListByRepoOptions{State: "all", Labels: []string{label}, Creator: bot, ListOptions: github.ListOptions{PerPage: 100}}
	for {
		is, resp, err := gh.Issues.ListByRepo(ctx, owner, repo, opts)
		if err != nil {
			return 0, err
		}
		for _, i := range is {
			if strings.EqualFold(i.GetUser().GetLogin(), bot) && strings.Contains(i.GetBody(), marker) {
				return int64(i.GetNumber()), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.ListOptions.Page = resp.NextPage
	}
}

// Deployment finds the GitHub Deployment of sha to environment whose payload has key = value.
func Deployment(ctx context.Context, gh *github.Client, owner, repo, sha, environment, key string, value int64) (int64, error) {
	opts := &github.DeploymentsListOptions{SHA: sha, Environment: environment, ListOptions: github.ListOptions{PerPage: 100}}
	for {
		ds, resp, err := gh.Repositories.ListDeployments(ctx, owner, repo, opts)
		if err != nil {
			return 0, err
		}
		for _, d := range ds {
			var p map[string]any
			if json.Unmarshal(d.Payload, &p) == nil && fmt.Sprint(p[key]) == fmt.Sprint(value) {
				return d.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}

// DeploymentStatus finds a status of state on GitHub Deployment id.
func DeploymentStatus(ctx context.Context, gh *github.Client, owner, repo string, id int64, state string) (int64, error) {
	opts := &github.ListOptions{PerPage: 100}
	for {
		ss, resp, err := gh.Repositories.ListDeploymentStatuses(ctx, owner, repo, id, opts)
		if err != nil {
			return 0, err
		}
		for _, s := range ss {
			if s.GetState() == state {
				return s.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}
