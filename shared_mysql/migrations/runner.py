"""migrate / info / validate / repair / baseline for one tenant, as the tenant (its app credential from the secret
store, verified TLS, its own database only), under Flyway's own named lock.

Flyway's semantics on MySQL (no transactional DDL): each statement commits as it runs; a failed migration is
recorded with success = 0 and every later `migrate` refuses until the script is fixed and `repair` removed that
row. Repeatable migrations re-run (a new row each time) when their checksum changes. Versions below the latest
applied one that were never applied are refused (Flyway's default, no out-of-order).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..db import ConnectionInfo, connect
from ..errors import SharedMySQLError, UsageError
from ..secrets import CURRENT
from ..sql.quoting import ident, string
from . import history as H
from .scripts import Migration, discover, version_key
from .sqlsplit import SplitError, split


def q(conn, sql: str):
    """One statement; the server's message as it is (a migration's errors are about its own schema, and a
    scrubbed one -- `Table '?' doesn't exist` -- says nothing)."""
    from ..backup.load import q as run

    return run(conn, sql, clean=False)


class MigrationFailed(SharedMySQLError):
    exit_code = 1


class ValidationFailed(SharedMySQLError):
    exit_code = 3


@dataclass
class Context:
    tenant: str
    db: str
    table: str
    directory: Path
    conn: object
    mariadb: bool
    info: ConnectionInfo | None = None


def tenant_settings(target, tenant: str) -> tuple[str, Path | None]:
    if tenant not in target.config.tenants:
        raise UsageError(f"{tenant!r}: not a tenant in {target.loaded.path}")
    m = target.config.tenants[tenant].migrations
    table = m.table if m and m.table else (target.config.migrations.table or "flyway_schema_history")
    d = m.dir if m and m.dir else None
    return table, (target.loaded.resolve(d) if d else None)


def open_as_tenant(target, tenant: str, with_info: bool = False):
    """A connection as the tenant's app account (its current secret), TLS verified, into its own database."""
    from ..tenants.model import DATABASE_SUFFIX, account_secret

    name, problem = account_secret(target.config, target.loaded.path, tenant, "app")
    if problem:
        raise SharedMySQLError(problem)
    target.store.reload()
    s = target.store.get(name, CURRENT)
    if not s or not s.get("password"):
        raise SharedMySQLError(f"no credential {name} for tenant {tenant} in the secret store; run `shared-mysql "
                               "apply` first")
    db = f"{tenant}{DATABASE_SUFFIX}"
    info = ConnectionInfo(target.host, target.port, s["username"], s["password"], ca=target.ca, database=db)
    return (connect(info), db, info) if with_info else (connect(info), db)


def _lock(ctx: Context, wait: float) -> str:
    name = H.lock_name(ctx.db, ctx.table)
    got = q(ctx.conn, f"SELECT GET_LOCK({string(name)}, {max(0, int(wait))})")[0][0]
    if got != 1:
        holder = q(ctx.conn, f"SELECT IS_USED_LOCK({string(name)})")[0][0]
        who = ""
        if holder is not None:  # the tenant sees its own sessions: the other deploy's account and address
            rows = q(ctx.conn, f"SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = {int(holder)}")
            who = f": {rows[0][0]} from {rows[0][1]}" if rows else ""
        raise SharedMySQLError(f"another migration of {ctx.db} is running (Flyway's lock {name}, held by connection "
                               f"{holder}{who}); waited {int(wait)} s (--lock-timeout); re-run when it is done")
    return name


def applied(ctx: Context) -> list[H.Row]:
    if not H.exists(ctx.conn, q, ctx.db, ctx.table):
        return []
    return H.read(ctx.conn, q, ctx.db, ctx.table)


def plan(rows: list[H.Row], found: list[Migration], target_version: str | None = None) -> dict:
    """What migrate would do, and what validation finds: pending (in order), problems (each one line)."""
    problems: list[str] = []
    by_version: dict[tuple, H.Row] = {}
    baseline_key: tuple | None = None
    for r in rows:
        if r.version is None or r.type == "DELETE":
            continue
        k = version_key(r.version)
        if r.type == "BASELINE":
            baseline_key = k
        by_version[k] = r
    deleted = {version_key(r.version) for r in rows if r.type == "DELETE" and r.version is not None}
    for r in rows:
        if not r.success:
            what = f"to version {r.version} ({r.description})" if r.version is not None else \
                f"repeatable migration: {r.description}"
            problems.append(f"Detected failed migration {what}: remove any half-completed changes, fix {r.script}, "
                            "then run `shared-mysql migrate <tenant> repair`")
    local = {m.key: m for m in found if m.kind == "V"}
    for k, r in sorted(by_version.items()):
        if r.type == "BASELINE" or not r.success or k in deleted:
            continue
        m = local.get(k)
        if m is None:
            problems.append(f"Detected applied migration not resolved locally: {r.version} ({r.script}); restore the "
                            "file, or run `repair` to mark it deleted")
        elif m.checksum != r.checksum:
            problems.append(f"Migration checksum mismatch for migration version {r.version}: applied to database "
                            f"{r.checksum}, resolved locally {m.checksum} ({m.script}); revert the change to the "
                            "file, or run `repair` to accept it")
        elif m.description != r.description:
            problems.append(f"Migration description mismatch for migration version {r.version}: applied "
                            f"{r.description!r}, resolved locally {m.description!r}; rename the file back, or run "
                            "`repair`")
    latest = max((k for k, r in by_version.items() if r.success and k not in deleted), default=None)
    upto = version_key(target_version) if target_version else None
    pending: list[Migration] = []
    for m in found:
        if m.kind != "V" or m.key in by_version and m.key not in deleted:
            continue
        if baseline_key is not None and m.key <= baseline_key:
            continue  # below the baseline: never applied, by design
        if latest is not None and m.key < latest:
            problems.append(f"Detected resolved migration not applied to database: {m.version} ({m.script}) is "
                            f"below the latest applied version; give it a version above it (out-of-order runs are "
                            "refused, as Flyway does by default)")
            continue
        if upto is None or m.key <= upto:
            pending.append(m)
    latest_rep: dict[str, H.Row] = {}
    for r in rows:
        if r.version is None and r.type not in ("SCHEMA",):
            latest_rep[r.description] = r
    for m in found:
        if m.kind != "R":
            continue
        r = latest_rep.get(m.description)
        if r is None or r.type == "DELETE" or r.checksum != m.checksum or not r.success:
            if r is None or r.success:
                pending.append(m)
    return {"pending": pending, "problems": problems, "applied": rows}


def _context(target, tenant: str, directory: Path | None) -> Context:
    table, configured = tenant_settings(target, tenant)
    d = directory or configured
    if d is None:
        raise UsageError(f"migrate {tenant}: no migrations directory: give --dir, or set tenants.{tenant}.migrations."
                         "dir in the config")
    conn, db, info = open_as_tenant(target, tenant, with_info=True)
    from ..sql import detect_flavor

    mariadb = detect_flavor(conn.get_server_info()).is_mariadb
    return Context(tenant, db, table, Path(d), conn, mariadb, info)


def info(target, tenant: str, directory: Path | None = None) -> dict:
    ctx = _context(target, tenant, directory)
    try:
        found = discover(ctx.directory)
        rows = applied(ctx)
        p = plan(rows, found)
    finally:
        ctx.conn.close()
    pending = {(m.kind, m.version, m.description) for m in p["pending"]}
    items = [{"rank": r.rank, "version": r.version, "description": r.description, "type": r.type,
              "script": r.script, "checksum": r.checksum, "installed_by": r.installed_by,
              "installed_on": r.installed_on, "execution_time": r.execution_time,
              "state": "Success" if r.success else "Failed"} for r in rows]
    items += [{"rank": None, "version": m.version, "description": m.description, "type": "SQL", "script": m.script,
               "checksum": m.checksum, "installed_by": None, "installed_on": None, "execution_time": None,
               "state": "Pending"} for m in found if (m.kind, m.version, m.description) in pending]
    return {"tenant": tenant, "database": ctx.db, "table": ctx.table, "migrations": items,
            "problems": p["problems"]}


def validate(target, tenant: str, directory: Path | None = None) -> dict:
    out = info(target, tenant, directory)
    if out["problems"]:
        raise ValidationFailed(f"validate {tenant}: {len(out['problems'])} problem(s); the first: "
                               f"{out['problems'][0]}")
    return out


def max_locking_rows(target, tenant: str) -> int:
    from .online import DEFAULT_MAX_LOCKING_ROWS

    m = target.config.tenants[tenant].migrations
    if m is not None and m.max_locking_rows is not None:
        return m.max_locking_rows
    top = target.config.migrations.max_locking_rows
    return top if top is not None else DEFAULT_MAX_LOCKING_ROWS


class LockingRefused(SharedMySQLError):
    exit_code = 1


def migrate(target, tenant: str, directory: Path | None = None, *, target_version: str | None = None,
            dry_run: bool = False, lock_wait: float = 60.0, say=None, allow_locking: bool = False) -> dict:
    say = say or (lambda m: None)
    ctx = _context(target, tenant, directory)
    t0 = time.monotonic()
    done: list[dict] = []
    try:
        found = discover(ctx.directory)
        statements = {m.script: _split(m) for m in found}  # every file parses before anything runs
        name = _lock(ctx, lock_wait)  # a dry run too: its scratch tables, and a killed check's, are cleaned under it
        try:
            rows = applied(ctx)
            p = plan(rows, found, target_version)
            if p["problems"]:
                raise MigrationFailed(f"migrate {tenant}: validation failed: {p['problems'][0]}"
                                      + (f" (and {len(p['problems']) - 1} more: `migrate {tenant} info`)"
                                         if len(p["problems"]) > 1 else ""))
            from . import online

            limit = max_locking_rows(target, tenant)
            checks = online.check(ctx.conn, q, ctx.db, p["pending"], statements, limit)
            if dry_run:
                return {"tenant": tenant, "database": ctx.db, "dry_run": True, "max_locking_rows": limit,
                        "pending": [_describe(m, len(statements[m.script])) for m in p["pending"]],
                        "checks": [c.to_json() for c in checks]}
            refused = [c for c in checks if c.verdict == "refused"]
            if refused and not allow_locking:
                c = refused[0]
                what = "copies" if c.algorithm == "COPY" else "blocks writes to"
                raise LockingRefused(
                    f"{c.script} line {c.line}: {c.statement!r} {what} table {c.table} (~{c.rows} rows, above "
                    f"max_locking_rows {limit}): ALGORITHM={c.algorithm}, LOCK={c.lock} on this server; safer: "
                    f"{c.safer}; nothing was run (--allow-locking to run it anyway)")
            if not H.exists(ctx.conn, q, ctx.db, ctx.table):
                for sql in H.create_sql(ctx.db, ctx.table, ctx.mariadb):
                    q(ctx.conn, sql)
            for m in p["pending"]:
                say(f"{ctx.db}: {m.label} ({m.script})")
                done.append(_apply(ctx, m, statements[m.script]))
        finally:
            if name is not None:
                q(ctx.conn, f"SELECT RELEASE_LOCK({string(name)})")
    finally:
        ctx.conn.close()
    return {"tenant": tenant, "database": ctx.db, "applied": done, "seconds": round(time.monotonic() - t0, 3),
            "checks": [c.to_json() for c in checks]}


def _split(m: Migration):
    import re

    try:
        text = m.text()
    except UnicodeDecodeError:
        raise UsageError(f"{m.script}: not UTF-8; save it as UTF-8") from None
    ph = re.search(r"\$\{[^}\s]+\}", text)
    if ph:  # Flyway would replace it (or fail on an unknown one); running it as written would be neither
        raise UsageError(f"{m.script}: placeholder {ph.group(0)} (line {text.count(chr(10), 0, ph.start()) + 1}): "
                         "placeholders are not supported; write the value")
    try:
        return split(text)
    except SplitError as exc:
        raise UsageError(f"{m.script}: {exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{m.script}: not UTF-8; save it as UTF-8") from None


def _describe(m: Migration, n: int) -> dict:
    return {"version": m.version, "description": m.description, "script": m.script, "checksum": m.checksum,
            "statements": n, "type": "repeatable" if m.kind == "R" else "versioned"}


def _apply(ctx: Context, m: Migration, stmts) -> dict:
    """One migration on a session of its own (a script's SET autocommit=0, open transaction, LOCK TABLES or
    session variables end with it, as Flyway's connection state is restored): what it left open is committed
    (Flyway commits a migration that succeeded), rolled back when it failed; the history row is written on the
    session that holds the lock."""
    t0 = time.monotonic()
    mconn = connect(ctx.info)
    try:
        _run_statements(ctx, m, stmts, mconn, t0)
        q(mconn, "COMMIT")
        q(mconn, "UNLOCK TABLES")
    finally:
        mconn.close()
    ms = int((time.monotonic() - t0) * 1000)
    H.insert(ctx.conn, q, ctx.db, ctx.table, version=m.version, description=m.description, type_="SQL",
             script=m.script, checksum=m.checksum, execution_ms=ms, success=True)
    return {**_describe(m, len(stmts)), "ms": ms}


def _run_statements(ctx: Context, m: Migration, stmts, mconn, t0: float) -> None:
    import pymysql

    for st in stmts:
        try:
            with mconn.cursor() as cur:
                cur.execute(st.sql)
                while cur.nextset():
                    pass
        except pymysql.err.MySQLError as exc:
            try:
                q(mconn, "ROLLBACK")
            except SharedMySQLError:
                pass
            ms = int((time.monotonic() - t0) * 1000)
            H.insert(ctx.conn, q, ctx.db, ctx.table, version=m.version, description=m.description, type_="SQL",
                     script=m.script, checksum=m.checksum, execution_ms=ms, success=False)
            code = exc.args[0] if exc.args else "?"
            snippet = " ".join(st.sql.split())[:80]
            raise MigrationFailed(f"{m.script} line {st.line} failed: {snippet!r}: error {code}: "
                                  f"{exc.args[-1] if exc.args else exc}; recorded as failed: fix the script (and "
                                  f"undo what it changed), then `shared-mysql migrate {ctx.tenant} repair`") from None


def repair(target, tenant: str, directory: Path | None = None, lock_wait: float = 60.0) -> dict:
    """Flyway's repair: failed rows removed; applied versioned rows realigned with their files (checksum,
    description); applied migrations whose file is gone marked with a DELETE row."""
    ctx = _context(target, tenant, directory)
    out = {"tenant": tenant, "removed_failed": [], "realigned": [], "marked_deleted": []}
    try:
        found = discover(ctx.directory)
        name = _lock(ctx, lock_wait)
        try:
            t = f"{ident(ctx.db)}.{ident(ctx.table)}"
            rows = applied(ctx)
            for r in rows:
                if not r.success:
                    q(ctx.conn, f"DELETE FROM {t} WHERE installed_rank = {r.rank}")
                    out["removed_failed"].append(r.script)
            local = {m.key: m for m in found if m.kind == "V"}
            deleted = {version_key(r.version) for r in rows if r.type == "DELETE" and r.version}
            for r in rows:
                if not r.success or r.version is None or r.type in ("BASELINE", "DELETE"):
                    continue
                k = version_key(r.version)
                m = local.get(k)
                if m is None and k not in deleted:
                    H.insert(ctx.conn, q, ctx.db, ctx.table, version=r.version, description=r.description,
                             type_="DELETE", script=r.script, checksum=r.checksum, execution_ms=0, success=True)
                    out["marked_deleted"].append(r.script)
                elif m is not None and (m.checksum != r.checksum or m.description != r.description):
                    q(ctx.conn, f"UPDATE {t} SET checksum = {m.checksum}, description = {string(m.description)} "
                                f"WHERE installed_rank = {r.rank}")
                    out["realigned"].append(m.script)
        finally:
            q(ctx.conn, f"SELECT RELEASE_LOCK({string(name)})")
    finally:
        ctx.conn.close()
    return out


def baseline(target, tenant: str, version: str = "1", description: str = H.BASELINE_DESCRIPTION,
             directory: Path | None = None) -> dict:
    """Mark an existing schema as being at `version`: migrations at or below it never run."""
    import re

    if not re.fullmatch(r"\d+([._]\d+)*", version):
        raise UsageError(f"--version {version!r}: digits separated by . (e.g. 3 or 1.2)")
    version = version.replace("_", ".")
    table, _ = tenant_settings(target, tenant)
    conn, db = open_as_tenant(target, tenant)
    from ..sql import detect_flavor

    ctx = Context(tenant, db, table, directory or Path("."), conn, detect_flavor(conn.get_server_info()).is_mariadb)
    try:
        rows = applied(ctx)
        real = [r for r in rows if r.type not in ("SCHEMA",)]
        if real:
            b = [r for r in real if r.type == "BASELINE"]
            if b and len(real) == 1 and b[0].version == version:
                return {"tenant": tenant, "baseline": version, "already": True}
            raise UsageError(f"baseline {tenant}: {db}.{table} already holds {len(real)} migration(s); a baseline "
                             "marks a schema that has none")
        if not H.exists(conn, q, db, table):
            for sql in H.create_sql(db, table, ctx.mariadb):
                q(conn, sql)
        H.insert(conn, q, db, table, version=version, description=description, type_="BASELINE",
                 script=H.BASELINE_DESCRIPTION, checksum=None, execution_ms=0, success=True, rank=1)
    finally:
        conn.close()
    return {"tenant": tenant, "baseline": version, "already": False}
