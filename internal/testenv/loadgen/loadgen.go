// Package loadgen sends signed webhook deliveries to a running Stagecoach and measures it:
// requests per second, latency percentiles and errors. Every delivery has a unique
// X-GitHub-Delivery, so each one is new work for the server, not a deduplicated redelivery.
// It only targets loopback addresses unless told otherwise: it is a measuring tool, not a
// traffic generator for other people's machines.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stagecoach/stagecoach/internal/webhook"
)

// Options say what to send, where, and for how long.
type Options struct {
	URL         string // the server's webhook URL
	Event       string // X-GitHub-Event
	Payload     []byte
	Secret      []byte
	Connections int           // concurrent connections (default 32)
	Duration    time.Duration // stop after this long (default 10 s) ...
	Requests    int           // ... or after this many requests, whichever comes first (0: no limit)
	AllowRemote bool          // allow a non-loopback target
	Progress    io.Writer     // a line per second while running; nil for none
}

// Result is what a run measured.
type Result struct {
	Requests int
	Errors   int         // transport errors and non-2xx answers
	Status   map[int]int // answers by HTTP status
	Elapsed  time.Duration
	P50, P90 time.Duration
	P99, Max time.Duration
}

// RPS is the rate of completed requests.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// String formats the result as the load command prints it.
func (r Result) String() string {
	return fmt.Sprintf("requests %d in %s: %.0f req/s; latency p50 %s p90 %s p99 %s max %s; errors %d; status %v",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.RPS(), r.P50, r.P90, r.P99, r.Max, r.Errors, r.Status)
}

// Run sends deliveries until the duration or request count is reached or ctx ends.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Connections <= 0 {
		o.Connections = 32
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if len(o.Payload) == 0 || len(o.Secret) == 0 || o.Event == "" {
		return Result{}, errors.New("loadgen: payload, secret and event are required")
	}
	if err := checkTarget(o.URL, o.AllowRemote); err != nil {
		return Result{}, err
	}
	signature := webhook.Sign(o.Secret, o.Payload) // the signature covers the body only
	var prefix [8]byte
	_, _ = rand.Read(prefix[:])
	runID := hex.EncodeToString(prefix[:])

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: o.Connections, MaxIdleConnsPerHost: o.Connections, MaxConnsPerHost: o.Connections,
			DisableCompression: true,
		},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()

	var (
		next   atomic.Int64
		done   atomic.Int64
		errs   atomic.Int64
		mu     sync.Mutex
		lat    []time.Duration
		status = map[int]int{}
		wg     sync.WaitGroup
	)
	start := time.Now()
	stopProgress := progress(o.Progress, start, &done, &errs)
	for range o.Connections {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<14)
			codes := map[int]int{}
			for ctx.Err() == nil {
				n := next.Add(1)
				if o.Requests > 0 && n > int64(o.Requests) {
					break
				}
				code, d, err := send(ctx, client, o, signature, deliveryID(runID, n))
				if ctx.Err() != nil && err != nil {
					break // cut off by the end of the run, not a server failure
				}
				mine = append(mine, d)
				codes[code]++
				if err != nil || code < 200 || code > 299 {
					errs.Add(1)
				}
				done.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			for c, k := range codes {
				status[c] += k
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	stopProgress()
	r := Result{Requests: len(lat), Errors: int(errs.Load()), Status: status, Elapsed: time.Since(start)}
	slices.Sort(lat)
	r.P50, r.P90, r.P99 = quantile(lat, 0.50), quantile(lat, 0.90), quantile(lat, 0.99)
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	return r, nil
}

func send(ctx context.Context, c *http.Client, o Options, sig, delivery string) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(o.Payload))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/stagecoach-load")
	req.Header.Set("X-GitHub-Event", o.Event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", sig)
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, time.Since(t0), err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0), nil
}

// deliveryID formats a unique id in the UUID shape GitHub uses.
func deliveryID(run string, n int64) string {
	h := fmt.Sprintf("%016x", n)
	return run[:8] + "-" + run[8:12] + "-" + run[12:16] + "-" + h[:4] + "-" + h[4:16]
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// progress prints a line per second until stopped.
func progress(w io.Writer, start time.Time, done, errs *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := int64(0)
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				d := done.Load()
				fmt.Fprintf(w, "  %5.1fs  %8d requests  %7d/s  %d errors\n", now.Sub(start).Seconds(), d, d-last, errs.Load())
				last = d
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// checkTarget refuses a target that is not on this machine unless allowRemote is set.
func checkTarget(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("loadgen: %q is not an http(s) URL", raw)
	}
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("loadgen: resolving %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("loadgen: %s resolves to %s, which is not a loopback address (pass --allow-remote to load-test another machine)", host, ip)
		}
	}
	return nil
}

// OK is the number of 2xx answers.
func (r Result) OK() int {
	n := 0
	for code, k := range r.Status {
		if code >= 200 && code < 300 {
			n += k
		}
	}
	return n
}
