// Command stagecoach runs the Stagecoach GitHub App: it takes GitHub webhooks in and runs a
// team's release pipeline (CodeBuild builds, Kubernetes rollouts) from them.
//
// Usage:
//
//	stagecoach                                           the sandbox, until a GitHub App is configured
//	stagecoach sandbox [--once] [--listen ADDR]          play the whole release flow locally
//	stagecoach serve [--config FILE] [--listen ADDR]     run the service (--internal-listen ADDR: probes, metrics)
//	stagecoach check-config FILE                         validate a configuration file
//	stagecoach check-config --repo R --repo-file F FILE  validate a repository's .github/stagecoach.yml against FILE
//	stagecoach doctor --config FILE [--json]             check a real setup: GitHub, AWS, clusters
//	stagecoach load --url URL --payload FILE ...         load-test a running server
//	stagecoach chaos [--replicas N] [--pushes N] ...     many replicas under SIGKILLs and outages: the figures
//	stagecoach replay FILE --event NAME [--url URL]      send one signed delivery
//	stagecoach setup [--org ORG] [--hook-url URL]        create the GitHub App (manifest flow)
//	stagecoach token --name NAME                         make a read-only API token for a script
//	stagecoach version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// The zone database, embedded: the image is distroless, with no /usr/share/zoneinfo, and
	// deploy windows and freezes are written in zones (Europe/Berlin). A system database, when
	// there is one, still comes first.
	_ "time/tzdata"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "stagecoach:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errReported means the command has already told the user everything that went wrong.
var errReported = errors.New("failed")

// usageError is a mistake on the command line: exit code 2, like flag's.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// run is the whole program; main only supplies the process's context, arguments, environment
// and streams, so tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := defaultCommand(args, getenv)
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "sandbox":
		return sandboxCommand(ctx, args, stdout, stderr)
	case "check-config":
		return checkConfig(args, getenv, stdout, stderr)
	case "doctor":
		return doctorCommand(ctx, args, getenv, stdout, stderr)
	case "load":
		return load(ctx, args, getenv, stdout, stderr)
	case "chaos":
		return chaosCommand(ctx, args, stdout, stderr)
	case "replay":
		return replay(ctx, args, getenv, stdout, stderr)
	case "setup":
		return setup(ctx, args, getenv, stdout, stderr)
	case "token":
		return token(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "stagecoach", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// defaultCommand is what a bare `stagecoach` does: the sandbox until a GitHub App (or a
// configuration file) is configured through the environment, the service after that. Flags with
// no command are the service's, as they always were.
func defaultCommand(args []string, getenv func(string) string) string {
	if len(args) == 0 && getenv("STAGECOACH_CONFIG") == "" && getenv("STAGECOACH_GITHUB_APP_ID") == "" {
		return "sandbox"
	}
	return "serve"
}

const usage = `Usage:
  stagecoach                                          the sandbox until a GitHub App is configured, then the service
  stagecoach sandbox [--once] [--listen ADDR]         play the whole release flow on this machine, with a dashboard
  stagecoach serve [--config FILE] [--listen ADDR]    run the service (flags alone mean serve)
  stagecoach check-config FILE                        validate a configuration file: prints ok or every problem
  stagecoach check-config --repo OWNER/NAME --repo-file .github/stagecoach.yml FILE
                                                      validate a repository's own file against the server's FILE
  stagecoach doctor --config FILE [--json]            check the real setup (GitHub App, AWS, clusters): ✓/✗ and the fix
  stagecoach load --url URL --payload FILE [...]      send signed deliveries to a running server and measure
  stagecoach chaos [--replicas N] [--pushes N] [...]  run replicas on PostgreSQL and a local control plane under SIGKILLs and outages; print the figures
  stagecoach replay FILE --event NAME [--url URL]     send one signed delivery to a running server
  stagecoach setup [--org ORG] [--hook-url URL]       create the GitHub App with GitHub's manifest flow
  stagecoach token --name NAME                        make a read-only API token for scripts (prints its config entry)
  stagecoach version                                  print the version

Environment (overrides the configuration file):
  STAGECOACH_CONFIG                  configuration file (default: none, built-in defaults)
  STAGECOACH_WEBHOOK_SECRET          webhook secret
  STAGECOACH_GITHUB_APP_ID           GitHub App id
  STAGECOACH_GITHUB_PRIVATE_KEY_FILE GitHub App private key (PEM file)
  STAGECOACH_GITHUB_API_URL          GitHub REST API root (GitHub Enterprise: https://HOST/api/v3/)
  STAGECOACH_STORE                   sqlite path or postgres:// URL
  STAGECOACH_INTERNAL_LISTEN         internal listener (metrics, probes), default 127.0.0.1:9090
  STAGECOACH_GITHUB_CLIENT_ID        the App's client id (people sign in with GitHub)
  STAGECOACH_GITHUB_CLIENT_SECRET    the App's client secret
  STAGECOACH_PUBLIC_URL              where people open the dashboard, e.g. https://stagecoach.acme.dev
`
