"""`backup create`: a consistent logical backup with no global read lock.

Consistency: N dump sessions must see one snapshot that matches one binlog position. MariaDB's `BACKUP STAGE
BLOCK_COMMIT` (taken by a control session) holds commits -- only commits, not reads or running writes -- while each
session runs `START TRANSACTION WITH CONSISTENT SNAPSHOT`; every session then reports the same
`binlog_snapshot_file/position`, and the stage ends. Commits wait for milliseconds (measured and recorded as
`lock.held_ms`), where FTWRL waits behind any long-running statement and stalls every tenant. A server that
refuses BACKUP STAGE (no RELOAD privilege) gets one session and no lock at all.

Rows are read in primary-key ranges formatted by the server (sqlgen.py); worker threads seal each file
(zstd + AES-GCM, sealed.py): the GIL is released in the driver's socket reads, zstd and AES.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import zlib
from dataclasses import dataclass, field

from ..db import connect
from ..errors import ServerError, SharedMySQLError
from ..sql.quoting import ident as qi
from ..sql.quoting import literal
from ..tenants.model import DATABASE_SUFFIX
from . import sqlgen
from .load import q as _q  # one statement runner for the backup package (server text scrubbed of values)
from .sealed import DataKey, write_file, wrap_key
from .store import FORMAT, BackupDir, backup_dir, mac_key, manifest_mac, new_id

log = logging.getLogger("shared_mysql.backup")

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
FILE_BYTES = 64 << 20  # raw bytes per sealed file (estimated from the table's average row length)
QUERY_BYTES = 4 << 20  # raw bytes per chunk query
MIN_QUERY_ROWS = 1000


class BackupFailed(SharedMySQLError):
    exit_code = 1


def session_setup(conn, packet: int) -> None:
    # UTC, so TIMESTAMP values travel as they are stored; one chunk fits in one value.
    _q(conn, f"SET SESSION time_zone='+00:00', group_concat_max_len={int(packet)}, "
             "net_read_timeout=600, net_write_timeout=600")


def databases_for(target, ex, tenants: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The databases to back up and the tenant owning each. Default: every database but the system ones."""
    owned = {t: f"{t}{DATABASE_SUFFIX}" for t in target.config.tenants}
    existing = [r[0] for r in ex.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")]
    if tenants:
        unknown = [t for t in tenants if t not in owned]
        if unknown:
            raise SharedMySQLError(f"--tenant {unknown[0]}: not a tenant in {target.loaded.path}; tenants: "
                                   f"{', '.join(sorted(owned)) or '(none)'}")
        missing = [owned[t] for t in tenants if owned[t] not in existing]
        if missing:
            raise SharedMySQLError(f"database {missing[0]} does not exist on the server; run `shared-mysql apply`")
        dbs = [owned[t] for t in tenants]
    else:
        # Not the tool's own schema: its masking state (fingerprints, salts of an unfinished run) and locks are the
        # server's runtime state, never to be restored elsewhere or back.
        from ..tenants.model import META_DATABASE

        dbs = [d for d in existing if d.lower() not in SYSTEM_SCHEMAS and not d.startswith("_smr_")
               and d != META_DATABASE]
    # A tenant blocked by an unverified refresh holds unmasked data: never in a backup (a restore of it would bring
    # the data back with nothing blocked).
    from ..tenants import blocks

    blocked = {owned[t]: t for t, b in blocks.read(ex).items() if t in owned and b.get("kind") == "refresh"}
    if tenants and any(owned[t] in blocked for t in tenants):
        t = next(t for t in tenants if owned[t] in blocked)
        raise SharedMySQLError(f"tenant {t} is blocked by an unverified refresh: its database holds unmasked data "
                               "and is not backed up; finish the refresh (`shared-mysql refresh --from ...`) first")
    dbs = [d for d in dbs if d not in blocked]
    return dbs, {owned[t]: t for t in owned if owned[t] in dbs}


def read_tables(conn, dbs: list[str]) -> dict[str, list[sqlgen.Table]]:
    if not dbs:
        return {}
    inlist = ",".join(literal(d) for d in dbs)
    odd = _q(conn, f"SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA IN "
                   f"({inlist}) AND TABLE_TYPE NOT IN ('BASE TABLE', 'VIEW') LIMIT 1")
    if odd:  # never a backup that silently leaves a table out
        raise BackupFailed(f"{odd[0][0]}.{odd[0][1]} is a {odd[0][2]}, which backups do not hold yet; back up the "
                           "other tenants with --tenant, or convert it")
    tables: dict[tuple[str, str], sqlgen.Table] = {}
    for schema, name, rows, avg in _q(conn, f"SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS,0), "
                                            f"IFNULL(AVG_ROW_LENGTH,0) FROM information_schema.TABLES WHERE "
                                            f"TABLE_SCHEMA IN ({inlist}) AND TABLE_TYPE='BASE TABLE' "
                                            f"ORDER BY TABLE_SCHEMA, TABLE_NAME"):
        tables[(schema, name)] = sqlgen.Table(schema, name, [], rows_estimate=int(rows), avg_row_length=int(avg))
    for schema, name, col, dtype, extra, octets in _q(
            conn, f"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA, CHARACTER_OCTET_LENGTH FROM "
                  f"information_schema.COLUMNS "
                  f"WHERE TABLE_SCHEMA IN ({inlist}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"):
        t = tables.get((schema, name))
        if t is not None:
            t.columns.append(sqlgen.Column(col, dtype.lower(), "GENERATED" in (extra or "").upper(),
                                           None if octets is None else int(octets)))
    for schema, name, col in _q(
            conn, f"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE "
                  f"TABLE_SCHEMA IN ({inlist}) AND INDEX_NAME='PRIMARY' ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX"):
        t = tables.get((schema, name))
        if t is not None:
            t.pk.append(col)
    out: dict[str, list[sqlgen.Table]] = {d: [] for d in dbs}
    for (schema, _), t in tables.items():
        out[schema].append(t)
    return out


def read_objects(conn, db: str) -> list[dict]:
    """Views, triggers, routines and events, each as the server shows its CREATE statement, with the sql_mode
    and character set it was created under."""
    objs: list[dict] = []
    d = literal(db)
    for (name,) in _q(conn, f"SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA={d} "
                            "ORDER BY TABLE_NAME"):
        r = _q(conn, f"SHOW CREATE VIEW {qi(db)}.{qi(name)}")[0]
        objs.append({"type": "VIEW", "name": name, "sql": r[1], "character_set_client": r[2],
                     "collation_connection": r[3], "sql_mode": ""})
    for kind in ("PROCEDURE", "FUNCTION"):
        for (name,) in _q(conn, f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA={d} "
                                f"AND ROUTINE_TYPE='{kind}' ORDER BY ROUTINE_NAME"):
            r = _q(conn, f"SHOW CREATE {kind} {qi(db)}.{qi(name)}")[0]
            objs.append({"type": kind, "name": name, "sql_mode": r[1], "sql": r[2], "character_set_client": r[3],
                         "collation_connection": r[4]})
    for (name,) in _q(conn, f"SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={d} "
                            "ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER"):
        r = _q(conn, f"SHOW CREATE TRIGGER {qi(db)}.{qi(name)}")[0]
        objs.append({"type": "TRIGGER", "name": name, "sql_mode": r[1], "sql": r[2], "character_set_client": r[3],
                     "collation_connection": r[4]})
    for (name,) in _q(conn, f"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA={d} "
                            "ORDER BY EVENT_NAME"):
        r = _q(conn, f"SHOW CREATE EVENT {qi(db)}.{qi(name)}")[0]
        objs.append({"type": "EVENT", "name": name, "sql_mode": r[1], "sql": r[3], "time_zone": r[2],
                     "character_set_client": r[4], "collation_connection": r[5]})
    for o in objs:
        o["sql"] = o["sql"].decode() if isinstance(o["sql"], bytes) else o["sql"]
    return objs


def safe_name(name: str) -> str:
    """A file name for a database or table: any identifier (backticks, slashes are impossible but spaces, dots,
    64 four-byte characters are not) becomes short, portable and unique: its ASCII-safe part plus a hash."""
    import hashlib
    import re

    plain = re.sub(r"[^A-Za-z0-9_$-]", "_", name)[:40]
    return f"{plain}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@dataclass
class Task:
    table: sqlgen.Table
    index: int
    lo: int | None = None
    hi: int | None = None
    step: int = 0

    @property
    def name(self) -> str:
        return f"{safe_name(self.table.schema)}/{safe_name(self.table.name)}.{self.index:05d}.tsv.sme"


@dataclass
class Result:
    name: str
    schema: str
    table: str
    rows: int = 0
    crc: int = 0
    raw_bytes: int = 0
    size: int = 0
    sha256: str = ""
    extra: dict = field(default_factory=dict)


def plan_tasks(conn, tables: list[sqlgen.Table]) -> list[Task]:
    """Files per table: integer-keyed tables are cut into key ranges of about FILE_BYTES, read QUERY_BYTES at a
    time; others are one stream. Biggest first, so workers finish together."""
    tasks: list[Task] = []
    for t in sorted(tables, key=lambda t: -(t.rows_estimate * max(t.avg_row_length, 1))):
        if t.int_pk is None:
            tasks.append(Task(t, 0))
            continue
        lo, hi = _q(conn, sqlgen.bounds_query(t))[0]
        if lo is None:
            tasks.append(Task(t, 0, 1, 0, 1))  # empty: one empty file
            continue
        lo, hi = int(lo), int(hi)
        span = hi - lo + 1
        density = max(t.rows_estimate, 1) / span
        row_bytes = max(t.avg_row_length, 16)
        step = max(int(max(MIN_QUERY_ROWS, QUERY_BYTES // row_bytes) / density), 1)
        per_file = max(int((FILE_BYTES // row_bytes) / density), step)
        i, start = 0, lo
        while start <= hi:
            end = min(hi, start + per_file - 1)
            tasks.append(Task(t, i, start, end, step))
            i += 1
            start = end + 1
    return tasks


def _chunk_lines(conn, t: sqlgen.Table, lo: int, hi: int):
    """Yield (rows, bytes) for lo..hi; a range whose value the server had to cut (more than
    group_concat_max_len) is split in two and read again."""
    rows, data = _q(conn, sqlgen.chunk_query(t, lo, hi))[0]
    rows = int(rows or 0)
    if rows == 0:
        return
    warned = warnings(conn)
    data = data or b""
    if isinstance(data, str):
        data = data.encode()
    # Cut by the server (GROUP_CONCAT past group_concat_max_len, or HEX() past max_allowed_packet gives NULL):
    # both raise a warning, and a cut inside the last row keeps the line count, so the warning decides.
    if warned or data.count(b"\n") + 1 != rows:
        if lo == hi:
            raise BackupFailed(f"{t.qname}: the row with {t.int_pk} = {lo} does not fit in one packet once encoded "
                               "(max_allowed_packet); raise max_allowed_packet to over twice its largest value "
                               "and run the backup again")
        mid = lo + (hi - lo) // 2
        yield from _chunk_lines(conn, t, lo, mid)
        yield from _chunk_lines(conn, t, mid + 1, hi)
        return
    yield rows, data


def warnings(conn) -> int:
    """Warnings of the statement just run (a value the server cut or turned into NULL is never silent)."""
    return int(_q(conn, "SHOW COUNT(*) WARNINGS")[0][0])


def _stream_lines(conn, t: sqlgen.Table, sums: list):
    """All rows, one line each; `sums[0]` gathers the sum of each line's CRC32 (what checksum_query computes on
    the server: such tables have no key order to compare files by)."""
    import pymysql.cursors

    cur = conn.cursor(pymysql.cursors.SSCursor)
    try:
        cur.execute(sqlgen.rows_query(t))
        while True:
            batch = cur.fetchmany(5000)
            if not batch:
                break
            lines = [r[0] if isinstance(r[0], bytes) else r[0].encode() for r in batch]
            sums[0] += sum(zlib.crc32(ln) for ln in lines)
            yield len(lines), b"\n".join(lines)
    finally:
        cur.close()
    if warnings(conn):
        raise BackupFailed(f"{t.qname}: the server cut or nulled a value while reading it (a value over "
                           "max_allowed_packet once encoded); raise max_allowed_packet and run the backup again")


def table_pieces(conn, task: "Task", counters: dict):
    """The bytes of one file: chunks joined and ended by newlines; counts rows, CRC32 (of the bytes) and, for
    streamed tables, the line CRC sum into `counters`."""
    t = task.table
    sums = [0]
    if task.lo is None:
        source = _stream_lines(conn, t, sums)
    else:
        source = (piece for start in range(task.lo, task.hi + 1, task.step)
                  for piece in _chunk_lines(conn, t, start, min(task.hi, start + task.step - 1)))
    crc = 0
    for rows, data in source:
        counters["rows"] += rows
        crc = zlib.crc32(data, crc)
        crc = zlib.crc32(b"\n", crc)
        yield data
        yield b"\n"
    counters["crc32"] = crc
    if task.lo is None:
        counters["line_crc_sum"] = sums[0]


def run_task(conn, task: Task, key: DataKey, root, bid: str) -> Result:
    t = task.table
    res = Result(task.name, t.schema, t.name)
    (root / task.name).parent.mkdir(mode=0o700, exist_ok=True)
    counters = {"rows": 0}
    w = write_file(root / task.name, key, f"{bid}/{task.name}", table_pieces(conn, task, counters))
    res.rows = counters["rows"]
    res.crc = counters["crc32"]
    res.raw_bytes, res.size, res.sha256 = w.raw_bytes, w.size, w.sha256
    if task.lo is not None:
        res.extra = {"range": [task.lo, task.hi, task.step]}
    else:
        res.extra = {"line_crc_sum": counters.get("line_crc_sum", 0)}
    return res


class Snapshot:
    """Dump sessions sharing one consistent snapshot, and the binlog position it matches."""

    def __init__(self, info, workers: int, flavor):
        self.info = info
        self.flavor = flavor
        self.conns: list = []
        self.workers = workers
        self.lock: dict = {}
        self.position: dict = {}
        self.snapshot_time: float = 0.0

    def open(self) -> None:
        if not self.flavor.is_mariadb:
            raise SharedMySQLError("backups of MySQL 8 servers are not supported yet (consistent multi-session "
                                   "snapshots use MariaDB's BACKUP STAGE); use RDS snapshots on aws")
        packet = 0
        control = connect(self.info)
        try:
            packet = int(_q(control, "SELECT @@max_allowed_packet")[0][0])
            for _ in range(self.workers):
                c = connect(self.info)
                session_setup(c, max(packet - 1024, 1 << 20))
                self.conns.append(c)
            try:
                _q(control, "BACKUP STAGE START")
                t0 = time.monotonic()
                _q(control, "BACKUP STAGE BLOCK_COMMIT")
                t1 = time.monotonic()
                blocked = True
            except ServerError as exc:
                if "1227" not in str(exc) and "1044" not in str(exc):
                    raise
                blocked = False  # no RELOAD privilege: one session, no lock
                for c in self.conns[1:]:
                    c.close()
                del self.conns[1:]
            try:
                positions = set()
                for c in self.conns:
                    _q(c, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    st = {k.lower(): v for k, v in _q(c, "SHOW STATUS LIKE 'binlog_snapshot_%'")}
                    positions.add((st.get("binlog_snapshot_file"), int(st.get("binlog_snapshot_position") or 0)))
                self.snapshot_time = float(_q(self.conns[0], "SELECT UNIX_TIMESTAMP(NOW(6))")[0][0])
            finally:
                if blocked:
                    t2 = time.monotonic()
                    _q(control, "BACKUP STAGE END")
                    t3 = time.monotonic()
                    self.lock = {"kind": "BACKUP STAGE BLOCK_COMMIT", "held_ms": round((t3 - t0) * 1000, 2),
                                 "acquire_ms": round((t1 - t0) * 1000, 2), "sessions": len(self.conns),
                                 "release_ms": round((t3 - t2) * 1000, 2)}
                else:
                    self.lock = {"kind": "none", "held_ms": 0.0, "sessions": 1}
            if len(positions) != 1:
                raise BackupFailed(f"the dump sessions saw different binlog positions {sorted(positions)}; "
                                   "run again")
            file, pos = positions.pop()
            if not file:
                raise BackupFailed("the server writes no binary log, so no backup position can be recorded; "
                                   "enable log_bin (the embedded server always has it)")
            gtid = _q(self.conns[0], f"SELECT BINLOG_GTID_POS({literal(file)}, {int(pos)})")[0][0]
            self.position = {"file": file, "pos": pos, "gtid": gtid or ""}
        finally:
            control.close()

    def close(self) -> None:
        for c in self.conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass


def create(target, *, tenants: list[str] | None = None, workers: int | None = None, progress=None) -> dict:
    """Make one backup; returns its manifest summary. Interrupted, it leaves only a .partial- directory (never
    latest; the next create or `prune` removes it)."""
    from .store import Backup

    store = BackupDir(backup_dir(target))
    store.ensure()
    workers = workers or target.config.backup.workers
    start = time.time()
    bid = new_id(start)
    info = target.admin_info()
    with target.executor() as ex:
        flavor = ex.flavor
        dbs, owners = databases_for(target, ex, tenants)
        identity = server_identity(ex)
    _remove_stale_partials(store)
    part = store.partial(bid)
    part.mkdir(mode=0o700)
    lockfd = _hold(part)
    data_key = DataKey.generate()
    key = DataKey(data_key)
    snap = Snapshot(info, workers, flavor)
    try:
        snap.open()
        databases = describe(snap.conns[0], dbs, owners)
        tables = [t for db in databases.values() for t in db.pop("_tables")]
        results = _run_parallel(snap.conns, plan_tasks(snap.conns[0], tables), key, part, bid, progress)
    finally:
        snap.close()
        os.close(lockfd)
    raw = size = 0
    for r in sorted(results, key=lambda r: r.name):
        ent = databases[r.schema]["tables"][r.table]
        ent["rows"] += r.rows
        ent["files"].append({"name": r.name, "rows": r.rows, "crc32": r.crc, "raw_bytes": r.raw_bytes,
                             "size": r.size, "sha256": r.sha256, **r.extra})
        raw += r.raw_bytes
        size += r.size
    finished = time.time()
    manifest = {
        "format": FORMAT, "id": bid, "instance": target.config.identifier, "environment": target.config.environment,
        "started_at": start, "finished_at": finished, "duration_s": round(finished - start, 3),
        "snapshot_time": snap.snapshot_time,
        "server": {"version": flavor.version_string, "flavor": flavor.name, "version_tuple": list(flavor.version),
                   "identity": identity},
        "position": snap.position, "lock": snap.lock, "partial": bool(tenants),
        "tenants": {owners[d]: d for d in owners}, "databases": databases,
        "key": wrap_key(target, data_key, bid), "size": size, "raw_size": raw, "workers": len(snap.conns),
    }
    manifest["mac"] = manifest_mac(manifest, mac_key(data_key))
    store.commit(bid, manifest)
    return Backup(bid, store.root / bid, manifest).summary()


def server_identity(ex) -> dict:
    """Which server this is, whatever name or address reached it: a refresh compares it with its target's, so that
    a backup is never restored over the server it was taken from."""
    from ..sql.quoting import as_text

    host, datadir, port, sid = ex.query("SELECT @@hostname, @@datadir, @@port, @@server_id")[0]
    return {"hostname": as_text(host), "datadir": as_text(datadir), "port": int(port), "server_id": int(sid)}


def describe(control, dbs: list[str], owners: dict[str, str]) -> dict:
    """Each database's character set, objects and tables (CREATE TABLE, key, columns), read in the snapshot's
    session; `_tables` carries the Table objects for planning (removed before the manifest is written)."""
    tables = read_tables(control, dbs)
    databases: dict = {}
    for db in dbs:
        cs, coll = _q(control, f"SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                               f"information_schema.SCHEMATA WHERE SCHEMA_NAME={literal(db)}")[0]
        for t in tables[db]:
            t.create_sql = _q(control, f"SHOW CREATE TABLE {t.qname}")[0][1]
        databases[db] = {"charset": cs, "collation": coll, "tenant": owners.get(db),
                         "objects": read_objects(control, db), "_tables": tables[db],
                         "tables": {t.name: {"create": t.create_sql, "pk": t.pk,
                                             "columns": [[c.name, c.data_type, c.generated, c.octets]
                                                         for c in t.columns],
                                             "rows": 0, "files": []} for t in tables[db]}}
    return databases


def _run_parallel(conns, tasks: list[Task], key: DataKey, root, bid: str, progress) -> list[Result]:
    q: queue.Queue = queue.Queue()
    for t in tasks:
        q.put(t)
    results: list[Result] = []
    errors: list[BaseException] = []
    done = threading.Lock()

    def work(conn):
        try:
            while not errors:
                try:
                    task = q.get_nowait()
                except queue.Empty:
                    return
                r = run_task(conn, task, key, root, bid)
                with done:
                    results.append(r)
                    if progress:
                        progress(len(results), len(tasks), r)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in conns]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return results


def _hold(part) -> int:
    """An flock on the partial directory: `prune` removes only partial directories nobody holds."""
    import fcntl

    fd = os.open(part, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _remove_stale_partials(store: BackupDir) -> list[str]:
    import fcntl

    removed = []
    if not store.root.is_dir():
        return removed
    for d in store.root.iterdir():
        if not d.name.startswith((".partial-", ".restore-")) or not d.is_dir() or d.is_symlink():
            continue
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a backup in progress
        store.remove(d)
        os.close(fd)
        removed.append(d.name)
    return removed
