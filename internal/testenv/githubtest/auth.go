package githubtest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// clockSkew is how far GitHub lets an App JWT's times drift from its own clock.
const clockSkew = 60 * time.Second

// authorize checks the credentials GitHub would: an App JWT signed with the App's key for the
// /app endpoints, an installation token it issued for everything else. It returns 0 when allowed.
func (s *Server) authorize(op *operation, r *http.Request) (int, string) {
	switch {
	case op.id == "apps/create-from-manifest":
		return 0, "" // the one-time code is the credential
	case op.id == "rate-limit/get" && r.Header.Get("Authorization") == "":
		return 0, "" // anonymous callers have a rate limit too
	case op.id == "users/get-authenticated" || op.id == "apps/list-installations-for-authenticated-user" ||
		op.id == "apps/list-installation-repos-for-authenticated-user":
		return s.authorizeUser(r) // a person's token
	case op.id == "apps/delete-token":
		return s.authorizeClient(r) // the App's client id and secret
	case strings.HasPrefix(op.id, "apps/"): // /app/…, and a repository's installation
		if msg := s.checkJWT(r.Header.Get("Authorization")); msg != "" {
			return http.StatusUnauthorized, msg
		}
		return 0, ""
	}
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "Bearer") {
		return http.StatusUnauthorized, "Requires authentication"
	}
	s.mu.Lock()
	_, ok := s.tokens[cred]
	s.mu.Unlock()
	if !ok {
		return http.StatusUnauthorized, "Bad credentials"
	}
	return 0, ""
}

// checkJWT verifies an App JWT as GitHub does: RS256 with the App's key, iss the App id, iat
// not in the future, exp no more than ten minutes after iat and not passed. It returns GitHub's
// message for the first thing wrong, or "".
func (s *Server) checkJWT(header string) string {
	scheme, cred, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return "A JSON web token could not be decoded"
	}
	claims := &jwt.RegisteredClaims{}
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation())
	if _, err := p.ParseWithClaims(cred, claims, func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil }); err != nil {
		return "A JSON web token could not be decoded"
	}
	now := time.Now()
	switch {
	case claims.Issuer != strconv.FormatInt(s.appID, 10):
		return "'Issuer' claim ('iss') must be an Integer"
	case claims.IssuedAt == nil || claims.IssuedAt.After(now.Add(clockSkew)):
		return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
	case claims.ExpiresAt == nil || !claims.ExpiresAt.After(now.Add(-clockSkew)):
		return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	case claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 10*time.Minute+clockSkew:
		return "'Expiration time' claim ('exp') is too far in the future"
	}
	return ""
}

func (s *Server) createToken(c *call) (int, any) {
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := "ghs_" + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.tokens[tok] = c.id("installation_id")
	s.mu.Unlock()
	return http.StatusCreated, map[string]any{
		"token": tok, "expires_at": stamp(time.Now().Add(time.Hour)),
		"permissions":          map[string]string{"checks": "write", "contents": "write", "deployments": "write", "issues": "write", "pull_requests": "write"},
		"repository_selection": "all",
	}
}
