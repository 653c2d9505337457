#!/usr/bin/env bash
# promtool (checks the shipped Prometheus rules in the tests): from the Debian package `prometheus`, unpacked into
# the virtualenv's bin/ without installing the package (installing would start a Prometheus service).
# Usage: ensure-promtool.sh DEST_BIN_DIR
set -euo pipefail
DEST="$(cd "$1" && pwd)"
if command -v promtool >/dev/null 2>&1 || [ -x "$DEST/promtool" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: promtool not found and no apt-get to fetch it; install the prometheus package" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching promtool (Debian package prometheus, unpacked, not installed)..."
cd "$tmp"
if ! apt-get download prometheus >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  apt-get download prometheus >/dev/null
fi
dpkg-deb -x prometheus_*.deb root
install -m 0755 root/usr/bin/promtool "$DEST/promtool"
"$DEST/promtool" --version >/dev/null
