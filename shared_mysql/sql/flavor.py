"""MySQL 8.0 vs MariaDB 10.6+: detection and the differences statement builders rely on."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Database-level privileges that `ALL PRIVILEGES ON db.*` expands to (without GRANT OPTION).
_COMMON_DB_PRIVS = frozenset(
    {
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX", "ALTER",
        "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "CREATE VIEW", "SHOW VIEW",
        "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "TRIGGER",
    }
)


@dataclass(frozen=True)
class Flavor:
    name: str  # "mariadb" | "mysql"
    version: tuple[int, int, int]
    version_string: str = ""

    @property
    def is_mariadb(self) -> bool:
        return self.name == "mariadb"

    @property
    def db_all_privileges(self) -> frozenset[str]:
        # MariaDB 10.3.4+ adds DELETE HISTORY (system-versioned tables); 11.3+ adds SHOW CREATE ROUTINE.
        if self.is_mariadb:
            extra = {"DELETE HISTORY"}
            if self.version >= (11, 3, 0):
                extra.add("SHOW CREATE ROUTINE")
            return _COMMON_DB_PRIVS | extra
        return _COMMON_DB_PRIVS

    @property
    def label(self) -> str:
        return f"{'MariaDB' if self.is_mariadb else 'MySQL'} {'.'.join(map(str, self.version))}"


MARIADB_10_11 = Flavor("mariadb", (10, 11, 0), "10.11.0-MariaDB")
MYSQL_8_0 = Flavor("mysql", (8, 0, 35), "8.0.35")


def detect_flavor(version_string: str) -> Flavor:
    # MariaDB reports "5.5.5-10.11.6-MariaDB" over the protocol so that old clients do not choke on "10".
    v = version_string[6:] if version_string.startswith("5.5.5-") else version_string
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        raise ValueError(f"unrecognised server version {version_string!r}")
    version = tuple(int(x) for x in m.groups())
    name = "mariadb" if "mariadb" in version_string.lower() else "mysql"
    return Flavor(name, version, version_string)  # type: ignore[arg-type]
