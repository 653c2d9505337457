"""The client tools a backup needs (mariadb-binlog, mariadb), found on $PATH or failing with the install line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import SharedMySQLError


def tool(*names: str) -> str:
    for n in names:
        found = shutil.which(n)
        if found:
            return found
    raise SharedMySQLError(f"{names[0]} is not installed; install the client tools (Debian/Ubuntu: apt-get install "
                           "mariadb-client)")


def cnf_value(v: str) -> str:
    """A value for an option file: one line, quoted (the client unescapes \\\\ and \\" inside quotes)."""
    if "\n" in v or "\r" in v:
        raise SharedMySQLError("a credential with a newline cannot be handed to the client tools")
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def client_cnf(info, directory: Path) -> Path:
    """The login for mariadb/mariadb-binlog as a 0600 `--defaults-extra-file` (never -p on a command line, where
    `ps` shows it), verified TLS."""
    p = Path(directory) / "client.cnf"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"[client]\nuser={cnf_value(info.user)}\npassword={cnf_value(info.password)}\n"
                f"host={cnf_value(info.host)}\nport={int(info.port)}\nssl-ca={cnf_value(str(info.ca))}\n"
                "ssl-verify-server-cert\n")
    return p
