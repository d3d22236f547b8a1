package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// handOverTTL is the job lease of the hand-over test: long enough that a replica on a busy
// machine keeps renewing it, short enough for the test to see several renewals.
const handOverTTL = 3 * time.Second

// TestReplicaKilledMidJobHandsItsJobOverWithinAFewLeases runs a job on a replica (a real child
// process, on PostgreSQL) that never finishes it, beside a second replica polling for work.
// While the first lives, its heartbeats renew the lease on the database's clock and the second
// never takes the job; once it is killed with SIGKILL, the second takes the job over as soon as
// the last lease lapses, runs it once and finishes it. The old runner had no heartbeats: a job
// that ran longer than its lease (two minutes by default, which is also how long a dead
// replica's jobs waited) was taken over while its replica still ran it.
func TestReplicaKilledMidJobHandsItsJobOverWithinAFewLeases(t *testing.T) {
	if os.Getenv("STAGECOACH_HANDOVER_CHILD") != "" {
		t.Skip("child process")
	}
	dsn := pgtest.URL(t)
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, _, err := st.EnqueueJob(ctx, jobs.Job{Kind: "slow", Key: "slow/1", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^TestHandOverChild$", "-test.count=1")
	child.Env = append(os.Environ(), "STAGECOACH_HANDOVER_CHILD=1", "STAGECOACH_HANDOVER_DSN="+dsn)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	})
	owner := "child-" + strconv.Itoa(child.Process.Pid)
	held := waitLease(t, st, id, "the child to claim the job", func(l store.JobLease) bool { return l.Owner == owner && l.State == "running" })

	// The survivor polls all along; its executor finishes the job at once and notes the lease
	// it ran under.
	var mu sync.Mutex
	var runs []store.JobLease
	survivor, err := New(st, []Executor{Handle("slow", func(ctx context.Context, j jobs.Job, _ struct{}) error {
		l, err := st.JobLease(ctx, j.ID)
		if err != nil {
			return err
		}
		mu.Lock()
		runs = append(runs, l)
		mu.Unlock()
		return nil
	})}, Options{Owner: "survivor", LeaseTTL: handOverTTL, Poll: 20 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = survivor.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	// While the child lives, each renewal moves the lease's end on, and the job stays its.
	last := held
	for renewals := 0; renewals < 3; {
		l := waitLease(t, st, id, "the child to renew its lease", func(l store.JobLease) bool {
			return l.Owner != owner || l.Token != held.Token || l.Expires.After(last.Expires)
		})
		if l.Owner != owner || l.Token != held.Token {
			t.Fatalf("the job was taken over while the replica running it was alive: %+v, was %+v", l, held)
		}
		last, renewals = l, renewals+1
	}

	_ = child.Process.Kill()
	_ = child.Wait()
	killed = true
	if l, err := st.JobLease(ctx, id); err == nil && l.Owner == owner {
		last = l // the child's final renewal
	}

	final := waitLease(t, st, id, "the survivor to take the job over and finish it", func(l store.JobLease) bool { return l.State == "done" })
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 1 {
		t.Fatalf("the survivor ran the job %d times, want once", len(runs))
	}
	took := runs[0]
	if took.Owner != "survivor" || took.Token != held.Token+1 || final.Token != held.Token+1 {
		t.Errorf("takeover lease %+v, final %+v: want the survivor's, one claim after the child's (token %d)", took, final, held.Token)
	}
	// Both ends are the database's clock: the survivor's claim began its lease TTL before the
	// lease's end, after the dead child's last lease lapsed and within a few lease periods of it.
	claimed := took.Expires.Add(-handOverTTL)
	if claimed.Before(last.Expires) {
		t.Errorf("taken over at %s, before the child's lease ended at %s", claimed, last.Expires)
	}
	if gap := claimed.Sub(last.Expires); gap > 3*handOverTTL {
		t.Errorf("taken over %s after the child's lease ended, want within a few lease periods (%s)", gap, 3*handOverTTL)
	}
}

// waitLease polls job id's lease until cond holds, for up to a minute.
func waitLease(t *testing.T, st *store.Store, id int64, what string, cond func(store.JobLease) bool) store.JobLease {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		l, err := st.JobLease(context.Background(), id)
		if err == nil && cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: lease %+v, %v", what, l, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHandOverChild is the replica TestReplicaKilledMidJobHandsItsJobOverWithinAFewLeases kills:
// a runner whose executor never finishes.
func TestHandOverChild(t *testing.T) {
	if os.Getenv("STAGECOACH_HANDOVER_CHILD") == "" {
		t.Skip("only runs as the child of TestReplicaKilledMidJobHandsItsJobOverWithinAFewLeases")
	}
	st, err := store.Open(context.Background(), os.Getenv("STAGECOACH_HANDOVER_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	block := Handle("slow", func(ctx context.Context, _ jobs.Job, _ struct{}) error { <-ctx.Done(); return ctx.Err() })
	r, err := New(st, []Executor{block}, Options{Owner: fmt.Sprintf("child-%d", os.Getpid()), LeaseTTL: handOverTTL,
		RunTimeout: time.Hour, Poll: 20 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Run(context.Background()) // until killed
}

// leaseStore is the store with heartbeats scripted: nil until steal, then fail.
type leaseStore struct {
	*store.Store
	mu    sync.Mutex
	steal bool
	fail  error
}

func (s *leaseStore) HeartbeatJob(ctx context.Context, l store.Lease, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.steal {
		return s.fail
	}
	return nil
}

func (s *leaseStore) stealWith(err error) { s.mu.Lock(); s.steal, s.fail = true, err; s.mu.Unlock() }

// TestJobStopsWhenItsLeaseIsLostOrCannotBeRenewed: a job runs until its context ends. When a
// heartbeat finds the lease taken over, the job is stopped at once and the runner records no
// outcome (the new holder will); when the store does not answer heartbeats for three quarters
// of the lease, the job is stopped too (the lease may lapse), and its outcome is recorded if
// the lease is still this runner's.
func TestJobStopsWhenItsLeaseIsLostOrCannotBeRenewed(t *testing.T) {
	for _, tt := range []struct {
		name      string
		fail      error
		cause     error
		wantState string // the job's state after RunOne returns
	}{
		{"taken over", fmt.Errorf("job heartbeat: %w", store.ErrLeaseLost), store.ErrLeaseLost, "running"},
		{"store unreachable", errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), errUnconfirmed, "pending"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, real, _ := newRunner(t)
			ls := &leaseStore{Store: real}
			started, stopped := make(chan struct{}), make(chan error, 1)
			ex := Handle("k", func(ctx context.Context, _ jobs.Job, _ struct{}) error {
				close(started)
				<-ctx.Done()
				stopped <- context.Cause(ctx)
				return ctx.Err()
			})
			r, err := New(ls, []Executor{ex}, Options{Owner: "a", LeaseTTL: 400 * time.Millisecond, RunTimeout: time.Hour},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			enqueue(t, real, "k", "j1")
			ran := make(chan error, 1)
			go func() { _, err := r.RunOne(context.Background()); ran <- err }()
			<-started
			ls.stealWith(tt.fail)
			select {
			case cause := <-stopped:
				if !errors.Is(cause, tt.cause) {
					t.Errorf("the job was stopped by %v, want %v", cause, tt.cause)
				}
			case <-time.After(time.Minute):
				t.Fatal("the job was never stopped")
			}
			if err := <-ran; err != nil {
				t.Fatalf("RunOne: %v", err)
			}
			id := int64(1)
			l, err := real.JobLease(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if l.State != tt.wantState {
				t.Errorf("job state %q after the stop, want %q", l.State, tt.wantState)
			}
		})
	}
}
