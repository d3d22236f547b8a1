// Package verify checks a deploy once it is out: it asks the HTTP checks an app's stage
// configures and decides, answer by answer, whether each passed (the status and body expected,
// so many times in a row) or failed (that can no longer happen before its deadline). It keeps no
// state of its own: a check's answers live in its deploy.CheckRecord, which the pipeline stores
// after every round, so a restarted process carries on counting where the last one stood.
//
// The URLs come from the operator's configuration (stagecoach.yaml, which config validates:
// http or https, no credentials, no link-local address), never from a repository or a pull
// request. Still, the client refuses to connect to link-local, multicast or unspecified
// addresses (the cloud's metadata service hands out credentials; a name can resolve to it),
// follows no redirect, sends no cookie, and reads at most a small part of a body.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// ExcerptLen is how many characters of a body an answer keeps: enough to recognise an error
// page, too few to carry much of anything else onto GitHub.
const ExcerptLen = 120

// bodyLimit is how much of a body is read and matched.
const bodyLimit = 64 << 10

// Checks are the records of the checks phase runs, from the app's stage configuration: in the
// idle phase, those naming {slot}, asked of slot; in the live phase, the others. Each has until
// now plus its duration to pass, and is asked first at now.
func Checks(cfg []config.HTTPCheck, phase, slot string, now time.Time) []deploy.CheckRecord {
	var out []deploy.CheckRecord
	for _, h := range cfg {
		if h.Idle() != (phase == deploy.VerifyIdle) {
			continue
		}
		out = append(out, deploy.CheckRecord{Name: h.Name, URL: h.URLFor(slot), Status: h.Status, Body: h.Body, Interval: h.Interval,
			Timeout: h.Timeout, Successes: h.Successes, Deadline: now.Add(h.Duration), NextAt: now})
	}
	return out
}

// Asker asks a check once.
type Asker interface {
	Ask(ctx context.Context, c deploy.CheckRecord) deploy.Answer
}

// HTTP asks checks over HTTP.
type HTTP struct {
	Client *http.Client
	Now    func() time.Time
}

// NewHTTP is an HTTP asker with NewClient's client and the wall clock.
func NewHTTP() *HTTP { return &HTTP{Client: NewClient(), Now: time.Now} }

// NewClient is the HTTP client checks are asked with: no redirects followed (a redirect is an
// answer, judged by its status), no cookies, no proxy (HTTP_PROXY is ignored), and no connection
// to an address config.AllowedCheckIP refuses, whatever name resolved to it.
func NewClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !config.AllowedCheckIP(ip) {
			return fmt.Errorf("refusing to connect to %s: link-local, multicast or unspecified addresses are never checked", host)
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.Proxy = nil // through a proxy, the address check would judge the proxy, not the check's host
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Ask asks c's URL once, within c's timeout, and judges the answer. An answer that arrives after
// ctx itself ended is no answer to record: Ask then returns one with Err set, and Round drops it.
func (h *HTTP) Ask(ctx context.Context, c deploy.CheckRecord) deploy.Answer {
	a := deploy.Answer{At: h.Now()}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		a.Err = "bad URL: " + err.Error()
		return a
	}
	req.Header.Set("User-Agent", "stagecoach-verify")
	resp, err := h.Client.Do(req)
	if err != nil {
		a.Err = transportError(err, c.Timeout)
		return a
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	a.Status, a.Excerpt = resp.StatusCode, Excerpt(body)
	if err != nil {
		a.Err = "reading the body: " + transportError(err, c.Timeout)
		return a
	}
	a.OK, a.Why = judge(c, a.Status, body)
	return a
}

// judge says whether status and body are what c expects, and if not, why.
func judge(c deploy.CheckRecord, status int, body []byte) (bool, string) {
	if status != c.Status {
		return false, fmt.Sprintf("status %d, want %d", status, c.Status)
	}
	if c.Body == "" {
		return true, ""
	}
	re, err := regexp.Compile(c.Body)
	if err != nil {
		return false, fmt.Sprintf("body pattern: %v", err) // config refuses these: a record from elsewhere
	}
	if !re.Match(body) {
		return false, fmt.Sprintf("body does not match %q", c.Body)
	}
	return true, ""
}

// transportError is a request's error for people: the URL is left out (it is shown beside).
func transportError(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// Excerpt is the start of body on one line: at most ExcerptLen characters, control characters
// and runs of white space as one space, invalid UTF-8 replaced.
func Excerpt(body []byte) string {
	s := strings.ToValidUTF8(string(body[:min(len(body), 4*ExcerptLen)]), "�")
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = n > 0
			continue
		}
		if n >= ExcerptLen {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Record adds answer a, given at now, to c and decides c when it can be: passed once it has
// answered as expected Successes times in a row, failed once that can no longer happen before
// its deadline (the asks left at its interval are too few), else next asked an interval after a.
func Record(c *deploy.CheckRecord, a deploy.Answer, now time.Time) {
	c.Answers++
	c.Last = &a
	if a.OK {
		c.InRow++
	} else {
		c.InRow = 0
	}
	if c.InRow >= c.Successes {
		c.Result = deploy.CheckPassed
		return
	}
	c.NextAt = a.At.Add(c.Interval)
	if c.NextAt.Before(now) {
		c.NextAt = now
	}
	left := 0
	if !c.NextAt.After(c.Deadline) {
		left = int(c.Deadline.Sub(c.NextAt)/c.Interval) + 1
	}
	if c.InRow+left >= c.Successes {
		return
	}
	c.Result = deploy.CheckFailed
	switch {
	case a.Err != "":
		c.Why = a.Err
	case !a.OK:
		c.Why = a.Why
	default:
		c.Why = fmt.Sprintf("only %d answer(s) as expected in a row before its deadline, want %d", c.InRow, c.Successes)
	}
}

// Round asks every check of checks that is due at now and records its answer. It returns when
// the next one is due (zero when every check is decided), or ctx's error when ctx ended: the
// answers of the round are then partial, and nothing is recorded for a check whose request ctx
// cut short.
func Round(ctx context.Context, asker Asker, checks []deploy.CheckRecord, now func() time.Time) (time.Time, error) {
	var next time.Time
	for i := range checks {
		c := &checks[i]
		if c.Done() {
			continue
		}
		if !c.NextAt.After(now()) {
			a := asker.Ask(ctx, *c)
			if err := ctx.Err(); err != nil {
				return time.Time{}, err
			}
			Record(c, a, now())
			if c.Done() {
				continue
			}
		}
		if next.IsZero() || c.NextAt.Before(next) {
			next = c.NextAt
		}
	}
	return next, nil
}
