package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

// seedHistory adds what a long-running installation accumulates: n deliveries, n finished
// deploys (of 20 apps on 4 stages), n finished jobs and n/10 commands, all older than the
// store's clock. It writes them with one INSERT ... SELECT each, in the database.
func seedHistory(tb testing.TB, s *Store, n int) {
	tb.Helper()
	if n == 0 {
		return
	}
	base := historyBase(s, n)
	// series yields x = 1..$1 in either dialect.
	with, from := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) ", " FROM c"
	if s.d.name == "postgres" {
		with, from = "", " FROM generate_series(1, CAST($1 AS BIGINT)) AS c(x)"
	}
	stmts := []struct {
		rows int
		q    string
	}{
		{n, `INSERT INTO deliveries (id, event, action, repo, installation_id, received_at)
			SELECT 'hist-' || CAST(x AS TEXT), 'push', '', 'acme/app', 7, $2 + x * 1000000` + from},
		{n, `INSERT INTO deploys (dedup_key, app, stage, repo, sha, ref, installation_id, trigger_event, trigger_delivery,
			trigger_pr, trigger_actor, state, created_at, updated_at, started_at, finished_at, run_after)
			SELECT 'hist/' || CAST(x AS TEXT), 'app' || CAST(x % 20 AS TEXT),
				CASE x % 4 WHEN 0 THEN 'dev' WHEN 1 THEN 'test' WHEN 2 THEN 'alpha' ELSE 'prod' END,
				'acme/app', 'sha' || CAST(x AS TEXT), 'master', 7, 'push', 'hist-' || CAST(x AS TEXT), 0, 'octocat',
				CASE x % 3 WHEN 0 THEN 'succeeded' WHEN 1 THEN 'failed' ELSE 'superseded' END,
				$2 + x * 1000000, $2 + x * 1000000, $2 + x * 1000000, $2 + x * 1000000, $2 + x * 1000000` + from},
		{n, `INSERT INTO jobs (kind, job_key, payload, state, attempts, run_after, created_at, updated_at)
			SELECT CASE x % 2 WHEN 0 THEN 'deploy.report' ELSE 'checkrun.create' END, 'hist/' || CAST(x AS TEXT),
				'{"deploy_id":1}', CASE x % 50 WHEN 0 THEN 'failed' ELSE 'done' END, 1, $2 + x * 1000000, $2 + x * 1000000, $2 + x * 1000000` + from},
		{n / 10, `INSERT INTO commands (command_key, repo, issue, actor, verb, stage, args, outcome, created_at, updated_at)
			SELECT 'hist/' || CAST(x AS TEXT), 'acme/app', 1, 'octocat', 'deploy', 'test', '/deploy test', 'accepted', $2 + x * 1000000, $2 + x * 1000000` + from},
		// The bookkeeping of those deploys and commands: a GitHub create per job, a branch move
		// and a redelivery per delivery (more than real life: enough rows that an index is worth it).
		{n, `INSERT INTO github_writes (write_key, object_id, created_at, updated_at)
			SELECT 'hist/' || CAST(x AS TEXT), x, $2 + x * 1000000, $2 + x * 1000000` + from},
		{n, `INSERT INTO branch_moves (repo, branch, sha, command_key, created_at)
			SELECT 'acme/app', 'prod', 'sha' || CAST(x AS TEXT), 'hist/' || CAST(x AS TEXT), $2 + x * 1000000` + from},
		{n, `INSERT INTO recovery_deliveries (guid, event, state, created_at, updated_at)
			SELECT 'hist-' || CAST(x AS TEXT), 'push', 'done', $2 + x * 1000000, $2 + x * 1000000` + from},
	}
	for _, st := range stmts {
		if st.rows == 0 {
			continue
		}
		if _, err := s.write.Exec(with+st.q, st.rows, base); err != nil {
			tb.Fatalf("seeding history: %v\n%s", err, st.q)
		}
	}
	// Measure the steady state, not the aftermath of a bulk load: statistics up to date, and
	// the load's write-ahead log checkpointed (so no checkpoint runs during the measurement).
	settle := []string{"ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"}
	if s.d.name == "postgres" {
		settle = []string{"VACUUM ANALYZE", "CHECKPOINT"}
	}
	for _, q := range settle {
		if _, err := s.write.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// historyBase is the time seedHistory's rows count from: row x was written x seconds after it,
// and the newest a day before the store's now.
func historyBase(s *Store, n int) int64 {
	return s.Now().Add(-24*time.Hour - time.Duration(n)*time.Second).UnixMicro()
}

// plan returns the database's plan for q with args, one line per step.
func plan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	explain := "EXPLAIN QUERY PLAN "
	if s.d.name == "postgres" {
		explain = "EXPLAIN "
	}
	rows, err := s.write.Query(explain+q, args...)
	if err != nil {
		t.Fatalf("explaining %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1])) // SQLite's detail, PostgreSQL's line
	}
	return strings.Join(lines, "\n")
}

// TestClaimAndPruneQueriesUseTheirIndexes asks each database how it runs the claims and the
// retention deletes over a history of finished work: through their indexes, never by reading
// every row. (The claims used to filter with OR, which no partial index matches: an idle
// ClaimJob then read every finished job, 93 ms with 500k on SQLite.)
func TestClaimAndPruneQueriesUseTheirIndexes(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		seedHistory(t, s, 5000)
		// Retention deletes the oldest of a long history: here the first 50 rows.
		cutoff := historyBase(s, 5000) + 50_000_000
		for _, tt := range []struct {
			name, q string
			args    []any
			index   string
		}{
			{"ClaimDeploy", s.claimDeployQuery(), []any{"w", int64(60e6), s.now()}, "deploys_due"},
			{"ClaimJob", s.claimJobQuery(2), []any{"w", int64(60e6), s.now(), "deploy.report", "checkrun.create"}, "jobs_claim"},
			{"prune deliveries", pruneQueries[0], []any{cutoff}, "deliveries_received"},
			{"prune jobs", pruneQueries[1], []any{cutoff}, "jobs_finished"},
			{"prune commands", pruneQueries[2], []any{cutoff}, "commands_created"},
			{"prune GitHub writes", bookkeepingQueries[0], []any{cutoff}, "github_writes_updated"},
			{"prune branch moves", bookkeepingQueries[1], []any{cutoff}, "branch_moves_created"},
			{"prune redeliveries", bookkeepingQueries[2], []any{cutoff}, "recovery_deliveries_updated"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				p := plan(t, s, tt.q, tt.args...)
				if !strings.Contains(p, tt.index) {
					t.Errorf("the plan does not use index %s:\n%s", tt.index, p)
				}
				for _, line := range strings.Split(p, "\n") {
					line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "->"))
					if fullScan(line) {
						t.Errorf("the plan reads a whole table (%s):\n%s", line, p)
					}
				}
				t.Logf("plan:\n%s", p)
			})
		}
	})
}

// fullScan reports whether one line of a plan reads every row of a table of history (deploys,
// aliased d in the claim, jobs, deliveries or commands). A scan of locks, a few rows, is fine.
func fullScan(line string) bool {
	if strings.Contains(line, "INDEX") {
		return false
	}
	if line == "SCAN d" || strings.HasPrefix(line, "SCAN d ") {
		return true
	}
	for _, table := range []string{"deploys", "jobs", "deliveries", "commands"} {
		if strings.HasPrefix(line, "SCAN "+table) || strings.HasPrefix(line, "Seq Scan on "+table) {
			return true
		}
	}
	return false
}

// BenchmarkHistory measures the intake (p99 of one Record, 32 callers) and idle claims (no due
// work) with 0, 100k and 1M rows of history in each of deliveries, deploys and jobs, on SQLite
// and PostgreSQL. They must stay flat: the claims walk partial indexes of due work, and the
// intake's lookups are by key.
//
//	go test -run '^$' -bench History -benchtime 2000x ./internal/store/
func BenchmarkHistory(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres"} {
		for _, n := range []int{0, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/rows=%d", db, n), func(b *testing.B) {
				dsn := "sqlite:" + filepath.Join(b.TempDir(), "history.db")
				if db == "postgres" {
					dsn = benchPostgres(b)
				}
				s := openStore(b, dsn)
				seedHistory(b, s, n)
				ctx := context.Background()
				b.Run("ClaimJob-idle", func(b *testing.B) {
					kinds := []string{"checkrun.create", "deploy.report", "command", "release.tag"}
					lat := make([]time.Duration, 0, b.N)
					for b.Loop() {
						t0 := time.Now()
						if _, _, err := s.ClaimJob(ctx, "bench", kinds, time.Minute); err != ErrNoWork {
							b.Fatalf("ClaimJob = %v, want ErrNoWork", err)
						}
						lat = append(lat, time.Since(t0))
					}
					reportLatency(b, lat)
				})
				b.Run("ClaimDeploy-idle", func(b *testing.B) {
					lat := make([]time.Duration, 0, b.N)
					for b.Loop() {
						t0 := time.Now()
						if _, _, err := s.ClaimDeploy(ctx, "bench", time.Minute); err != ErrNoWork {
							b.Fatalf("ClaimDeploy = %v, want ErrNoWork", err)
						}
						lat = append(lat, time.Since(t0))
					}
					reportLatency(b, lat)
				})
				b.Run("Record", func(b *testing.B) {
					var seq atomic.Int64
					var mu sync.Mutex
					var lat []time.Duration
					b.SetParallelism(16) // × GOMAXPROCS(2) = 32 callers
					b.RunParallel(func(pb *testing.PB) {
						local := make([]time.Duration, 0, 1024)
						r := req("app0", "test", "same-sha", 1)
						for pb.Next() {
							in := intake("bench-"+strconv.FormatInt(seq.Add(1), 10), r)
							t0 := time.Now()
							if _, err := s.Record(ctx, in); err != nil {
								b.Error(err)
								return
							}
							local = append(local, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, local...)
						mu.Unlock()
					})
					reportLatency(b, lat)
				})
			})
		}
	}
}

// benchPostgres is a fresh PostgreSQL database for a benchmark.
func benchPostgres(b *testing.B) string { return pgtest.URL(b) }

// reportLatency reports the median and the 99th percentile of lat. The median is what to
// compare across history sizes on a busy machine: other processes' load moves the mean and p99.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
