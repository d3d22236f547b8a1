package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/stagecoach/stagecoach"
	"github.com/stagecoach/stagecoach/internal/doctor"
	"github.com/stagecoach/stagecoach/internal/githubapp"
)

// doctorCommand checks a real setup against what Stagecoach needs and prints each check with
// ✓, ✗ or ⚠ and the fix; it exits 1 when a check failed.
func doctorCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", getenv("STAGECOACH_CONFIG"), "configuration `file` (default STAGECOACH_CONFIG)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	manifestFile := fs.String("manifest", "", "the App manifest `file` to check against (default: the app.yml built in)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		return usageError{"doctor takes --config FILE (or STAGECOACH_CONFIG)"}
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	o := doctor.Options{Config: cfg, Manifest: stagecoach.AppManifest}
	if *manifestFile != "" {
		if o.Manifest, err = os.ReadFile(*manifestFile); err != nil {
			return fmt.Errorf("reading the App manifest: %w", err)
		}
	}
	if cfg.GitHub.Configured() {
		key, err := os.ReadFile(cfg.GitHub.PrivateKeyFile)
		if err != nil {
			return fmt.Errorf("reading the GitHub App private key: %w", err)
		}
		if o.GitHub, err = githubapp.New(githubapp.Options{AppID: cfg.GitHub.AppID, PrivateKey: key, BaseURL: cfg.GitHub.APIURL,
			UserAgent: "stagecoach-doctor/" + version, Transport: http.DefaultTransport}); err != nil {
			return err
		}
	}
	if len(cfg.Apps) > 0 {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err == nil {
			o.AWS = &awsCfg
		}
		o.AWSError = err
	}
	report := doctor.Run(ctx, o)
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if report.Failed() {
		return errReported
	}
	return nil
}
