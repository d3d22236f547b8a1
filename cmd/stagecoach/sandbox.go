package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/stagecoach/stagecoach/internal/pipeline"
	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	"github.com/stagecoach/stagecoach/internal/testenv/sandbox"
)

// sandboxCommand runs `stagecoach sandbox`: the whole release flow on this machine.
func sandboxCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fset.SetOutput(stderr)
	once := fset.Bool("once", false, "play the flow, print the stages and exit: 0 only if every step behaved as expected")
	listen := fset.String("listen", "127.0.0.1:8080", "Stagecoach's `address` (the dashboard is at its root)")
	clusterFlag := fset.String("cluster", "auto", "`where` the stages run: auto (the local control plane when its binaries are built, else simulated), local or simulated")
	dir := fset.String("dir", "", "keep the sandbox's store, configuration and log in `dir` (default: a temporary directory, removed at the end)")
	if err := fset.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fset.NArg() > 0 {
		return usageError{fmt.Sprintf("sandbox takes no arguments, got %q", fset.Args())}
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "stagecoach-sandbox-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	} else if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	kube, stopKube, err := sandboxCluster(ctx, *clusterFlag, stdout)
	if err != nil {
		return err
	}
	defer stopKube()
	w, err := sandbox.Start(ctx, sandbox.Options{Dir: *dir, Listen: *listen, Out: stdout, Kube: kube, Serve: serveSandbox})
	if err != nil {
		return err
	}
	defer w.Close()
	w.Banner()
	playErr := w.Play(ctx)
	if ctx.Err() != nil {
		return nil // interrupted
	}
	table, err := w.Table(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\n", table)
	if playErr != nil {
		fmt.Fprintf(stderr, "sandbox: %v (the server's log is in %s)\n", playErr, *dir)
		return errReported
	}
	fmt.Fprintln(stdout, "Every step behaved as expected.")
	if *once {
		return nil
	}
	fmt.Fprintf(stdout, "The dashboard stays up at %s until you press Ctrl-C.\n", w.DashboardURL())
	<-ctx.Done()
	return nil
}

// sandboxCluster picks where the sandbox's stages run, starting a private local control plane
// when asked or when its binaries are there.
func sandboxCluster(ctx context.Context, which string, stdout io.Writer) (*sandbox.Kube, func(), error) {
	none := func() {}
	switch which {
	case "simulated":
		return nil, none, nil
	case "auto", "local":
	default:
		return nil, none, usageError{fmt.Sprintf("--cluster: want auto, local or simulated, got %q", which)}
	}
	if err := kubetest.Available(); err != nil {
		if which == "local" {
			return nil, none, err
		}
		fmt.Fprintf(stdout, "No local Kubernetes control plane is built (scripts/k8s/build.sh builds one): the stages run on a simulated cluster.\n\n")
		return nil, none, nil
	}
	fmt.Fprintf(stdout, "Starting a local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)...\n")
	start := time.Now()
	c, err := kubetest.Run(ctx)
	if err != nil {
		return nil, none, fmt.Errorf("starting the local control plane: %w", err)
	}
	fmt.Fprintf(stdout, "Control plane up in %s.\n\n", time.Since(start).Round(100*time.Millisecond))
	return &sandbox.Kube{Kubeconfig: c.Kubeconfig(), Context: kubetest.Context,
		Description: "local control plane (real kube-apiserver, etcd, controller-manager and scheduler; kwok plays the nodes)"}, c.Stop, nil
}

// serveSandbox runs Stagecoach for the sandbox: its AWS SDK goes to the AWS test servers with
// static credentials (no profile, file or metadata service is read), and the pipeline looks at
// the seconds-long builds more often than production's schedule would.
func serveSandbox(ctx context.Context, s sandbox.Server) error { return serveSandboxTuned(ctx, s, nil) }

// serveSandboxTuned is serveSandbox with the server's options changed by tune (nil: none).
func serveSandboxTuned(ctx context.Context, s sandbox.Server, tune func(*serverOptions)) error {
	awsOptions := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(s.AWSRegion),
		awsconfig.WithBaseEndpoint(s.AWSEndpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.AWSKeyID, s.AWSSecret, "")),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithSharedCredentialsFiles([]string{}),
		awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		awsconfig.WithRetryMaxAttempts(3),
	}
	o := serverOptions{cfg: s.Config, deploy: true, log: newLogger(s.Log, s.Config.LogLevel),
		clusters: s.Clusters, aws: awsOptions, listening: s.Listening,
		pipeline: pipeline.Options{Poll: 200 * time.Millisecond, MinPoll: 300 * time.Millisecond, EndPoll: 200 * time.Millisecond,
			MaxPoll: time.Second, FollowBudget: 5 * time.Second, ReportEvery: 2 * time.Second}}
	if tune != nil {
		tune(&o)
	}
	err := runServer(ctx, o)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
