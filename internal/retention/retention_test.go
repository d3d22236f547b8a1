package retention

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/store"
)

// TestRunPrunesAtOnceWithTheConfiguredPolicy: Run prunes a real store as soon as it starts,
// with the configuration's retention, and returns when its context ends.
func TestRunPrunesAtOnceWithTheConfiguredPolicy(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	st.Now = func() time.Time { return start }
	for _, id := range []string{"old", "new"} {
		if _, err := st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: id, Event: "push"}}); err != nil {
			t.Fatal(err)
		}
		st.Now = func() time.Time { return start.Add(40 * 24 * time.Hour) } // the next one is 40 days later
	}
	cfg := config.Default()
	seen := &recording{Store: st, pruned: make(chan store.Pruned, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, seen, Policy(cfg.Retention), time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	p := <-seen.pruned
	cancel()
	<-done
	if p.Deliveries != 1 {
		t.Errorf("pruned %+v, want the 40-day-old delivery (default retention %s)", p, cfg.Retention.Deliveries)
	}
	if seen.policy != (store.Retention{Deliveries: 30 * 24 * time.Hour, Jobs: 30 * 24 * time.Hour, Commands: 365 * 24 * time.Hour}) {
		t.Errorf("policy = %+v", seen.policy)
	}
	rec, err := st.Record(context.Background(), store.Intake{Delivery: store.Delivery{ID: "new", Event: "push"}})
	if err != nil || !rec.Duplicate {
		t.Errorf("the kept delivery is no longer a duplicate: %+v, %v", rec, err)
	}
}

// recording passes Prune through and reports its first result.
type recording struct {
	*store.Store
	policy store.Retention
	pruned chan store.Pruned
}

func (r *recording) Prune(ctx context.Context, p store.Retention) (store.Pruned, error) {
	r.policy = p
	got, err := r.Store.Prune(ctx, p)
	if err != nil && !errors.Is(err, context.Canceled) {
		return got, err
	}
	select {
	case r.pruned <- got:
	default:
	}
	return got, err
}
