"""Statement builders per flavor. A Statement carries the SQL to run and a redacted form for logs/plans.

No statement carries a plaintext password where the server would log it:
- MariaDB writes `IDENTIFIED BY '<plaintext>'` verbatim to the binlog and slow log, so it gets the
  mysql_native_password hash (`IDENTIFIED BY PASSWORD '*...'`).
- MySQL 8 rewrites `IDENTIFIED ... BY '<plaintext>'` to the hash before logging (general, slow and binary log),
  so it gets caching_sha2_password, its default and the plugin RDS recommends.
"""

from __future__ import annotations

from dataclasses import dataclass

from .flavor import Flavor
from .passwords import native_hash
from .quoting import account, escape_db_pattern, grantee, ident, literal, string

REDACTED = "<redacted>"


@dataclass(frozen=True)
class Statement:
    sql: str
    redacted: str | None = None  # set when `sql` holds a secret (a password or its hash)

    @property
    def safe(self) -> str:
        """The form that may be printed or logged."""
        return self.redacted if self.redacted is not None else self.sql


def create_database(name: str, charset: str, collation: str) -> Statement:
    return Statement(f"CREATE DATABASE IF NOT EXISTS {ident(name)} CHARACTER SET {charset} COLLATE {collation}")


def alter_database(name: str, charset: str, collation: str) -> Statement:
    return Statement(f"ALTER DATABASE {ident(name)} CHARACTER SET {charset} COLLATE {collation}")


def drop_database(name: str) -> Statement:
    return Statement(f"DROP DATABASE IF EXISTS {ident(name)}")


IAM = "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"


def _identified(flavor: Flavor, password: str | None) -> tuple[str, str]:
    if password is None:
        # RDS IAM database authentication: the client logs in with a 15-minute token over TLS.
        if flavor.is_mariadb:
            raise ValueError("IAM authentication needs MySQL on RDS (AWSAuthenticationPlugin)")
        return IAM, IAM
    if flavor.is_mariadb:
        return (f"IDENTIFIED BY PASSWORD {literal(native_hash(password))}",
                f"IDENTIFIED BY PASSWORD {literal(REDACTED)}")
    return (f"IDENTIFIED WITH caching_sha2_password BY {literal(password)}",
            f"IDENTIFIED WITH caching_sha2_password BY {literal(REDACTED)}")


def _limits(require_ssl: bool, max_connections: int) -> str:
    # MariaDB insists on REQUIRE ... before WITH MAX_USER_CONNECTIONS; MySQL accepts that order too.
    return f"REQUIRE {'SSL' if require_ssl else 'NONE'} WITH MAX_USER_CONNECTIONS {max_connections}"


def create_user(flavor: Flavor, user: str, host: str, password: str | None, *, require_ssl: bool,
                max_connections: int) -> Statement:
    auth, auth_red = _identified(flavor, password)
    head = f"CREATE USER {account(user, host)}"
    tail = _limits(require_ssl, max_connections)
    return Statement(f"{head} {auth} {tail}", f"{head} {auth_red} {tail}")


def set_password(flavor: Flavor, user: str, host: str, password: str | None) -> Statement:
    auth, auth_red = _identified(flavor, password)
    head = f"ALTER USER {account(user, host)}"
    return Statement(f"{head} {auth}", f"{head} {auth_red}")


def alter_user_limits(user: str, host: str, *, require_ssl: bool, max_connections: int,
                      flavor: Flavor | None = None, locked: bool = False) -> Statement:
    """Every account property the config owns, in one statement: TLS, limits (per-hour ones and MariaDB's
    statement time back to none), the server's password-expiry policy, and unlocked (locked: an idle rotation
    twin nobody holds a password for)."""
    statement_time = " MAX_STATEMENT_TIME 0" if flavor is not None and flavor.is_mariadb else ""
    return Statement(
        f"ALTER USER {account(user, host)} REQUIRE {'SSL' if require_ssl else 'NONE'} WITH MAX_QUERIES_PER_HOUR 0 "
        f"MAX_UPDATES_PER_HOUR 0 MAX_CONNECTIONS_PER_HOUR 0 MAX_USER_CONNECTIONS {max_connections}{statement_time} "
        f"PASSWORD EXPIRE DEFAULT ACCOUNT {'LOCK' if locked else 'UNLOCK'}")


def drop_user(user: str, host: str) -> Statement:
    return Statement(f"DROP USER IF EXISTS {account(user, host)}")


def _privs(flavor: Flavor, privileges: frozenset[str]) -> str:
    if privileges >= flavor.db_all_privileges:
        return "ALL PRIVILEGES"
    return ", ".join(sorted(privileges))


def grant_on_database(flavor: Flavor, privileges: frozenset[str], database: str, user: str, host: str) -> Statement:
    """Grant on exactly one database: the name is escaped so `_`/`%` are not wildcards."""
    return Statement(
        f"GRANT {_privs(flavor, privileges)} ON {ident(escape_db_pattern(database))}.* TO {account(user, host)}"
    )


def revoke(flavor: Flavor, privileges: frozenset[str], scope: str, user: str, host: str) -> Statement:
    """Revoke on a raw scope as the server stores it: `*.*`, a db pattern, or `db`.`table`.

    A privilege this code has no name for (a newer server's bit) is covered by ALL PRIVILEGES."""
    if scope == "*.*":
        privs = "ALL PRIVILEGES" if any(p.startswith("privilege bits") for p in privileges) else \
            ", ".join(sorted(privileges))
    else:
        privs = _privs(flavor, privileges)
    return Statement(f"REVOKE {privs} ON {scope} FROM {grantee(user, host)}")


def delete_grant_rows(table: str, where: dict[str, str]) -> list[Statement]:
    """Remove grant-table rows that no REVOKE can reach (a grant to an account or role that no longer exists, a
    PACKAGE grant that only parses under sql_mode=ORACLE), then reload the privileges."""
    cond = " AND ".join(f"{col} = {string(val)}" for col, val in where.items())
    return [Statement(f"DELETE FROM mysql.{table} WHERE {cond}"), Statement("FLUSH PRIVILEGES")]


def revoke_routine(privileges: frozenset[str], routine_type: str, database: str, routine: str, user: str,
                   host: str) -> Statement | list[Statement]:
    if routine_type.upper() not in ("FUNCTION", "PROCEDURE"):  # MariaDB's PACKAGE / PACKAGE BODY
        return delete_grant_rows("procs_priv", {"User": user, "Host": host, "Db": database,
                                                "Routine_name": routine, "Routine_type": routine_type.upper()})
    kind = routine_type.upper()
    return Statement(f"REVOKE {', '.join(sorted(privileges))} ON {kind} {ident(database)}.{ident(routine)} "
                     f"FROM {grantee(user, host)}")


def revoke_proxy(proxied_user: str, proxied_host: str, user: str, host: str) -> list[Statement]:
    """REVOKE PROXY needs PROXY ... WITH GRANT OPTION on the proxied account, which only root-like accounts hold
    (RDS's master does not: error 1698), so the row is removed from the grant table and privileges reloaded."""
    where = (f"User = {string(user)} AND Host = {string(host)} AND Proxied_user = {string(proxied_user)} "
             f"AND Proxied_host = {string(proxied_host)}")
    return [Statement(f"DELETE FROM mysql.proxies_priv WHERE {where}"), Statement("FLUSH PRIVILEGES")]


def set_default_role_none(flavor: Flavor, user: str, host: str) -> Statement:
    # MariaDB: SET DEFAULT ROLE NONE FOR u; MySQL 8: SET DEFAULT ROLE NONE TO u.
    return Statement(f"SET DEFAULT ROLE NONE {'FOR' if flavor.is_mariadb else 'TO'} {account(user, host)}")


def clear_mandatory_roles() -> Statement:
    # MySQL 8 only (MariaDB has no mandatory_roles); on RDS set it in the parameter group instead.
    return Statement("SET PERSIST mandatory_roles = ''")


def scope_for_pattern(pattern: str) -> str:
    """A stored database grant pattern (kept as the server stores it, escapes included) as an ON clause."""
    return f"{ident(pattern)}.*"


def scope_for_table(database: str, table: str) -> str:
    return f"{ident(database)}.{ident(table)}"


def revoke_columns(privileges: frozenset[str], database: str, table: str, column: str, user: str,
                   host: str) -> Statement:
    privs = ", ".join(f"{p} ({ident(column)})" for p in sorted(privileges))
    return Statement(f"REVOKE {privs} ON {ident(database)}.{ident(table)} FROM {grantee(user, host)}")


def revoke_role(flavor: Flavor, role: str, role_host: str, user: str, host: str) -> Statement:
    # MariaDB roles have no host part; MySQL 8 roles are accounts.
    name = ident(role) if flavor.is_mariadb else account(role, role_host)
    return Statement(f"REVOKE {name} FROM {grantee(user, host)}")
