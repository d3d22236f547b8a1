package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const zoneChild = "STAGECOACH_ZONE_CHILD"

// zoneConfig has a stage whose windows are in a zone only a zone database knows.
const zoneConfig = `stages:
  - name: prod
    credentials: prod
    time_zone: America/Argentina/Buenos_Aires
    windows: [{days: Mon-Thu, hours: "09:00-16:00"}]
    freezes: [{from: 2025-12-22, until: 2026-01-05, reason: Year-end freeze}]
`

// TestTimeZonesWithoutAZoneDatabase runs Stagecoach where no zone database exists, as in the
// distroless image (no /usr/share/zoneinfo, no Go installation): `check-config` of a stage with
// windows in America/Argentina/Buenos_Aires says ok, because the binary embeds the database
// (time/tzdata). The test binary is this package's, so it links what the command links; a mount
// namespace (unshare) hides every directory Go reads zones from. Where namespaces are not
// allowed, it checks instead that the command links time/tzdata.
func TestTimeZonesWithoutAZoneDatabase(t *testing.T) {
	if os.Getenv(zoneChild) != "" {
		zoneChildCheck(t)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("mount namespaces are Linux's")
	}
	empty := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "zones.yaml")
	if err := os.WriteFile(cfg, []byte(zoneConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `for d in /usr/share/zoneinfo /usr/share/lib/zoneinfo /usr/lib/locale/TZ /etc/zoneinfo; do
  if [ -d "$d" ]; then mount --bind "$EMPTY" "$d" || exit 97; fi
done
exec "$@"`
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
		os.Args[0], "-test.run=^TestTimeZonesWithoutAZoneDatabase$", "-test.count=1", "-test.v")
	// GOROOT names an empty directory: Go's own copy of the database is out of reach too.
	cmd.Env = append(os.Environ(), zoneChild+"="+cfg, "EMPTY="+empty, "GOROOT="+empty, "ZONEINFO=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		if !strings.Contains(out.String(), "zones: no database on disk; check-config: ok") {
			t.Fatalf("the child did not check what it should:\n%s", out.String())
		}
		return
	}
	if strings.Contains(out.String(), "--- FAIL") {
		t.Fatalf("without a zone database on disk:\n%s", out.String())
	}
	// No namespace for us here (unshare missing or refused): the embed is what is left to check.
	t.Logf("cannot hide the zone database here (%v: %s); checking that the command links time/tzdata", err, strings.TrimSpace(out.String()))
	deps, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains("\n"+string(deps), "\ntime/tzdata\n") {
		t.Fatal("cmd/stagecoach does not link time/tzdata: a distroless image would know no time zone")
	}
}

// zoneChildCheck runs in the namespace: it first proves the database really is out of reach
// (the time package's last resort is $GOROOT/lib/time, and the parent set GOROOT), then checks the configuration as `stagecoach check-config` would.
func zoneChildCheck(t *testing.T) {
	for _, f := range []string{"/usr/share/zoneinfo/America/Argentina/Buenos_Aires", filepath.Join(os.Getenv("GOROOT"), "lib", "time", "zoneinfo.zip")} {
		if _, err := os.Stat(f); err == nil {
			t.Fatalf("%s is still there: the test would prove nothing", f)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"check-config", os.Getenv(zoneChild)}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("check-config: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	loc, err := time.LoadLocation("America/Argentina/Buenos_Aires")
	if err != nil || strings.TrimSpace(stdout.String()) != "ok" {
		t.Fatalf("check-config printed %q; loading the zone: %v", stdout.String(), err)
	}
	if _, off := time.Date(2025, 7, 1, 12, 0, 0, 0, loc).Zone(); off != -3*3600 {
		t.Fatalf("Buenos Aires is %ds from UTC, want -3h", off)
	}
	t.Log("zones: no database on disk; check-config: ok")
}
