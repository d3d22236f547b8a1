package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/chaos"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

// chaosCommand runs the chaos benchmark (internal/testenv/chaos): replicas of this binary's
// `serve` on a PostgreSQL and a Kubernetes control plane of their own, under SIGKILLs and
// outages, then prints the figures and every invariant that broke. It exits 1 when one did.
func chaosCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o chaos.Options
	fs.IntVar(&o.Replicas, "replicas", 3, "replicas of stagecoach serve")
	fs.IntVar(&o.Pushes, "pushes", 160, "pushes in all, over the 4 app/stage targets")
	fs.IntVar(&o.Commands, "commands", 0, "/deploy commands (default pushes/20)")
	fs.DurationVar(&o.Duration, "duration", 4*time.Minute, "how long the pushes and faults go on")
	fs.DurationVar(&o.KillEvery, "kill-every", 5*time.Second, "mean time between SIGKILLs of a random replica (each 0.6-1.4x it); 0 kills none")
	fs.BoolVar(&o.NoFaults, "no-faults", false, "leave out the PostgreSQL restart, GitHub's 502 window and rate limits, and CodeBuild throttling")
	fs.DurationVar(&o.GitHubLatency, "github-latency", 100*time.Millisecond, "how long GitHub takes to answer each call after acting on it; negative for none")
	fs.DurationVar(&o.Settle, "settle", 5*time.Minute, "the longest wait for everything to end, before the last round and after it")
	fs.Uint64Var(&o.Seed, "seed", 0, "the workload's random choices (default: random; printed)")
	fs.StringVar(&o.Binary, "binary", "", "the stagecoach `binary` the replicas run (default: this one)")
	fs.StringVar(&o.Dir, "dir", "", "keep the configuration and the replicas' logs in `DIR` (default: a temporary directory, removed)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("chaos takes no arguments, got %q", fs.Args())}
	case o.Pushes < chaos.MinPushes:
		return usageError{fmt.Sprintf("--pushes must be at least %d (a round over the 4 targets, and the last), got %d", chaos.MinPushes, o.Pushes)}
	case o.Replicas < 1 || o.Duration <= 0 || o.KillEvery < 0:
		return usageError{"--replicas must be at least 1, --duration positive and --kill-every not negative"}
	}
	if o.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this binary: %w", err)
		}
		o.Binary = self
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "stagecoach-chaos-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	o.Log = stderr
	fmt.Fprintln(stderr, "chaos: starting PostgreSQL and the Kubernetes control plane")
	pg, err := pgtest.Run()
	if err != nil {
		return err
	}
	defer pg.Stop()
	kc, err := kubetest.Run(ctx)
	if err != nil {
		return err
	}
	defer kc.Stop()
	o.Postgres, o.Kube = pg, kc
	res, err := chaos.Run(ctx, o)
	if err != nil {
		return err
	}
	res.Print(stdout)
	if len(res.Violations) > 0 {
		return errReported
	}
	return nil
}
