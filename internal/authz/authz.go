// Package authz decides who may run a command: the users and org teams configured for it (team
// membership checked through GitHub's API at the time of the command), people with write access
// to the repository when nobody is configured, and, for a forced command, repository admins
// only. Every refusal says who may.
package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
)

// Directory answers who belongs where on GitHub.
type Directory interface {
	// TeamMember reports whether user is an active member of org/team.
	TeamMember(ctx context.Context, org, team, user string) (bool, error)
	// Permission is user's permission on owner/repo: admin, maintain, write, triage, read or none.
	Permission(ctx context.Context, owner, repo, user string) (string, error)
}

// Decision is whether a user may act, and if not, why and who may.
type Decision struct {
	Allowed bool
	Reason  string
}

// Check decides whether user may run a command on a stage whose approvers are given. A forced
// command (skipping the stage order) also needs admin permission on the repository.
func Check(ctx context.Context, dir Directory, approvers config.Approvers, repo, user, action string, force bool) (Decision, error) {
	if force {
		owner, name, _ := strings.Cut(repo, "/")
		p, err := dir.Permission(ctx, owner, name, user)
		if err != nil {
			return Decision{}, fmt.Errorf("reading %s's permission on %s: %w", user, repo, err)
		}
		if p != "admin" {
			return Decision{Reason: fmt.Sprintf("@%s may not %s with `--force`: only admins of %s may skip the stage order.", user, action, repo)}, nil
		}
	}
	if approvers.Empty() {
		// Nobody named: people who could push the change themselves may, not everyone who can
		// comment (on a public repository, that is anyone).
		owner, name, _ := strings.Cut(repo, "/")
		p, err := dir.Permission(ctx, owner, name, user)
		if err != nil {
			return Decision{}, fmt.Errorf("reading %s's permission on %s: %w", user, repo, err)
		}
		if p == "admin" || p == "maintain" || p == "write" {
			return Decision{Allowed: true}, nil
		}
		return Decision{Reason: fmt.Sprintf("@%s may not %s: only people with write access to %s may.", user, action, repo)}, nil
	}
	for _, u := range approvers.Users {
		if strings.EqualFold(u, user) {
			return Decision{Allowed: true}, nil
		}
	}
	for _, t := range approvers.Teams {
		org, team, _ := strings.Cut(t, "/")
		ok, err := dir.TeamMember(ctx, org, team, user)
		if err != nil {
			return Decision{}, fmt.Errorf("checking %s's membership of %s: %w", user, t, err)
		}
		if ok {
			return Decision{Allowed: true}, nil
		}
	}
	return Decision{Reason: fmt.Sprintf("@%s may not %s: only %s may.", user, action, who(approvers))}, nil
}

// Who names the approvers for a person: "@po, @cto and members of @acme/product-owners", or
// "people with write access" when nobody is named.
func Who(a config.Approvers) string {
	if a.Empty() {
		return "people with write access"
	}
	return who(a)
}

func who(a config.Approvers) string {
	var parts []string
	for _, u := range a.Users {
		parts = append(parts, "@"+u)
	}
	if len(a.Teams) > 0 {
		teams := make([]string, len(a.Teams))
		for i, t := range a.Teams {
			teams[i] = "@" + t
		}
		parts = append(parts, "members of "+strings.Join(teams, " or "))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// GitHubDirectory is the Directory of one installation's GitHub client.
type GitHubDirectory struct{ Client *github.Client }

// TeamMember implements Directory: an active membership counts; a pending invitation does not.
func (d GitHubDirectory) TeamMember(ctx context.Context, org, team, user string) (bool, error) {
	m, _, err := d.Client.Teams.GetTeamMembershipBySlug(ctx, org, team, user)
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.GetState() == "active", nil
}

// Permission implements Directory. Someone who is not a collaborator has none (GitHub answers
// 404 for a user it does not know there).
func (d GitHubDirectory) Permission(ctx context.Context, owner, repo, user string) (string, error) {
	p, _, err := d.Client.Repositories.GetPermissionLevel(ctx, owner, repo, user)
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
		return "none", nil
	}
	if err != nil {
		return "", err
	}
	if r := p.GetRoleName(); r != "" {
		return r, nil
	}
	return p.GetPermission(), nil
}
