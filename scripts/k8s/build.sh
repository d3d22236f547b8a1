#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the tests from the Go module proxy alone:
# kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok (internal/testenv/kubetest runs
# them as processes; there is no Docker engine to run kind).
#
# The binaries go to a cache outside the repository, one directory per version set
# (${STAGECOACH_K8S_CACHE:-$HOME/.cache/stagecoach/k8s}/<version set>/bin), marked complete by a
# stamp file, so only the first run on a machine pays (about 9 minutes and 4 GB of scratch disk on
# 2 cores with empty Go caches). Later runs print that they reused the cache and exit at once.
# CI calls this script before `go test`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

root="${STAGECOACH_K8S_CACHE:-$HOME/.cache/stagecoach/k8s}"
set_name="kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
cache="$root/$set_name"
bin="$cache/bin"
stamp="$cache/complete" # internal/testenv/kubetest looks for this exact file

say() { echo "k8s test binaries: $*"; }

if [ -f "$stamp" ]; then
  built="$(cat "$stamp")"
  say "reusing the cache in $bin${built:+ (built $built)}; nothing to do"
  exit 0
fi

command -v go >/dev/null || { say "go is not on PATH" >&2; exit 1; }
command -v flock >/dev/null || { say "flock (util-linux) is not on PATH" >&2; exit 1; }

# Two CI jobs on one machine must not build into the same directory at once: the second waits,
# then finds the stamp the first wrote.
mkdir -p "$root"
exec 9>"$root/.$set_name.lock"
if ! flock -n 9; then
  say "another build of $set_name is running; waiting for it"
  flock 9
fi
if [ -f "$stamp" ]; then
  say "reusing the cache in $bin (built meanwhile by another run)"
  exit 0
fi

work="$(mktemp -d /tmp/stagecoach-k8s-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
out="$work/bin" # moved into the cache only once every binary is built and checked
mkdir -p "$out"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
start=$SECONDS

# step NAME CMD...: runs CMD with its chatter in a log, shown only if it fails.
step() {
  local name="$1" t0=$SECONDS
  shift
  say "$name ..."
  # A subshell outside any if/||: inside a condition bash would ignore `set -e` in the function.
  set +e
  (
    set -e
    "$@"
  ) >"$work/step.log" 2>&1
  local rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    say "$name FAILED (exit $rc); last lines of its output:" >&2
    tail -n 40 "$work/step.log" >&2
    exit 1
  fi
  say "$name done in $((SECONDS - t0))s"
}

build_etcd() {
  # go.etcd.io/etcd/v3 cannot be `go install`ed (its go.mod has replace directives), so a
  # three-line main around the server package stands in for it.
  mkdir -p "$work/etcd"
  cp "$here/etcd-main.go.txt" "$work/etcd/main.go"
  cd "$work/etcd"
  go mod init stagecoach.test/etcd
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-${ETCD_VERSION}" \
    -o "$out/etcd" .
}

build_kwok() {
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
}

build_kube() {
  local src minor ldflags cmd
  src="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$src" ] || { echo "go mod download gave no directory for k8s.io/kubernetes@${KUBE_VERSION}"; return 1; }
  cp -r "$src" "$work/kubernetes"
  chmod -R u+w "$work/kubernetes"
  cd "$work/kubernetes"
  # The module zip has no staging/ directory, and go.mod points every k8s.io/* module there:
  # drop the replaces and require the published staging modules instead.
  rm -f go.work go.work.sum
  sed -i '/^replace (/,/^)/d' go.mod
  sed -i -E "s#^(\s*k8s\.io/[a-z0-9-]+) v0\.0\.0\$#\1 ${KUBE_STAGING_VERSION}#" go.mod
  sed -i '/k8s.io\/sample-apiserver/d' go.mod # not published for this patch release
  minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  # Without these the binaries call themselves v0.0.0, and clients warn about the skew.
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
    go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "./cmd/$cmd"
  done
}

check() {
  local cmd
  for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
    "$out/$cmd" --version | grep -qx "Kubernetes ${KUBE_VERSION}" || {
      echo "$cmd reports $("$out/$cmd" --version), want Kubernetes ${KUBE_VERSION}"
      return 1
    }
  done
  "$out/etcd" --version | grep -q "etcd Version: ${ETCD_VERSION#v}" || { echo "etcd: wrong version"; return 1; }
  "$out/kwok" --version | grep -q "${KWOK_VERSION}" || { echo "kwok: wrong version"; return 1; }
}

say "building $set_name in $work (GOFLAGS=$GOFLAGS CGO_ENABLED=$CGO_ENABLED)"
step "etcd ${ETCD_VERSION}" build_etcd
step "kwok ${KWOK_VERSION}" build_kwok
step "kube-apiserver, kube-controller-manager, kube-scheduler ${KUBE_VERSION}" build_kube
step "version check" check

# A failed earlier run may have left a bin directory without a stamp; replace it whole.
rm -rf "$bin"
mkdir -p "$cache"
mv "$out" "$bin"
date -u +%Y-%m-%dT%H:%M:%SZ >"$stamp"
say "built in $((SECONDS - start))s into $bin ($(du -sh "$bin" | cut -f1))"
