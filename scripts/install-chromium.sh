#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser test if it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "Chromium present: $(chromium --version 2>/dev/null)"
  exit 0
fi
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n" # never prompt: a test or CI job has nobody to answer
echo "installing Chromium from Debian's packages"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
