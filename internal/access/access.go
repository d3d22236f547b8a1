// Package access says who is behind a request and what they may read: a person signed in with
// GitHub (the repositories GitHub says they can read, and those they administer), a script with
// an API token (the repositories its configuration names), or, on a local trial without a
// GitHub App, anyone on the machine (everything). The read API and the dashboard ask it about
// every row they show; a request that carries no Viewer may read nothing.
package access

import (
	"context"
	"slices"
	"strings"
)

// Viewer is who is asking and what they may read. The zero value and nil may read nothing.
type Viewer struct {
	// Login is the GitHub login of a person; "" for an API token or the local trial.
	Login string
	// Token is the name of the API token that authenticated the request; "" for a person.
	Token string
	// CSRF is the token forms posted by this person must carry (sign-out); "" when there is no
	// session to protect.
	CSRF string

	all   bool              // the local trial: everything
	read  map[string]string // lower-cased owner/name -> the name as given
	audit map[string]bool   // lower-cased owner/name
}

// Everything is the viewer of the local trial, where no GitHub App is configured and the
// server listens on loopback only: it may read everything.
func Everything() *Viewer { return &Viewer{all: true} }

// Grant is one repository a viewer may read; Audit lets it read the repository's command audit
// trail too (people: repository admins).
type Grant struct {
	Repo  string // owner/name
	Audit bool
}

// New makes a viewer that may read exactly the granted repositories.
func New(login, token string, grants []Grant) *Viewer {
	v := &Viewer{Login: login, Token: token, read: map[string]string{}, audit: map[string]bool{}}
	for _, g := range grants {
		k := strings.ToLower(g.Repo)
		v.read[k] = g.Repo
		if g.Audit {
			v.audit[k] = true
		}
	}
	return v
}

// All reports whether the viewer may read everything (the local trial).
func (v *Viewer) All() bool { return v != nil && v.all }

// CanRead reports whether the viewer may see a repository's apps, deploys, locks and releases.
func (v *Viewer) CanRead(repo string) bool {
	if v == nil {
		return false
	}
	_, ok := v.read[strings.ToLower(repo)]
	return v.all || ok
}

// CanAudit reports whether the viewer may read a repository's command audit trail: who asked
// for what, refusals and forced reasons.
func (v *Viewer) CanAudit(repo string) bool {
	if v == nil {
		return false
	}
	return v.all || v.audit[strings.ToLower(repo)]
}

// Repos lists the repositories the viewer may read, sorted; meaningless when All. It is never
// nil, so a filter built from it keeps nothing rather than everything.
func (v *Viewer) Repos() []string {
	if v == nil {
		return []string{}
	}
	out := make([]string, 0, len(v.read))
	for _, name := range v.read {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// AuditRepos lists the repositories whose command audit the viewer may read, sorted;
// meaningless when All.
func (v *Viewer) AuditRepos() []string {
	if v == nil {
		return nil
	}
	var out []string
	for k := range v.audit {
		out = append(out, v.read[k])
	}
	slices.Sort(out)
	return out
}

type ctxKey struct{}

// WithViewer returns ctx carrying v.
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, ctxKey{}, v)
}

// From returns the viewer ctx carries, or nil: a request nobody vouched for may read nothing.
func From(ctx context.Context) *Viewer {
	v, _ := ctx.Value(ctxKey{}).(*Viewer)
	return v
}
