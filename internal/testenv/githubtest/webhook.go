package githubtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// deliveryTimeout is how long GitHub waits for a webhook receiver's answer.
const deliveryTimeout = 10 * time.Second

// hookUserAgent is the User-Agent of GitHub's webhook deliveries.
const hookUserAgent = "GitHub-Hookshot/7e57ca5"

// Delivery is one webhook delivery the server made (or tried to make).
type Delivery struct {
	ID         string // X-GitHub-Delivery: a random UUID; a redelivery keeps the original's
	Event      string // X-GitHub-Event
	Action     string // the payload's "action"; "" for push and create
	HookID     int64  // X-GitHub-Hook-ID
	URL        string
	Body       []byte
	Redelivery bool
	Queued     time.Time     // when the action that caused it happened
	Took       time.Duration // from sending to the answer (or the failure)
	Status     int           // the receiver's answer; 0 when there was none
	Response   []byte        // the first KiB of the answer's body
	Err        error         // why there was no answer, or why it was refused
	// AttemptID is this attempt's id in the App's delivery log (GET /app/hook/deliveries): each
	// redelivery is an attempt of its own, with the original's ID (its guid).
	AttemptID int64
	// DeliveredAt is when the attempt was made (or dropped, for one Close dropped).
	DeliveredAt time.Time

	installationID, repositoryID int64       // from the payload, as the delivery log shows them
	reqHeader, respHeader        http.Header // what was sent with the body, and the answer's headers
	timedOut                     bool
}

// Failed reports whether GitHub would show the delivery as failed: no answer in time, or an
// answer other than 2xx.
func (d Delivery) Failed() bool { return d.Err != nil || d.Status/100 != 2 }

// pending is a delivery waiting for its turn.
type pending struct {
	d     Delivery
	ready <-chan struct{} // closed when the API call that caused it has been answered
}

// outbox sends webhook deliveries one at a time, in the order they were queued, from one
// goroutine.
type outbox struct {
	hookID, appID int64
	client        *http.Client
	ctx           context.Context
	cancel        context.CancelFunc
	stopped       chan struct{} // closed when the sender has returned

	mu       sync.Mutex
	url      string
	secret   []byte
	queue    []*pending
	log      []Delivery
	queued   int
	done     int
	attempts int64         // the last AttemptID handed out
	progress chan struct{} // closed and replaced whenever a delivery ends
	wake     chan struct{}
	closed   bool
}

// closedGate is an API call's answer that is already written: a person's action.
var closedGate = func() <-chan struct{} { c := make(chan struct{}); close(c); return c }()

func newOutbox(appID int64) *outbox {
	ctx, cancel := context.WithCancel(context.Background())
	o := &outbox{hookID: 400000000 + appID, appID: appID, client: &http.Client{Timeout: deliveryTimeout},
		ctx: ctx, cancel: cancel, stopped: make(chan struct{}), progress: make(chan struct{}), wake: make(chan struct{}, 1)}
	go o.run()
	return o
}

// SetWebhook makes the server deliver webhooks to url, signed with secret (none when empty),
// from now on, as GitHub delivers an App's events. An empty url stops deliveries; those
// already queued still go to the URL they were queued for.
func (s *Server) SetWebhook(url string, secret []byte) {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	s.out.url, s.out.secret = url, append([]byte(nil), secret...)
}

// Deliveries returns the deliveries made so far, oldest first; queued ones appear once sent
// (Flush waits for them).
func (s *Server) Deliveries() []Delivery {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	out := make([]Delivery, len(s.out.log))
	for i, d := range s.out.log {
		d.Body, d.Response = bytes.Clone(d.Body), bytes.Clone(d.Response)
		out[i] = d
	}
	return out
}

// Flush waits until every delivery queued before the call has been answered, failed or been
// dropped by Close, or until ctx ends.
func (s *Server) Flush(ctx context.Context) error {
	o := s.out
	o.mu.Lock()
	target := o.queued
	for o.done < target {
		ch, left := o.progress, target-o.done
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("githubtest: %d webhook deliveries still queued: %w", left, ctx.Err())
		}
		o.mu.Lock()
	}
	o.mu.Unlock()
	return nil
}

// Redeliver sends a delivery again, as GitHub's "Redeliver" button does: the same body and
// delivery id, to the webhook's current URL and secret, after whatever is queued.
func (s *Server) Redeliver(id string) error {
	o := s.out
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.log) - 1; i >= 0; i-- {
		if d := o.log[i]; d.ID == id {
			if o.url == "" {
				return errors.New("githubtest: redelivering " + id + ": no webhook is set")
			}
			o.enqueueLocked(Delivery{ID: id, Event: d.Event, Action: d.Action, Body: d.Body, Redelivery: true}, closedGate)
			return nil
		}
	}
	return errors.New("githubtest: no delivery " + id + " to redeliver")
}

// emitLocked queues an event whose payload is v, if a webhook is set; ready is closed once the
// cause has been answered. The caller holds s.mu, so deliveries queue in the order of the
// changes that caused them.
func (s *Server) emitLocked(ready <-chan struct{}, event string, v map[string]any) {
	if !subscribed[event] {
		return
	}
	action, _ := v["action"].(string)
	body, err := json.Marshal(v)
	if err != nil {
		s.problemLocked("encoding a %s webhook: %v", event, err)
		return
	}
	if ready == nil {
		ready = closedGate
	}
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	if s.out.url != "" {
		s.out.enqueueLocked(Delivery{ID: uuid(), Event: event, Action: action, Body: body}, ready)
	}
}

// subscribed are the events the App subscribes to (appJSON's events).
var subscribed = map[string]bool{"push": true, "pull_request": true, "create": true, "issue_comment": true, "check_run": true}

func (o *outbox) enqueueLocked(d Delivery, ready <-chan struct{}) {
	d.HookID, d.URL, d.Queued = o.hookID, o.url, time.Now()
	var ids struct {
		Installation struct{ ID int64 } `json:"installation"`
		Repository   struct{ ID int64 } `json:"repository"`
	}
	_ = json.Unmarshal(d.Body, &ids) // every payload the server makes is a JSON object
	d.installationID, d.repositoryID = ids.Installation.ID, ids.Repository.ID
	d.reqHeader = o.headers(d, o.secret)
	p := &pending{d: d, ready: ready}
	o.queued++
	if o.closed {
		o.finishLocked(p, 0, nil, errors.New("the server was closed before the delivery was answered"))
		return
	}
	o.queue = append(o.queue, p)
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// finishLocked records a delivery's outcome, as an attempt of the delivery log, and wakes Flush.
func (o *outbox) finishLocked(p *pending, status int, resp []byte, err error) {
	p.d.Status, p.d.Response, p.d.Err = status, resp, err
	o.attempts++
	p.d.AttemptID = 80000000000 + o.attempts
	if p.d.DeliveredAt.IsZero() {
		p.d.DeliveredAt = time.Now()
	}
	o.log = append(o.log, p.d)
	o.done++
	close(o.progress)
	o.progress = make(chan struct{})
}

func (o *outbox) run() {
	defer close(o.stopped)
	for {
		o.mu.Lock()
		for len(o.queue) == 0 {
			o.mu.Unlock()
			select {
			case <-o.wake:
			case <-o.ctx.Done():
				return
			}
			o.mu.Lock()
		}
		p := o.queue[0]
		o.mu.Unlock()
		select {
		case <-p.ready:
		case <-o.ctx.Done():
			return
		}
		began := time.Now()
		a := o.send(p)
		o.mu.Lock()
		// Close may have dropped it meanwhile; then p is Close's, and its outcome stands.
		if len(o.queue) > 0 && o.queue[0] == p {
			o.queue = o.queue[1:]
			p.d.Took, p.d.DeliveredAt, p.d.respHeader, p.d.timedOut = time.Since(began), began, a.header, a.timedOut
			o.finishLocked(p, a.status, a.body, a.err)
		}
		o.mu.Unlock()
	}
}

// answer is how the receiver answered one attempt.
type answer struct {
	status   int // 0: no answer
	body     []byte
	header   http.Header
	timedOut bool
	err      error
}

// headers are GitHub's headers of a delivery, signed with secret (unsigned when it is empty).
func (o *outbox) headers(d Delivery, secret []byte) http.Header {
	h := http.Header{}
	h.Set("Accept", "*/*")
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", hookUserAgent)
	h.Set("X-GitHub-Delivery", d.ID)
	h.Set("X-GitHub-Event", d.Event)
	h.Set("X-GitHub-Hook-ID", strconv.FormatInt(d.HookID, 10))
	h.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(o.appID, 10))
	h.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	if len(secret) > 0 {
		h.Set("X-Hub-Signature", "sha1="+sign(sha1.New, secret, d.Body))
		h.Set("X-Hub-Signature-256", "sha256="+sign(sha256.New, secret, d.Body))
	}
	return h
}

// send POSTs one delivery with GitHub's headers. It only reads p: while it runs, Close may be
// recording p's outcome.
func (o *outbox) send(p *pending) answer {
	req, err := http.NewRequestWithContext(o.ctx, http.MethodPost, p.d.URL, bytes.NewReader(p.d.Body))
	if err != nil {
		return answer{err: err}
	}
	req.Header = p.d.reqHeader.Clone()
	resp, err := o.client.Do(req)
	if err != nil {
		var ne net.Error
		return answer{err: err, timedOut: errors.As(err, &ne) && ne.Timeout()}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header.Clone()}
	a.body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		a.err = fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return a
}

// close drops what is queued, cancels the delivery in flight and waits for the sender.
func (o *outbox) close() {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.closed = true
	q := o.queue
	o.queue = nil
	for _, p := range q {
		o.finishLocked(p, 0, nil, errors.New("the server was closed before the delivery was answered"))
	}
	o.mu.Unlock()
	o.cancel()
	<-o.stopped
}

func sign(h func() hash.Hash, secret, body []byte) string {
	m := hmac.New(h, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// uuid is a random (version 4) UUID, as GitHub's delivery ids are.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
