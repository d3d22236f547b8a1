#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script). On a fresh machine it
# first installs what the tests need; later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== setup: PostgreSQL (Debian packages)"
bash scripts/install-postgres.sh

echo "== setup: Chromium (Debian packages), for the dashboard's and sign-in's browser tests"
bash scripts/install-chromium.sh

echo "== setup: Kubernetes test control plane (built once per machine, then cached)"
bash scripts/k8s/build.sh

echo "== static checks"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
# staticcheck from the module proxy, pinned so every machine checks alike.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== tests"
go test -count=1 -race "$@" ./...
