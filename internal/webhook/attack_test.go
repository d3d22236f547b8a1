package webhook

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/server"
)

// The attack of issue 10: uploads that declare GitHub's largest body, send all of it but the
// last byte, and stall, each with a well-formed but forged signature (one with no signature at
// all is refused from its headers and never read).
const (
	attackers  = 50
	attackSize = MaxBody
)

// countingBody counts the bytes the intake has read of every body, so a test can tell when the
// server has taken in everything the attackers sent (until then it sits in socket buffers).
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	k, err := c.ReadCloser.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// target is an intake served as in production, by package server, with a counter of the bytes
// it has read.
type target struct {
	in       *Intake
	url      string
	received atomic.Int64
}

func startTarget(tb testing.TB, rec Recorder, o Options) *target {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	t := &target{in: newIntakeWith(tb, rec, o)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	t.url = "http://" + ln.Addr().String()
	h := server.Public{Webhook: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = countingBody{r.Body, &t.received}
		t.in.ServeHTTP(w, r)
	})}.Handler(quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, quiet, server.Listener{Name: "public", Listener: ln, Handler: h}) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serving: %v", err)
		}
	})
	return t
}

// attack is the stalled uploads, once every one is either refused or fully read by the server.
type attack struct {
	conns    []net.Conn
	refused  int   // answered (503) or cut off by the server
	held     int   // still open, their body read but for the last byte
	received int64 // bytes the server read of them
}

// stall opens n uploads of size bytes each against t, sends all but the last byte of each, and
// waits until the server has either refused each one or read everything it was sent. The
// connections close when the test ends.
func stall(tb testing.TB, t *target, n, size int) *attack {
	tb.Helper()
	a := &attack{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	answered := make(chan struct{}, n)
	zeros := make([]byte, 256<<10)
	for i := range n {
		conn, err := net.Dial("tcp", t.url[len("http://"):])
		if err != nil {
			tb.Fatal(err)
		}
		a.conns = append(a.conns, conn)
		tb.Cleanup(func() { conn.Close() })
		wg.Go(func() {
			fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: stagecoach\r\nContent-Type: application/json\r\n"+
				"X-GitHub-Event: push\r\nX-GitHub-Delivery: attack-%d\r\nX-Hub-Signature-256: sha256=%064x\r\n"+
				"Content-Length: %d\r\n\r\n", i, i, size)
			for left := size - 1; left > 0; {
				k, err := conn.Write(zeros[:min(left, len(zeros))])
				if err != nil {
					return // refused: the reader below sees it
				}
				left -= k
			}
		})
		// Anything the server says, or its closing the connection, means this upload is over.
		go func() {
			_, _ = bufio.NewReader(conn).ReadByte()
			mu.Lock()
			a.refused++
			mu.Unlock()
			answered <- struct{}{}
		}()
	}
	wg.Wait()
	// The server has taken everything in once it has read size-1 bytes of every upload it has
	// not refused. This waits for a condition, not for time; the deadline only reports a hang.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		open := n - a.refused
		mu.Unlock()
		if got := t.received.Load(); got == int64(open)*int64(size-1) {
			a.held, a.received = open, got
			return a
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the server neither refused nor read the stalled uploads: %d refused, %d bytes read", n-open, t.received.Load())
		}
		select {
		case <-answered:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// shippedMemoryLimit is the memory limit of the Deployment in deploy/, in bytes.
func shippedMemoryLimit(tb testing.TB) uint64 {
	tb.Helper()
	b, err := os.ReadFile("../../deploy/stagecoach.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	m := regexp.MustCompile(`limits: \{memory: (\d+)Mi\}`).FindSubmatch(b)
	if m == nil {
		tb.Fatal("no memory limit in deploy/stagecoach.yaml")
	}
	mi, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return mi << 20
}

// liveHeap is the heap in use after a collection: what the process must hold.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// postSigned sends one signed delivery and returns the status.
func postSigned(tb testing.TB, client *http.Client, url, event, delivery string, body []byte) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytesReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", Sign([]byte(testSecret), body))
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("delivery %s: %v", delivery, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestStalledUnsignedUploadsCannotExhaustMemory holds 50 stalled uploads of 25 MiB open (issue
// 10: 12 of them took the heap past the 256 Mi limit, so a few connections restarted every
// replica): the heap stays under the shipped memory limit, and signed deliveries keep getting
// their 202 meanwhile.
//
// "Within a second" is shown by what the deliveries did not wait for rather than by a clock:
// the uploads hold their share until their body deadline (set to ten minutes here), so every
// delivery answered while all of them were still held was answered without waiting for any of
// them. The intake never queues: over its cap it refuses at once. How long a delivery takes
// under the attack is measured by BenchmarkStalledUploads.
func TestStalledUnsignedUploadsCannotExhaustMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1.25 GiB over loopback")
	}
	rec := &fakeRecorder{}
	tg := startTarget(t, rec, Options{BodyTimeout: 10 * time.Minute})
	a := stall(t, tg, attackers, attackSize)
	if a.held < 1 {
		t.Fatalf("no upload is held (%d refused): the test would show nothing", a.refused)
	}
	held := tg.in.Unverified()
	if held > DefaultMaxUnverified {
		t.Errorf("%d bytes unverified, over the cap of %d", held, DefaultMaxUnverified)
	}
	limit := shippedMemoryLimit(t)
	if heap := liveHeap(); heap >= limit {
		t.Errorf("heap %d MiB under %d stalled uploads (%d held), at or over the shipped limit of %d MiB",
			heap>>20, attackers, a.held, limit>>20)
	} else {
		t.Logf("%d stalled uploads: %d held (%d MiB read), %d refused; heap %d MiB (limit %d MiB)",
			attackers, a.held, a.received>>20, a.refused, heap>>20, limit>>20)
	}

	push := fixture(t, "push.json")
	client := &http.Client{}
	for i := range 20 {
		if code := postSigned(t, client, tg.url, "push", fmt.Sprintf("signed-%d", i), push); code != http.StatusAccepted {
			t.Errorf("signed delivery %d answered %d under the attack, want 202", i, code)
		}
	}
	if len(rec.got) != 20 {
		t.Errorf("%d deliveries recorded, want 20", len(rec.got))
	}
	// Every delivery above was answered while the held uploads still held their bytes: none of
	// them waited for an upload to end.
	if now, read := tg.in.Unverified(), tg.received.Load()-20*int64(len(push)); now != held || read != a.received {
		t.Errorf("the stalled uploads moved while the deliveries were answered (held %d -> %d bytes, read %d -> %d)",
			held, now, a.received, read)
	}
}
