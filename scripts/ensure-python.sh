#!/usr/bin/env bash
# Check for Python 3.11+ with venv support; on Debian/Ubuntu install python3-venv when it is missing.
set -euo pipefail
PY="${1:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: $PY not found; install Python 3.11 or newer (apt-get install -y python3 python3-venv)" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: $("$PY" --version 2>&1) is too old; shared-mysql needs Python 3.11+ (set PYTHON=python3.11)" >&2
  exit 1
fi
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing python3-venv (system package manager)..."
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
