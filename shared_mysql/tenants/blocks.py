"""Tenants whose accounts must stay locked: a refresh whose masking is not verified yet (and later, suspensions).

Kept on the server itself, in the tool's own schema (readable by the admin only), so every operator's `plan` sees
them: the plan then wants the tenant's accounts locked, and never "repairs" the lock as drift.
"""

from __future__ import annotations

from ..errors import SharedMySQLError
from ..sql.quoting import as_text, ident, string
from .model import META_DATABASE, derived_user_names

TABLE = f"`{META_DATABASE}`.tenant_blocks"
EVENTS = f"`{META_DATABASE}`.suspended_events"


def ensure(ex) -> None:
    ex.query(f"CREATE DATABASE IF NOT EXISTS `{META_DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    # One row per (tenant, kind): a refresh's block and, say, a suspension are lifted separately.
    ex.query(f"CREATE TABLE IF NOT EXISTS {TABLE} (tenant VARCHAR(64) NOT NULL, kind VARCHAR(32) NOT NULL, "
             "reason VARCHAR(512) NOT NULL, since DATETIME NOT NULL, PRIMARY KEY (tenant, kind)) ENGINE=InnoDB")
    # The events a suspension disabled, so that resume enables exactly those again, with their own definer.
    ex.query(f"CREATE TABLE IF NOT EXISTS {EVENTS} (tenant VARCHAR(64) NOT NULL, event_schema VARCHAR(64) NOT NULL, "
             "event_name VARCHAR(64) NOT NULL, definer VARCHAR(400) NOT NULL, PRIMARY KEY (event_schema, event_name)) "
             "ENGINE=InnoDB")


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


def block(ex, tenant: str, reason: str, kind: str = "refresh") -> dict | None:
    """Record the block; a block of that kind already there is kept as it was (its reason and since: the first
    record of an incident is the one that counts). Returns that earlier record, or None."""
    ensure(ex)
    rows = ex.query(f"SELECT reason, DATE_FORMAT(since, '%Y-%m-%dT%H:%i:%sZ') FROM {TABLE} WHERE tenant = "
                    f"{string(tenant)} AND kind = {string(kind)}")
    if rows:
        return {"kind": kind, "reason": as_text(rows[0][0]), "since": as_text(rows[0][1])}
    ex.query(f"INSERT INTO {TABLE} (tenant, kind, reason, since) VALUES ({string(tenant)}, {string(kind)}, "
             f"{string(reason[:512])}, UTC_TIMESTAMP()) ON DUPLICATE KEY UPDATE reason = reason")
    return None


def _definer(definer: str) -> str:
    user, _, host = definer.rpartition("@")
    return f"{string(user)}@{string(host)}"


def disable_events(ex, tenant: str, database: str) -> tuple[list[str], list[str]]:
    """Disable the enabled events in the tenant's database or defined by its accounts: an event runs as its
    definer whether or not the account is locked, so a leaked credential could leave one behind that outlives the
    lock. Each is recorded before it is disabled, and disabled with its own definer named (a plain ALTER EVENT
    would make the admin its definer, and resume would then run the tenant's code as the admin). Returns
    (disabled, failed: one line each)."""
    ensure(ex)
    names = derived_user_names(tenant)
    rows = ex.query("SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE STATUS = "
                    f"'ENABLED' AND (EVENT_SCHEMA = {string(database)} OR SUBSTRING_INDEX(DEFINER, '@', 1) IN ("
                    + ", ".join(string(n) for n in names) + "))")
    done, failed = [], []
    for schema, name, definer in rows:
        sc, nm, df = as_text(schema), as_text(name), as_text(definer)
        ex.query(f"INSERT INTO {EVENTS} (tenant, event_schema, event_name, definer) VALUES ({string(tenant)}, "
                 f"{string(sc)}, {string(nm)}, {string(df)}) ON DUPLICATE KEY UPDATE definer = VALUES(definer)")
        try:
            ex.query(f"ALTER DEFINER = {_definer(df)} EVENT {ident(sc)}.{ident(nm)} DISABLE")
            done.append(f"`{sc}`.`{nm}` (runs as {df})")
        except SharedMySQLError as exc:
            why = "the admin may not name another definer (SUPER / SET_USER_ID)" if "1227" in str(exc) else \
                str(exc).split(": ", 1)[-1][:120]
            failed.append(f"event `{sc}`.`{nm}` still runs as {df}: {why}; drop it or stop the event scheduler")
    return done, failed


def enable_events(ex, tenant: str) -> list[str]:
    """Enable again exactly the events a suspension disabled (those still there and still disabled)."""
    try:
        rows = ex.query(f"SELECT event_schema, event_name, definer FROM {EVENTS} WHERE tenant = {string(tenant)}")
    except SharedMySQLError as exc:
        if "error 1146" in str(exc) or "error 1049" in str(exc):
            return []
        raise
    done = []
    for schema, name, definer in rows:
        sc, nm, df = as_text(schema), as_text(name), as_text(definer)
        st = ex.query("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = "
                      f"{string(sc)} AND EVENT_NAME = {string(nm)}")
        if st and as_text(st[0][0]) == "DISABLED":
            ex.query(f"ALTER DEFINER = {_definer(df)} EVENT {ident(sc)}.{ident(nm)} ENABLE")
            done.append(f"`{sc}`.`{nm}`")
        ex.query(f"DELETE FROM {EVENTS} WHERE event_schema = {string(sc)} AND event_name = {string(nm)}")
    return done


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
