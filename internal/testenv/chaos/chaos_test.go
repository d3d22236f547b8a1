package chaos

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/testenv/kubetest"
	"github.com/stagecoach/stagecoach/internal/testenv/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Stop()
	os.Exit(code)
}

// TestThreeReplicasUnderKillsAndOutagesKeepEveryInvariant is the short run of the chaos
// harness: three `stagecoach serve` processes on one PostgreSQL, 24 pushes over the four
// targets with `/deploy` commands and duplicate redeliveries, a replica killed with SIGKILL
// every 3–7 s and restarted, PostgreSQL restarted once, a GitHub 502 window, secondary rate
// limits and CodeBuild throttling. Every invariant of the package comment must hold at the end;
// kills land at random points, and only the invariants, never timings, are asserted.
//
// STAGECOACH_CHAOS_BINARY runs it against another build of stagecoach (an older commit's, to
// see what that code breaks); by default the test builds this module's.
func TestThreeReplicasUnderKillsAndOutagesKeepEveryInvariant(t *testing.T) {
	kc := kubetest.Start(t)
	pg := pgtest.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin := os.Getenv("STAGECOACH_CHAOS_BINARY")
	if bin == "" {
		var err error
		if bin, err = Build(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Run(ctx, Options{Binary: bin, Dir: dir, Postgres: pg, Kube: kc, Replicas: 3, Pushes: 24, Commands: 3,
		Duration: 25 * time.Second, KillEvery: 5 * time.Second, Settle: 4 * time.Minute, Log: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.Print(&out)
	t.Log("\n" + out.String())
	// The faults must have happened, or the invariants prove nothing.
	if res.Kills == 0 || res.PostgresRestart != 1 || res.Commands != 3 || res.Deploys < 24 {
		t.Errorf("the run did not do what it should: %d kills, %d PostgreSQL restarts, %d commands, %d deploys", res.Kills, res.PostgresRestart, res.Commands, res.Deploys)
	}
	if len(res.Violations) > 0 {
		t.Errorf("%d invariants broken (figures above)", len(res.Violations))
		tails(t, dir)
	}
}

// logWriter hands the harness's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (l logWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// tails logs the end of each replica's log.
func tails(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "replica-*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("%s (last 40 lines):\n%s", filepath.Base(f), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}
