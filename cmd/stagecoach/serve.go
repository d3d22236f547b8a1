package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/admission"
	"github.com/stagecoach/stagecoach/internal/amazon"
	"github.com/stagecoach/stagecoach/internal/api"
	"github.com/stagecoach/stagecoach/internal/chatops"
	"github.com/stagecoach/stagecoach/internal/dashboard"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/installs"
	"github.com/stagecoach/stagecoach/internal/metrics"
	"github.com/stagecoach/stagecoach/internal/pipeline"
	"github.com/stagecoach/stagecoach/internal/recovery"
	"github.com/stagecoach/stagecoach/internal/release"
	"github.com/stagecoach/stagecoach/internal/repoconfig"
	"github.com/stagecoach/stagecoach/internal/report"
	"github.com/stagecoach/stagecoach/internal/retention"
	"github.com/stagecoach/stagecoach/internal/server"
	"github.com/stagecoach/stagecoach/internal/signin"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/webhook"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// serve runs the service until ctx ends.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("serve", flag.ContinueOnError)
	fset.SetOutput(stderr)
	cfgPath := fset.String("config", getenv("STAGECOACH_CONFIG"), "configuration `file` (default: built-in defaults)")
	listen := fset.String("listen", "", "public listen `address`: the webhook (overrides the file's listen)")
	internal := fset.String("internal-listen", "", "internal listen `address`: metrics and probes (overrides internal_listen and STAGECOACH_INTERNAL_LISTEN)")
	runDeploys := fset.Bool("deploy", true, "run deploys; false records them without running them (intake-only replicas, or trying Stagecoach without AWS and a cluster)")
	if err := fset.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *internal != "" {
		cfg.Internal = *internal
	}
	return runServer(ctx, serverOptions{cfg: cfg, deploy: *runDeploys, stdout: stdout, log: newLogger(stderr, cfg.LogLevel)})
}

// serverOptions are what runServer needs besides the configuration's own settings.
type serverOptions struct {
	cfg    *config.Config
	deploy bool // run deploys (false: record them only)
	stdout io.Writer
	log    *slog.Logger
	// clusters replaces the stages' Kubernetes connections (the sandbox's simulated cluster);
	// nil connects to each stage's kubeconfig context or in-cluster service account.
	clusters pipeline.Clusters
	// aws adds options to the AWS configuration (the sandbox's endpoint and credentials); nil
	// uses the default chain and the standard variables.
	aws []func(*awsconfig.LoadOptions) error
	// listening, when set, hears the public and internal addresses once both listeners accept
	// connections.
	listening func(public, internal string)
	// pipeline tunes the pipeline (the sandbox looks at its seconds-long builds more often).
	pipeline pipeline.Options
	// recovery tunes recovery (tests follow a pass up sooner).
	recovery recovery.Options
}

// runServer runs the service until ctx ends: the intake, the job runner, the pipeline and the
// HTTP endpoints, all on one store.
func runServer(ctx context.Context, o serverOptions) error {
	cfg, log := o.cfg, o.log
	secret, err := webhookSecret(cfg, log)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.Store.DSN())
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()

	m := metrics.New(st, log)
	repos, err := repoConfigs(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	execs, services, err := executors(cfg, st, m, repos, log)
	if err != nil {
		return err
	}
	// The store wakes the runners of this process after every commit that made work due.
	runner, err := worker.New(st, execs, worker.Options{Services: services}, log)
	if err != nil {
		return err
	}
	var deploys *pipeline.Runner
	if o.deploy {
		o.pipeline.RepoConfigs = repos
		if deploys, err = newPipeline(ctx, o, st, m); err != nil {
			return err
		}
		st.OnCommit(store.WakeDeploys, deploys.Wake)
	} else {
		log.Warn("deploys are recorded but not run (--deploy=false)")
	}
	intake, err := webhook.New(secret, handlers.All(cfg), st, m, log,
		webhook.Options{MaxUnverified: int64(cfg.Webhook.MaxUnverifiedMiB) << 20})
	if err != nil {
		return err
	}
	missed, err := recoverer(cfg, st, m, func() {
		runner.Wake()
		if deploys != nil {
			deploys.Wake()
		}
	}, o.recovery, log)
	if err != nil {
		return err
	}
	m.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stagecoach_webhook_unverified_bytes",
		Help: "Bytes of webhook bodies read but not yet verified; the intake refuses requests (503) past webhook.max_unverified_mib.",
	}, func() float64 { return float64(intake.Unverified()) }))
	gate, err := newGate(cfg, st, m, log)
	if err != nil {
		return err
	}
	public := publicRoutes(cfg, st, intake, gate, log)
	internal := server.Internal{Metrics: m.Handler(), Store: st}

	pub, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s (listen): %w", cfg.Listen, err)
	}
	in, err := net.Listen("tcp", cfg.Internal)
	if err != nil {
		pub.Close()
		return fmt.Errorf("listening on %s (internal_listen): %w", cfg.Internal, err)
	}
	if o.stdout != nil {
		fmt.Fprintf(o.stdout, "stagecoach %s listening on http://%s (internal http://%s; store: %s)\n", version, pub.Addr(), in.Addr(), st.Dialect())
	}
	log.Info("started", "listen", pub.Addr().String(), "internal_listen", in.Addr().String(), "store", st.Dialect(),
		"apps", len(cfg.Apps), "github_app", cfg.GitHub.Configured())
	if o.listening != nil {
		o.listening(pub.Addr().String(), in.Addr().String())
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = runner.Run(runCtx) })
	wg.Go(func() { runRepoConfigs(runCtx, cfg, repos, log) })
	if deploys != nil {
		wg.Go(func() { _ = deploys.Run(runCtx) })
	}
	wg.Go(func() { retention.Run(runCtx, st, retention.Policy(cfg.Retention), retention.Every, log) })
	if missed != nil { // after the listeners are up: what it redelivers comes back here too
		wg.Go(func() { _ = missed.Run(runCtx) })
	}
	err = server.Serve(ctx, log,
		server.Listener{Name: "public", Listener: pub, Handler: public.Handler(log)},
		server.Listener{Name: "internal", Listener: in, Handler: internal.Handler(log)})
	cancel()
	wg.Wait()
	log.Info("stopped")
	return err
}

// publicRoutes is what the public listener serves: the webhook, and the dashboard and the read
// API for people.
func publicRoutes(cfg *config.Config, st *store.Store, intake *webhook.Intake, gate *signin.Gate, log *slog.Logger) server.Public {
	return server.Public{
		Webhook: intake,
		Open:    []server.Registrar{gate},
		People: []server.Registrar{
			server.Route("GET /{$}", dashboard.New(st, cfg, report.WebURL(cfg.GitHub.APIURL), log)),
			api.New(st, log),
		},
		Gate: func(people http.Handler) http.Handler { return gate.Protect(people) },
	}
}

// loadConfig loads the file, or the built-in defaults when there is none; the environment
// overrides either.
func loadConfig(path string, getenv func(string) string) (*config.Config, error) {
	if path != "" {
		return config.Load(path, getenv)
	}
	cfg := config.Default()
	if err := cfg.ApplyEnv(getenv); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// webhookSecret reads the configured secret. Without a GitHub App and without a secret, the
// service runs locally: it makes a random secret once and keeps it in a file readable only by
// its owner beside the SQLite database, so local tools (load, replay) can sign deliveries. Its
// value is never logged.
func webhookSecret(cfg *config.Config, log *slog.Logger) ([]byte, error) {
	secret, err := cfg.GitHub.ReadWebhookSecret()
	if err == nil {
		return secret, nil
	}
	if cfg.GitHub.Configured() {
		return nil, fmt.Errorf("a GitHub App is configured but its webhook secret is not: %w", err)
	}
	dir := "."
	if cfg.Store.Postgres == "" && cfg.Store.SQLite != "" {
		dir = filepath.Dir(cfg.Store.SQLite)
	}
	path := filepath.Join(dir, "stagecoach.webhook-secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		log.Warn("no GitHub App configured: using the local webhook secret", "file", path)
		return []byte(strings.TrimSpace(string(b))), nil
	} else if !errors.Is(err, fs.ErrNotExist) && err != nil {
		return nil, fmt.Errorf("reading local webhook secret %s: %w", path, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("making a local webhook secret: %w", err)
	}
	secret = []byte(hex.EncodeToString(raw[:]))
	if err := os.WriteFile(path, append(secret, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("writing local webhook secret %s: %w", path, err)
	}
	log.Warn("no GitHub App configured: made a local webhook secret", "file", path)
	return secret, nil
}

// newPipeline builds the deploy runner. Without apps there is nothing to deploy, and no AWS
// configuration is looked for (which would probe the EC2 metadata service).
func newPipeline(ctx context.Context, o serverOptions, st *store.Store, m *metrics.Metrics) (*pipeline.Runner, error) {
	cfg := o.cfg
	var cloud pipeline.Cloud
	if len(cfg.Apps) > 0 {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, o.aws...)
		if err != nil {
			return nil, fmt.Errorf("loading AWS configuration: %w", err)
		}
		if awsCfg.HTTPClient == nil {
			awsCfg.HTTPClient = awshttp.NewBuildableClient()
		}
		awsCfg.HTTPClient = m.AWSClient(awsCfg.HTTPClient)
		cloud = amazon.New(awsCfg, cfg.Credentials)
	}
	clusters := o.clusters
	if clusters == nil {
		clusters = &pipeline.KubeClusters{}
	}
	po := o.pipeline
	po.Observer = m
	if po.RetryBudget == 0 {
		po.RetryBudget = cfg.Pipeline.RetryBudget
	}
	if po.LeaseTTL == 0 {
		po.LeaseTTL = cfg.Pipeline.Lease
	}
	if po.Owner == "" {
		po.Owner = worker.DefaultOwner("pipeline") // names this process in the deploys' leases
	}
	return pipeline.New(st, cfg, cloud, clusters, po, o.log), nil
}

// executors is the one registration list of job executors, with the services they wait for
// when those stop answering. Without a GitHub App nothing can be reported or answered: those jobs
// then wait in the store until one is configured.
func executors(cfg *config.Config, st *store.Store, m *metrics.Metrics, repos *repoconfig.Syncer, log *slog.Logger) ([]worker.Executor, []worker.Service, error) {
	if !cfg.GitHub.Configured() {
		log.Warn("no GitHub App configured: check runs wait until one is")
		return nil, nil, nil
	}
	key, err := os.ReadFile(cfg.GitHub.PrivateKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the GitHub App private key: %w", err)
	}
	gh, err := githubapp.New(githubapp.Options{
		AppID: cfg.GitHub.AppID, PrivateKey: key, BaseURL: cfg.GitHub.APIURL,
		UserAgent: "stagecoach/" + version, Transport: m.GitHubTransport(http.DefaultTransport),
	})
	if err != nil {
		return nil, nil, err
	}
	web := report.WebURL(cfg.GitHub.APIURL)
	commands := chatops.New(st, gh, chatops.Options{Config: cfg, WebURL: web, Log: log, Observer: m})
	releases := release.New(st, gh, cfg, web, log)
	pushes := admission.NewPushes(st, gh, admission.PushOptions{Config: cfg, Gate: admission.New(st, cfg, web), WebURL: web,
		Identity: &admission.AppLogin{App: gh.App}, Log: log, Observer: m})
	return []worker.Executor{
		report.NewCheckRunCreator(st, gh, web, log).Executor(),
		report.NewProgress(st, gh, cfg, web, log).Executor(),
		commands.Comments(),
		commands.Buttons(),
		pushes.Executor(),
		releases.Tags(),
		releases.Updates(),
		releases.Ready(),
		releases.LegacyUpdates(),
		installs.New(cfg, log).Executor(),
		repoconfig.NewLoader(cfg, st, gh, repos, log).Executor(),
		repoconfig.NewCheckRuns(st, gh, web, log).Executor(),
	}, []worker.Service{{Name: githubapp.Service, Probe: gh.Probe}}, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
