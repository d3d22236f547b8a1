// Package appsetup runs GitHub's App manifest flow: a local page posts Stagecoach's manifest
// (app.yml) to GitHub, where the person creating the App confirms it; GitHub redirects back with
// a one-time code, which is exchanged (POST /app-manifests/{code}/conversions) for the App's id,
// private key, webhook secret, and client id and secret (with which people sign in to the
// dashboard). The secrets are written to files only their owner can read. The manifest
// registers <public URL>/signin/callback as the App's callback URL, the public URL being the
// hook URL's origin unless given.
package appsetup

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-github/v88/github"
	"go.yaml.in/yaml/v3"
)

// Options configure the flow.
type Options struct {
	Manifest []byte // app.yml
	WebURL   string // GitHub's web root: https://github.com, or the GitHub Enterprise host
	APIURL   string // GitHub's REST root
	Org      string // create the App in this organization; "" for the signed-in user
	HookURL  string // where GitHub will send webhooks (overrides app.yml's hook_attributes.url)
	// PublicURL is where people open the dashboard (default: HookURL's scheme and host); the
	// App's callback URL is PublicURL + /signin/callback.
	PublicURL  string
	Callback   string // this page's callback URL, e.g. http://127.0.0.1:3000/callback
	OutDir     string // where the id, key and webhook secret are written
	HTTPClient *http.Client
}

// Result is the App that was created and where its credentials are.
type Result struct {
	AppID             int64
	Slug              string
	PrivateKeyFile    string
	WebhookSecretFile string
	AppIDFile         string
	ClientID          string // not a secret: it is in every sign-in URL
	ClientSecretFile  string
	PublicURL         string // "" when no hook URL or public URL was given
}

// Config is the configuration snippet for the App.
func (r Result) Config() string {
	s := fmt.Sprintf("github:\n  app_id: %d\n  private_key_file: %s\n  webhook_secret_file: %s\n  client_id: %s\n  client_secret_file: %s\n",
		r.AppID, r.PrivateKeyFile, r.WebhookSecretFile, r.ClientID, r.ClientSecretFile)
	if r.PublicURL != "" {
		s += fmt.Sprintf("signin:\n  public_url: %s\n", r.PublicURL)
	}
	return s
}

// Flow is one run of the manifest flow.
type Flow struct {
	o        Options
	manifest string // JSON
	state    string

	once sync.Once
	done chan Result
}

// New prepares the flow: the manifest as GitHub wants it, and a random state that ties GitHub's
// redirect to this page.
func New(o Options) (*Flow, error) {
	var m map[string]any
	if err := yaml.Unmarshal(o.Manifest, &m); err != nil {
		return nil, fmt.Errorf("reading the App manifest: %w", err)
	}
	if m == nil {
		return nil, errors.New("the App manifest is empty")
	}
	m["redirect_url"] = o.Callback
	if o.PublicURL == "" && o.HookURL != "" {
		if u, err := url.Parse(o.HookURL); err == nil && u.Host != "" {
			o.PublicURL = u.Scheme + "://" + u.Host
		}
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	if o.PublicURL != "" {
		m["callback_urls"] = []string{o.PublicURL + "/signin/callback"}
	}
	if o.HookURL != "" {
		hook, _ := m["hook_attributes"].(map[string]any)
		if hook == nil {
			hook = map[string]any{}
		}
		hook["url"] = o.HookURL
		m["hook_attributes"] = hook
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the App manifest: %w", err)
	}
	var st [16]byte
	if _, err := rand.Read(st[:]); err != nil {
		return nil, err
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	return &Flow{o: o, manifest: string(b), state: hex.EncodeToString(st[:]), done: make(chan Result, 1)}, nil
}

// Done delivers the result once the App is created.
func (f *Flow) Done() <-chan Result { return f.done }

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Create the Stagecoach GitHub App</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Create the Stagecoach GitHub App</h1>
<p>GitHub will show the App's name, permissions and events before anything is created.</p>
<form action="{{.Action}}" method="post">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<button type="submit">Create on GitHub{{if .Org}} for {{.Org}}{{end}}</button>
</form>
</body></html>
`))

var donePage = template.Must(template.New("done").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stagecoach is set up</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>The App {{.Slug}} exists</h1>
<p>Its id, private key, webhook secret and client secret are in files only you can read. Add this to Stagecoach's configuration:</p>
<pre>{{.Config}}</pre>
<p>Then install the App on your repositories. You can close this page.</p>
</body></html>
`))

// Handler serves the page (/) and GitHub's redirect (/callback).
func (f *Flow) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		action := strings.TrimSuffix(f.o.WebURL, "/") + "/settings/apps/new?state=" + f.state
		if f.o.Org != "" {
			action = strings.TrimSuffix(f.o.WebURL, "/") + "/organizations/" + f.o.Org + "/settings/apps/new?state=" + f.state
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]string{"Action": action, "Manifest": f.manifest, "Org": f.o.Org})
	})
	mux.HandleFunc("GET /callback", f.callback)
	return mux
}

func (f *Flow) callback(w http.ResponseWriter, r *http.Request) {
	code, state := r.URL.Query().Get("code"), r.URL.Query().Get("state")
	if subtle.ConstantTimeCompare([]byte(state), []byte(f.state)) != 1 {
		http.Error(w, "This redirect does not belong to this setup (state mismatch): start again from the setup page.", http.StatusBadRequest)
		return
	}
	if code == "" {
		http.Error(w, "GitHub sent no code.", http.StatusBadRequest)
		return
	}
	res, err := f.exchange(r.Context(), code)
	if err != nil {
		http.Error(w, "Could not finish the setup: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = donePage.Execute(w, map[string]string{"Slug": res.Slug, "Config": res.Config()})
	f.once.Do(func() { f.done <- res })
}

// exchange trades the code for the App's credentials and writes them.
func (f *Flow) exchange(ctx context.Context, code string) (Result, error) {
	base := strings.TrimSuffix(f.o.APIURL, "/") + "/"
	gh, err := github.NewClient(github.WithHTTPClient(f.o.HTTPClient), github.WithURLs(&base, &base), github.WithUserAgent("stagecoach-setup"))
	if err != nil {
		return Result{}, err
	}
	app, _, err := gh.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		return Result{}, fmt.Errorf("exchanging the code with GitHub: %w", err)
	}
	if err := os.MkdirAll(f.o.OutDir, 0o700); err != nil {
		return Result{}, err
	}
	res := Result{AppID: app.GetID(), Slug: app.GetSlug(), ClientID: app.GetClientID(), PublicURL: f.o.PublicURL,
		PrivateKeyFile:    filepath.Join(f.o.OutDir, "github-app.pem"),
		WebhookSecretFile: filepath.Join(f.o.OutDir, "webhook-secret"),
		AppIDFile:         filepath.Join(f.o.OutDir, "github-app-id"),
		ClientSecretFile:  filepath.Join(f.o.OutDir, "client-secret"),
	}
	for file, content := range map[string]string{
		res.PrivateKeyFile: app.GetPEM(), res.WebhookSecretFile: app.GetWebhookSecret(), res.AppIDFile: strconv.FormatInt(res.AppID, 10),
		res.ClientSecretFile: app.GetClientSecret(),
	} {
		if err := writePrivate(file, content); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// writePrivate writes a file only its owner can read, replacing any earlier one.
func writePrivate(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.TrimSpace(content)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // in case the file existed with wider rights
		return err
	}
	return os.Rename(tmp, path)
}
