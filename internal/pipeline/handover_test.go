package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/health"
	"github.com/stagecoach/stagecoach/internal/store"
)

// handOverConfig is one app on one stage; the pipeline never reaches AWS or a cluster here.
const handOverConfig = `
credentials: {nonprod: {role_arn: "arn:aws:iam::123456789012:role/stagecoach-nonprod"}}
stages: [{name: test, branch: master, trigger: merge, credentials: nonprod}]
apps:
  - name: hello
    repo: acme/hello
    codebuild_project: hello
    image_repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello
    stages:
      test:
        secret_id: hello/test
        deployments: [{name: api, containers: [api]}]
`

// watchCluster is a Cluster whose rollouts the test decides: Follow calls follow, which may
// block (a long watch) or end at once. Nothing else is called in a rollout already under way.
type watchCluster struct {
	Cluster
	follow func(ctx context.Context, name string) (health.Status, error)
}

func (c watchCluster) Follow(ctx context.Context, name string, _ time.Time, _, _ time.Duration, _ func(health.Status)) (health.Status, error) {
	return c.follow(ctx, name)
}

type oneCluster struct{ c Cluster }

func (o oneCluster) For(*config.Stage) (Cluster, error) { return o.c, nil }

// rollingOut records a deploy that is rolling out (its images set), with no lease: the next
// claim follows its rollout.
func rollingOut(tb testing.TB, st *store.Store, n int) int64 {
	tb.Helper()
	ctx := context.Background()
	delivery := "handover-" + strconv.Itoa(n)
	rec, err := st.Record(ctx, store.Intake{Delivery: store.Delivery{ID: delivery, Event: "push"}, Deploys: []deploy.Request{{
		App: "hello", Stage: "test", Repo: "acme/hello", SHA: fmt.Sprintf("%040d", n), Trigger: deploy.Trigger{Event: "push", Delivery: delivery}}}})
	if err != nil {
		tb.Fatal(err)
	}
	d, lease, err := st.ClaimDeploy(ctx, "setup", time.Minute)
	if err != nil || d.ID != rec.Deploys[0].ID {
		tb.Fatalf("claiming deploy %d: %d, %v", rec.Deploys[0].ID, d.ID, err)
	}
	cp := deploy.Checkpoint{Image: "r/hello:x", ImagesSet: true, RolloutStarted: time.Now(),
		Replaced: []deploy.Image{{Deployment: "api", Container: "api", Image: "r/hello:v1"}}}
	if err := st.Advance(ctx, lease, store.Update{State: deploy.RollingOut, Checkpoint: cp.Encode(), Release: true}); err != nil {
		tb.Fatal(err)
	}
	return d.ID
}

// BenchmarkHandOver measures how long a deploy waits when the replica running it dies: a
// replica (a real child process) follows a rollout, holding the deploy's lease with heartbeats,
// and is killed with SIGKILL; another replica, polling as in production, takes the deploy over
// once the lease lapses. Both use the default lease (config.DefaultLease, renewed every quarter)
// and poll interval (1 s); the kill comes at a random moment. It reports the hand-over time's
// p50 and max; with the old one-minute lease it took up to a minute.
//
//	go test -run '^$' -bench HandOver -benchtime 10x ./internal/pipeline/
func BenchmarkHandOver(b *testing.B) {
	dir := b.TempDir()
	db, cfgFile := filepath.Join(dir, "handover.db"), filepath.Join(dir, "stagecoach.yaml")
	if err := os.WriteFile(cfgFile, []byte(handOverConfig), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(cfgFile, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	var mu sync.Mutex
	followed := map[string]chan time.Time{} // deployment name -> when the survivor first followed it
	survivor := New(st, cfg, nil, oneCluster{watchCluster{follow: func(ctx context.Context, name string) (health.Status, error) {
		mu.Lock()
		if ch, ok := followed[name]; ok {
			select {
			case ch <- time.Now():
			default:
			}
		}
		mu.Unlock()
		return health.Status{Phase: health.Complete}, nil
	}}}, Options{Owner: "survivor"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var handovers []time.Duration
	for i := range b.N {
		id := rollingOut(b, st, i)
		child := exec.Command(os.Args[0], "-test.run=^TestHandOverChild$", "-test.count=1")
		child.Env = append(os.Environ(), "STAGECOACH_HANDOVER_DB="+db, "STAGECOACH_HANDOVER_CONFIG="+cfgFile)
		out, err := child.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		for lines.Scan() && lines.Text() != "following api" {
		}
		// The child holds the lease and follows the rollout. The survivor polls as replicas
		// do all the time (it starts only now so that it never claims the next deploy while
		// the benchmark sets it up).
		taken := make(chan time.Time, 1)
		mu.Lock()
		followed["api"] = taken
		mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { _ = survivor.Run(ctx); close(ran) }()
		time.Sleep(rand.N(config.DefaultLease)) // killed anywhere between two heartbeats, as a crash would
		killed := time.Now()
		if err := child.Process.Kill(); err != nil {
			b.Fatal(err)
		}
		_ = child.Wait()
		at := <-taken
		handovers = append(handovers, at.Sub(killed))
		for d, _ := st.Deploy(context.Background(), id); !d.State.Final(); d, _ = st.Deploy(context.Background(), id) {
			time.Sleep(10 * time.Millisecond) // the survivor finishes the deploy before the next one starts
		}
		cancel()
		<-ran
	}
	slices.Sort(handovers)
	b.ReportMetric(handovers[len(handovers)/2].Seconds(), "p50-s")
	b.ReportMetric(handovers[len(handovers)-1].Seconds(), "max-s")
	b.Logf("hand-over times: %v", handovers)
}

// TestHandOverChild is the replica BenchmarkHandOver kills: it follows a rollout that never
// ends, saying so on its standard output, until it is killed.
func TestHandOverChild(t *testing.T) {
	db := os.Getenv("STAGECOACH_HANDOVER_DB")
	if db == "" {
		t.Skip("only runs as the child of BenchmarkHandOver")
	}
	cfg, err := config.Load(os.Getenv("STAGECOACH_HANDOVER_CONFIG"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+db)
	if err != nil {
		t.Fatal(err)
	}
	r := New(st, cfg, nil, oneCluster{watchCluster{follow: func(ctx context.Context, name string) (health.Status, error) {
		fmt.Printf("following %s\n", name)
		<-ctx.Done()
		return health.Status{Phase: health.Progressing}, nil
	}}}, Options{Owner: "doomed", FollowBudget: time.Hour}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_ = r.Run(context.Background()) // until killed
}
