// Package sandbox plays Stagecoach's whole release flow on one machine with nothing to set up:
// the real server, on an embedded SQLite store, wired to the in-repo GitHub and AWS test servers
// (which speak the real wire protocols) and to a local Kubernetes control plane when one is
// available, or else to a clearly labelled simulated cluster. It then acts out what people do —
// a merge while test is frozen (held, then started when the freeze ends), a pull request opened
// and merged, `/promote alpha`, a release tag, `/promote prod` by someone who may not, by the
// product owner before the release has soaked on alpha (refused, saying when it is ready) and
// with the Promote button once it has, a failing build, a second release, `/rollback prod`, then
// what someone with write access tries to ship without approval (pushes to alpha and prod, an
// outsider's command, a bad ref, a moved release tag, a promotion over a commit on prod's branch,
// forced at last by an admin), the repository's own .github/stagecoach.yml, allowed and
// refused, and a release that fails prod's health check after the switch, which Stagecoach
// switches back (the health endpoint the sandbox serves, in health.go) — and checks after each
// step that Stagecoach did what it should, with its freeze and soak time seconds long on the
// real clock (the story's calendar, in seed.go),
// printing the story as it goes with a progress line for every wait.
//
// Everything the sandbox sees, it sees as a user would: deploys through the HTTP API (with an
// API token, as a script would), comments, issues and check runs on the GitHub test server. It
// never reads Stagecoach's store. Its dashboard is one click away: DashboardURL signs in with
// GitHub, where the test server's authorize page sends the browser straight back as the
// sandbox's watcher, an admin of the repository.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/pipeline"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

// Server is what Options.Serve starts: Stagecoach on this configuration, until ctx ends.
type Server struct {
	Config *config.Config
	// Clusters are the stages' clusters when they are simulated; nil when the configuration's
	// kubeconfig names a real control plane.
	Clusters pipeline.Clusters
	// AWSEndpoint is the AWS test servers' URL: the AWS SDK must go there, signing with these
	// static credentials in this region, and never to AWS.
	AWSEndpoint, AWSRegion, AWSKeyID, AWSSecret string
	// Log receives the server's JSON log, so the story stays readable.
	Log io.Writer
	// Listening must be called with the server's public and internal addresses once both
	// accept connections.
	Listening func(public, internal string)
}

// Kube names a real control plane to run the stages on: a kubeconfig file and context. The
// sandbox makes a namespace per stage in it.
type Kube struct {
	Kubeconfig, Context string
	Description         string // e.g. "local control plane (kube-apiserver v1.36.3)"
}

// Options configure a sandbox.
type Options struct {
	Dir    string    // the store, configuration, keys and log go here (required)
	Listen string    // Stagecoach's address (default 127.0.0.1:8080; port 0 picks one)
	Out    io.Writer // where the story is told
	Kube   *Kube     // nil: the simulated cluster
	// Serve runs Stagecoach until its context ends (cmd/stagecoach's server).
	Serve func(ctx context.Context, s Server) error
	// Phase is how long each CodeBuild phase takes (default 150 ms: a build in about 2 s).
	Phase time.Duration
}

// World is a running sandbox: the test servers, the clusters and Stagecoach.
type World struct {
	GitHub *githubtest.Server
	AWS    *awstest.Env
	URL    string // Stagecoach's public root, e.g. http://127.0.0.1:8080
	// InternalURL is the root of Stagecoach's internal listener (metrics and probes), on a
	// free loopback port.
	InternalURL string

	o        Options
	cfg      *config.Config
	kube     *cluster
	health   *health // prod's health endpoint, which prod's deploys are verified against
	p        *printer
	apiToken string // the sandbox's own read-only API token
	// freezeUntil is when test's freeze ends (the configuration's freezes[0].until).
	freezeUntil time.Time
	stop        context.CancelFunc
	served      chan error
	logFile     *os.File
}

// Start builds the world and starts Stagecoach in it. Close ends it.
func Start(ctx context.Context, o Options) (*World, error) {
	if o.Dir == "" || o.Serve == nil {
		return nil, errors.New("sandbox: Options.Dir and Options.Serve are required")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Phase <= 0 {
		o.Phase = 150 * time.Millisecond
	}
	w := &World{o: o, p: newPrinter(o.Out), served: make(chan error, 1)}
	var err error
	if w.GitHub, err = githubtest.Start(githubtest.WithAppSlug("stagecoach")); err != nil {
		return nil, fmt.Errorf("starting the GitHub test server: %w", err)
	}
	if w.AWS, err = awstest.Start(); err != nil {
		w.GitHub.Close()
		return nil, fmt.Errorf("starting the AWS test servers: %w", err)
	}
	if err := w.setUp(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// setUp seeds GitHub, AWS and the clusters, writes the configuration and starts Stagecoach.
func (w *World) setUp(ctx context.Context) error {
	o := w.o
	w.seedGitHub()
	w.seedAWS()
	var err error
	if w.kube, err = newCluster(ctx, o.Kube, stageNames); err != nil {
		return err
	}
	w.startHealth()
	if w.cfg, err = w.writeConfig(); err != nil {
		return err
	}
	if w.logFile, err = os.OpenFile(filepath.Join(o.Dir, "stagecoach.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return w.serve(ctx)
}

// DashboardURL opens the dashboard signed in: it starts the sign-in with GitHub, which the test
// server completes at once for the sandbox's watcher.
func (w *World) DashboardURL() string { return w.URL + "/signin/github" }

// Banner tells where everything is.
func (w *World) Banner() {
	p := w.p
	p.line("Stagecoach sandbox: the real Stagecoach, with GitHub and AWS played by in-process test servers")
	p.line("  Kubernetes  %s", w.kube.describe())
	p.line("  GitHub      %s (test server, repository %s)", w.GitHub.URL(), repo)
	p.line("  AWS         %s (CodeBuild, ECR, Secrets Manager and STS test servers)", w.AWS.URL())
	p.line("  Health      %s (prod's app as users reach it: what runs behind Service api answers; prod's deploys are verified against it)", w.health.URL())
	p.line("  Dashboard   %s (signs you in with the GitHub test server as @%s, an admin of %s)", w.DashboardURL(), watcher, repo)
	p.line("  Logs        %s", w.logFile.Name())
	p.line("")
}

// Close stops Stagecoach, then the test servers and the clusters.
func (w *World) Close() {
	if w.stop != nil {
		w.stop()
		select {
		case <-w.served:
		case <-time.After(15 * time.Second):
		}
	}
	if w.GitHub != nil {
		w.GitHub.Close()
	}
	if w.AWS != nil {
		w.AWS.Close()
	}
	if w.health != nil {
		w.health.close()
	}
	if w.kube != nil {
		w.kube.close()
	}
	if w.logFile != nil {
		w.logFile.Close()
	}
}
