package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/loadgen"
)

// load sends signed deliveries to a running server and prints what it measured.
func load(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := loadgen.Options{Progress: stderr}
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080/webhook", "the server's webhook `URL`")
	fs.StringVar(&o.Event, "event", "pull_request", "X-GitHub-Event of every delivery")
	payload := fs.String("payload", "", "JSON payload `file` to send (required)")
	secretFile := fs.String("secret-file", "", "webhook secret `file` (default: $STAGECOACH_WEBHOOK_SECRET, else ./stagecoach.webhook-secret)")
	fs.IntVar(&o.Connections, "connections", 32, "concurrent connections")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send")
	fs.IntVar(&o.Requests, "requests", 0, "stop after this many requests (0: only the duration limits)")
	fs.BoolVar(&o.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *payload == "" {
		return usageError{"load needs --payload FILE"}
	}
	var err error
	if o.Payload, err = os.ReadFile(*payload); err != nil {
		return fmt.Errorf("reading payload: %w", err)
	}
	if o.Secret, err = readSecret(*secretFile, getenv); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sending %s deliveries (%d bytes) to %s over %d connections for %s\n",
		o.Event, len(o.Payload), o.URL, o.Connections, o.Duration)
	res, err := loadgen.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	if res.OK() == 0 {
		return errors.New("no delivery was accepted")
	}
	return nil
}

// readSecret finds the webhook secret for signing: a file, the environment, or the local
// secret `stagecoach serve` made.
func readSecret(file string, getenv func(string) string) ([]byte, error) {
	if file == "" {
		if s := getenv("STAGECOACH_WEBHOOK_SECRET"); s != "" {
			return []byte(s), nil
		}
		file = "stagecoach.webhook-secret"
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the webhook secret: %w (pass --secret-file or set STAGECOACH_WEBHOOK_SECRET)", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("webhook secret file %s is empty", file)
	}
	return []byte(s), nil
}
