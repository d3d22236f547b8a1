package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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

// BenchmarkStalledUploads is issue 10's attack as a measurement: 50 uploads that declare 25 MiB,
// send all but the last byte and stall, with forged signatures. It reports the heap while the
// attack is in place (peak-heap-MiB: the most seen while it ramps up, sampled every 5 ms;
// heap-MiB: in use after a collection once it is in place), and times signed deliveries answered
// meanwhile (ns/op, p99-ms), one after another on one connection.
//
//	go test -run '^$' -bench StalledUploads -benchtime 200x ./internal/webhook/
func BenchmarkStalledUploads(b *testing.B) {
	tg := startTarget(b, &fakeRecorder{}, Options{BodyTimeout: 10 * time.Minute})
	stop, peak := make(chan struct{}), make(chan uint64, 1)
	go func() {
		var ms runtime.MemStats
		var top uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapInuse)
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	a := stall(b, tg, attackers, attackSize)
	close(stop)
	peakHeap, heap := <-peak, liveHeap()

	push := fixture(b, "push.json")
	client := &http.Client{}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if code := postSigned(b, client, tg.url, "push", fmt.Sprintf("bench-signed-%d", i), push); code != http.StatusAccepted {
			b.Fatalf("signed delivery answered %d under the attack", code)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	// After the loop: ResetTimer drops metrics reported before it.
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(a.held), "held-uploads")
}
