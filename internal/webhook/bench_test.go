package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stagecoach/stagecoach/internal/store"
)

// BenchmarkIntake measures the whole intake path in process: signature, decode, route and the
// durable record in SQLite (WAL, synchronous=FULL), with every delivery id unique so each is new
// work. Run with -cpu to vary the number of concurrent deliveries (b.SetParallelism(16) makes 32
// goroutines on 2 cores, like the load target's 32 connections).
func BenchmarkIntake(b *testing.B) {
	for _, bc := range []struct{ name, event, file string }{
		{"pull_request_merged", "pull_request", "pull_request_closed_merged.json"},
		{"push", "push", "push.json"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			in := newIntake(b, st)
			body := fixture(b, bc.file)
			sig := Sign([]byte(testSecret), body)
			var n atomic.Int64
			b.SetBytes(int64(len(body)))
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodPost, "/webhook", bytesReader(body))
					r.Header.Set("X-GitHub-Event", bc.event)
					r.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", n.Add(1)))
					r.Header.Set("X-Hub-Signature-256", sig)
					w := httptest.NewRecorder()
					in.ServeHTTP(w, r)
					if w.Code != http.StatusAccepted {
						b.Errorf("status %d: %s", w.Code, w.Body)
						return
					}
				}
			})
		})
	}
}
