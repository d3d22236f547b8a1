package awstest

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"
)

// Secrets is the fake Secrets Manager. It answers DescribeSecret only, never GetSecretValue:
// Stagecoach checks that a secret exists and hands its id to CodeBuild, which reads the value
// itself. Each secret holds a random value that must never appear in any request or answer.
type Secrets struct {
	env     *Env
	mu      sync.Mutex
	secrets map[string]*secret // by name
}

type secret struct {
	name, arn, value, version string
	created                   time.Time
}

// Add makes a secret exist, with a random value only the fake knows.
func (s *Secrets) Add(name string) {
	now := s.env.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = &secret{name: name, created: now, value: "canary-" + randomHex(16), version: randomHex(16),
		arn: "arn:aws:secretsmanager:" + Region + ":" + Account + ":secret:" + name + "-" + randomHex(3)}
}

// Value is the secret's value, for tests that assert Stagecoach never shows it anywhere
// (logs, comments, check runs); "" if the secret does not exist.
func (s *Secrets) Value(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[name]; sec != nil {
		return sec.value
	}
	return ""
}

// find looks a secret up as Secrets Manager does: by name, full ARN, or ARN without the
// random suffix.
func (s *Secrets) find(id string) *secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[id]; sec != nil {
		return sec
	}
	for _, sec := range s.secrets {
		if id == sec.arn || id == sec.arn[:len(sec.arn)-7] {
			return sec
		}
	}
	return nil
}

// scan records a problem if a secret's value is in b.
func (s *Secrets) scan(what string, b []byte) {
	s.mu.Lock()
	var leaked []string
	for _, sec := range s.secrets {
		if bytes.Contains(b, []byte(sec.value)) {
			leaked = append(leaked, sec.name)
		}
	}
	s.mu.Unlock()
	sort.Strings(leaked)
	for _, name := range leaked {
		s.env.problem("the value of secret %s travelled in a %s", name, what)
	}
}

func (s *Secrets) handle(op string, body []byte) (any, *apiError) {
	var in struct {
		SecretID string `json:"SecretId"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{code: "InvalidParameterException", msg: err.Error()}
	}
	sec := s.find(in.SecretID)
	if sec == nil {
		return nil, &apiError{code: "ResourceNotFoundException", msg: "Secrets Manager can't find the specified secret."}
	}
	return map[string]any{
		"ARN": sec.arn, "Name": sec.name, "CreatedDate": epoch(sec.created), "LastChangedDate": epoch(sec.created),
		"VersionIdsToStages": map[string]any{sec.version: []string{"AWSCURRENT"}},
	}, nil
}

// secretID is the secret named by the value of a SECRETS_MANAGER build variable:
// secret-id[:json-key[:version-stage[:version-id]]], where secret-id may be an ARN.
func secretID(value string) string {
	parts := strings.Split(value, ":")
	if strings.HasPrefix(value, "arn:") && len(parts) >= 7 {
		return strings.Join(parts[:7], ":")
	}
	return parts[0]
}
