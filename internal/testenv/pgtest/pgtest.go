// Package pgtest gives tests a real PostgreSQL: a server from Debian's packages, started once
// per test binary in a temporary directory on a free loopback port, with a fresh database per
// test. When PostgreSQL cannot be had the test fails under CI=true and skips otherwise, saying
// why either way.
//
// A test that stops or restarts PostgreSQL takes a server of its own (New), so that tests
// sharing the binary's server are not disturbed; outside tests (`stagecoach chaos`), Run starts
// one by the same code path. Server.Restart stops a server as an operator's restart does
// (a fast shutdown: sessions are cut) and starts it again on the same port and data.
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
	srv     *Server
	srvErr  error
	counter atomic.Int64
)

// Server is a running PostgreSQL: the one URL shares with every test in the binary, or a
// private one from New or Run.
type Server struct {
	dir    string
	bin    string
	port   int
	cred   *syscall.Credential // the postgres user's, when running as root
	cmd    *exec.Cmd
	exited chan struct{} // closed when postgres has exited
	db     *sql.DB       // to the postgres database, for CREATE DATABASE
	mu     sync.Mutex    // serializes Restart and Stop
}

// URL returns the URL of a new, empty database on the shared test server.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		unavailable(tb, srvErr)
		return ""
	}
	u, err := srv.NewDatabase()
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// New starts a private server for one test, stopped when the test ends: for a test that stops
// or restarts PostgreSQL. Without PostgreSQL it fails the test under CI=true and skips it
// otherwise, as URL does.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		unavailable(tb, err)
		return nil
	}
	tb.Cleanup(s.Stop)
	return s
}

// Run starts a private server outside tests; the caller ends it with Stop (it also dies with
// the process that started it).
func Run() (*Server, error) {
	s, err := start()
	if err != nil {
		return nil, fmt.Errorf("pgtest: starting PostgreSQL: %w", err)
	}
	return s, nil
}

// NewDatabase creates a new, empty database and returns its URL.
func (s *Server) NewDatabase() (string, error) {
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), counter.Add(1))
	if _, err := s.db.Exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name), nil
}

// Restart stops the server with a fast shutdown (every session is cut, as in an operator's
// restart or a failover) and starts it again on the same port with the same data, returning
// once it accepts connections again. down, if not nil, is called while the server is down.
func (s *Server) Restart(ctx context.Context, down func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil {
		return errors.New("pgtest: restarting a server that was stopped")
	}
	s.shutdown()
	if down != nil {
		down()
	}
	if err := s.launch(ctx); err != nil {
		return fmt.Errorf("pgtest: restarting PostgreSQL: %w", err)
	}
	return nil
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

// Stop stops the shared server if it was started; for a TestMain that also stops other things.
func Stop() {
	if srv != nil {
		srv.Stop()
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

func start() (*Server, error) {
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
	s := &Server{dir: dir, bin: bin}
	if err := s.boot(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// boot initialises a cluster in s.dir, starts postgres on a free loopback port and waits until
// it answers.
func (s *Server) boot() error {
	// PostgreSQL refuses to run as root: run it as the postgres user the package created.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return err
		}
	}
	initdb := exec.Command(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var err error
	if s.port, err = freePort(); err != nil {
		return err
	}
	s.db, _ = sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.launch(ctx)
}

// launch starts postgres on s.port and waits until it answers.
func (s *Server) launch(ctx context.Context) error {
	logPath := filepath.Join(s.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // postgres has its own copy of the descriptor
	// Durability is not under test here: fsync and friends off make CREATE DATABASE and the
	// stores' synchronous commits fast.
	s.cmd = exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"), "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	// Setpgid keeps a terminal's Ctrl-C from reaching postgres before the tests can stop it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.run(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
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
// unlocked goroutine's thread may be one the Go runtime later retires. Once postgres has
// exited the thread is unlocked, never ended with the goroutine: before it was locked it may
// have forked other children (a control plane's components, a replica) whose Pdeathsig it
// also carries, and Go ends the thread of a goroutine that exits locked.
func (s *Server) run() error {
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
		runtime.UnlockOSThread()
		close(s.exited)
	}()
	return <-started
}

// Stop stops the server and removes its directory. Later calls do nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		s.db.Close()
	}
	s.shutdown()
	s.exited = nil
	os.RemoveAll(s.dir)
}

// shutdown stops postgres with a fast shutdown and waits for it to exit.
func (s *Server) shutdown() {
	if s.exited == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
