#!/usr/bin/env bash
# Install a MariaDB server from the system package manager when no mariadbd/mysqld is present.
# Debian/Ubuntu only (apt-get); runs apt-get as root, or through sudo when available.
set -euo pipefail

have_server() {
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 ||
    [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]
}

if have_server; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no MariaDB/MySQL server found and no apt-get to install one; install mariadb-server yourself" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: installing mariadb-server needs root; run: apt-get install -y mariadb-server mariadb-client" >&2
    exit 1
  fi
fi
echo "installing mariadb-server (system package manager)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The distribution's service is not used: shared-mysql runs its own private server on 127.0.0.1.
$SUDO apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client mariadb-backup >/dev/null
have_server || { echo "error: mariadb-server installed but mariadbd not found" >&2; exit 1; }
