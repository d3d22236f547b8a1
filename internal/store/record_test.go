package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/jobs"
)

// recordStep is one Record call and what it must answer.
type recordStep struct {
	in         Intake
	dup        bool
	new        []bool     // per request
	superseded [][]string // per request: the keys of the deploys it superseded
}

func TestRecord(t *testing.T) {
	comment := jobs.Job{Kind: jobs.KindComment, Key: "comment/acme/app/1", Payload: []byte(`{"body":"/status"}`)}
	withJobs := func(in Intake, js ...jobs.Job) Intake { in.Jobs = js; return in }
	tests := []struct {
		name         string
		steps        []recordStep
		states       map[string]deploy.State // every deploy, by key
		supersededBy map[string]string       // key -> key
		pending      map[string]int          // pending jobs by kind
	}{{
		name:    "new deploy",
		steps:   []recordStep{{in: intake("d1", req("app", "test", "aaa", 5)), new: []bool{true}}},
		states:  map[string]deploy.State{"app/test/aaa": deploy.Queued},
		pending: map[string]int{jobs.KindCheckRunCreate: 1},
	}, {
		name: "a redelivery writes nothing",
		steps: []recordStep{
			{in: intake("d1", req("app", "test", "aaa", 5)), new: []bool{true}},
			{in: withJobs(intake("d1", req("app", "test", "bbb", 0)), comment), dup: true},
		},
		states:  map[string]deploy.State{"app/test/aaa": deploy.Queued},
		pending: map[string]int{jobs.KindCheckRunCreate: 1},
	}, {
		name: "the same key from another delivery is the same deploy",
		steps: []recordStep{
			{in: intake("pr", req("app", "test", "aaa", 5)), new: []bool{true}},
			{in: intake("push", req("app", "test", "aaa", 0)), new: []bool{false}},
		},
		states:  map[string]deploy.State{"app/test/aaa": deploy.Queued},
		pending: map[string]int{jobs.KindCheckRunCreate: 1},
	}, {
		name: "newest wins down a chain",
		steps: []recordStep{
			{in: intake("d1", req("app", "test", "aaa", 0)), new: []bool{true}},
			{in: intake("d2", req("app", "test", "bbb", 0)), new: []bool{true}, superseded: [][]string{{"app/test/aaa"}}},
			{in: intake("d3", req("app", "test", "ccc", 0)), new: []bool{true}, superseded: [][]string{{"app/test/bbb"}}},
		},
		states: map[string]deploy.State{"app/test/aaa": deploy.Superseded, "app/test/bbb": deploy.Superseded,
			"app/test/ccc": deploy.Queued},
		supersededBy: map[string]string{"app/test/aaa": "app/test/bbb", "app/test/bbb": "app/test/ccc"},
		pending:      map[string]int{jobs.KindCheckRunCreate: 3, jobs.KindDeployReport: 2, jobs.KindDeployEnded: 2},
	}, {
		name: "other stages and apps are left alone",
		steps: []recordStep{
			{in: intake("d1", req("app", "test", "aaa", 0), req("other", "test", "aaa", 0)), new: []bool{true, true}},
			{in: intake("d2", req("app", "test", "bbb", 0), req("app", "alpha", "bbb", 0)), new: []bool{true, true},
				superseded: [][]string{{"app/test/aaa"}, nil}},
		},
		states: map[string]deploy.State{"app/test/aaa": deploy.Superseded, "other/test/aaa": deploy.Queued,
			"app/test/bbb": deploy.Queued, "app/alpha/bbb": deploy.Queued},
		supersededBy: map[string]string{"app/test/aaa": "app/test/bbb"},
		pending:      map[string]int{jobs.KindCheckRunCreate: 4, jobs.KindDeployReport: 1, jobs.KindDeployEnded: 1},
	}, {
		name: "jobs are deduplicated by key",
		steps: []recordStep{
			{in: withJobs(Intake{Delivery: Delivery{ID: "c1", Event: "issue_comment"}}, comment)},
			{in: withJobs(Intake{Delivery: Delivery{ID: "c2", Event: "issue_comment"}}, comment, comment)},
		},
		states:  map[string]deploy.State{},
		pending: map[string]int{jobs.KindComment: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s *Store) {
				ctx := context.Background()
				keyOf := map[int64]string{}
				idOf := map[string]int64{}
				for i, step := range tt.steps {
					rec := record(t, s, step.in)
					if rec.Duplicate != step.dup {
						t.Fatalf("step %d: Duplicate = %v, want %v", i, rec.Duplicate, step.dup)
					}
					if len(rec.Deploys) != len(step.new) {
						t.Fatalf("step %d: %d deploys recorded, want %d", i, len(rec.Deploys), len(step.new))
					}
					for j, rd := range rec.Deploys {
						key := step.in.Deploys[j].Key()
						if rd.New != step.new[j] {
							t.Errorf("step %d, %s: New = %v, want %v", i, key, rd.New, step.new[j])
						}
						if old, ok := idOf[key]; ok && old != rd.ID {
							t.Errorf("step %d, %s: id %d, but the key was recorded as %d", i, key, rd.ID, old)
						}
						idOf[key], keyOf[rd.ID] = rd.ID, key
						var got, want []string
						for _, id := range rd.Superseded {
							got = append(got, keyOf[id])
						}
						if j < len(step.superseded) {
							want = step.superseded[j]
						}
						if !slices.Equal(got, want) {
							t.Errorf("step %d, %s: superseded %v, want %v", i, key, got, want)
						}
					}
				}
				all, err := s.ListDeploys(ctx, Filter{})
				if err != nil {
					t.Fatal(err)
				}
				states, supersededBy := map[string]deploy.State{}, map[string]string{}
				for _, d := range all {
					states[d.Key()] = d.State
					if d.SupersededBy != 0 {
						supersededBy[d.Key()] = keyOf[d.SupersededBy]
					}
					if d.State == deploy.Superseded && d.FinishedAt.IsZero() {
						t.Errorf("%s: superseded without finished_at", d.Key())
					}
				}
				if !maps.Equal(states, tt.states) {
					t.Errorf("states = %v, want %v", states, tt.states)
				}
				if !maps.Equal(supersededBy, tt.supersededBy) {
					t.Errorf("superseded by = %v, want %v", supersededBy, tt.supersededBy)
				}
				pending, err := s.PendingJobs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(pending, tt.pending) {
					t.Errorf("pending jobs = %v, want %v", pending, tt.pending)
				}
			})
		})
	}
}

// TestRecordKeepsEveryField reads a recorded deploy back whole.
func TestRecordKeepsEveryField(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		clk := useClock(s)
		r := req("app", "test", "aaa", 5)
		id := record(t, s, intake("d1", r)).Deploys[0].ID
		got, err := s.Deploy(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		want := deploy.Deploy{ID: id, Request: r, State: deploy.Queued, CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Deploy(%d) =\n%+v\nwant\n%+v", id, got, want)
		}
	})
}

func TestPullRequestNumberIsKeptWhenThePushCameFirst(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		push := req("app", "test", "aaa", 0)
		push.Trigger.Event = "push"
		r := record(t, s, intake("push", push))
		record(t, s, intake("pr", req("app", "test", "aaa", 9)))
		d, err := s.Deploy(context.Background(), r.Deploys[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Trigger.PR != 9 || d.Trigger.Event != "pull_request" {
			t.Errorf("trigger = %+v, want the pull request's", d.Trigger)
		}
	})
}

// TestJobDeployKey: a job that names a deploy by key gets its id in the payload.
func TestJobDeployKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old := record(t, s, intake("d1", req("app", "prod", "aaa", 0))).Deploys[0].ID
		report := func(key, deployKey string) jobs.Job {
			return jobs.Job{Kind: jobs.KindDeployReport, Key: key, DeployKey: deployKey, Payload: []byte(`{"note":"x"}`)}
		}
		in := intake("d2", req("app", "test", "bbb", 0))
		in.Jobs = []jobs.Job{report("same-intake", "app/test/bbb"), report("older", "app/prod/aaa")}
		rec := record(t, s, in)
		want := map[string]int64{"same-intake": rec.Deploys[0].ID, "older": old}
		got := map[string]int64{}
		for range 2 {
			j, l, err := s.ClaimJob(ctx, "w", []string{jobs.KindDeployReport}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				DeployID int64  `json:"deploy_id"`
				Note     string `json:"note"`
			}
			if err := json.Unmarshal(j.Payload, &p); err != nil || p.Note != "x" {
				t.Errorf("payload %s: %v", j.Payload, err)
			}
			got[j.Key] = p.DeployID
			if err := s.FinishJob(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("deploy ids = %v, want %v", got, want)
		}
		// A job naming a deploy that does not exist fails its delivery, and writes nothing.
		in = intake("d3")
		in.Jobs = []jobs.Job{report("missing", "app/test/nope")}
		if _, err := s.Record(ctx, in); !errors.Is(err, ErrNotFound) {
			t.Errorf("Record with a job naming no deploy = %v, want ErrNotFound", err)
		}
		if r := record(t, s, intake("d3")); r.Duplicate {
			t.Error("the failed delivery was recorded")
		}
	})
}

func TestRecordNeedsADeliveryID(t *testing.T) {
	s := openStore(t, dsnFor(t, "sqlite"))
	if _, err := s.Record(context.Background(), intake("", req("app", "test", "aaa", 0))); err == nil {
		t.Error("a delivery without an id was recorded")
	}
}

// TestBatchWithABadRecord: when one record spoils a batch's transaction, the others are still
// committed and answered, and only the bad one fails.
func TestBatchWithABadRecord(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		bad := intake("bad")
		bad.Jobs = []jobs.Job{{Kind: jobs.KindDeployReport, Key: "r", DeployKey: "no/such/deploy"}}
		ins := []Intake{intake("a", req("app", "test", "aaa", 0)), bad, intake("b", req("app", "test", "bbb", 0))}
		var batch []*pending
		for _, in := range ins {
			batch = append(batch, &pending{in: in, done: make(chan struct{}, 1)})
		}
		// The committer idles (nobody calls Record), so this is the only writer.
		s.commitBatch(batch)
		for i, p := range batch {
			<-p.done
			if (p.err != nil) != (i == 1) {
				t.Errorf("record %s: err = %v", ins[i].Delivery.ID, p.err)
			}
		}
		if got := batch[2].rec.Deploys; len(got) != 1 || !got[0].New || len(got[0].Superseded) != 1 ||
			got[0].Superseded[0] != batch[0].rec.Deploys[0].ID {
			t.Errorf("third record = %+v, want it to supersede the first", batch[2].rec)
		}
		counts, _ := s.CountDeploys(context.Background())
		if counts[deploy.Queued] != 1 || counts[deploy.Superseded] != 1 {
			t.Errorf("counts = %v", counts)
		}
	})
}

// TestGroupCommit records many deliveries concurrently: each is answered with its own result.
func TestGroupCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		var wg sync.WaitGroup
		ids := make([]int64, 200)
		for i := range ids {
			wg.Go(func() {
				r, err := s.Record(context.Background(), intake(fmt.Sprint("g", i), req(fmt.Sprint("app", i), "test", "x", 0)))
				if err != nil || len(r.Deploys) != 1 || !r.Deploys[0].New {
					t.Errorf("record %d = %+v, %v", i, r, err)
					return
				}
				ids[i] = r.Deploys[0].ID
			})
		}
		wg.Wait()
		for i, id := range ids {
			d, err := s.Deploy(context.Background(), id)
			if err != nil || d.App != fmt.Sprint("app", i) {
				t.Errorf("record %d answered deploy %d, which is %s (%v)", i, id, d.App, err)
			}
		}
	})
}

// TestRecordFromTwoStores: two stores on one database (two replicas) record deploys of the same
// stage at once; both may win races for the queued slot and the deploy key, and every record
// must still succeed with the invariants intact.
func TestRecordFromTwoStores(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFor(t, name)
			stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
			const n = 40
			var wg sync.WaitGroup
			var newCount atomic.Int64
			for i := range n {
				for k, s := range stores {
					wg.Go(func() {
						// Both replicas receive each commit (as a pull request and a push).
						r, err := s.Record(context.Background(), intake(fmt.Sprint("d", i, "-", k), req("app", "test", fmt.Sprint("sha", i), 0)))
						if err != nil {
							t.Errorf("replica %d, sha%d: %v", k, i, err)
							return
						}
						if r.Deploys[0].New {
							newCount.Add(1)
						}
					})
				}
			}
			wg.Wait()
			if newCount.Load() != n {
				t.Errorf("%d records made a new deploy, want %d", newCount.Load(), n)
			}
			counts, _ := stores[0].CountDeploys(context.Background())
			if counts[deploy.Queued] != 1 || counts[deploy.Superseded] != n-1 {
				t.Errorf("counts = %v, want one queued and %d superseded", counts, n-1)
			}
		})
	}
}

func TestRecordAfterClose(t *testing.T) {
	s := openStore(t, dsnFor(t, "sqlite"))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			_, err := s.Record(context.Background(), intake(fmt.Sprint("d", i), req("app", fmt.Sprint("s", i), "a", 0)))
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("record racing Close: %v", err)
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // hangs (and the test times out) if a record was queued and never answered
	if _, err := s.Record(context.Background(), intake("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}
}

// BenchmarkRecord measures the intake's hot path: 32 concurrent callers recording redeliveries
// of one merged PR (unique delivery ids, the same deploy key) to SQLite with synchronous=FULL.
// It reports records/s and the 99th-percentile latency of one Record call.
func BenchmarkRecord(b *testing.B) {
	s := openStore(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	var n atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(16) // × GOMAXPROCS(2) = 32 callers
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		r := req("app", "test", "same-sha", 1)
		for pb.Next() {
			in := intake("bench-"+strconv.FormatInt(n.Add(1), 10), r)
			t0 := time.Now()
			if _, err := s.Record(context.Background(), in); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
