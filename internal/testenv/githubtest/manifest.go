package githubtest

import (
	"net/http"
	"time"
)

// AddManifestCode makes code a valid one-time code for the App manifest flow, as GitHub issues
// when someone creates an App from a manifest. Converting it returns this server's App (its id
// and key), so the App can then authenticate here.
func (s *Server) AddManifestCode(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifestCodes == nil {
		s.manifestCodes = map[string]bool{}
	}
	s.manifestCodes[code] = true
}

// WebhookSecret is the webhook secret the manifest conversion handed out ("" before one).
func (s *Server) WebhookSecret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhookSecret
}

func (s *Server) convertManifest(c *call) (int, any) {
	code := c.params["code"]
	s.mu.Lock()
	ok := s.manifestCodes[code]
	delete(s.manifestCodes, code) // a code works once
	if ok {
		s.webhookSecret = "whsec-" + requestIDLike()
	}
	secret := s.webhookSecret
	s.mu.Unlock()
	if !ok {
		return notFound()
	}
	now := time.Now().UTC().Format(time.RFC3339)
	return http.StatusCreated, map[string]any{
		"id": s.appID, "slug": s.slug, "node_id": "A_" + s.slug, "owner": s.user("acme"), "name": "Stagecoach",
		"description": "Runs the release pipeline from GitHub", "external_url": "https://github.com/stagecoach/stagecoach",
		"html_url": "https://github.com/apps/" + s.slug, "created_at": now, "updated_at": now,
		"permissions": map[string]string{"checks": "write", "contents": "write", "deployments": "write", "issues": "write", "metadata": "read"},
		"events":      []string{"push", "pull_request", "create", "issue_comment", "check_run"},
		"client_id":   s.oauth.clientID, "client_secret": s.oauth.clientSecret, "webhook_secret": secret, "pem": string(s.PrivateKeyPEM()),
	}
}

func requestIDLike() string {
	return time.Now().UTC().Format("20060102150405.000000000")
}
