package verify

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func check(url string) deploy.CheckRecord {
	return deploy.CheckRecord{Name: "health", URL: url, Status: 200, Interval: 10 * time.Second, Timeout: 5 * time.Second,
		Successes: 3, Deadline: t0.Add(time.Minute), NextAt: t0}
}

// TestAskJudgesTheAnswer asks httptest servers once each and checks the judgement: the status
// expected, the body pattern, a redirect taken as an answer (never followed), a body cut to an
// excerpt on one line.
func TestAskJudgesTheAnswer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		edit    func(*deploy.CheckRecord)
		ok      bool
		status  int
		why     string
		excerpt string
	}{
		{name: "200 as expected", handler: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }, ok: true, status: 200, excerpt: "ok"},
		{name: "503 is not 200", handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down for\n\tmaintenance", http.StatusServiceUnavailable)
		},
			status: 503, why: "status 503, want 200", excerpt: "down for maintenance"},
		{name: "body matches", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"status":"green","version":"c4295bd"}`))
		},
			edit: func(c *deploy.CheckRecord) { c.Body = `"version":"c4295bd"` }, ok: true, status: 200, excerpt: `{"status":"green","version":"c4295bd"}`},
		{name: "body does not match", handler: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"red"}`)) },
			edit: func(c *deploy.CheckRecord) { c.Body = `"status":"green"` }, status: 200, why: `body does not match "\"status\":\"green\""`, excerpt: `{"status":"red"}`},
		{name: "another status expected", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) },
			edit: func(c *deploy.CheckRecord) { c.Status = 204 }, ok: true, status: 204},
		{name: "a redirect is an answer, not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				t.Errorf("the redirect to %s was followed", r.URL.Path)
			}
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		}, status: 302, why: "status 302, want 200", excerpt: `<a href="http://169.254.169.254/latest/meta-data/">Found</a>.`},
		{name: "a long body is cut", handler: func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(strings.Repeat("x", 100000))) },
			ok: true, status: 200, excerpt: strings.Repeat("x", ExcerptLen) + "…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := check(srv.URL + "/")
			if tt.edit != nil {
				tt.edit(&c)
			}
			a := (&HTTP{Client: NewClient(), Now: func() time.Time { return t0 }}).Ask(context.Background(), c)
			if a.OK != tt.ok || a.Status != tt.status || a.Why != tt.why || a.Err != "" || a.Excerpt != tt.excerpt || !a.At.Equal(t0) {
				t.Errorf("answer = %+v, want ok %v, status %d, why %q, excerpt %q", a, tt.ok, tt.status, tt.why, tt.excerpt)
			}
		})
	}
}

// TestAskOfAServerThatNeverAnswers gets "no answer within" the check's timeout, not a hang: the
// server holds the request until the test ends.
func TestAskOfAServerThatNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := check(srv.URL)
	c.Timeout = 50 * time.Millisecond
	a := NewHTTP().Ask(context.Background(), c)
	if a.OK || a.Err != "no answer within 50ms" {
		t.Errorf("answer = %+v", a)
	}
}

// TestCheckNeverConnectsToTheMetadataService: whatever a name resolves to, the client refuses a
// link-local address (the cloud's metadata service hands out credentials).
func TestCheckNeverConnectsToTheMetadataService(t *testing.T) {
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:8080/", "http://0.0.0.0:80/"} {
		a := NewHTTP().Ask(context.Background(), check(u))
		if a.OK || !strings.Contains(a.Err, "refusing to connect") {
			t.Errorf("%s: answer = %+v, want a refusal to connect", u, a)
		}
	}
	// Not through a proxy either, whose address the check would judge instead.
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	if tr := NewClient().Transport.(*http.Transport); tr.Proxy != nil {
		t.Error("the client uses a proxy")
	}
	if !config.AllowedCheckIP(net.ParseIP("127.0.0.1")) || !config.AllowedCheckIP(net.ParseIP("10.0.0.7")) {
		t.Error("loopback and private addresses, where health endpoints live, must be allowed")
	}
}

// TestRecordDecides drives a check answer by answer on a fake clock: passing takes Successes
// answers as expected in a row; a bad answer starts the count again; a check fails as soon as
// its deadline leaves too few asks to pass, with the last answer's reason.
func TestRecordDecides(t *testing.T) {
	ok := deploy.Answer{Status: 200, OK: true}
	down := deploy.Answer{Status: 503, Why: "status 503, want 200", Excerpt: "down"}
	lost := deploy.Answer{Err: "no answer within 5s"}
	for _, tt := range []struct {
		name    string
		answers []deploy.Answer // one every 10 s from t0
		result  string
		why     string
		inRow   int
	}{
		{"three in a row pass", []deploy.Answer{ok, ok, ok}, deploy.CheckPassed, "", 3},
		{"warming up, then three in a row", []deploy.Answer{down, lost, ok, ok, ok}, deploy.CheckPassed, "", 3},
		{"a bad answer starts the count again", []deploy.Answer{ok, ok, down, ok}, "", "", 1},
		// The deadline is t0+60s: asks at 0..60 s are 7. After four bad ones, three are left.
		{"still time after four bad answers", []deploy.Answer{down, down, down, down}, "", "", 0},
		{"fails once too few asks are left", []deploy.Answer{down, down, down, down, down}, deploy.CheckFailed, "status 503, want 200", 0},
		{"fails with no answer at all", []deploy.Answer{lost, lost, lost, lost, lost}, deploy.CheckFailed, "no answer within 5s", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := check("http://health.test/")
			for i, a := range tt.answers {
				if c.Done() {
					t.Fatalf("decided (%s) after %d answers, before the last", c.Result, i)
				}
				a.At = t0.Add(time.Duration(i) * 10 * time.Second)
				Record(&c, a, a.At.Add(time.Second))
			}
			if c.Result != tt.result || c.Why != tt.why || c.InRow != tt.inRow || c.Answers != len(tt.answers) {
				t.Errorf("result %q (%q), %d in a row, %d answers; want %q (%q), %d, %d", c.Result, c.Why, c.InRow, c.Answers, tt.result, tt.why, tt.inRow, len(tt.answers))
			}
			if !c.Done() && !c.NextAt.Equal(t0.Add(time.Duration(len(tt.answers))*10*time.Second)) {
				t.Errorf("next ask at %s, want an interval after the last", c.NextAt)
			}
		})
	}
}

// TestRecordGoodAnswerTooLate: an answer as expected that leaves no time for the rest (the
// process was down a while) fails the check, saying so.
func TestRecordGoodAnswerTooLate(t *testing.T) {
	c := check("http://health.test/")
	at := t0.Add(55 * time.Second)
	Record(&c, deploy.Answer{At: at, Status: 200, OK: true}, at)
	if want := "only 1 answer(s) as expected in a row before its deadline, want 3"; c.Result != deploy.CheckFailed || c.Why != want {
		t.Errorf("result %q (%q), want failed (%q)", c.Result, c.Why, want)
	}
}

// fakeAsker answers from a script per URL and counts what it was asked.
type fakeAsker struct {
	answers map[string][]deploy.Answer
	asked   map[string]int
	now     func() time.Time
	cancel  func() // when set, called during the ask: the step was stopped
}

func (f *fakeAsker) Ask(_ context.Context, c deploy.CheckRecord) deploy.Answer {
	if f.cancel != nil {
		f.cancel()
	}
	n := f.asked[c.URL]
	f.asked[c.URL]++
	a := f.answers[c.URL][min(n, len(f.answers[c.URL])-1)]
	a.At = f.now()
	return a
}

// TestRoundAsksOnlyWhatIsDue runs rounds on a fake clock with two checks at different
// intervals: each is asked when due and not before, and Round says when the next one is due.
func TestRoundAsksOnlyWhatIsDue(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	f := &fakeAsker{answers: map[string][]deploy.Answer{"http://a/": {{Status: 200, OK: true}}, "http://b/": {{Status: 200, OK: true}}},
		asked: map[string]int{}, now: clock}
	a, b := check("http://a/"), check("http://b/")
	b.Interval, b.Successes = 25*time.Second, 2
	checks := []deploy.CheckRecord{a, b}
	var rounds []time.Duration
	for range 10 {
		next, err := Round(context.Background(), f, checks, clock)
		if err != nil {
			t.Fatal(err)
		}
		if next.IsZero() {
			break
		}
		rounds = append(rounds, next.Sub(now))
		now = next
	}
	if checks[0].Result != deploy.CheckPassed || checks[1].Result != deploy.CheckPassed {
		t.Fatalf("checks = %+v", checks)
	}
	if f.asked["http://a/"] != 3 || f.asked["http://b/"] != 2 {
		t.Errorf("asked %v, want a 3 times and b twice", f.asked)
	}
	if want := []time.Duration{10 * time.Second, 10 * time.Second, 5 * time.Second}; len(rounds) != len(want) || rounds[0] != want[0] || rounds[1] != want[1] || rounds[2] != want[2] {
		t.Errorf("waits between rounds = %v, want %v", rounds, want)
	}
}

// TestRoundStoppedMidAskRecordsNothing: a step stopped while asking (its lease lost, the process
// going down) records no answer, so the next replica neither counts it nor loses count.
func TestRoundStoppedMidAskRecordsNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeAsker{answers: map[string][]deploy.Answer{"http://a/": {{Status: 200, OK: true}}}, asked: map[string]int{},
		now: func() time.Time { return t0 }, cancel: cancel}
	checks := []deploy.CheckRecord{check("http://a/")}
	if _, err := Round(ctx, f, checks, func() time.Time { return t0 }); err == nil {
		t.Fatal("no error from a stopped round")
	}
	if checks[0].Answers != 0 || checks[0].InRow != 0 || checks[0].Last != nil {
		t.Errorf("a stopped ask was recorded: %+v", checks[0])
	}
}

// TestChecksOfAPhase splits the configured checks between the idle slot (before the switch,
// {slot} filled in) and the live phase.
func TestChecksOfAPhase(t *testing.T) {
	cfg := []config.HTTPCheck{{Name: "preview", URL: "http://api-{slot}.prod.svc/healthz", Duration: time.Minute},
		{Name: "public", URL: "https://api.acme.dev/healthz", Duration: 2 * time.Minute}}
	idle := Checks(cfg, deploy.VerifyIdle, "prod-backup", t0)
	live := Checks(cfg, deploy.VerifyLive, "prod-backup", t0)
	if len(idle) != 1 || idle[0].URL != "http://api-prod-backup.prod.svc/healthz" || !idle[0].Deadline.Equal(t0.Add(time.Minute)) {
		t.Errorf("idle = %+v", idle)
	}
	if len(live) != 1 || live[0].Name != "public" || !live[0].NextAt.Equal(t0) || !live[0].Deadline.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("live = %+v", live)
	}
}

func TestExcerpt(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"  ok \r\n":                "ok",
		"a\x00b\x1b[31mc":          "a b [31mc",
		"\xff\xfe bad utf8":        "� bad utf8",
		"<h1>502 Bad Gateway</h1>": "<h1>502 Bad Gateway</h1>",
	} {
		if got := Excerpt([]byte(in)); got != want {
			t.Errorf("Excerpt(%q) = %q, want %q", in, got, want)
		}
	}
}
