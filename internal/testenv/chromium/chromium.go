// Package chromium finds Debian's Chromium for the tests that render pages in a real headless
// browser (installing it with scripts/install-chromium.sh when missing), and runs it the way
// those tests need: headless, with a private profile, nothing fetched in the background.
package chromium

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Find returns Chromium's path. Without it the test is skipped, or fails under CI=true.
func Find(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "install-chromium.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if p, lerr := exec.LookPath("chromium"); lerr == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("Chromium is required under CI=true: %v\n%s", err, out)
	}
	tb.Skipf("no Chromium (run scripts/install-chromium.sh): %v", err)
	return ""
}

// Flags are the flags of a headless run with its own profile in dir.
func Flags(dir string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1400,1000", "--hide-scrollbars"}
}
