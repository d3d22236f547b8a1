package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
)

// scripted fails its first len(errs) runs with those errors, then succeeds.
type scripted struct {
	kind string
	mu   sync.Mutex
	errs []error
	runs int
}

func (s *scripted) Kind() string { return s.kind }

func (s *scripted) Run(context.Context, jobs.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return err
	}
	return nil
}

func newRunner(t *testing.T, execs ...Executor) (*Runner, *store.Store, *time.Time) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st.Now = clock
	r, err := New(st, execs, Options{Owner: "test", Now: clock, BaseBackoff: time.Second, MaxAttempts: 3}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return r, st, &now
}

func enqueue(t *testing.T, st *store.Store, kind, key string) {
	t.Helper()
	if _, _, err := st.EnqueueJob(context.Background(), jobs.Job{Kind: kind, Key: key, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		errs        []error
		runs        int // runs until no job is left
		wantPending bool
	}{
		{"succeeds", nil, 1, false},
		{"retried then succeeds", []error{errors.New("502")}, 2, false},
		{"terminal fails at once", []error{jobs.Terminal(errors.New("404"))}, 1, false},
		{"gives up after max attempts", []error{errors.New("a"), errors.New("b"), errors.New("c"), errors.New("d")}, 3, false},
		{"waits for a rate limit", []error{&jobs.RetryAfterError{After: time.Hour, Err: errors.New("limited")}}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &scripted{kind: "k", errs: tt.errs}
			r, st, now := newRunner(t, ex)
			enqueue(t, st, "k", "j1")
			ctx := context.Background()
			for range 10 {
				worked, err := r.RunOne(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !worked {
					*now = now.Add(11 * time.Second) // past any backoff of these attempts, not past an hour
					if worked, _ = r.RunOne(ctx); !worked {
						break
					}
				}
			}
			if ex.runs != tt.runs {
				t.Errorf("runs = %d, want %d", ex.runs, tt.runs)
			}
			pending, _ := st.PendingJobs(ctx)
			if (pending["k"] == 1) != tt.wantPending {
				t.Errorf("pending = %v, want pending %v", pending, tt.wantPending)
			}
		})
	}
}

func TestOnlyRegisteredKindsRun(t *testing.T) {
	ex := &scripted{kind: "k"}
	r, st, _ := newRunner(t, ex)
	enqueue(t, st, "other", "o1")
	if worked, err := r.RunOne(context.Background()); worked || err != nil {
		t.Fatalf("ran a job of an unregistered kind: %v %v", worked, err)
	}
	if p, _ := st.PendingJobs(context.Background()); p["other"] != 1 {
		t.Errorf("unregistered job lost: %v", p)
	}
}

func TestDuplicateKindsRefused(t *testing.T) {
	_, err := New(nil, []Executor{&scripted{kind: "k"}, &scripted{kind: "k"}}, Options{}, slog.Default())
	if err == nil {
		t.Error("two executors for one kind were accepted")
	}
}

func TestBackoffGrows(t *testing.T) {
	r := &Runner{o: Options{BaseBackoff: time.Second, MaxBackoff: time.Minute}}
	for attempt := range 10 {
		d := r.backoff(attempt)
		hi := min(time.Second<<attempt, time.Minute)
		if d < hi/2 || d > hi {
			t.Errorf("attempt %d: %s not within [%s, %s]", attempt, d, hi/2, hi)
		}
	}
}

func TestRunProcessesUntilCancelled(t *testing.T) {
	ex := &scripted{kind: "k"}
	r, st, _ := newRunner(t, ex)
	for i := range 5 {
		enqueue(t, st, "k", fmt.Sprint("j", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	r.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, _ := st.PendingJobs(context.Background()); p["k"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("jobs were not run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if ex.runs != 5 {
		t.Errorf("runs = %d, want 5", ex.runs)
	}
}
