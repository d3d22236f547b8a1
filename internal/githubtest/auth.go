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

// authorize checks the credentials GitHub would: an App JWT signed with the App's key for /app
// endpoints, an installation token it issued for everything else. It returns 0 when allowed.
func (s *Server) authorize(op *operation, r *http.Request) (int, string) {
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	if op.id == "apps/create-from-manifest" {
		return 0, "" // the one-time code is the credential
	}
	if strings.HasPrefix(op.path, "/app") {
		if !strings.EqualFold(scheme, "Bearer") {
			return http.StatusUnauthorized, "A JSON web token could not be decoded"
		}
		claims := &jwt.RegisteredClaims{}
		_, err := jwt.ParseWithClaims(cred, claims, func(t *jwt.Token) (any, error) {
			if _, ok := t.Method.(*jwt.SigningMethodRSA); !ok {
				return nil, jwt.ErrSignatureInvalid
			}
			return &s.key.PublicKey, nil
		})
		if err != nil || claims.Issuer != strconv.FormatInt(s.appID, 10) {
			return http.StatusUnauthorized, "'Issuer' claim ('iss') must be the app id, signed by the app's key"
		}
		if claims.ExpiresAt == nil || time.Until(claims.ExpiresAt.Time) > 10*time.Minute {
			return http.StatusUnauthorized, "'Expiration time' claim ('exp') is too far in the future"
		}
		return 0, ""
	}
	if op.path == "/rate_limit" && auth == "" {
		return 0, ""
	}
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

func (s *Server) issueToken(installation int64) (string, time.Time) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := "ghs_" + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.tokens[tok] = installation
	s.mu.Unlock()
	return tok, time.Now().Add(time.Hour).UTC().Truncate(time.Second)
}
