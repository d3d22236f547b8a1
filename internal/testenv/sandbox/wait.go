package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"golang.org/x/term"
)

// printer tells the story: a line per event and, while something is awaited, one progress line
// that is rewritten in place on a terminal and printed when it changes elsewhere.
type printer struct {
	mu       sync.Mutex
	out      io.Writer
	tty      bool
	progress string // the progress line on screen, if any
}

func newPrinter(out io.Writer) *printer {
	p := &printer{out: out}
	if f, ok := out.(*os.File); ok {
		p.tty = term.IsTerminal(int(f.Fd()))
	}
	return p
}

func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.progress != "" {
		fmt.Fprint(p.out, "\r\033[K")
	}
	p.progress = ""
	fmt.Fprintf(p.out, format+"\n", args...)
}

// update shows what is awaited now and for how long. Off a terminal a line is printed only when
// what is awaited changes, not for every second of it.
func (p *printer) update(text string, waited time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.progress = text
		fmt.Fprintf(p.out, "\r\033[K      ⏳ %s (%s)", text, waited.Round(time.Second))
		return
	}
	if text == p.progress {
		return
	}
	p.progress = text
	fmt.Fprintf(p.out, "      ⏳ %s\n", text)
}

// apiDeploy is a deploy as GET /api/v1/deployments shows it.
type apiDeploy struct {
	ID       int64     `json:"id"`
	Stage    string    `json:"stage"`
	SHA      string    `json:"sha"`
	Mode     string    `json:"mode"`
	State    string    `json:"state"`
	Step     string    `json:"step"`
	Progress string    `json:"progress"`
	Slot     string    `json:"slot"`
	Error    string    `json:"error"`
	Image    string    `json:"image"`
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at"`
	Waiting  *apiWait  `json:"waiting"`
	Trigger  struct {
		Event string `json:"event"`
		Actor string `json:"actor"`
	} `json:"trigger"`
}

func (d apiDeploy) final() bool {
	switch d.State {
	case "succeeded", "failed", "rolled_back", "superseded", "cancelled":
		return true
	}
	return false
}

func (d apiDeploy) took() time.Duration {
	if d.Started.IsZero() || d.Finished.IsZero() {
		return 0
	}
	if took := d.Finished.Sub(d.Started); took < time.Second {
		return took.Round(time.Millisecond)
	}
	return d.Finished.Sub(d.Started).Round(100 * time.Millisecond)
}

// get reads a JSON document from Stagecoach's API.
func (w *World) get(ctx context.Context, path string, q url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+w.apiToken) // the sandbox reads as a script would
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// deploys lists a stage's newest deploys (stage "" for every stage).
func (w *World) deploys(ctx context.Context, stage string) ([]apiDeploy, error) {
	var out struct {
		Deployments []apiDeploy `json:"deployments"`
	}
	q := url.Values{"app": {app}, "limit": {"50"}}
	if stage != "" {
		q.Set("stage", stage)
	}
	err := w.get(ctx, "/api/v1/deployments", q, &out)
	return out.Deployments, err
}

// await polls check until it reports done, showing what it says meanwhile; it gives up after
// limit.
func (w *World) await(ctx context.Context, limit time.Duration, check func() (progress string, done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	last := ""
	for {
		progress, done, err := check()
		if err != nil || done {
			return err
		}
		if progress != "" {
			last = progress
			w.p.update(progress, time.Since(start))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s waiting for: %s", limit, last)
		case <-t.C:
		}
	}
}

// awaitDeploy waits for the newest deploy of sha to stage newer than after to end, showing its
// step and progress, and returns it.
func (w *World) awaitDeploy(ctx context.Context, stage, sha string, after int64) (apiDeploy, error) {
	var found apiDeploy
	err := w.await(ctx, 3*time.Minute, func() (string, bool, error) {
		ds, err := w.deploys(ctx, stage)
		if err != nil {
			return "", false, err
		}
		for _, d := range ds {
			if d.SHA != sha || d.ID <= after {
				continue
			}
			found = d
			if d.final() {
				return "", true, nil
			}
			what := fmt.Sprintf("%s: deploy #%d %s", stage, d.ID, strings.ReplaceAll(d.State, "_", " "))
			if d.Step != "" {
				what += ", step " + d.Step
			}
			if d.Progress != "" {
				what += ": " + d.Progress
			}
			return what, false, nil
		}
		return fmt.Sprintf("%s: waiting for a deploy of %s", stage, deploy.ShortSHA(sha)), false, nil
	})
	return found, err
}

// lastDeploy is the id of the newest deploy to stage, 0 for none.
func (w *World) lastDeploy(ctx context.Context, stage string) (int64, error) {
	ds, err := w.deploys(ctx, stage)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	return ds[0].ID, nil
}

// awaitReply waits for Stagecoach's answer on issue newer than comment id after, containing want.
func (w *World) awaitReply(ctx context.Context, issue int, after int64, want string) (string, error) {
	var body string
	err := w.await(ctx, time.Minute, func() (string, bool, error) {
		for _, c := range w.GitHub.Comments(repo, issue) {
			if c.ID > after && c.User == "" && strings.Contains(c.Body, want) {
				body = c.Body
				return "", true, nil
			}
		}
		return fmt.Sprintf("Stagecoach's answer on #%d", issue), false, nil
	})
	return body, err
}

// firstLine is a comment's first line without Markdown emphasis, for the story.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "<!--") {
			return strings.NewReplacer("**", "", "### ", "").Replace(l)
		}
	}
	return ""
}
