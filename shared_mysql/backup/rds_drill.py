"""`backup test` on aws: restore the instance into a temporary instance, prove the data, always delete it.

1. Leftover temporary instances of this source from interrupted runs are deleted first (`remove_leftovers`).
2. On the source (admin login): a marker row (a random token) in the tool's own schema, then, in one consistent
   snapshot read right after server time t1, every tenant table's row count and order-free checksum (S1).
3. Wait until LatestRestorableTime >= R = floor(t1) + 1 s, and restore to R into `{source}-bt-{YYYYMMDDHHMM}`,
   Single-AZ (cheaper and faster to make; the data is the same), deletion protection off, tagged as ours
   (or, with a snapshot, from it: then T = the snapshot's time and there is no marker to look for).
4. On the restored instance (master credential, verified TLS): the marker is there, every table exists, and each
   table's count and checksum equal S1's. After that, on the source: the same numbers again (S2) and every table's
   information_schema.TABLES.UPDATE_TIME.

The rule. A table is compared iff S1 == S2 and, when UPDATE_TIME can be trusted (the server has run since before
T), its UPDATE_TIME is NULL or earlier than floor(T); T = t1 (PITR) or the snapshot's creation time. Otherwise it
is reported "changed since T, not compared" — never a failure: a write the source took after T is in the source's
numbers but not the restore's (or the other way round). UPDATE_TIME is set at commit and covers a change that was
undone before S2 (S1 == S2 alone would miss it); S1 == S2 covers a server restart (UPDATE_TIME is lost then). With a
snapshot and a restart after it, nothing can be proven: every table is "not compared". A table missing on the
restore, or a compared table whose numbers differ, or a missing marker, is a failure (exit 3).

RTO = restore call until available + verification. RPO = now - LatestRestorableTime when the run started; the
marker's wait (how long RDS took to make it restorable) is reported beside it.
"""

from __future__ import annotations

import fcntl
import math
import os
import secrets as _secrets
import stat
import time
from contextlib import contextmanager
from datetime import datetime, timezone

from ..db import ConnectionInfo, PyMySQLExecutor
from ..errors import ServerError, SharedMySQLError
from ..sql.quoting import string
from ..tenants.model import DATABASE_SUFFIX, META_DATABASE
from . import rds as R

PURPOSE = "backup-test"
TAG_PURPOSE, TAG_SOURCE = "shared-mysql:purpose", "shared-mysql:source"
TAG_OWNER, TAG_EXPIRES = "shared-mysql:owner", "shared-mysql:expires"
TTL_S = 6 * 3600.0  # a temporary instance whose run stopped heart-beating this long ago is a leftover
HEARTBEAT_S = 600.0
MARKER_WAIT_S = 1800.0  # RDS uploads transaction logs every 5 minutes


def temp_id(source: str, now=None) -> str:
    when = R._utc(time.time() if now is None else now).strftime("%Y%m%d%H%M")
    return f"{source[:63 - 4 - len(when)].rstrip('-')}-bt-{when}".lower()


def owner(pid: int | None = None) -> str:
    return f"{R.operator()} {os.getpid() if pid is None else pid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tags(db: dict) -> dict:
    return {t["Key"]: t["Value"] for t in db.get("TagList") or []}


def is_leftover(tags: dict, source: str, now: float, host: str | None = None) -> str | None:
    """Why a temporary instance of `source` is a leftover (None: it may be a live run's; never touched)."""
    if tags.get(TAG_PURPOSE) != PURPOSE or tags.get(TAG_SOURCE, "").lower() != source.lower():
        return None
    try:
        expires = float(tags.get(TAG_EXPIRES, ""))
    except ValueError:
        expires = None
    if expires is not None and expires < now:
        return f"expired at {R.iso(expires)}"
    who, _, pid = tags.get(TAG_OWNER, "").rpartition(" ")
    me = R.operator() if host is None else host
    if who == me and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
        return f"its run (pid {pid} on this host) is gone"
    return None


def _delete_temp(rds, ident: str, source: str, owned_by: str | None = None) -> bool:
    """Delete a temporary instance: only one tagged as this source's backup-test instance (and, with `owned_by`,
    as that run's), never the source. False when there is none."""
    if ident.lower() == source.lower():
        raise SharedMySQLError(f"refusing to delete {ident}: it is the source instance")
    db = R.instance_exists(rds, ident)
    if db is None:
        return False
    tags = _tags(db)
    if tags.get(TAG_PURPOSE) != PURPOSE or tags.get(TAG_SOURCE, "").lower() != source.lower():
        raise SharedMySQLError(f"refusing to delete {ident}: it is not tagged as a backup-test instance of {source}")
    if owned_by is not None and tags.get(TAG_OWNER) != owned_by:
        return False  # another run's (the same name from another host in the same minute): never ours to delete
    if db.get("DBInstanceStatus") == "deleting":
        return True
    if db.get("DeletionProtection"):
        R._call(f"ModifyDBInstance {ident}", rds.modify_db_instance, DBInstanceIdentifier=ident,
                DeletionProtection=False, ApplyImmediately=True)
    R._call(f"DeleteDBInstance {ident}", rds.delete_db_instance, DBInstanceIdentifier=ident, SkipFinalSnapshot=True,
            DeleteAutomatedBackups=True)
    return True


def remove_leftovers(target, *, now: float | None = None) -> list[dict]:
    """Delete this source's temporary instances left by interrupted runs (see is_leftover)."""
    rds = R._rds(target)
    source = target.config.db_instance_identifier
    now = time.time() if now is None else now
    found = []
    try:
        for page in rds.get_paginator("describe_db_instances").paginate():
            found += page.get("DBInstances", [])
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise R.RdsError(f"RDS DescribeDBInstances: {R._aws.describe_error(exc)}") from None
    out = []
    for db in found:
        ident = db["DBInstanceIdentifier"]
        if ident.lower() == source.lower():
            continue
        tags = _tags(db) if "TagList" in db else {t["Key"]: t["Value"] for t in R._call(
            f"ListTagsForResource {ident}", rds.list_tags_for_resource, ResourceName=db["DBInstanceArn"])["TagList"]}
        why = is_leftover(tags, source, now)
        if why and _delete_temp(rds, ident, source):
            out.append({"instance": ident, "why": why})
    return out


@contextmanager
def run_lock(target):
    """One `backup test` per source from this checkout (flock on backup-test.lock in the state dir)."""
    from ..secrets.file import private_dirs
    from ..target import check_owned_dirs

    private_dirs(target.state_dir)
    check_owned_dirs(target.state_dir)
    path = target.state_dir / "backup-test.lock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise SharedMySQLError(f"{path}: not a regular file of this user; remove it and re-run")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise SharedMySQLError(f"another `backup test` of {target.config.db_instance_identifier} runs from this "
                                   f"checkout (pid {held or '?'}, lock {path}); wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


# -- SQL on the source and the restored copy --------------------------------------------------------------------
def _dbs(ex, config) -> list[str]:
    want = [f"{t}{DATABASE_SUFFIX}" for t in sorted(config.tenants)]
    have = {r[0] for r in ex.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}
    return [d for d in want if d in have]


def write_marker(ex, source: str) -> tuple[str, float]:
    db = f"`{META_DATABASE}`"
    token = _secrets.token_hex(16)
    ex.query(f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    ex.query(f"CREATE TABLE IF NOT EXISTS {db}.restore_marker (token CHAR(32) PRIMARY KEY, source VARCHAR(63) NOT "
             "NULL, created DATETIME(6) NOT NULL) ENGINE=InnoDB")
    ex.query(f"DELETE FROM {db}.restore_marker WHERE created < UTC_TIMESTAMP() - INTERVAL 30 DAY")
    ex.query(f"INSERT INTO {db}.restore_marker VALUES ({string(token)}, {string(source[:63])}, UTC_TIMESTAMP(6))")
    return token, float(ex.query("SELECT UNIX_TIMESTAMP(NOW(6))")[0][0])


def snapshot_sums(ex, dbs: list[str]) -> tuple[float, dict]:
    """(server time just before the snapshot, {db.table: [rows, checksum]}) in one consistent snapshot."""
    from .create import session_setup
    from .drill import table_sums

    session_setup(ex.conn, 1 << 24)
    t1 = float(ex.query("SELECT UNIX_TIMESTAMP(NOW(6))")[0][0])
    ex.query("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    try:
        return t1, table_sums(ex.conn, dbs)
    finally:
        ex.query("COMMIT")


def update_times(ex, dbs: list[str]) -> tuple[dict, float]:
    """({db.table: epoch or None}, the server's start time). MySQL 8 caches information_schema.TABLES for a day
    (information_schema_stats_expiry): asked to read it fresh; MariaDB has no such cache (error 1193)."""
    try:
        ex.query("SET SESSION information_schema_stats_expiry = 0")
    except ServerError:
        pass
    if not dbs:
        return {}, 0.0
    inlist = ",".join(string(d) for d in dbs)
    rows = ex.query("SELECT TABLE_SCHEMA, TABLE_NAME, UNIX_TIMESTAMP(UPDATE_TIME) FROM information_schema.TABLES "
                    f"WHERE TABLE_SCHEMA IN ({inlist}) AND TABLE_TYPE = 'BASE TABLE'")
    now = float(ex.query("SELECT UNIX_TIMESTAMP(NOW(6))")[0][0])
    up = {k.lower(): v for k, v in ex.query("SHOW GLOBAL STATUS LIKE 'Uptime'")}.get("uptime")
    started = now - float(up) if up is not None else now  # unknown: as if it had just started (nothing trusted)
    return {f"{s}.{t}": (None if u is None else float(u)) for s, t, u in rows}, started


def compare(s1: dict, s2: dict, restored: dict, updated: dict, trusted: bool, since: float,
            snapshot_mode: bool, created: dict | None = None) -> tuple[list[str], list[str], int]:
    """(problems, not_compared, compared) by the module's rule. Whatever was written since T, a table that existed
    at T must exist on the restore: in S1 and S2 (point in time), or created before T (`created`, snapshot). And a
    test that could compare no table at all proves nothing: a problem, not an OK."""
    problems, skipped, compared = [], [], 0
    floor_t = math.floor(since)
    label = R.iso(since)
    for name in sorted(set(s1) | set(s2) | set(restored)):
        a, b, got = s1.get(name), s2.get(name), restored.get(name)
        born = (created or {}).get(name)
        existed = (not snapshot_mode and a is not None and b is not None) or \
            (born is not None and born < floor_t and b is not None)
        if got is None and existed:
            problems.append(f"{name}: missing on the restored instance (it existed at {label})")
            continue
        changed = a != b or a is None
        u = updated.get(name)
        if trusted:
            changed = changed or (u is not None and u >= floor_t)
        elif snapshot_mode:
            changed = True
        if changed:
            why = "server restarted since then" if (snapshot_mode and not trusted) else "written since"
            skipped.append(f"{name}: changed since {label}, not compared ({why})")
            continue
        compared += 1
        if got is None:
            problems.append(f"{name}: missing on the restored instance (source has {a[0]} rows)")
        elif got != a:
            problems.append(f"{name}: source {a[0]} rows / checksum {a[1]}, restored {got[0]} rows / checksum "
                            f"{got[1]}")
    if (s1 or s2) and compared == 0 and not problems:
        problems.append(f"no table could be compared (every one changed since {label}, or the server restarted "
                        "since): this run proves nothing; run it when writes are quieter, or right after a snapshot")
    return problems, skipped, compared


def create_times(ex, dbs: list[str]) -> dict:
    """table -> CREATE_TIME (epoch) of the tenants' tables: a table created before T must be on the restore."""
    if not dbs:
        return {}
    inlist = ",".join(string(d) for d in dbs)
    rows = ex.query("SELECT TABLE_SCHEMA, TABLE_NAME, UNIX_TIMESTAMP(CREATE_TIME) FROM information_schema.TABLES "
                    f"WHERE TABLE_SCHEMA IN ({inlist}) AND TABLE_TYPE = 'BASE TABLE'")
    return {f"{s}.{t}": (None if c is None else float(c)) for s, t, c in rows}


# -- the test ------------------------------------------------------------------------------------------------------
def _default_connect(info: ConnectionInfo):
    return PyMySQLExecutor.open(info)


def _login(target, host: str, port: int, connect):
    """The restored instance's master login: the current master secret, else the previous one (a snapshot older
    than the last rotation has the old password)."""
    from ..secrets import CURRENT, PREVIOUS

    last = None
    for stage in (CURRENT, PREVIOUS):
        m = target.store.get(target.config.master_secret_name, stage)
        if not m:
            continue
        user = m.get("username") or target.config.instance.master_username
        info = ConnectionInfo(host, port, user, m["password"], ca=target.ca)
        try:
            return connect(info)
        except ServerError as exc:
            last = exc
            if "error 1045" not in str(exc):
                raise
    raise last or SharedMySQLError(target._no_master_hint())


def aws_backup_test(target, *, connect=None, progress=None, snapshot_id: str | None = None,
                    poll: float | None = None, sleep=time.sleep, marker_wait: float = MARKER_WAIT_S,
                    restore_wait: float = R.RESTORE_WAIT_S, multi_az: bool = False) -> dict:
    """Restore into a temporary instance, verify, always delete it. Returns a report; `ok` False (with
    `problems`) means the verification failed (the CLI exits 3)."""
    connect = connect or _default_connect
    say = progress or (lambda *a: None)
    rds = R._rds(target)
    source = target.config.db_instance_identifier
    report: dict = {"source": source, "snapshot": snapshot_id, "problems": [], "not_compared": []}
    with run_lock(target):
        report["leftovers_deleted"] = remove_leftovers(target)
        src = R.describe_instance(rds, source)
        lrt0 = src.get("LatestRestorableTime")
        report["rpo_s"] = round(max(0.0, time.time() - R._utc(lrt0).timestamp()), 1) if lrt0 else None
        snap = R._own_snapshot(rds, target, snapshot_id, "restores") if snapshot_id else None
        if snap is None and not int(src.get("BackupRetentionPeriod") or 0):
            raise R.RdsError(f"{source} has no point-in-time restores (backup_retention_period 0); turn automated "
                             "backups on, or test a snapshot with --snapshot ID")
        with target.executor() as ex:
            dbs = _dbs(ex, target.config)
            token, marked = (None, None) if snap else write_marker(ex, source)
            t1, s1 = snapshot_sums(ex, dbs)
        since = R._utc(snap["SnapshotCreateTime"]).timestamp() if snap else t1
        restore_to = None if snap else datetime.fromtimestamp(math.floor(t1) + 1, timezone.utc)
        new_id = temp_id(source)
        for n in range(2, 10):  # the same minute as another run (another host): a name of our own
            if R.instance_exists(rds, new_id) is None:
                break
            new_id = f"{temp_id(source)[:60]}-{n}"
        me = owner()
        report.update(instance=new_id, restore_time=R.iso(restore_to or since), tables=len(s1),
                      rows=sum(v[0] for v in s1.values()))
        created = False
        try:
            if restore_to is not None:
                report["marker_wait_s"] = _wait_restorable(rds, source, restore_to, marked, poll, sleep, marker_wait,
                                                           say)
            tags = {TAG_PURPOSE: PURPOSE, TAG_SOURCE: source, TAG_OWNER: me,
                    TAG_EXPIRES: f"{time.time() + TTL_S:.0f}"}
            beat = {"at": time.monotonic()}

            def restoring(status, percent, elapsed):
                if time.monotonic() - beat["at"] >= HEARTBEAT_S:  # a long restore is not a leftover
                    beat["at"] = time.monotonic()
                    _heartbeat(rds, new_id)
                say(f"restoring {new_id}: {status}", percent, elapsed)

            t0 = time.monotonic()
            created = True  # from here on the finally deletes whatever exists under new_id
            res = R.restore_instance(target, new_id, to_time=restore_to, snapshot_id=snapshot_id,
                                     deletion_protection=False, tags=tags, multi_az=multi_az, progress=restoring,
                                     poll=poll, timeout=restore_wait, sleep=sleep)
            report["restore_s"] = round(time.monotonic() - t0, 2)
            say(f"verifying {new_id}", None, time.monotonic() - t0)
            restored = _read_restored(target, res["endpoint"], res["port"], connect, dbs, token, report)
            with target.executor() as ex:
                s2 = snapshot_sums(ex, dbs)[1]
                updated, server_start = update_times(ex, dbs)
                created_at = create_times(ex, dbs)
            problems, skipped, compared = compare(s1, s2, restored, updated, server_start < since, since,
                                                  snap is not None, created_at)
            report["problems"] += problems
            report["not_compared"] = skipped
            report["compared"] = compared
            report["rto_s"] = round(time.monotonic() - t0, 2)
        except R.RestoreCheckFailed as exc:
            report["problems"].append(str(exc))
        finally:
            if created:
                report["temp_deleted"] = _finally_delete(rds, new_id, source, me)
    report["ok"] = not report["problems"]
    return report


def _wait_restorable(rds, source, restore_to, marked, poll, sleep, timeout, say) -> float:
    def check():
        lrt = R.describe_instance(rds, source).get("LatestRestorableTime")
        done = lrt is not None and R._utc(lrt) >= restore_to
        return done, f"waiting until {source} is restorable to {R.iso(restore_to)}", None

    R._wait(check, what=f"{source}: LatestRestorableTime", timeout=timeout, poll=poll, sleep=sleep, progress=say,
            hint="; are automated backups on (backup_retention_period > 0)?")
    return round(max(0.0, time.time() - marked), 1)


def _heartbeat(rds, ident: str) -> None:
    db = R.instance_exists(rds, ident)
    if db is not None:
        R._call(f"AddTagsToResource {ident}", rds.add_tags_to_resource, ResourceName=db["DBInstanceArn"],
                Tags=[{"Key": TAG_EXPIRES, "Value": f"{time.time() + TTL_S:.0f}"}])


def _read_restored(target, host, port, connect, dbs, token, report) -> dict:
    from .create import session_setup
    from .drill import table_sums

    ex = _login(target, host, int(port), connect)
    try:
        if token is not None:
            rows = ex.query(f"SELECT created FROM `{META_DATABASE}`.restore_marker WHERE token = {string(token)}") \
                if ex.query(f"SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = {string(META_DATABASE)} "
                            "AND TABLE_NAME = 'restore_marker'") else []
            report["marker_found"] = bool(rows)
            if not rows:
                report["problems"].append(f"marker {token[:8]}... is missing on the restored instance: the restore did "
                                          f"not reach {report['restore_time']}")
        session_setup(ex.conn, 1 << 24)
        return table_sums(ex.conn, dbs)
    finally:
        ex.close()


def _finally_delete(rds, ident: str, source: str, me: str) -> bool:
    """Runs in `finally`, also on Ctrl-C/SIGTERM: delete this run's temporary instance, even half-made. True when
    it is deleted (or deleting), or was never made."""
    for attempt in range(3):
        try:
            return _delete_temp(rds, ident, source, me) or R.instance_exists(rds, ident) is None
        except SharedMySQLError:
            if attempt == 2:
                return False
            time.sleep(1.0)
    return False


__all__ = ["aws_backup_test", "remove_leftovers", "temp_id", "is_leftover", "compare"]
