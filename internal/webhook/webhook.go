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
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

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
	Failed       Result = "error"        // could not record: 503
)

// Intake is the http.Handler for POST /webhook.
type Intake struct {
	secret   []byte
	routes   map[string]handlers.Handler
	recorder Recorder
	observer Observer
	log      *slog.Logger
}

// New builds the intake from the webhook secret, the one list of handlers, the recorder and an
// observer (nil for none).
func New(secret []byte, hs []handlers.Handler, rec Recorder, obs Observer, log *slog.Logger) (*Intake, error) {
	if len(secret) == 0 {
		return nil, errors.New("webhook: empty secret: every delivery would be unverifiable")
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
	return &Intake{secret: secret, routes: routes, recorder: rec, observer: obs, log: log}, nil
}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 1 << 20

// bufPool recycles request body buffers: payloads are 5-30 KB and arrive thousands a second.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// ServeHTTP implements http.Handler.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := r.Header.Get("X-GitHub-Event")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		in.reply(w, event, Malformed, http.StatusMethodNotAllowed, "webhooks are POSTed")
		return
	}
	bp := bufPool.Get().(*[]byte)
	body, err := readBody(r, (*bp)[:0])
	defer func() {
		// Keep ordinary buffers; let a rare huge one go rather than pin it in the pool.
		if cap(body) <= maxPooled {
			*bp = body[:0]
			bufPool.Put(bp)
		}
	}()
	if errors.Is(err, errTooLarge) {
		in.reply(w, event, TooLarge, http.StatusRequestEntityTooLarge, "payload larger than 25 MiB")
		return
	}
	if err != nil {
		in.reply(w, event, Malformed, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	if !in.verify(r.Header.Get("X-Hub-Signature-256"), body) {
		in.log.Warn("webhook signature missing or wrong", "event", event, "delivery", r.Header.Get("X-GitHub-Delivery"), "remote", r.RemoteAddr)
		in.reply(w, event, Unauthorized, http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256")
		return
	}
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

// verify checks GitHub's HMAC-SHA256 signature of the exact body in constant time.
func (in *Intake) verify(header string, body []byte) bool {
	const prefix = "sha256="
	if len(header) != len(prefix)+2*sha256.Size || header[:len(prefix)] != prefix {
		return false
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], []byte(header[len(prefix):])); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, in.secret)
	mac.Write(body)
	var want [sha256.Size]byte
	return hmac.Equal(mac.Sum(want[:0]), got[:])
}

// Sign returns the X-Hub-Signature-256 value of body under secret, as GitHub computes it. The
// load and replay commands and the tests use it.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

var errTooLarge = errors.New("body too large")

// readBody reads the whole body into buf, refusing more than MaxBody bytes without reading them.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.ContentLength > MaxBody {
		return buf, errTooLarge
	}
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength)
	}
	lr := io.LimitReader(r.Body, MaxBody+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > MaxBody {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
