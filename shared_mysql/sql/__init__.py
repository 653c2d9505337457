"""SQL for MySQL 8.0 and MariaDB 10.6+: quoting, statement builders, flavor quirks. No I/O here."""

from .flavor import MARIADB_10_11, MYSQL_8_0, Flavor, detect_flavor
from .statements import REDACTED, Statement

__all__ = ["Flavor", "detect_flavor", "MARIADB_10_11", "MYSQL_8_0", "Statement", "REDACTED"]
