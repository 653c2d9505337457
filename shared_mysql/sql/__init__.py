"""SQL for MySQL 8.0 and MariaDB 10.6+: quoting, statement builders, flavor quirks. No I/O here.

Statement builders load on first use (PEP 562): flavor detection alone stays cheap at start-up."""

from .flavor import MARIADB_10_11, MYSQL_8_0, Flavor, detect_flavor

__all__ = ["Flavor", "detect_flavor", "MARIADB_10_11", "MYSQL_8_0", "Statement", "REDACTED"]


def __getattr__(name: str):
    if name in ("Statement", "REDACTED"):
        import importlib  # not `from . import statements`: its hasattr() check would re-enter this function

        return getattr(importlib.import_module(f"{__name__}.statements"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
