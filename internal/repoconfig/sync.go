package repoconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// SyncStore is what a Syncer needs of the store: the versions in force, and the jobs.
type SyncStore interface {
	Store
	JobsInLane(ctx context.Context, lane string, since time.Time) (bool, error)
	EnqueueJob(ctx context.Context, j jobs.Job) (int64, bool, error)
}

// SyncOptions tune a Syncer. Zero values take the defaults.
type SyncOptions struct {
	// Poll is how often the store is asked for newer versions (default 2 s).
	Poll time.Duration
	// MaxWait bounds how long a read of a repository's file in flight holds back a deploy of
	// the repository (default 1 min): a read GitHub keeps waiting must not stop deploys.
	MaxWait time.Duration
	Now     func() time.Time
}

// Syncer keeps one replica's effective apps (config.SetRepoApps) in step with the versions in
// force the store holds.
type Syncer struct {
	cfg *config.Config
	st  SyncStore
	o   SyncOptions
	log *slog.Logger

	mu      sync.Mutex
	applied map[string]int64 // lower-cased repo -> the version this replica applied
}

// NewSyncer builds the syncer of cfg.
func NewSyncer(cfg *config.Config, st SyncStore, o SyncOptions, log *slog.Logger) *Syncer {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Syncer{cfg: cfg, st: st, o: o, log: log, applied: map[string]int64{}}
}

// Sync applies every version in force in the store newer than what this replica applied.
func (s *Syncer) Sync(ctx context.Context) error {
	versions, err := s.st.RepoConfigVersions(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for repo, v := range versions {
		if v > s.version(repo) {
			errs = append(errs, s.syncRepo(ctx, repo))
		}
	}
	return errors.Join(errs...)
}

func (s *Syncer) version(repo string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[strings.ToLower(repo)]
}

// syncRepo applies repo's version in force when it is newer than the one applied here.
func (s *Syncer) syncRepo(ctx context.Context, repo string) error {
	row, err := s.st.RepoConfig(ctx, repo)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if row.Version <= s.version(repo) {
		return nil
	}
	if !s.cfg.RepoConfigOn(repo) {
		s.apply(repo, row.Version, nil) // no longer read (the server's configuration changed): the server's apps
		return nil
	}
	apps, err := s.cfg.ParseRepoFile(repo, config.RepoFilePath, []byte(row.Content))
	if err != nil {
		// The server's configuration no longer allows what the file sets: it wins, and the
		// repository's apps are the server's until a file it allows is in force.
		s.log.Error("the repository configuration in force no longer passes the server's configuration: using the server's apps",
			"repo", repo, "sha", row.SHA, "version", row.Version, "err", err)
		apps = nil
	}
	s.apply(repo, row.Version, apps)
	return nil
}

// apply makes apps repo's effective apps (nil: the server's), unless a newer version was applied
// already.
func (s *Syncer) apply(repo string, version int64, apps []config.App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(repo)
	if version <= s.applied[key] {
		return
	}
	s.cfg.SetRepoApps(repo, apps)
	s.applied[key] = version
	s.log.Info("repository configuration applied", "repo", repo, "version", version)
}

// Ready reports whether a deploy of repo may start: no read of repo's file is in flight (one
// recorded within MaxWait: a merge that changes the file deploys with it), and this replica has
// applied the version in force the store holds. It is what package pipeline asks before it pins
// a deploy's app configuration.
func (s *Syncer) Ready(ctx context.Context, repo string) (bool, error) {
	if !s.cfg.RepoConfigOn(repo) {
		return true, nil
	}
	busy, err := s.st.JobsInLane(ctx, jobs.RepoConfigLane(repo), s.o.Now().Add(-s.o.MaxWait))
	if err != nil || busy {
		return false, err
	}
	return true, s.syncRepo(ctx, repo)
}

// Request records a read of every repository's file covered by repo_config, once per bucket
// (reason "start" or "refresh" and a time bucket): replicas asking at the same time record one.
func (s *Syncer) Request(ctx context.Context, reason string, bucket time.Duration) error {
	var errs []error
	key := reason + ":" + strconv.FormatInt(s.o.Now().UnixNano()/int64(bucket), 10)
	for _, repo := range s.cfg.RepoConfigRepos() {
		_, _, err := s.st.EnqueueJob(ctx, jobs.RepoConfigLoadJob(jobs.RepoConfigLoad{Repo: repo, Reason: reason}, key))
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run applies newer versions every Poll and asks for every file to be read again every
// repo_config.refresh, until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	poll := time.NewTicker(s.o.Poll)
	defer poll.Stop()
	refresh := time.NewTicker(s.cfg.RepoConfig.Refresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("repository configuration: reading the versions in force", "err", err)
			}
		case <-refresh.C:
			if err := s.Request(ctx, "refresh", s.cfg.RepoConfig.Refresh); err != nil && ctx.Err() == nil {
				s.log.Warn("repository configuration: asking for a refresh", "err", err)
			}
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("repoconfig: marshal %T: %v", v, err))
	}
	return b
}
