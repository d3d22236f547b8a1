package signin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// keys are the secrets sign-in uses, each derived (HKDF-SHA256) from the App's client secret, so
// every replica with the same configuration derives the same ones and no other secret has to be
// shared. Rotating the client secret ends every session.
type keys struct {
	cookie []byte      // signs session cookies
	csrf   []byte      // makes each session's form token
	seal   cipher.AEAD // seals people's GitHub tokens in the store
	flow   cipher.AEAD // seals the sign-in flow's state and PKCE verifier in its cookie
}

func deriveKeys(clientSecret []byte) (*keys, error) {
	derive := func(info string) ([]byte, error) {
		return hkdf.Key(sha256.New, clientSecret, nil, "stagecoach/signin/"+info, 32)
	}
	aead := func(info string) (cipher.AEAD, error) {
		k, err := derive(info)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	}
	var k keys
	var err error
	if k.cookie, err = derive("session-cookie/v1"); err != nil {
		return nil, fmt.Errorf("deriving the cookie key: %w", err)
	}
	if k.csrf, err = derive("csrf/v1"); err != nil {
		return nil, fmt.Errorf("deriving the CSRF key: %w", err)
	}
	if k.seal, err = aead("token-seal/v1"); err != nil {
		return nil, fmt.Errorf("deriving the token key: %w", err)
	}
	if k.flow, err = aead("flow-cookie/v1"); err != nil {
		return nil, fmt.Errorf("deriving the flow key: %w", err)
	}
	return &k, nil
}

var b64 = base64.RawURLEncoding

// seal encrypts plain with a fresh nonce; aad binds it to where it belongs.
func seal(a cipher.AEAD, plain []byte, aad string) []byte {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, plain, []byte(aad))
}

// open decrypts what seal made with the same aad.
func open(a cipher.AEAD, sealed []byte, aad string) ([]byte, error) {
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	return a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte(aad))
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// newSessionID is 32 random bytes: what the cookie carries and what it proves.
func newSessionID() []byte {
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return id
}

// idHash is how the store knows a session: the hex SHA-256 of its id, so the table alone gives
// no working cookie.
func idHash(id []byte) string {
	sum := sha256.Sum256(id)
	return hex.EncodeToString(sum[:])
}

// cookieValue is "v1.<id>.<mac>": the id and its signature, base64url.
func (k *keys) cookieValue(id []byte) string {
	return "v1." + b64.EncodeToString(id) + "." + b64.EncodeToString(mac(k.cookie, "session", string(id)))
}

// sessionID checks a cookie's signature and returns the id it carries; a cookie this
// configuration did not sign is refused before the store is asked anything.
func (k *keys) sessionID(value string) ([]byte, bool) {
	parts := strings.Split(value, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, false
	}
	id, err1 := b64.DecodeString(parts[1])
	sig, err2 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(id) != 32 || !hmac.Equal(sig, mac(k.cookie, "session", string(id))) {
		return nil, false
	}
	return id, true
}

// csrfToken is the token forms posted in a session must carry: derived from the session id,
// so it needs no storage and changes with every sign-in.
func (k *keys) csrfToken(id []byte) string {
	return b64.EncodeToString(mac(k.csrf, "csrf", string(id)))
}

// validCSRF compares a posted token with the session's, in constant time.
func (k *keys) validCSRF(id []byte, posted string) bool {
	got, err := b64.DecodeString(posted)
	return err == nil && hmac.Equal(got, mac(k.csrf, "csrf", string(id)))
}
