// Package pgtest gives tests a real PostgreSQL: a server from Debian's packages, started once
// per test binary in a temporary directory on a free loopback port, with a fresh database per
// test. When PostgreSQL cannot be had the test fails under CI=true and skips otherwise, saying
// why either way.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

var (
	once    sync.Once
	srv     *server
	srvErr  error
	counter atomic.Int64
)

type server struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when postgres has exited
	db     *sql.DB       // to the postgres database, for CREATE DATABASE
}

// URL returns the URL of a new, empty database on the shared test server.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		unavailable(tb, srvErr)
		return ""
	}
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), counter.Add(1))
	if _, err := srv.db.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("creating database %s: %v", name, err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", srv.port, name)
}

// unavailable ends a test that needs PostgreSQL when there is none: CI must test against it,
// so there the test fails; elsewhere it is skipped. Either way it says why.
func unavailable(tb testing.TB, err error) {
	if os.Getenv("CI") == "true" {
		tb.Fatalf("PostgreSQL is required under CI=true: %v", err)
		return
	}
	tb.Skipf("PostgreSQL not available (run scripts/install-postgres.sh): %v", err)
}

// Main runs the tests, then stops the server and removes its directory. Use it as TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server if it was started; for a TestMain that also stops other things.
func Stop() {
	if srv != nil {
		srv.stop()
		srv = nil
	}
}

func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb under /usr/lib/postgresql/*/bin")
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// install runs the project's install script when the binaries are missing.
func install() error {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "install-postgres.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return nil
}

func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		if ierr := install(); ierr != nil {
			return nil, fmt.Errorf("%v; installing: %v", err, ierr)
		}
		if bin, err = binDir(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "stagecoach-pg-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	if err := s.boot(bin); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// boot initialises a cluster in s.dir, starts postgres on a free loopback port and waits until
// it answers.
func (s *server) boot(bin string) error {
	// PostgreSQL refuses to run as root: run it as the postgres user the package created.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return err
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var err error
	if s.port, err = freePort(); err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // postgres has its own copy of the descriptor
	// Durability is not under test here: fsync and friends off make CREATE DATABASE and the
	// stores' synchronous commits fast.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	// Setpgid keeps a terminal's Ctrl-C from reaching postgres before the tests can stop it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.run(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.db, _ = sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if err := s.db.PingContext(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within 30s:\n%s", b)
		case <-s.exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited while starting:\n%s", b)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run starts postgres and waits for it in a goroutine that keeps its OS thread locked: the
// kernel sends Pdeathsig when the thread that forked the child exits, not the process, and an
// unlocked goroutine's thread may be one the Go runtime later retires.
func (s *server) run() error {
	s.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		_ = s.cmd.Wait()
		close(s.exited)
		// The thread stays locked and ends with this goroutine: it has no other children.
	}()
	return <-started
}

func (s *server) stop() {
	if s.db != nil {
		s.db.Close()
	}
	if s.exited != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
