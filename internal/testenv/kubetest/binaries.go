package kubetest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// BuildCommand is what builds the binaries; Start names it when they are missing.
const BuildCommand = "scripts/k8s/build.sh"

// ErrNoBinaries reports that the control-plane binaries are not built (or not completely).
var ErrNoBinaries = errors.New("test control-plane binaries not built")

// components are the binaries Start runs, all of which build.sh puts in one directory.
var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// BinDir is the directory holding the binaries of the version set pinned in
// scripts/k8s/versions.env, as scripts/k8s/build.sh lays it out:
// ${STAGECOACH_K8S_CACHE:-$HOME/.cache/stagecoach/k8s}/kube-V_etcd-V_kwok-V/bin, complete only
// once the stamp file next to bin/ exists. STAGECOACH_K8S_BIN overrides the lookup with a
// directory of binaries built some other way. The error wraps ErrNoBinaries when they are missing.
func BinDir() (string, error) {
	if dir := os.Getenv("STAGECOACH_K8S_BIN"); dir != "" {
		return dir, checkBinaries(dir)
	}
	versions, err := readVersions()
	if err != nil {
		return "", err
	}
	root := os.Getenv("STAGECOACH_K8S_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the binary cache: %w", err)
		}
		root = filepath.Join(home, ".cache", "stagecoach", "k8s")
	}
	set := fmt.Sprintf("kube-%s_etcd-%s_kwok-%s", versions["KUBE_VERSION"], versions["ETCD_VERSION"], versions["KWOK_VERSION"])
	dir := filepath.Join(root, set)
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		return "", fmt.Errorf("%w: no complete build of %s in %s", ErrNoBinaries, set, root)
	}
	bin := filepath.Join(dir, "bin")
	return bin, checkBinaries(bin)
}

func checkBinaries(dir string) error {
	for _, name := range components {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%w: %s missing from %s", ErrNoBinaries, name, dir)
		}
	}
	return nil
}

// versionsFile is where the version set is pinned, relative to the repository's root.
var versionsFile = filepath.Join("scripts", "k8s", "versions.env")

// readVersions parses scripts/k8s/versions.env, the single place the version set is pinned, so
// the script and this package cannot disagree. Tests run from the source tree, so the file is
// found relative to this source file; a binary built with -trimpath (the sandbox in the
// production binary) looks for it from the working directory up.
func readVersions() (map[string]string, error) {
	path, err := findVersions()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the pinned versions: %w", err)
	}
	defer f.Close()
	versions := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			versions[k] = strings.Trim(v, `"'`)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	for _, k := range []string{"KUBE_VERSION", "ETCD_VERSION", "KWOK_VERSION"} {
		if versions[k] == "" {
			return nil, fmt.Errorf("%s does not set %s", path, k)
		}
	}
	return versions, nil
}

// findVersions locates versionsFile: next to this source file's repository, else in the
// working directory or one of its parents.
func findVersions() (string, error) {
	var candidates []string
	if _, self, _, ok := runtime.Caller(0); ok && filepath.IsAbs(self) {
		candidates = append(candidates, filepath.Join(filepath.Dir(self), "..", "..", "..", versionsFile))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, versionsFile))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, path := range candidates {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found (run from the repository, or set STAGECOACH_K8S_BIN)", ErrNoBinaries, versionsFile)
}
