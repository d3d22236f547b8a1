package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ApplyEnv applies the environment's overrides, which win over the file:
//
//	STAGECOACH_WEBHOOK_SECRET           github's webhook secret (never read from the file)
//	STAGECOACH_GITHUB_APP_ID            github.app_id
//	STAGECOACH_GITHUB_PRIVATE_KEY_FILE  github.private_key_file
//	STAGECOACH_GITHUB_API_URL           github.api_url
//	STAGECOACH_INTERNAL_LISTEN          internal_listen
//	STAGECOACH_STORE                    a postgres:// or postgresql:// URL (store.postgres), else a
//	                                    SQLite path, optionally prefixed "sqlite:" (store.sqlite)
//	STAGECOACH_GITHUB_CLIENT_ID         github.client_id
//	STAGECOACH_GITHUB_CLIENT_SECRET     the App's client secret (never read from the file)
//	STAGECOACH_PUBLIC_URL               signin.public_url
//
// An empty variable changes nothing. A value that cannot be used is a Problem naming the
// variable; later validation problems about a value set here name the variable too.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var probs Problems
	if c.env == nil {
		c.env = map[string]string{}
	}
	if s := getenv("STAGECOACH_WEBHOOK_SECRET"); s != "" {
		c.GitHub.WebhookSecret = s
	}
	if s := getenv("STAGECOACH_GITHUB_APP_ID"); s != "" {
		const name = "STAGECOACH_GITHUB_APP_ID"
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || id <= 0 {
			probs = append(probs, Problem{File: "environment", Field: name, Message: fmt.Sprintf("want a positive integer, got %q", s)})
		} else {
			c.GitHub.AppID = id
			c.env["github.app_id"] = name
		}
	}
	if s := getenv("STAGECOACH_GITHUB_PRIVATE_KEY_FILE"); s != "" {
		c.GitHub.PrivateKeyFile = s
		c.env["github.private_key_file"] = "STAGECOACH_GITHUB_PRIVATE_KEY_FILE"
	}
	if s := getenv("STAGECOACH_GITHUB_API_URL"); s != "" {
		if !strings.HasSuffix(s, "/") {
			s += "/"
		}
		c.GitHub.APIURL = s
		c.env["github.api_url"] = "STAGECOACH_GITHUB_API_URL"
	}
	if s := getenv("STAGECOACH_INTERNAL_LISTEN"); s != "" {
		c.Internal = s
		c.env["internal_listen"] = "STAGECOACH_INTERNAL_LISTEN"
	}
	if s := getenv("STAGECOACH_STORE"); s != "" {
		if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
			c.Store = Store{Postgres: s}
		} else {
			c.Store = Store{SQLite: strings.TrimPrefix(s, "sqlite:")}
		}
		for _, f := range []string{"store", "store.sqlite", "store.postgres"} {
			c.env[f] = "STAGECOACH_STORE"
		}
	}
	c.applySignInEnv(getenv)
	if len(probs) > 0 {
		return probs
	}
	return nil
}
