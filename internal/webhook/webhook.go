// Package webhook is the intake: it authenticates GitHub's deliveries, routes each event to its
// handler and records the delivery together with the work it implies, durably, before it
// answers. GitHub waits 10 s for an answer and never redelivers by itself, so a 2xx here is a
// promise that the work is on disk; anything short of that answers 5xx so the sender can retry.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stagecoach/stagecoach/handlers"
	"github.com/stagecoach/stagecoach/internal/store"
)

// MaxBody is the largest payload GitHub sends (25 MiB); larger bodies are refused with 413.
const MaxBody = 25 << 20

// Recorder durably records a delivery and its work in one transaction.
type Recorder interface {
	Record(ctx context.Context, in store.Intake) (store.Recorded, error)
}

// Observer hears the outcome of every delivery: for metrics, and to wake the workers.
type Observer interface {
	Delivered(event string, result Result)
}

// Result classifies how a delivery ended; it is a metric label, so the set is fixed.
type Result string

// The results of a delivery.
const (
	Accepted     Result = "accepted"     // work recorded
	Duplicate    Result = "duplicate"    // a redelivery: nothing new
	Ignored      Result = "ignored"      // no work implied
	Pinged       Result = "ping"         // GitHub's ping
	Unauthorized Result = "unauthorized" // missing or wrong signature
	Malformed    Result = "malformed"    // bad JSON or headers
	TooLarge     Result = "too_large"    // over MaxBody
	Busy         Result = "busy"         // unverified bodies at their cap: 503 with Retry-After
	TimedOut     Result = "timeout"      // the body did not arrive within the body timeout: 408
	Failed       Result = "error"        // could not record: 503
)

// Intake is the http.Handler for POST /webhook.
type Intake struct {
	secret   []byte
	routes   map[string]handlers.Handler
	recorder Recorder
	observer Observer
	log      *slog.Logger
	budget   *budget
	timeout  time.Duration
	warned   atomic.Int64 // unix time of the last "budget exhausted" warning
}

// Options bound what the intake does before a delivery is authenticated: anyone on the internet
// can send it bytes, and until the signature is checked they are a stranger's.
type Options struct {
	// MaxUnverified caps the bytes of bodies read but not yet verified, over all requests at
	// once (default DefaultMaxUnverified). A request that would pass it is answered 503 with
	// Retry-After at once, and its connection closed. A quarter is kept for bodies of at most
	// SmallBody bytes, so that large uploads cannot crowd out GitHub's usual deliveries.
	MaxUnverified int64
	// BodyTimeout bounds reading one body (default DefaultBodyTimeout): GitHub itself gives up on
	// a delivery after 10 s, so a sender slower than that is not GitHub.
	BodyTimeout time.Duration
}

// The defaults of Options.
const (
	DefaultMaxUnverified = 64 << 20
	DefaultBodyTimeout   = 10 * time.Second
	// MinMaxUnverified is the smallest cap: one of GitHub's largest deliveries must fit in the
	// three quarters large bodies may use, with room beside it.
	MinMaxUnverified = 48 << 20
)

// New builds the intake from the webhook secret, the one list of handlers, the recorder, an
// observer (nil for none) and its limits.
func New(secret []byte, hs []handlers.Handler, rec Recorder, obs Observer, log *slog.Logger, o Options) (*Intake, error) {
	if len(secret) == 0 {
		return nil, errors.New("webhook: empty secret: every delivery would be unverifiable")
	}
	if o.MaxUnverified == 0 {
		o.MaxUnverified = DefaultMaxUnverified
	}
	if o.MaxUnverified < MinMaxUnverified {
		return nil, fmt.Errorf("webhook: the unverified-bytes cap %d is below %d (one of GitHub's largest deliveries, with room beside it)", o.MaxUnverified, MinMaxUnverified)
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	routes := map[string]handlers.Handler{}
	for _, h := range hs {
		for _, name := range h.Handles() {
			if _, dup := routes[name]; dup {
				return nil, fmt.Errorf("webhook: two handlers for event %q", name)
			}
			routes[name] = h
		}
	}
	return &Intake{secret: secret, routes: routes, recorder: rec, observer: obs, log: log,
		budget: &budget{max: o.MaxUnverified, reserve: o.MaxUnverified / 4}, timeout: o.BodyTimeout}, nil
}

// Unverified is how many bytes of bodies not yet verified the intake holds now (a metric).
func (in *Intake) Unverified() int64 { return in.budget.used.Load() }

// retryAfter is what a refused sender is told to wait: the longest a stalled upload can hold its
// share of the budget.
func (in *Intake) retryAfter() string { return strconv.Itoa(int(in.timeout.Seconds() + 0.5)) }

// ServeHTTP implements http.Handler.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := r.Header.Get("X-GitHub-Event")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		in.reply(w, event, Malformed, http.StatusMethodNotAllowed, "webhooks are POSTed")
		return
	}
	// Everything that can be refused from the headers alone is refused before a byte of the
	// body is read.
	sum, ok := parseSignature(r.Header.Get("X-Hub-Signature-256"))
	if !ok {
		in.log.Warn("webhook signature missing or wrong", "event", event, "delivery", r.Header.Get("X-GitHub-Delivery"), "remote", r.RemoteAddr)
		w.Header().Set("Connection", "close")
		in.reply(w, event, Unauthorized, http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256")
		return
	}
	if r.ContentLength > MaxBody {
		w.Header().Set("Connection", "close")
		in.reply(w, event, TooLarge, http.StatusRequestEntityTooLarge, "payload larger than 25 MiB")
		return
	}
	// The body deadline: the server's own timeouts only bound the headers.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(in.timeout))
	bd, err := in.read(r.Body, r.ContentLength)
	defer bd.free()
	if err != nil {
		in.readFailed(w, r, event, err)
		return
	}
	if !bd.verified(sum[:]) {
		in.log.Warn("webhook signature missing or wrong", "event", event, "delivery", r.Header.Get("X-GitHub-Delivery"), "remote", r.RemoteAddr)
		in.reply(w, event, Unauthorized, http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256")
		return
	}
	in.handle(w, r, event, bd.bytes())
}

// readFailed answers a body that could not be read whole. The answers are fixed texts: nothing
// of an error leaves for a sender not yet authenticated.
func (in *Intake) readFailed(w http.ResponseWriter, r *http.Request, event string, err error) {
	// The rest of the body is not read: the connection must not be reused.
	w.Header().Set("Connection", "close")
	var netErr net.Error
	switch {
	case errors.Is(err, errTooLarge):
		in.reply(w, event, TooLarge, http.StatusRequestEntityTooLarge, "payload larger than 25 MiB")
	case errors.Is(err, errBusy):
		// Say so in the log now and then, not once per refused request: under attack that
		// would be a flood of its own.
		if now := time.Now().Unix(); in.warned.Load() < now-10 {
			in.warned.Store(now)
			in.log.Warn("webhook: unverified bodies at their cap; refusing requests with 503", "cap_bytes", in.budget.max, "remote", r.RemoteAddr)
		}
		w.Header().Set("Retry-After", in.retryAfter())
		in.reply(w, event, Busy, http.StatusServiceUnavailable, "too many deliveries in flight; retry later")
	case errors.As(err, &netErr) && netErr.Timeout():
		in.log.Info("webhook body not received in time", "event", event, "remote", r.RemoteAddr, "timeout", in.timeout)
		in.reply(w, event, TimedOut, http.StatusRequestTimeout, "body not received in time")
	default:
		in.log.Info("reading webhook body", "event", event, "remote", r.RemoteAddr, "err", err)
		in.reply(w, event, Malformed, http.StatusBadRequest, "could not read the body")
	}
}

// handle routes a verified delivery to its handler and records what it implies.
func (in *Intake) handle(w http.ResponseWriter, r *http.Request, event string, body []byte) {
	delivery := r.Header.Get("X-GitHub-Delivery")
	if event == "" || delivery == "" {
		in.reply(w, event, Malformed, http.StatusBadRequest, "X-GitHub-Event and X-GitHub-Delivery are required")
		return
	}
	if event == "ping" {
		in.reply(w, event, Pinged, http.StatusOK, "pong")
		return
	}
	h, ok := in.routes[event]
	if !ok {
		in.log.Debug("event not handled", "event", event, "delivery", delivery)
		in.reply(w, event, Ignored, http.StatusAccepted, "event "+event+" is not handled")
		return
	}
	res, err := h.Handle(r.Context(), handlers.Event{Name: event, Delivery: delivery, Payload: body})
	var malformed *handlers.MalformedError
	if errors.As(err, &malformed) {
		// The sender proved it holds the secret: it is GitHub, and the reason helps in its
		// delivery log.
		in.log.Info("malformed payload", "event", event, "delivery", delivery, "err", err)
		in.reply(w, event, Malformed, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		in.log.Error("handling event", "event", event, "delivery", delivery, "err", err)
		in.reply(w, event, Failed, http.StatusInternalServerError, "internal error")
		return
	}
	if res.Empty() {
		in.log.Debug("event ignored", "event", event, "delivery", delivery, "repo", res.Repo, "reason", res.Ignored)
		in.reply(w, event, Ignored, http.StatusAccepted, res.Ignored)
		return
	}
	rec, err := in.recorder.Record(r.Context(), store.Intake{
		Delivery: store.Delivery{ID: delivery, Event: event, Action: res.Action, Repo: res.Repo, InstallationID: res.InstallationID},
		Deploys:  res.Deploys,
		Jobs:     res.Jobs,
	})
	if err != nil {
		// Not recorded, so not accepted: a 503 makes the failure visible in GitHub's delivery
		// log, from where it can be redelivered.
		in.log.Error("recording delivery", "event", event, "delivery", delivery, "repo", res.Repo, "err", err)
		in.reply(w, event, Failed, http.StatusServiceUnavailable, "could not record the delivery; redeliver it")
		return
	}
	if rec.Duplicate {
		in.reply(w, event, Duplicate, http.StatusAccepted, "delivery "+delivery+" was recorded before")
		return
	}
	in.accepted(w, event, delivery, res, rec)
}

func (in *Intake) accepted(w http.ResponseWriter, event, delivery string, res handlers.Result, rec store.Recorded) {
	for i, d := range rec.Deploys {
		req := res.Deploys[i]
		in.log.Info("deploy requested", "delivery", delivery, "event", event, "app", req.App, "stage", req.Stage,
			"sha", req.SHA, "deploy", d.ID, "new", d.New, "superseded", d.Superseded)
	}
	if in.observer != nil {
		in.observer.Delivered(event, Accepted)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	b := make([]byte, 0, 128)
	b = append(b, `{"result":"accepted","delivery":`...)
	b = strconv.AppendQuote(b, delivery)
	b = append(b, `,"deploys":[`...)
	for i, d := range rec.Deploys {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d.ID, 10)
	}
	b = append(b, `],"jobs":`...)
	b = strconv.AppendInt(b, int64(len(res.Jobs)), 10)
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
}

// reply answers with a small JSON body and tells the observer.
func (in *Intake) reply(w http.ResponseWriter, event string, result Result, status int, msg string) {
	if in.observer != nil {
		in.observer.Delivered(event, result)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Result  Result `json:"result"`
		Message string `json:"message"`
	}{result, msg})
}

// parseSignature reads an X-Hub-Signature-256 header: "sha256=" and 64 hex digits.
func parseSignature(header string) (sum [sha256.Size]byte, ok bool) {
	const prefix = "sha256="
	if len(header) != len(prefix)+2*sha256.Size || header[:len(prefix)] != prefix {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(header[len(prefix):])); err != nil {
		return sum, false
	}
	return sum, true
}

// Sign returns the X-Hub-Signature-256 value of body under secret, as GitHub computes it. The
// load and replay commands and the tests use it.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
