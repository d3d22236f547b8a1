package webhook

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// forged sets a well-formed signature that is not the body's: what an attacker can always send.
func forged(r *http.Request) *http.Request {
	r.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
	return r
}

// readTracker records whether anything read the body.
type readTracker struct {
	io.Reader
	read bool
}

func (r *readTracker) Read(p []byte) (int, error) { r.read = true; return r.Reader.Read(p) }

// A request with no signature, or one that is not sha256= and 64 hex digits, is refused from its
// headers: its body is never read, so it costs no memory at all.
func TestUnsignedUploadIsRefusedUnread(t *testing.T) {
	for name, header := range map[string]string{"none": "", "sha1": "sha1=0123456789abcdef0123456789abcdef01234567", "short": "sha256=abcd"} {
		t.Run(name, func(t *testing.T) {
			body := &readTracker{Reader: strings.NewReader(`{"zen":"x"}`)}
			r := httptest.NewRequest(http.MethodPost, "/webhook", body)
			r.Header.Set("X-GitHub-Event", "push")
			if header != "" {
				r.Header.Set("X-Hub-Signature-256", header)
			}
			w := httptest.NewRecorder()
			newIntake(t, &fakeRecorder{}).ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized || body.read {
				t.Errorf("answered %d, body read %v; want 401 without reading it", w.Code, body.read)
			}
			if w.Header().Get("Connection") != "close" {
				t.Error("the connection of an unread body is kept open")
			}
		})
	}
}

// A Content-Length of 25 MiB allocates nothing by itself (the old intake made a 25 MiB buffer
// from the header alone): memory follows the bytes that really arrive.
func TestDeclaredLengthAllocatesNothing(t *testing.T) {
	in := newIntake(t, &fakeRecorder{})
	serve := func() {
		r := forged(httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(`{"a":1}`)))
		r.ContentLength = MaxBody
		w := httptest.NewRecorder()
		in.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("answered %d, want 401", w.Code)
		}
	}
	serve() // the pool's first chunk
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		serve()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 256<<10 {
		t.Errorf("a request declaring 25 MiB and sending 7 bytes allocated %d KiB", per>>10)
	}
	if in.Unverified() != 0 {
		t.Errorf("%d bytes still charged after the requests ended", in.Unverified())
	}
}

// pipeRequest is a forged upload declaring size bytes whose body the test feeds through w.
func pipeRequest(size int64) (*http.Request, *io.PipeWriter) {
	pr, pw := io.Pipe()
	r := forged(httptest.NewRequest(http.MethodPost, "/webhook", pr))
	r.Header.Set("X-GitHub-Event", "push")
	r.ContentLength = size
	return r, pw
}

// Uploads past the cap of unverified bytes are answered 503 with Retry-After at once, and their
// connection closed, while small signed deliveries still go through beside them: large bodies
// may not use the quarter kept for small ones.
func TestUploadsOverTheCapAre503WithRetryAfter(t *testing.T) {
	rec := &fakeRecorder{}
	in := newIntakeWith(t, rec, Options{MaxUnverified: MinMaxUnverified})
	// The first large upload takes its 25 MiB share and stalls after one byte.
	first, feed := pipeRequest(MaxBody)
	done := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		in.ServeHTTP(w, first)
		done <- w.Code
	}()
	if _, err := feed.Write([]byte{'{'}); err != nil { // returns once the intake has read it
		t.Fatal(err)
	}
	if got := in.Unverified(); got != MaxBody {
		t.Fatalf("%d bytes charged to the first upload, want %d", got, MaxBody)
	}
	// A second large upload does not fit beside it: refused before a byte is read.
	second, _ := pipeRequest(MaxBody)
	w := httptest.NewRecorder()
	in.ServeHTTP(w, second)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "10" || w.Header().Get("Connection") != "close" {
		t.Errorf("second upload: %d, Retry-After %q, Connection %q; want 503, 10, close", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Connection"))
	}
	if !strings.Contains(w.Body.String(), `"busy"`) {
		t.Errorf("body %s, want the busy result", w.Body)
	}
	// A small signed delivery still fits.
	w = httptest.NewRecorder()
	in.ServeHTTP(w, signed("pull_request", "small", fixture(t, "pull_request_closed_merged.json")))
	if w.Code != http.StatusAccepted || len(rec.got) != 1 {
		t.Errorf("small signed delivery beside the stalled upload: %d %s", w.Code, w.Body)
	}
	feed.CloseWithError(io.ErrUnexpectedEOF)
	if code := <-done; code != http.StatusBadRequest {
		t.Errorf("the stalled upload, cut off, answered %d; want 400", code)
	}
	if in.Unverified() != 0 {
		t.Errorf("%d bytes still charged after every upload ended", in.Unverified())
	}
}

// Small bodies are charged as their bytes arrive: many small uploads that stall with part of
// their body fill the budget only by really sending it, and then are refused too.
func TestSmallStalledUploadsAreChargedAsTheyArrive(t *testing.T) {
	in := newIntakeWith(t, &fakeRecorder{}, Options{MaxUnverified: MinMaxUnverified})
	r, feed := pipeRequest(SmallBody)
	done := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		in.ServeHTTP(w, r)
		done <- w.Code
	}()
	if _, err := feed.Write(make([]byte, 3*chunkSize-10)); err != nil {
		t.Fatal(err)
	}
	if got := in.Unverified(); got != 3*chunkSize {
		t.Errorf("%d bytes charged after 3 chunks arrived, want %d", got, 3*chunkSize)
	}
	feed.Close()
	if code := <-done; code != http.StatusUnauthorized {
		t.Errorf("forged small upload answered %d, want 401", code)
	}
}

// A sender that stalls in the middle of a body is cut off at the body deadline with 408 and its
// connection closed (GitHub sends its deliveries within its own 10 s).
func TestSlowlorisBodyIsCutOffAtTheDeadline(t *testing.T) {
	tg := startTarget(t, &fakeRecorder{}, Options{BodyTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(tg.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=%064x\r\nContent-Length: 1000\r\n\r\n{\"a\":", 1)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("stalled body answered %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
	if tg.in.Unverified() != 0 {
		t.Errorf("%d bytes still charged after the cut-off", tg.in.Unverified())
	}
}

// Reading a body in chunks keeps it exact, at every size around the chunk boundaries, and a body
// over 25 MiB is refused whatever its Content-Length said.
func TestChunkedReadKeepsBodiesExact(t *testing.T) {
	in := newIntake(t, &fakeRecorder{})
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 7} {
		want := make([]byte, n)
		for i := range want {
			want[i] = byte(i * 7)
		}
		bd, err := in.read(bytesReader(want), -1)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		sum, _ := parseSignature(Sign([]byte(testSecret), want))
		if !bd.verified(sum[:]) || string(bd.bytes()) != string(want) {
			t.Errorf("%d bytes: read back %d bytes, verified %v", n, len(bd.bytes()), bd.verified(sum[:]))
		}
		bd.free()
	}
	bd, err := in.read(io.LimitReader(zeros{}, MaxBody), -1)
	if err != nil || bd.n != MaxBody {
		t.Errorf("exactly MaxBody bytes: %d read, %v", bd.n, err)
	}
	bd.free()
	bd, err = in.read(io.LimitReader(zeros{}, MaxBody+1), -1)
	if err != errTooLarge {
		t.Errorf("MaxBody+1 bytes: %v, want errTooLarge", err)
	}
	bd.free()
	if in.Unverified() != 0 {
		t.Errorf("%d bytes still charged", in.Unverified())
	}
}
