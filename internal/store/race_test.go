package store

import (
	"bytes"
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

// The environment of a re-executed test binary acting as one process of TestTwoProcessesRace.
const (
	envDSN   = "STAGECOACH_RACE_DSN"
	envRole  = "STAGECOACH_RACE_ROLE" // "crash" or "worker"
	envOwner = "STAGECOACH_RACE_OWNER"
	envOut   = "STAGECOACH_RACE_OUT"
)

// crashTTL is the lease the crashing process dies holding, and crashExit its exit status.
const (
	crashTTL  = 1500 * time.Millisecond
	crashExit = 3
)

// TestTwoProcessesRace runs real processes (this test binary, re-executed) on one database. The
// first claims a deploy, starts it (a checkpoint, as a real step records its build) and dies
// holding the lease. Then two processes claim and run deploys at once. Every deploy must be run
// by exactly one of them, the dead process's one included once its lease has expired.
func TestTwoProcessesRace(t *testing.T) {
	if os.Getenv(envDSN) != "" {
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
			dir := t.TempDir()
			crasher := helper(dsn, "crash", "crasher", dir)
			var exit *exec.ExitError
			if err := crasher.Run(); !errors.As(err, &exit) || exit.ExitCode() != crashExit {
				t.Fatalf("the crashing process ended with %v, want exit status %d:\n%s", err, crashExit, crasher.Stdout)
			}
			crashed := readIDs(t, filepath.Join(dir, "crasher"))
			if len(crashed) != 1 {
				t.Fatalf("the crashing process claimed %v, want one deploy", crashed)
			}
			var procs []*exec.Cmd
			for _, owner := range []string{"proc-0", "proc-1"} {
				cmd := helper(dsn, "worker", owner, dir)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				procs = append(procs, cmd)
			}
			for _, c := range procs {
				if err := c.Wait(); err != nil {
					t.Errorf("helper process: %v\n%s", err, c.Stdout)
				}
			}
			if t.Failed() {
				return
			}
			runs := map[int64][]string{}
			for _, owner := range []string{"proc-0", "proc-1"} {
				for _, id := range readIDs(t, filepath.Join(dir, owner)) {
					runs[id] = append(runs[id], owner)
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
			if who := runs[crashed[0]]; len(who) != 1 {
				t.Errorf("the crashed process's deploy %d was taken over by %v, want one process", crashed[0], who)
			}
			counts, _ := s.CountDeploys(context.Background())
			if counts[deploy.Succeeded] != n {
				t.Errorf("succeeded = %d, want %d (%v)", counts[deploy.Succeeded], n, counts)
			}
			t.Logf("deploys run per process: %v; deploy %d taken over by %v", perProc, crashed[0], runs[crashed[0]])
		})
	}
}

func helper(dsn, role, owner, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRaceHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDSN+"="+dsn, envRole+"="+role, envOwner+"="+owner, envOut+"="+filepath.Join(dir, owner))
	var output bytes.Buffer // shown when the process fails
	cmd.Stdout, cmd.Stderr = &output, &output
	return cmd
}

func readIDs(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, f := range strings.Fields(string(b)) {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestRaceHelperProcess is the body of one process of TestTwoProcessesRace; it only runs when
// re-executed. It writes the id of every deploy it runs to its file before running it.
func TestRaceHelperProcess(t *testing.T) {
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		t.Skip("only runs as a helper process of TestTwoProcessesRace")
	}
	owner := os.Getenv(envOwner)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(os.Getenv(envOut))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if os.Getenv(envRole) == "crash" {
		d, l, err := s.ClaimDeploy(ctx, owner, crashTTL)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Advance(ctx, l, Update{State: deploy.Preflight, Checkpoint: []byte("started by " + owner)}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(out, d.ID)
		out.Close()
		os.Exit(crashExit) // dies holding the lease: no Close, no release
	}
	defer s.Close()
	defer out.Close()
	idleSince := time.Now()
	for time.Since(idleSince) < crashTTL+time.Second {
		d, l, err := s.ClaimDeploy(ctx, owner, 10*time.Second)
		if errors.Is(err, ErrNoWork) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		idleSince = time.Now()
		fmt.Fprintln(out, d.ID)
		steps := []deploy.State{deploy.Preflight, deploy.Building, deploy.Succeeded}
		if d.State == deploy.Preflight {
			// Resuming a deploy a dead process started: its checkpoint must have survived.
			if string(d.Checkpoint) != "started by crasher" {
				t.Errorf("%s resumed deploy %d with checkpoint %q", owner, d.ID, d.Checkpoint)
			}
			steps = steps[1:]
		}
		for _, st := range steps {
			time.Sleep(time.Millisecond) // a step's work, so the processes interleave
			if err := s.Advance(ctx, l, Update{State: st}); err != nil {
				t.Fatalf("%s advancing %d to %s: %v", owner, d.ID, st, err)
			}
		}
	}
}
