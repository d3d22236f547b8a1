package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/repoconfig"
	"github.com/stagecoach/stagecoach/internal/store"
)

// repoConfigs builds the syncer of repositories' own configuration files and applies the
// versions in force the store holds, before anything reads an app: a replica that starts uses
// what the others use from its first delivery and its first deploy.
func repoConfigs(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*repoconfig.Syncer, error) {
	repos := repoconfig.NewSyncer(cfg, st, repoconfig.SyncOptions{}, log)
	if err := repos.Sync(ctx); err != nil {
		return nil, fmt.Errorf("applying the repositories' own configuration: %w", err)
	}
	return repos, nil
}

// runRepoConfigs asks for every repository's file to be read once (a start may come with a new
// server configuration, which can change what a file means) and keeps this replica on the
// versions in force until ctx ends. Without a GitHub App no file can be read.
func runRepoConfigs(ctx context.Context, cfg *config.Config, repos *repoconfig.Syncer, log *slog.Logger) {
	if cfg.GitHub.Configured() && len(cfg.RepoConfigRepos()) > 0 {
		if err := repos.Request(ctx, "start", time.Minute); err != nil {
			log.Warn("repository configuration: asking for a read at start", "err", err)
		}
	}
	repos.Run(ctx)
}
