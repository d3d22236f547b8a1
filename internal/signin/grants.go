package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/internal/access"
)

// errTokenDead means GitHub no longer takes a person's token (revoked or expired): their
// session is over.
var errTokenDead = errors.New("GitHub no longer accepts the sign-in's token")

// maxCached bounds the grants cache; past it, stale entries go first, then everything.
const maxCached = 10_000

// grantCache remembers, per session, what GitHub said the person may read, for access_ttl. Each
// entry has its own lock, so many requests of one person at once ask GitHub once.
type grantCache struct {
	mu      sync.Mutex
	entries map[string]*grantEntry // session id hash -> entry
}

type grantEntry struct {
	mu     sync.Mutex
	ok     bool
	at     time.Time
	grants []access.Grant
}

func (c *grantCache) entry(key string, now time.Time, ttl time.Duration) *grantEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*grantEntry{}
	}
	e := c.entries[key]
	if e == nil {
		if len(c.entries) >= maxCached {
			c.evictLocked(now, ttl)
		}
		e = &grantEntry{}
		c.entries[key] = e
	}
	return e
}

func (c *grantCache) evictLocked(now time.Time, ttl time.Duration) {
	for k, e := range c.entries {
		if e.mu.TryLock() {
			if !e.ok || now.Sub(e.at) >= ttl {
				delete(c.entries, k)
			}
			e.mu.Unlock()
		}
	}
	if len(c.entries) >= maxCached {
		clear(c.entries)
	}
}

func (c *grantCache) forget(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// grants returns what the person of a session may read: from the cache while it is fresh,
// else from GitHub.
func (g *Gate) grants(ctx context.Context, key, token string) ([]access.Grant, error) {
	e := g.cache.entry(key, g.now(), g.accessTTL)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok && g.now().Sub(e.at) < g.accessTTL {
		return e.grants, nil
	}
	grants, err := g.askGitHub(ctx, token)
	if err != nil {
		return nil, err
	}
	e.ok, e.at, e.grants = true, g.now(), grants
	return grants, nil
}

// askGitHub asks GitHub, with the person's own token, which of the App's installations they can
// reach and which repositories they can read in each, with their permission: a configured app's
// repository they can read is granted, and its audit trail where they are an admin.
func (g *Gate) askGitHub(ctx context.Context, token string) ([]access.Grant, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	gh, err := g.userClient(token)
	if err != nil {
		return nil, err
	}
	configured := map[string]bool{} // lower-cased
	for _, a := range g.cfg.Apps {
		configured[strings.ToLower(a.Repo)] = true
	}
	seen := map[string]int{}
	var out []access.Grant
	page := &github.ListOptions{PerPage: 100}
	for inst, err := range gh.Apps.ListUserInstallationsIter(ctx, page) {
		if err != nil {
			return nil, classify("listing the person's installations", err)
		}
		for repo, err := range gh.Apps.ListUserReposIter(ctx, inst.GetID(), page) {
			if err != nil {
				return nil, classify(fmt.Sprintf("listing the repositories of installation %d", inst.GetID()), err)
			}
			name := repo.GetFullName() // GitHub's spelling, as deliveries (and so the store) have it
			p := repo.GetPermissions()
			if !configured[strings.ToLower(name)] || p == nil || !(p.GetPull() || p.GetTriage() || p.GetPush() || p.GetMaintain() || p.GetAdmin()) {
				continue
			}
			if i, dup := seen[strings.ToLower(name)]; dup { // a repository seen through two installations
				out[i].Audit = out[i].Audit || p.GetAdmin()
				continue
			}
			seen[strings.ToLower(name)] = len(out)
			out = append(out, access.Grant{Repo: name, Audit: p.GetAdmin()})
		}
	}
	return out, nil
}

// classify marks GitHub's refusal of the token (401) as the end of the session.
func classify(what string, err error) error {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s: %w", what, errTokenDead)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// userClient is a go-github client acting as the person.
func (g *Gate) userClient(token string) (*github.Client, error) {
	return github.NewClient(github.WithHTTPClient(g.hc), github.WithURLs(&g.apiURL, &g.apiURL),
		github.WithAuthToken(token), github.WithUserAgent(g.userAgent))
}
