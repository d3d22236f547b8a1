package signin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGate measures what the gate adds to a request: a signed-in person's (cookie check,
// the session read from the store, what they may read from the cache) and a script's (the
// token hashed and compared with every configured hash).
func BenchmarkGate(b *testing.B) {
	e := newEnv(b, envOptions{})
	br := browser(b)
	e.signIn(b, br, "alice")
	cookie := &http.Cookie{Name: sessionCookie, Value: e.cookie(br, sessionCookie)}
	h := e.srv.Config.Handler
	for _, bm := range []struct {
		name string
		req  func() *http.Request
	}{
		{"session", func() *http.Request {
			r := httptest.NewRequest("GET", "/api/v1/whoami", nil)
			r.AddCookie(cookie)
			return r
		}},
		{"api_token", func() *http.Request {
			r := httptest.NewRequest("GET", "/api/v1/whoami", nil)
			r.Header.Set("Authorization", "Bearer "+boardToken)
			return r
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, bm.req())
				if w.Code != 200 {
					b.Fatalf("answered %d", w.Code)
				}
			}
		})
	}
}
