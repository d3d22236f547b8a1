package githubapp

import (
	"context"
	"strings"
	"testing"

	"github.com/stagecoach/stagecoach/internal/testenv/githubtest"
)

func TestInstallationClientsAreCachedAndAuthenticated(t *testing.T) {
	gh := githubtest.New(t)
	f, err := New(Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL(), UserAgent: "stagecoach/test", CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := f.Installation(1)
	c1again, _ := f.Installation(1)
	if c1 != c1again {
		t.Error("the same installation got two clients")
	}
	ctx := context.Background()
	for range 3 {
		if _, _, err := c1.Checks.GetCheckRun(ctx, "acme", "app", 1); err != nil && !strings.Contains(err.Error(), "404") {
			t.Fatal(err)
		}
	}
	if n := gh.Count("apps/create-installation-access-token"); n != 1 {
		t.Errorf("token requested %d times for 3 calls, want once", n)
	}
	// The cache holds two installations: a third evicts the least recently used.
	f.Installation(2)
	f.Installation(3)
	if c, _ := f.Installation(1); c == c1 {
		t.Error("installation 1 was not evicted from a full cache")
	}
}

func TestUserAgentOnEveryRequest(t *testing.T) {
	gh := githubtest.New(t)
	f, err := New(Options{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: strings.TrimSuffix(gh.URL(), "/"), UserAgent: "stagecoach/1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.Installation(1)
	c.Checks.GetCheckRun(context.Background(), "acme", "app", 1)
	if len(gh.Requests()) < 2 {
		t.Fatalf("requests = %+v", gh.Requests())
	}
	for _, r := range gh.Requests() {
		if r.UserAgent != "stagecoach/1.2.3" {
			t.Errorf("%s %s: User-Agent %q", r.Method, r.Path, r.UserAgent)
		}
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{
		{AppID: 0, PrivateKey: []byte("x")},
		{AppID: 1, PrivateKey: []byte("not a key")},
		{AppID: 1, PrivateKey: nil, BaseURL: "ftp://x"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
