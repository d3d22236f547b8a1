package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/stagecoach/stagecoach/internal/webhook"
)

// replay sends one signed delivery of a payload file to a running server, like `probot
// receive`: for trying a configuration, or redelivering an event by hand.
func replay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	event := fs.String("event", "", "X-GitHub-Event of the delivery (required), e.g. pull_request")
	url := fs.String("url", "http://127.0.0.1:8080/webhook", "the server's webhook `URL`")
	secretFile := fs.String("secret-file", "", "webhook secret `file` (default: $STAGECOACH_WEBHOOK_SECRET, else ./stagecoach.webhook-secret)")
	delivery := fs.String("delivery", "", "X-GitHub-Delivery (default: a new random id)")
	// Flags may come after the file, as people type them.
	var file string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		if file != "" {
			return usageError{"replay takes one FILE"}
		}
		file, args = fs.Arg(0), fs.Args()[1:]
	}
	if file == "" || *event == "" {
		return usageError{"usage: stagecoach replay FILE --event NAME [--url URL]"}
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading payload: %w", err)
	}
	if !json.Valid(body) {
		return fmt.Errorf("%s is not JSON", file)
	}
	secret, err := readSecret(*secretFile, getenv)
	if err != nil {
		return err
	}
	if *delivery == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		*delivery = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/stagecoach-replay")
	req.Header.Set("X-GitHub-Event", *event)
	req.Header.Set("X-GitHub-Delivery", *delivery)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign(secret, body))
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("sending the delivery: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s delivery %s (%d bytes) → %s\n%s", *event, *delivery, len(body), resp.Status, answer)
	if resp.StatusCode/100 != 2 {
		return errReported
	}
	return nil
}
