// Package githubapp is the one place that makes GitHub API clients: an app client signed with
// the App's JWT, and per-installation clients whose tokens ghinstallation fetches and renews.
// Installation clients are cached (LRU) so a token is reused until it nears expiry, instead of
// costing a token request per call. Classify says what a GitHub error means for a job.
package githubapp

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v88/github"
)

// Options configure a Factory.
type Options struct {
	AppID      int64
	PrivateKey []byte // PEM
	// BaseURL is the REST API root: https://api.github.com/ or, for GitHub Enterprise Server,
	// https://HOST/api/v3/.
	BaseURL   string
	UserAgent string
	// Timeout bounds every API call, token requests included (default 30 s).
	Timeout time.Duration
	// CacheSize is how many installation clients are kept (default 64).
	CacheSize int
	// Transport is the underlying transport (default http.DefaultTransport).
	Transport http.RoundTripper
}

// Factory makes GitHub clients for one GitHub App. It is safe for concurrent use.
type Factory struct {
	base    *url.URL
	ua      string
	timeout time.Duration
	apps    *ghinstallation.AppsTransport
	rt      http.RoundTripper

	mu    sync.Mutex
	bot   string // BotLogin, once known
	size  int
	order *list.List // front = most recently used; values are *entry
	byID  map[int64]*list.Element
}

type entry struct {
	id     int64
	client *github.Client
}

// New validates the options and parses the App's key.
func New(o Options) (*Factory, error) {
	if o.AppID <= 0 {
		return nil, errors.New("githubapp: app id must be positive")
	}
	if o.BaseURL == "" {
		o.BaseURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(o.BaseURL, "/") {
		o.BaseURL += "/"
	}
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("githubapp: API URL %q is not an absolute http(s) URL", o.BaseURL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 64
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.UserAgent == "" {
		o.UserAgent = "stagecoach"
	}
	rt := &userAgent{ua: o.UserAgent, next: o.Transport}
	apps, err := ghinstallation.NewAppsTransport(rt, o.AppID, o.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("githubapp: reading the App's private key: %w", err)
	}
	apps.BaseURL = strings.TrimSuffix(base.String(), "/")
	apps.Client = &http.Client{Transport: rt, Timeout: o.Timeout}
	return &Factory{
		base: base, ua: o.UserAgent, timeout: o.Timeout, apps: apps, rt: rt,
		size: o.CacheSize, order: list.New(), byID: map[int64]*list.Element{},
	}, nil
}

// App returns a client authenticated as the App itself (JWT), for /app endpoints.
func (f *Factory) App() (*github.Client, error) {
	return f.client(f.apps)
}

// Installation returns the cached client of one installation, making it on first use.
func (f *Factory) Installation(id int64) (*github.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if el, ok := f.byID[id]; ok {
		f.order.MoveToFront(el)
		return el.Value.(*entry).client, nil
	}
	itr := ghinstallation.NewFromAppsTransport(f.apps, id)
	itr.BaseURL = f.apps.BaseURL
	itr.Client = &http.Client{Transport: f.rt, Timeout: f.timeout}
	c, err := f.client(itr)
	if err != nil {
		return nil, err
	}
	f.byID[id] = f.order.PushFront(&entry{id: id, client: c})
	if f.order.Len() > f.size {
		last := f.order.Back()
		f.order.Remove(last)
		delete(f.byID, last.Value.(*entry).id)
	}
	return c, nil
}

func (f *Factory) client(rt http.RoundTripper) (*github.Client, error) {
	base := f.base.String()
	c, err := github.NewClient(
		github.WithTransport(rt),
		github.WithTimeout(f.timeout),
		github.WithUserAgent(f.ua),
		github.WithURLs(&base, &base),
	)
	if err != nil {
		return nil, fmt.Errorf("githubapp: making client: %w", err)
	}
	return c, nil
}

// userAgent sets the User-Agent of every request, token requests included, so GitHub (and
// an Enterprise admin reading logs) can tell Stagecoach's calls apart.
type userAgent struct {
	ua   string
	next http.RoundTripper
}

func (t *userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", t.ua)
	return t.next.RoundTrip(r)
}

// Probe asks GitHub whether it answers, with an anonymous GET /rate_limit: no credentials, and
// it costs no rate limit. Any answer but a server error or a rate limit counts.
func (f *Factory) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base.String()+"rate_limit", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := (&http.Client{Transport: f.rt, Timeout: f.timeout}).Do(req)
	if err != nil {
		return fmt.Errorf("probing GitHub: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("probing GitHub: %s", resp.Status)
	}
	return nil
}

// BotLogin is the login of the App's bot user ("<slug>[bot]"), the author of everything the App
// creates: asked of GitHub once (GET /app), then remembered.
func (f *Factory) BotLogin(ctx context.Context) (string, error) {
	f.mu.Lock()
	bot := f.bot
	f.mu.Unlock()
	if bot != "" {
		return bot, nil
	}
	gh, err := f.App()
	if err != nil {
		return "", err
	}
	app, _, err := gh.Apps.Get(ctx, "")
	if err != nil {
		return "", Classify(fmt.Errorf("reading the App's slug: %w", err))
	}
	bot = app.GetSlug() + "[bot]"
	f.mu.Lock()
	f.bot = bot
	f.mu.Unlock()
	return bot, nil
}
