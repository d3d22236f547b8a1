package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The service's two doors, as the binary opens them: an anonymous caller on the public listener
// reaches the webhook (and, until the sign-in gates them, the dashboard and /api/v1), never the
// metrics or the probes; those are on the internal listener, which serves nothing else.
func TestMetricsAndProbesOnlyOnTheInternalListener(t *testing.T) {
	s := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "e2e.db"), nil, cluster{}, "--deploy=false")
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		url    string
		status int
		body   string
	}{
		{s.url + "/metrics", 404, ""},
		{s.url + "/healthz", 404, ""},
		{s.url + "/readyz", 404, ""},
		{s.internal + "/metrics", 200, "stagecoach_webhook_unverified_bytes 0"},
		{s.internal + "/healthz", 200, `"ok"`},
		{s.internal + "/readyz", 200, `"ready"`},
		{s.internal + "/", 404, ""},
		{s.internal + "/webhook", 404, ""},
		{s.internal + "/api/v1/deployments", 404, ""},
	} {
		if code, body := get(tt.url); code != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s = %d (%.80q), want %d with %q", tt.url, code, body, tt.status, tt.body)
		}
	}
	// The webhook is public, and refuses an unsigned delivery from its headers.
	resp, err := http.Post(s.url+"/webhook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned POST /webhook = %d, want 401", resp.StatusCode)
	}
}
