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
             "event_name VARCHAR(64) NOT NULL, definer VARCHAR(400) NOT NULL, "
             "PRIMARY KEY (tenant, event_schema, event_name)) ENGINE=InnoDB")


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


def get(ex, tenant: str, kind: str) -> dict | None:
    """The block of that kind on the tenant ({kind, reason, since}), or None (also when nothing was ever blocked)."""
    try:
        rows = ex.query(f"SELECT reason, DATE_FORMAT(since, '%Y-%m-%dT%H:%i:%sZ') FROM {TABLE} WHERE tenant = "
                        f"{string(tenant)} AND kind = {string(kind)}")
    except SharedMySQLError as exc:
        if "error 1146" in str(exc) or "error 1049" in str(exc):
            return None
        raise
    return {"kind": kind, "reason": as_text(rows[0][0]), "since": as_text(rows[0][1])} if rows else None


def block(ex, tenant: str, reason: str, kind: str = "refresh") -> dict | None:
    """Record the block; a block of that kind already there is kept as it was (its reason and since: the first
    record of an incident is the one that counts). Returns that earlier record, or None."""
    ensure(ex)
    earlier = get(ex, tenant, kind)
    if earlier is None:
        ex.query(f"INSERT INTO {TABLE} (tenant, kind, reason, since) VALUES ({string(tenant)}, {string(kind)}, "
                 f"{string(reason[:512])}, UTC_TIMESTAMP()) ON DUPLICATE KEY UPDATE reason = reason")
    return earlier


def _definer(definer: str) -> str:
    user, _, host = definer.rpartition("@")
    return f"{string(user)}@{string(host)}"


def _tenant_events(ex, tenant: str, database: str) -> list[tuple[str, str, str]]:
    names = derived_user_names(tenant)
    rows = ex.query("SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE STATUS = "
                    f"'ENABLED' AND (EVENT_SCHEMA = {string(database)} OR SUBSTRING_INDEX(DEFINER, '@', 1) IN ("
                    + ", ".join(string(n) for n in names) + "))")
    return [(as_text(a), as_text(b), as_text(c)) for a, b, c in rows]


def disable_events(ex, tenant: str, database: str, rounds: int = 5,
                   killed: list | None = None) -> tuple[list[str], list[str]]:
    """Disable the enabled events in the tenant's database or defined by its accounts: an event runs as its
    definer whether or not the account is locked, so a leaked credential could leave one behind that outlives the
    lock. Each is recorded before it is disabled, and disabled with its own definer named (a plain ALTER EVENT
    would make the admin its definer, and resume would then run the tenant's code as the admin).

    Re-read until none is left: an event that ran before it was disabled can enable another again (or create
    one), so each round is followed by ending the tenant's sessions (event executions included) and a fresh
    read. Returns (disabled, failed: one line each, what still runs)."""
    ensure(ex)
    done: list[str] = []
    failed: dict[tuple[str, str], str] = {}
    for _ in range(rounds):
        todo = [e for e in _tenant_events(ex, tenant, database) if (e[0], e[1]) not in failed]
        if not todo:
            break
        for sc, nm, df in todo:
            ex.query(f"INSERT INTO {EVENTS} (tenant, event_schema, event_name, definer) VALUES ({string(tenant)}, "
                     f"{string(sc)}, {string(nm)}, {string(df)}) ON DUPLICATE KEY UPDATE definer = VALUES(definer)")
            try:
                ex.query(f"ALTER DEFINER = {_definer(df)} EVENT {ident(sc)}.{ident(nm)} DISABLE")
                done.append(f"`{sc}`.`{nm}` (runs as {df})")
            except SharedMySQLError as exc:
                why = "the admin may not name another definer (SUPER / SET_USER_ID)" if "1227" in str(exc) else \
                    str(exc).split(": ", 1)[-1][:120]
                failed[(sc, nm)] = f"event `{sc}`.`{nm}` still runs as {df}: {why}; drop it or stop the event scheduler"
        lock_now(ex, tenant, killed)
    left = [e for e in _tenant_events(ex, tenant, database) if (e[0], e[1]) not in failed]
    for sc, nm, df in left:  # enabled again faster than it could be disabled, round after round
        failed[(sc, nm)] = (f"event `{sc}`.`{nm}` was enabled again while suspend ran (runs as {df}); run "
                            "`shared-mysql suspend` again, or drop it")
    return list(dict.fromkeys(done)), list(failed.values())


def enable_events(ex, tenant: str) -> list[str]:
    """Enable again exactly the events a suspension of this tenant disabled (those still there and still
    disabled). An event that is also another blocked tenant's (in its database, or defined by its account) stays
    disabled: its record passes to that tenant."""
    try:
        rows = ex.query(f"SELECT event_schema, event_name, definer FROM {EVENTS} WHERE tenant = {string(tenant)}")
    except SharedMySQLError as exc:
        if "error 1146" in str(exc) or "error 1049" in str(exc):
            return []
        raise
    from ..config.model import DATABASE_SUFFIX

    others = [t for t in read(ex) if t != tenant]
    done = []
    for schema, name, definer in rows:
        sc, nm, df = as_text(schema), as_text(name), as_text(definer)
        owner = next((o for o in others if sc == f"{o}{DATABASE_SUFFIX}"
                      or df.rpartition("@")[0] in derived_user_names(o)), None)
        if owner is not None:
            ex.query(f"INSERT IGNORE INTO {EVENTS} (tenant, event_schema, event_name, definer) VALUES "
                     f"({string(owner)}, {string(sc)}, {string(nm)}, {string(df)})")
        else:
            st = ex.query("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = "
                          f"{string(sc)} AND EVENT_NAME = {string(nm)}")
            if st and as_text(st[0][0]) == "DISABLED":
                ex.query(f"ALTER DEFINER = {_definer(df)} EVENT {ident(sc)}.{ident(nm)} ENABLE")
                done.append(f"`{sc}`.`{nm}`")
        ex.query(f"DELETE FROM {EVENTS} WHERE tenant = {string(tenant)} AND event_schema = {string(sc)} AND "
                 f"event_name = {string(nm)}")
    return done


def unblock(ex, tenant: str, kind: str = "refresh") -> list[str]:
    """Lift one kind of block (another kind, if any, keeps the tenant locked). When none is left, the events a
    suspension disabled are enabled again, whichever block was lifted last; returns them."""
    try:
        ex.query(f"DELETE FROM {TABLE} WHERE tenant = {string(tenant)} AND kind = {string(kind)}")
    except SharedMySQLError as exc:
        if "error 1146" not in str(exc) and "error 1049" not in str(exc):
            raise
        return []
    if tenant in read(ex):
        return []
    return enable_events(ex, tenant)


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
