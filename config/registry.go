package config

import (
	"strings"
	"sync"
	"sync/atomic"
)

// registry holds the effective apps: the server file's, with the apps each repository
// configures in its own file (.github/stagecoach.yml) in place of its server entries. It is
// copy-on-write: a new set is built beside the old one and swapped in whole, so a reader sees
// either every change of a repository's file or none, and an *App a reader holds never changes
// under it (a published set is never written again).
type registry struct {
	cur atomic.Pointer[appSet] // nil until a repository's apps were set: Config.Apps is all there is
	mu  sync.Mutex             // serializes writers; readers never take it
}

// appSet is one published generation of the effective apps.
type appSet struct {
	apps  []App
	repos map[string][]App // lower-cased owner/name -> the repository's apps as its file makes them
}

// EffectiveApps returns the apps Stagecoach serves: the server file's, each replaced by what its
// repository's file (.github/stagecoach.yml) made of it. The slice and the apps in it are shared
// and read-only; they stay as they are when a repository's file changes (the next call returns
// the new set). Without repository files it is Apps.
func (c *Config) EffectiveApps() []App {
	if c.reg != nil {
		if s := c.reg.cur.Load(); s != nil {
			return s.apps
		}
	}
	return c.Apps
}

// SetRepoApps makes apps the effective apps of repository repo (owner/name), in place of the
// server file's apps of repo; nil puts the server file's back. apps must be what ParseRepoFile
// returned for repo: the same apps by name as the server file's, so a repository's file can
// never add an app, take another repository's, or drop one. It is safe to call while others
// read; they see the change on their next lookup.
func (c *Config) SetRepoApps(repo string, apps []App) {
	if c.reg == nil {
		panic("config: SetRepoApps on a Config not made by Parse, Load or Default")
	}
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	key := strings.ToLower(repo)
	next := &appSet{repos: map[string][]App{}}
	if old := c.reg.cur.Load(); old != nil {
		for r, as := range old.repos {
			next.repos[r] = as
		}
	}
	if apps == nil {
		delete(next.repos, key)
	} else {
		next.repos[key] = cloneApps(apps)
	}
	next.apps = make([]App, len(c.Apps))
	for i, a := range c.Apps {
		next.apps[i] = a
		for _, ra := range next.repos[strings.ToLower(a.Repo)] {
			if ra.Name == a.Name {
				next.apps[i] = ra
			}
		}
	}
	c.reg.cur.Store(next)
}

// WithApps returns a copy of c whose apps are exactly apps, whatever repositories' files say
// later: what one reader (a dashboard page, filtered to what its viewer may read) works from.
func (c *Config) WithApps(apps []App) *Config {
	cp := *c
	cp.Apps, cp.reg = apps, nil
	return &cp
}

// cloneApps copies apps deeply enough that nothing the caller keeps can change them: the
// stages map and the lists in it are the copy's own.
func cloneApps(apps []App) []App {
	out := make([]App, len(apps))
	for i, a := range apps {
		out[i] = a.clone()
	}
	return out
}

func (a App) clone() App {
	a.AllowedOverrides = append([]string(nil), a.AllowedOverrides...)
	if a.Stages != nil {
		stages := make(map[string]AppStage, len(a.Stages))
		for name, s := range a.Stages {
			ds := make([]Deployment, len(s.Deployments))
			for j, d := range s.Deployments {
				d.Containers = append([]string(nil), d.Containers...)
				ds[j] = d
			}
			if s.Deployments == nil {
				ds = nil
			}
			s.Deployments = ds
			stages[name] = s
		}
		a.Stages = stages
	}
	return a
}
