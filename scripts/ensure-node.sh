#!/usr/bin/env bash
# CDK (shared-mysql infra) runs its library through Node.js. Install the distribution's nodejs when missing.
set -euo pipefail
if command -v node >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: Node.js not found and no apt-get to install it; install Node.js 18+ for shared-mysql infra" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: installing nodejs needs root; run: apt-get install -y nodejs" >&2
    exit 1
  fi
fi
echo "installing nodejs (system package manager, for the CDK app)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nodejs >/dev/null
command -v node >/dev/null 2>&1 || { echo "error: nodejs installed but node not found" >&2; exit 1; }
