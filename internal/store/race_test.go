package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// TestTwoProcessesRace runs two real processes (this test binary, re-executed) claiming and
// running deploys from one database at once. Every deploy must be run by exactly one of them,
// including one whose lease a third, dead worker held until it expired.
func TestTwoProcessesRace(t *testing.T) {
	if os.Getenv("STAGECOACH_RACE_DSN") != "" {
		t.Skip("helper process")
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dsn := dsnFor(t, name)
			s := openStore(t, dsn)
			const n = 60
			for i := range n {
				record(t, s, intake(fmt.Sprint("race-", i), req(fmt.Sprint("app", i), "test", "sha", 0)))
			}
			// A worker claims one deploy and dies holding the lease.
			dead, _, err := s.ClaimDeploy(context.Background(), "dead-worker", 1500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var procs []*exec.Cmd
			for p := range 2 {
				cmd := exec.Command(os.Args[0], "-test.run=^TestRaceHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), "STAGECOACH_RACE_DSN="+dsn, fmt.Sprintf("STAGECOACH_RACE_OWNER=proc-%d", p),
					"STAGECOACH_RACE_OUT="+filepath.Join(dir, fmt.Sprint("proc-", p)))
				cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				procs = append(procs, cmd)
			}
			for _, c := range procs {
				if err := c.Wait(); err != nil {
					t.Fatalf("helper process: %v", err)
				}
			}
			runs := map[int64][]string{}
			for p := range 2 {
				b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint("proc-", p)))
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range strings.Fields(string(b)) {
					id, _ := strconv.ParseInt(f, 10, 64)
					runs[id] = append(runs[id], fmt.Sprint("proc-", p))
				}
			}
			if len(runs) != n {
				t.Errorf("%d deploys were run, want %d", len(runs), n)
			}
			perProc := map[string]int{}
			for id, who := range runs {
				if len(who) != 1 {
					t.Errorf("deploy %d was run by %v", id, who)
				}
				perProc[who[0]]++
			}
			if len(runs[dead.ID]) != 1 {
				t.Errorf("the dead worker's deploy %d was not taken over", dead.ID)
			}
			counts, _ := s.CountDeploys(context.Background())
			if counts[deploy.Succeeded] != n {
				t.Errorf("succeeded = %d, want %d", counts[deploy.Succeeded], n)
			}
			t.Logf("deploys run per process: %v", perProc)
		})
	}
}

// TestRaceHelperProcess is the body of one racing process; it only runs when re-executed.
func TestRaceHelperProcess(t *testing.T) {
	dsn := os.Getenv("STAGECOACH_RACE_DSN")
	if dsn == "" {
		t.Skip("only runs as a helper process of TestTwoProcessesRace")
	}
	owner := os.Getenv("STAGECOACH_RACE_OWNER")
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := os.Create(os.Getenv("STAGECOACH_RACE_OUT"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx := context.Background()
	idleSince := time.Now()
	for time.Since(idleSince) < 3*time.Second {
		d, l, err := s.ClaimDeploy(ctx, owner, 10*time.Second)
		if errors.Is(err, ErrNoWork) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		idleSince = time.Now()
		// Record the run before finishing it, as a real step would record what it started.
		fmt.Fprintln(out, d.ID)
		for _, st := range []deploy.State{deploy.Preflight, deploy.Building, deploy.Succeeded} {
			if err := s.Advance(ctx, l, Update{State: st}); err != nil {
				t.Fatalf("%s advancing %d to %s: %v", owner, d.ID, st, err)
			}
		}
	}
}
