package githubtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
)

var secret = []byte("webhook-secret")

// received is one delivery as the receiver saw it, decoded by go-github.
type received struct {
	event, id string
	header    http.Header
	body      []byte
	parsed    any
}

// receiver is a webhook receiver that checks every delivery as Stagecoach's intake would: the
// headers GitHub sends, the HMAC signature with the secret, and that go-github decodes it.
type receiver struct {
	t        *testing.T
	srv      *httptest.Server
	answer   atomic.Int32  // the status to answer (202 by default); 0 drops the connection
	hold     chan struct{} // when set, each delivery waits for it before answering
	inFlight atomic.Int32
	mu       sync.Mutex
	got      []received
	seen     func(received) // called on each delivery before it is answered
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.answer.Store(http.StatusAccepted)
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	if n := rc.inFlight.Add(1); n != 1 {
		rc.t.Errorf("%d deliveries at once; GitHub sends one at a time here", n)
	}
	// The delivery ends when the answer is written or the connection closed, which the sender
	// sees at once; this goroutine may only get to its deferred calls after the next delivery
	// began. So it counts itself out before it answers.
	counted := true
	out := func() {
		if counted {
			rc.inFlight.Add(-1)
			counted = false
		}
	}
	defer out()
	h := r.Header
	for name, want := range map[string]string{"Content-Type": "application/json", "X-GitHub-Hook-Installation-Target-Type": "integration"} {
		if h.Get(name) != want {
			rc.t.Errorf("%s: %q, want %q", name, h.Get(name), want)
		}
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.UserAgent(), "GitHub-Hookshot/") || h.Get("X-GitHub-Hook-ID") == "" ||
		!uuidRE.MatchString(h.Get("X-GitHub-Delivery")) || !strings.HasPrefix(h.Get("X-Hub-Signature-256"), "sha256=") {
		rc.t.Errorf("delivery %s with headers %v", r.Method, h)
	}
	payload, err := github.ValidatePayload(r, secret) // the HMAC-SHA256 of the body, in constant time
	if err != nil {
		rc.t.Errorf("signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	parsed, err := github.ParseWebHook(github.WebHookType(r), payload)
	if err != nil {
		rc.t.Errorf("go-github cannot decode the %s delivery: %v", github.WebHookType(r), err)
	}
	rec := received{event: github.WebHookType(r), id: github.DeliveryID(r), header: h.Clone(), body: payload, parsed: parsed}
	rc.mu.Lock()
	rc.got = append(rc.got, rec)
	seen := rc.seen
	rc.mu.Unlock()
	if seen != nil {
		seen(rec)
	}
	if rc.hold != nil {
		<-rc.hold
	}
	status := int(rc.answer.Load())
	out()
	if status == 0 {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
		return
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func (rc *receiver) deliveries() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// hooked is a server delivering to a fresh receiver.
func hooked(t *testing.T, opts ...Option) (*Server, *receiver) {
	t.Helper()
	s := New(t, opts...)
	rc := newReceiver(t)
	s.SetWebhook(rc.srv.URL+"/webhook", secret)
	return s, rc
}

func flush(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStartAndCloseWithoutATest(t *testing.T) {
	s, err := Start(WithAppID(9), WithAppSlug("relay"))
	if err != nil {
		t.Fatal(err)
	}
	if s.BotLogin() != "relay[bot]" || s.AppID() != 9 {
		t.Errorf("bot %q, app %d", s.BotLogin(), s.AppID())
	}
	gh, _ := client(t, s)
	if a, _, err := appClient(t, s, 9, s.PrivateKeyPEM()).Apps.Get(context.Background(), ""); err != nil || a.GetSlug() != "relay" {
		t.Errorf("GET /app = %v, %v; want the slug relay", a, err)
	}
	if _, _, err := gh.Checks.CreateCheckRun(context.Background(), "acme", "app", github.CreateCheckRunOptions{Name: "n", HeadSHA: "a"}); err != nil {
		t.Fatal(err)
	}
	if p := s.Problems(); len(p) != 0 {
		t.Errorf("problems after good requests: %q", p)
	}
	resp, err := http.Get(s.URL() + "repos/acme/app/frobs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.Comment("acme/app", 5, "octocat", "hello") // no issue 5: GitHub would refuse it
	p := s.Problems()
	if len(p) != 2 || !strings.Contains(p[0], "rejected GET /repos/acme/app/frobs") || !strings.Contains(p[1], "no issue or pull request #5") {
		t.Errorf("problems = %q", p)
	}
	s.Close()
	s.Close() // twice is fine
	if _, err := http.Get(s.URL()); err == nil {
		t.Error("the server still answers after Close")
	}
}

// TestDeliveryOrderAndFlush holds the receiver's answer: deliveries go one at a time in the order
// of their causes, Flush waits for all of them, and an API call is answered before its webhook.
func TestDeliveryOrderAndFlush(t *testing.T) {
	s, rc := hooked(t)
	rc.hold = make(chan struct{})
	rc.seen = func(r received) {
		ev, _ := r.parsed.(*github.IssueCommentEvent)
		if ev.GetSender().GetLogin() == s.BotLogin() && s.Count("issues/create-comment") != 1 {
			t.Error("the comment's webhook arrived before the API call was answered")
		}
	}
	gh, _ := client(t, s)
	s.AddPull("acme/app", Pull{Number: 3, Title: "t", HeadRef: "f", HeadSHA: strings.Repeat("c", 40)})
	for i := range 3 {
		s.Comment("acme/app", 3, "octocat", "person "+string(rune('a'+i)))
	}
	if _, _, err := gh.Issues.CreateComment(context.Background(), "acme", "app", 3, &github.IssueComment{Body: github.Ptr("bot")}); err != nil {
		t.Fatal(err) // answered although the receiver holds every delivery: deliveries are asynchronous
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with the receiver holding its answer = %v, want the deadline", err)
	}
	if n := len(s.Deliveries()); n != 0 {
		t.Errorf("%d deliveries answered while the receiver holds", n)
	}
	close(rc.hold)
	flush(t, s)
	var bodies []string
	for _, d := range s.Deliveries() {
		var p struct{ Comment struct{ Body string } }
		if err := json.Unmarshal(d.Body, &p); err != nil || d.Status != http.StatusAccepted || d.Failed() || string(d.Response) != `{"ok":true}` {
			t.Errorf("delivery %+v: %v", d, err)
		}
		bodies = append(bodies, p.Comment.Body)
	}
	if got := strings.Join(bodies, ","); got != "person a,person b,person c,bot" {
		t.Errorf("delivered in the order %s", got)
	}
	if len(rc.deliveries()) != 4 {
		t.Errorf("the receiver saw %d deliveries, want 4", len(rc.deliveries()))
	}
}

func TestFailedDeliveriesAndRedeliver(t *testing.T) {
	tests := []struct {
		name   string
		answer int // 0: the connection is closed unanswered
	}{
		{"answered 500", http.StatusInternalServerError},
		{"answered 503", http.StatusServiceUnavailable},
		{"not answered", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rc := hooked(t)
			s.AddPull("acme/app", Pull{Number: 1, Title: "t", HeadRef: "f", HeadSHA: strings.Repeat("c", 40)})
			rc.answer.Store(int32(tt.answer))
			s.Comment("acme/app", 1, "octocat", "/promote alpha")
			flush(t, s)
			ds := s.Deliveries()
			if len(ds) != 1 || !ds[0].Failed() || ds[0].Status != tt.answer || ds[0].Err == nil {
				t.Fatalf("deliveries = %+v, want one failed with status %d", ds, tt.answer)
			}
			time.Sleep(50 * time.Millisecond)
			if n := len(s.Deliveries()); n != 1 {
				t.Fatalf("%d deliveries: a failed delivery was retried by itself", n)
			}
			rc.answer.Store(http.StatusAccepted)
			if err := s.Redeliver(ds[0].ID); err != nil {
				t.Fatal(err)
			}
			flush(t, s)
			ds = s.Deliveries()
			if len(ds) != 2 || ds[1].ID != ds[0].ID || !ds[1].Redelivery || ds[1].Failed() || string(ds[1].Body) != string(ds[0].Body) {
				t.Errorf("after Redeliver: %+v", ds)
			}
			if got := rc.deliveries(); len(got) != 2 || got[1].id != ds[0].ID {
				t.Errorf("the receiver saw %d deliveries", len(got))
			}
			if err := s.Redeliver("no-such-id"); err == nil {
				t.Error("redelivering an unknown delivery succeeded")
			}
		})
	}
}

func TestNoWebhookNoDeliveries(t *testing.T) {
	s := New(t)
	s.AddPull("acme/app", Pull{Number: 1, Title: "t", HeadRef: "f", HeadSHA: strings.Repeat("c", 40)})
	s.Comment("acme/app", 1, "octocat", "before")
	rc := newReceiver(t)
	s.SetWebhook(rc.srv.URL, secret)
	s.Comment("acme/app", 1, "octocat", "after")
	s.SetWebhook("", nil)
	s.Comment("acme/app", 1, "octocat", "stopped")
	flush(t, s)
	if got := rc.deliveries(); len(got) != 1 || !strings.Contains(string(got[0].body), `"body":"after"`) {
		t.Errorf("deliveries: %d, want only the comment made while the webhook was set", len(got))
	}
}

// TestCloseDropsQueuedDeliveries closes the server while the receiver holds the first delivery
// and the second waits its turn: Close returns without waiting for the held answer, and both
// are recorded as failed.
func TestCloseDropsQueuedDeliveries(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t)
	rc.hold = make(chan struct{})
	defer close(rc.hold)
	holding := make(chan struct{}, 1)
	rc.seen = func(received) {
		select {
		case holding <- struct{}{}:
		default:
		}
	}
	s.SetWebhook(rc.srv.URL, secret)
	s.AddPull("acme/app", Pull{Number: 1, Title: "t", HeadRef: "f", HeadSHA: strings.Repeat("c", 40)})
	s.Comment("acme/app", 1, "octocat", "one")
	s.Comment("acme/app", 1, "octocat", "two")
	// Close only once the receiver holds the first delivery, read and verified. Closed any
	// earlier, the cancelled request is cut off while its body is on the wire, and the receiver,
	// which checks every delivery as Stagecoach's intake would, rightly reports the truncated
	// body ("signature: unexpected EOF", "use of closed network connection"): the test raced
	// Close against the first delivery's transmission, which a busy machine loses now and then.
	select {
	case <-holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the first delivery never reached the receiver")
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a held delivery")
	}
	flush(t, s) // nothing left to wait for
	ds := s.Deliveries()
	if len(ds) != 2 || !ds[0].Failed() || !ds[1].Failed() {
		t.Errorf("deliveries after Close = %+v, want both failed", ds)
	}
}

func TestInstallationIDOption(t *testing.T) {
	s, rc := hooked(t, WithInstallationID(77))
	s.AddPull("acme/app", Pull{Number: 1, Title: "t", HeadRef: "f", HeadSHA: sha('c')})
	s.Comment("acme/app", 1, "octocat", "hi")
	flush(t, s)
	got := rc.deliveries()
	if len(got) != 1 || got[0].parsed.(*github.IssueCommentEvent).GetInstallation().GetID() != 77 {
		t.Errorf("deliveries %d; want one from installation 77", len(got))
	}
	inst, _, err := appClient(t, s, s.AppID(), s.PrivateKeyPEM()).Apps.GetRepositoryInstallation(context.Background(), "acme", "app")
	if err != nil || inst.GetID() != 77 {
		t.Errorf("repository installation = %v, %v", inst, err)
	}
}
