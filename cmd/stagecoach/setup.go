package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/stagecoach/stagecoach/internal/appsetup"
	"github.com/stagecoach/stagecoach/internal/server"
)

// setup creates Stagecoach's GitHub App through GitHub's manifest flow and writes its
// credentials (key, webhook secret, client secret) to files only their owner can read.
func setup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:3000", "address of the local setup page")
	out := fs.String("out", "stagecoach-secrets", "`directory` for the App's id, private key, webhook secret and client secret")
	org := fs.String("org", "", "create the App in this GitHub `organization` (default: your account)")
	hook := fs.String("hook-url", "", "public `URL` GitHub sends webhooks to, e.g. https://stagecoach.example.com/webhook")
	public := fs.String("public-url", "", "`URL` where people open the dashboard (default: the hook URL's scheme and host); the App's callback URL is its /signin/callback")
	web := fs.String("github-url", "https://github.com", "GitHub's web `URL` (GitHub Enterprise: https://HOST)")
	api := fs.String("api-url", "https://api.github.com/", "GitHub's REST API `URL` (GitHub Enterprise: https://HOST/api/v3/)")
	manifestFile := fs.String("manifest", "app.yml", "the App manifest `file`")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	manifest, err := os.ReadFile(*manifestFile)
	if err != nil {
		return fmt.Errorf("reading the App manifest: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	base := "http://" + ln.Addr().String()
	flow, err := appsetup.New(appsetup.Options{Manifest: manifest, WebURL: *web, APIURL: *api, Org: *org,
		HookURL: *hook, PublicURL: *public, Callback: base + "/callback", OutDir: *out})
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "Open %s/ in your browser to create the GitHub App.\n", base)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- server.Serve(ctx, slog.New(slog.NewTextHandler(stderr, nil)), server.Listener{Name: "setup", Listener: ln, Handler: flow.Handler()})
	}()
	select {
	case res := <-flow.Done():
		fmt.Fprintf(stdout, "Created the App %s (id %d). Its credentials are in %s, readable only by you.\nAdd to your configuration:\n\n%s",
			res.Slug, res.AppID, *out, res.Config())
		cancel()
		<-errc
		return nil
	case <-ctx.Done():
		return <-errc
	case err := <-errc:
		return err
	}
}
