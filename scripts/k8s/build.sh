#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the tests from the Go module proxy alone:
# kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok. The binaries go to a
# cache outside the repository, one directory per version set, marked complete by a stamp file,
# so only the first run on a machine pays (about 9 minutes on 2 cores).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${STAGECOACH_K8S_CACHE:-$HOME/.cache/stagecoach/k8s}/kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
bin="$cache/bin"
if [ -f "$cache/complete" ]; then
  echo "k8s test binaries: reusing $bin"
  exit 0
fi
mkdir -p "$bin"
work="$(mktemp -d /tmp/stagecoach-k8s-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
start=$SECONDS

echo "k8s test binaries: building etcd ${ETCD_VERSION}"
mkdir -p "$work/etcd"
cp "$here/etcd-main.go.txt" "$work/etcd/main.go"
( cd "$work/etcd" && go mod init stagecoach.test/etcd >/dev/null 2>&1 \
  && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1 \
  && go build -trimpath -o "$bin/etcd" . )

echo "k8s test binaries: building kwok ${KWOK_VERSION}"
GOBIN="$bin" go install "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"

echo "k8s test binaries: building kube-apiserver, kube-controller-manager, kube-scheduler ${KUBE_VERSION}"
src="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
cp -r "$src" "$work/kubernetes"
chmod -R u+w "$work/kubernetes"
cd "$work/kubernetes"
rm -f go.work go.work.sum
# The module zip has no staging/ directory: use the published k8s.io/* modules instead.
sed -i '/^replace (/,/^)/d' go.mod
sed -i -E "s#^(\s*k8s\.io/[a-z0-9-]+) v0\.0\.0\$#\1 ${KUBE_STAGING_VERSION}#" go.mod
sed -i '/k8s.io\/sample-apiserver/d' go.mod
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd" "./cmd/$cmd"
done
touch "$cache/complete"
echo "k8s test binaries: built in $((SECONDS - start))s into $bin"
