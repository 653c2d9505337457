"""Tenants whose accounts must stay locked: a refresh whose masking is not verified yet (and later, suspensions).

Kept on the server itself, in the tool's own schema (readable by the admin only), so every operator's `plan` sees
them: the plan then wants the tenant's accounts locked, and never "repairs" the lock as drift.
"""

from __future__ import annotations

from ..errors import SharedMySQLError
from ..sql.quoting import as_text, string
from .model import META_DATABASE, derived_user_names

TABLE = f"`{META_DATABASE}`.tenant_blocks"


def ensure(ex) -> None:
    ex.query(f"CREATE DATABASE IF NOT EXISTS `{META_DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    # One row per (tenant, kind): a refresh's block and, say, a suspension are lifted separately.
    ex.query(f"CREATE TABLE IF NOT EXISTS {TABLE} (tenant VARCHAR(64) NOT NULL, kind VARCHAR(32) NOT NULL, "
             "reason VARCHAR(512) NOT NULL, since DATETIME NOT NULL, PRIMARY KEY (tenant, kind)) ENGINE=InnoDB")


def read(ex) -> dict[str, dict]:
    """tenant -> {kind, reason, since} (the oldest block when there are several); {} when the table does not
    exist (nothing was ever blocked)."""
    try:
        rows = ex.query(f"SELECT tenant, kind, reason, DATE_FORMAT(since, '%Y-%m-%dT%H:%i:%sZ') FROM {TABLE} "
                        "ORDER BY since DESC")
    except SharedMySQLError as exc:
        if "error 1146" in str(exc) or "error 1049" in str(exc):
            return {}
        raise
    return {as_text(t): {"kind": as_text(k), "reason": as_text(r), "since": as_text(s)} for t, k, r, s in rows}


def block(ex, tenant: str, reason: str, kind: str = "refresh") -> None:
    ensure(ex)
    ex.query(f"INSERT INTO {TABLE} (tenant, kind, reason, since) VALUES ({string(tenant)}, {string(kind)}, "
             f"{string(reason[:512])}, UTC_TIMESTAMP()) ON DUPLICATE KEY UPDATE reason = VALUES(reason)")


def unblock(ex, tenant: str, kind: str = "refresh") -> None:
    """Lift one kind of block (another kind, if any, keeps the tenant locked)."""
    try:
        ex.query(f"DELETE FROM {TABLE} WHERE tenant = {string(tenant)} AND kind = {string(kind)}")
    except SharedMySQLError as exc:
        if "error 1146" not in str(exc) and "error 1049" not in str(exc):
            raise


def lock_now(ex, tenant: str, killed: list | None = None) -> list[str]:
    """Lock every existing account of the tenant (app, readonly, rotation twins, on any host) and end their
    sessions (their ids appended to `killed`). Returns the accounts locked. The plan keeps them locked while the
    block stays."""
    names = derived_user_names(tenant)
    rows = ex.query("SELECT User, Host FROM mysql.user WHERE User IN (" + ", ".join(string(n) for n in names) + ")")
    done = []
    for user, host in rows:
        u, h = as_text(user), as_text(host)
        ex.query(f"ALTER USER {string(u)}@{string(h)} ACCOUNT LOCK")
        done.append(f"{u}@{h}")
    users = {as_text(r[0]) for r in rows}
    if users:
        for (cid,) in ex.query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER IN ("
                               + ", ".join(string(u) for u in sorted(users)) + ")"):
            try:
                ex.query(f"KILL {int(cid)}")
                if killed is not None:
                    killed.append(int(cid))
            except SharedMySQLError:
                pass  # it ended on its own
    return done
