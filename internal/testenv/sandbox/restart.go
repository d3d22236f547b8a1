package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
)

// serve starts Stagecoach on the world's store and configuration and points GitHub's webhook at
// it. The webhook is set from the Listening callback, which the server calls before it starts
// its background work: what recovery asks GitHub to redeliver at start reaches this process.
func (w *World) serve(ctx context.Context) error {
	raw, err := os.ReadFile(w.cfg.GitHub.WebhookSecretFile)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(raw)))
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	w.stop, w.served = stop, served
	listening := make(chan [2]string, 1)
	go func() {
		served <- w.o.Serve(serveCtx, Server{Config: w.cfg, Clusters: w.kube.clusters(), AWSEndpoint: w.AWS.URL(),
			AWSRegion: awstest.Region, AWSKeyID: awstest.AccessKeyID, AWSSecret: awstest.SecretAccessKey,
			Log: w.logFile, Listening: func(public, internal string) {
				w.GitHub.SetWebhook("http://"+public+"/webhook", secret)
				w.GitHub.SetCallbackURL("http://" + public + "/signin/callback") // the App's callback URL, as setup registers it
				listening <- [2]string{public, internal}
			}})
	}()
	select {
	case addrs := <-listening:
		w.URL, w.InternalURL = "http://"+addrs[0], "http://"+addrs[1]
		return nil
	case err := <-served:
		w.stop = nil
		return fmt.Errorf("sandbox: Stagecoach did not start: %w", err)
	case <-time.After(30 * time.Second):
		return errors.New("sandbox: Stagecoach did not start within 30 s")
	}
}

// Stop stops Stagecoach, as when every replica is down: what GitHub delivers meanwhile fails
// (the connection is refused), and GitHub never sends it again by itself. Restart starts
// Stagecoach again on the same store and configuration.
func (w *World) Stop() error {
	if w.stop == nil {
		return errors.New("sandbox: Stagecoach is not running")
	}
	w.stop()
	w.stop = nil
	select {
	case err := <-w.served:
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	case <-time.After(30 * time.Second):
		return errors.New("sandbox: Stagecoach did not stop within 30 s")
	}
}

// Restart starts Stagecoach again after Stop, on a new address; GitHub's webhook follows it.
func (w *World) Restart(ctx context.Context) error {
	if w.stop != nil {
		return errors.New("sandbox: Stagecoach is running")
	}
	return w.serve(ctx)
}
