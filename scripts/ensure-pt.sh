#!/usr/bin/env bash
# pt-query-digest (Debian package percona-toolkit): the slow-log tests compare our --pt-compatible digest with
# it on the same log. Installed from the system package manager when missing; outside CI a failed install only
# warns (those tests then skip), under CI=true it fails.
set -euo pipefail
if command -v pt-query-digest >/dev/null 2>&1; then
  exit 0
fi
fail() {
  if [ "${CI:-}" = "true" ]; then echo "error: $1" >&2; exit 1; fi
  echo "warning: $1; the pt-query-digest comparison tests will be skipped" >&2; exit 0
}
command -v apt-get >/dev/null 2>&1 || fail "pt-query-digest not found and no apt-get to install percona-toolkit"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "installing percona-toolkit needs root: apt-get install -y percona-toolkit"
  SUDO="sudo -n"
fi
echo "installing percona-toolkit (system package manager)..."
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq --no-install-recommends percona-toolkit >/dev/null 2>&1; then
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends percona-toolkit >/dev/null || fail "apt-get install percona-toolkit failed"
fi
command -v pt-query-digest >/dev/null 2>&1 || fail "percona-toolkit installed but pt-query-digest not found"
