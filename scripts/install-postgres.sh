#!/usr/bin/env bash
# Installs PostgreSQL's server binaries from Debian's packages if they are missing. The tests
# start their own server from them (internal/testenv/pgtest); nothing is started or enabled here.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "PostgreSQL present: $(ls -d /usr/lib/postgresql/*/bin | head -1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo -n" # never prompt: a test or CI job has nobody to answer
else
  SUDO=
fi
echo "installing PostgreSQL from Debian's packages"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls -d /usr/lib/postgresql/*/bin | head -1
