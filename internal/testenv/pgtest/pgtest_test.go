package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestDatabasesAreSeparate(t *testing.T) {
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	if _, err := open(t, a).Exec("CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := open(t, b).QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_name = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("a table made in one test database is visible in another")
	}
}

// TestServer checks how the shared server runs: on loopback only, with a socket in its own
// directory, never as root, and with a new database empty.
func TestServer(t *testing.T) {
	db := open(t, URL(t))
	tests := []struct {
		query, want string
	}{
		{"SHOW listen_addresses", "127.0.0.1"},
		{"SHOW fsync", "off"},
		{"SELECT current_setting('unix_socket_directories') = '" + srv.dir + "'", "true"},
		{"SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got string
			if err := db.QueryRow(tt.query).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
			t.Error("postgres runs as root")
		}
	}
}

// recorder is a testing.TB that notes how a test would have ended instead of ending it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

func TestUnavailable(t *testing.T) {
	tests := []struct {
		ci         string
		fail, skip bool
	}{
		{"true", true, false},
		{"", false, true},
		{"false", false, true},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			unavailable(r, errors.New("no initdb here"))
			if (r.fatal != "") != tt.fail || (r.skip != "") != tt.skip {
				t.Fatalf("fatal %q, skip %q; want fail %v, skip %v", r.fatal, r.skip, tt.fail, tt.skip)
			}
			if !strings.Contains(r.fatal+r.skip, "no initdb here") {
				t.Errorf("the reason is not given: %q", r.fatal+r.skip)
			}
		})
	}
}

// TestRestartCutsSessionsAndKeepsData restarts a private server as an operator would: the open
// session is cut (its next query fails, as a replica's does), the data is still there, the
// server answers on the same URL, and a pool reconnects by itself. The shared server is not
// touched.
func TestRestartCutsSessionsAndKeepsData(t *testing.T) {
	s := New(t)
	u, err := s.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, u)
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	pid := s.cmd.Process.Pid
	wasDown := false
	if err := s.Restart(context.Background(), func() {
		wasDown = open(t, u).Ping() != nil
	}); err != nil {
		t.Fatal(err)
	}
	if !wasDown {
		t.Error("the server answered while it was meant to be down")
	}
	if s.cmd.Process.Pid == pid {
		t.Error("the same postgres process runs after the restart")
	}
	if _, err := conn.ExecContext(context.Background(), "SELECT 1"); err == nil {
		t.Error("a session opened before the restart still works: it was not cut")
	}
	conn.Close()
	var x int
	if err := db.QueryRow("SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Errorf("after the restart: x = %d, %v; want 42", x, err)
	}
}
