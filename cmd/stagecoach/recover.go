package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/metrics"
	"github.com/stagecoach/stagecoach/internal/recovery"
	"github.com/stagecoach/stagecoach/internal/store"
)

// recoverer builds recovery of missed work, which feeds what GitHub failed to deliver back
// through the handlers and the store's intake, and calls wake when it recorded some; nil when
// it is off or no GitHub App is configured (it reads the App's delivery log).
func recoverer(cfg *config.Config, st *store.Store, m *metrics.Metrics, wake func(), o recovery.Options, log *slog.Logger) (*recovery.Runner, error) {
	if !cfg.GitHub.Configured() {
		return nil, nil
	}
	if !cfg.Recovery.On() {
		log.Warn("recovery is off: what GitHub fails to deliver while every replica is down is lost")
		return nil, nil
	}
	key, err := os.ReadFile(cfg.GitHub.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the GitHub App private key: %w", err)
	}
	// Its calls say they are recovery's, apart from the deploys' and commands' (GitHub's logs,
	// and tests counting what a deploy costs, tell them apart).
	gh, err := githubapp.New(githubapp.Options{
		AppID: cfg.GitHub.AppID, PrivateKey: key, BaseURL: cfg.GitHub.APIURL,
		UserAgent: "stagecoach/" + version + " (recovery)", Transport: m.GitHubTransport(http.DefaultTransport),
	})
	if err != nil {
		return nil, err
	}
	o.Observer, o.Wake = m, wake
	return recovery.New(st, gh, cfg, handlers.All(cfg), o, log)
}
