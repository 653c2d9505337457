"""The client tools a backup needs (mariadb-binlog, mariadb), found on $PATH or failing with the install line."""

from __future__ import annotations

import shutil

from ..errors import SharedMySQLError


def tool(*names: str) -> str:
    for n in names:
        found = shutil.which(n)
        if found:
            return found
    raise SharedMySQLError(f"{names[0]} is not installed; install the client tools (Debian/Ubuntu: apt-get install "
                           "mariadb-client)")
