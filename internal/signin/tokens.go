package signin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/access"
)

// TokenPrefix starts every API token, so one found in a log or a repository is recognizable.
const TokenPrefix = "sct_"

// NewToken makes an API token (32 random bytes) and its SHA-256, the only form the
// configuration keeps.
func NewToken() (token, sha string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("making a token: %w", err)
	}
	token = TokenPrefix + b64.EncodeToString(raw)
	return token, HashToken(token), nil
}

// HashToken is the hex SHA-256 of a token, as signin.api_tokens[].sha256 holds it. A token is
// 256 random bits, so a fast hash is enough: there is nothing to guess from it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// apiToken is one configured token: its hash and what it may read.
type apiToken struct {
	name   string
	hash   [sha256.Size]byte
	grants []access.Grant
}

// apiTokens reads the configured tokens; each reads its repositories (by default every
// configured app's), and their command audit only when it says so.
func apiTokens(cfg *config.Config) ([]apiToken, error) {
	var out []apiToken
	for _, t := range cfg.SignIn.APITokens {
		h, err := hex.DecodeString(t.SHA256)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("signin.api_tokens %s: sha256 is not a SHA-256", t.Name)
		}
		tok := apiToken{name: t.Name}
		copy(tok.hash[:], h)
		repos := t.Repos
		if len(repos) == 0 {
			for _, a := range cfg.Apps {
				repos = append(repos, a.Repo)
			}
		}
		for _, r := range repos {
			tok.grants = append(tok.grants, access.Grant{Repo: r, Audit: t.Audit})
		}
		out = append(out, tok)
	}
	return out, nil
}

// tokenViewer returns the viewer of a presented token, or nil. Every configured hash is
// compared, in constant time, whatever matched before: the time taken says nothing about which
// token, or how much of one, was right.
func tokenViewer(tokens []apiToken, presented string) *access.Viewer {
	presented = strings.TrimSpace(presented)
	if presented == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(presented))
	var found *apiToken
	for i := range tokens {
		if subtle.ConstantTimeCompare(sum[:], tokens[i].hash[:]) == 1 {
			found = &tokens[i]
		}
	}
	if found == nil {
		return nil
	}
	return access.New("", found.name, found.grants)
}
