package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/metrics"
	"github.com/stagecoach/stagecoach/internal/report"
	"github.com/stagecoach/stagecoach/internal/signin"
	"github.com/stagecoach/stagecoach/internal/store"
)

// newGate builds the sign-in in front of the dashboard and the API, and says at start-up who
// can get in.
func newGate(cfg *config.Config, st *store.Store, m *metrics.Metrics, log *slog.Logger) (*signin.Gate, error) {
	gate, err := signin.New(signin.Options{Config: cfg, Sessions: st, WebURL: report.WebURL(cfg.GitHub.APIURL),
		HTTPClient: &http.Client{Transport: m.GitHubTransport(http.DefaultTransport), Timeout: 20 * time.Second},
		UserAgent:  "stagecoach/" + version, Log: log})
	if err != nil {
		return nil, err
	}
	switch tokens := len(cfg.SignIn.APITokens); {
	case cfg.OpenLocally():
		log.Warn("no GitHub App and a loopback listener: the dashboard and API are open to this machine")
	case !gate.SignInEnabled() && tokens == 0:
		log.Warn("the dashboard and API are closed: set github.client_id (sign in with GitHub) or signin.api_tokens")
	default:
		log.Info("sign-in", "github", gate.SignInEnabled(), "public_url", cfg.SignIn.PublicURL, "api_tokens", tokens)
	}
	return gate, nil
}

// token makes a read-only API token for a script: the token, shown once, and the entry the
// configuration keeps (its SHA-256, never the token).
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "who uses the token (lower-case letters, digits and dashes), e.g. release-board")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *name == "" || fs.NArg() > 0 {
		return usageError{"usage: stagecoach token --name NAME"}
	}
	tok, sum, err := signin.NewToken()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API token for %s (shown once; give it to the script, keep it out of the configuration):\n\n  %s\n\n", *name, tok)
	fmt.Fprintf(stdout, "Add to the configuration's signin.api_tokens:\n\n  - name: %s\n    sha256: %s\n    repos: []      # the repositories it reads; empty: every configured app's\n    audit: false   # true: it reads their command audit too\n", *name, sum)
	fmt.Fprintln(stdout, "\nScripts send it on GET /api/v1/...: Authorization: Bearer TOKEN")
	return nil
}
