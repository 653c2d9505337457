"""Loading a backup into a server: schema first (secondary indexes after the rows), rows in parallel sessions,
then views, routines, triggers and events.

Rows go in with `LOAD DATA INFILE` from a FIFO in the server's own `secure_file_priv` directory when we run the
server (local target, scratch servers): the plaintext never touches a disk and `local_infile` stays OFF (the
security audit flags it; the server reads a file of its own directory instead of one a client names). A server we
cannot hand files to gets multi-row INSERTs of hex literals: slower, the same rows.

Everything loads into a staging database first (`_smr_<n>_<target>`); only a complete load is renamed into place
(`RENAME TABLE` of every table in one statement), so an interrupted restore leaves the live database untouched and
a re-run drops the stale staging database and starts again.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..db import ConnectionInfo, connect
from ..errors import ServerError, SharedMySQLError
from ..sql.quoting import ident as qi
from . import sqlgen
from .sealed import DataKey, read_sealed

log = logging.getLogger("shared_mysql.backup")

INSERT_BYTES = 1 << 20
# From the first quote to the last: the server does not escape a quote inside a value it quotes (`Duplicate entry
# 'o'brien' for key`), so a value can only be cut out whole by taking everything between the outermost quotes.
_QUOTED = re.compile(r"'.*'", re.S)


class RestoreFailed(SharedMySQLError):
    exit_code = 1


def scrub(msg: str) -> str:
    """A server message without the row values it may quote (`Duplicate entry 'x' for key ...`)."""
    return _QUOTED.sub("'?'", str(msg))


def q(conn, sql: str, clean: bool = True):
    """One statement, its rows; a server error as one line, its quoted values scrubbed unless `clean` is False
    (migrations: the messages are about the tenant's own schema, and scrubbed they say nothing)."""
    import pymysql

    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        msg = exc.args[-1] if exc.args else exc
        raise ServerError(f"error {code}: {scrub(msg) if clean else msg}") from None


@dataclass
class Destination:
    info: ConnectionInfo
    secure_files: Path | None = None  # LOAD DATA INFILE from a FIFO here (servers we run)
    log_bin: bool = True  # False for scratch servers: their binlog is of no use
    label: str = "the server"
    is_live: bool = False  # the target's own server (events stay enabled on an in-place restore)


def open_regular(path: Path, label: str):
    """Open a backup file for reading: a regular file only (a FIFO planted in its place would block forever)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise RestoreFailed(f"{label}: {exc.strerror}; the backup is incomplete or was changed (run `backup "
                            "verify`)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RestoreFailed(f"{label}: not a regular file; the backup was changed (run `backup verify`)")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def staging_name(dst: str) -> str:
    """A database name for loading `dst`, stable across runs (a re-run finds and drops a stale one), <= 64."""
    return "_smr_" + hashlib.sha256(dst.encode()).hexdigest()[:10] + "_" + dst[:40]


def table_of(schema: str, name: str, ent: dict) -> sqlgen.Table:
    cols = [sqlgen.Column(c[0], c[1], bool(c[2]), c[3] if len(c) > 3 else None) for c in ent["columns"]]
    return sqlgen.Table(schema, name, cols, pk=list(ent.get("pk") or []), create_sql=ent["create"])


def session(dest: Destination, database: str | None = None):
    conn = connect(dest.info)
    stmts = ["SET SESSION time_zone='+00:00'", "SET SESSION foreign_key_checks=0", "SET SESSION unique_checks=0",
             "SET SESSION sql_mode='NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'"]
    if not dest.log_bin:
        stmts.append("SET SESSION sql_log_bin=0")
    for s in stmts:
        q(conn, s)
    if database:
        q(conn, f"USE {qi(database)}")
    return conn


def rewrite_db(sql: str, src: str, dst: str) -> str:
    """References to `src`. in a view/routine/trigger body point at `dst` instead (backticked form only)."""
    if src == dst:
        return sql
    return sql.replace(qi(src) + ".", qi(dst) + ".")


class Loader:
    def __init__(self, dest: Destination, backup, key: DataKey, workers: int, progress=None):
        self.dest = dest
        self.backup = backup
        self.key = key
        self.workers = workers
        self.progress = progress
        self.rows = 0

    # -- schema ---------------------------------------------------------------------------------------------
    def prepare(self, conn, src: str, stage: str) -> dict[str, list[str]]:
        """(Re)create the staging database with every table, minus secondary indexes; returns them per table."""
        db = self.backup.manifest["databases"][src]
        q(conn, f"DROP DATABASE IF EXISTS {qi(stage)}")
        q(conn, f"CREATE DATABASE {qi(stage)} CHARACTER SET {db['charset']} COLLATE {db['collation']}")
        q(conn, f"USE {qi(stage)}")
        later = {}
        referenced = sqlgen.referenced_tables(ent["create"] for ent in db["tables"].values())
        for name, ent in db["tables"].items():
            # A table another one references keeps its indexes: the foreign key needs the one it points at (a
            # UNIQUE key deferred until after the load made the referencing CREATE TABLE fail, errno 150).
            create, indexes = sqlgen.split_create(ent["create"], keep_all=name in referenced)
            q(conn, create)
            later[name] = indexes
        return later

    # -- rows -----------------------------------------------------------------------------------------------
    def load(self, plan: list[tuple[str, str]]) -> None:
        """Load every table of every (src, stage) pair; indexes are added when a table's last file is in."""
        tasks: queue.Queue = queue.Queue()
        remaining: dict[tuple[str, str], int] = {}
        indexes: dict[tuple[str, str], list[str]] = {}
        conn = session(self.dest)
        try:
            for src, stage in plan:
                for name, idx in self.prepare(conn, src, stage).items():
                    indexes[(stage, name)] = idx
                    files = self.backup.manifest["databases"][src]["tables"][name]["files"]
                    remaining[(stage, name)] = len(files)
                    ent = self.backup.manifest["databases"][src]["tables"][name]
                    for f in files:
                        tasks.put((src, stage, name, ent, f))
                    if not files:
                        remaining[(stage, name)] = 0
            for (stage, name), n in remaining.items():
                if n == 0 and indexes[(stage, name)]:
                    q(conn, sqlgen.add_indexes(sqlgen.Table(stage, name, []), indexes[(stage, name)]))
        finally:
            conn.close()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work():
            c = session(self.dest)
            try:
                while not errors:
                    try:
                        src, stage, name, ent, f = tasks.get_nowait()
                    except queue.Empty:
                        return
                    t = table_of(stage, name, ent)
                    n = self._load_file(c, t, f)
                    if n != f["rows"]:
                        raise RestoreFailed(f"{src}.{name}: {f['name']} loaded {n} rows, the manifest says "
                                            f"{f['rows']}; the backup is damaged (run `backup verify`)")
                    with lock:
                        self.rows += n
                        remaining[(stage, name)] -= 1
                        last = remaining[(stage, name)] == 0
                    if last and indexes[(stage, name)]:
                        q(c, sqlgen.add_indexes(t, indexes[(stage, name)]))
                    if self.progress:
                        self.progress(f"{src}.{name}", n)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
            finally:
                c.close()

        threads = [threading.Thread(target=work, daemon=True) for _ in range(self.workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise errors[0]

    def _file(self, f: dict) -> Path:
        return self.backup.path / f["name"]

    def _plain(self, f: dict):
        label = f"backup {self.backup.id}: {f['name']}"
        fh = open_regular(self._file(f), label)
        with fh:
            yield from read_sealed(fh, self.key, f"{self.backup.id}/{f['name']}", label)

    def _load_file(self, conn, t: sqlgen.Table, f: dict) -> int:
        if f["rows"] == 0:
            return 0
        if self.dest.secure_files is not None:
            return self._load_fifo(conn, t, f)
        return self._load_inserts(conn, t, f)

    def _load_fifo(self, conn, t: sqlgen.Table, f: dict) -> int:
        fifo = self.dest.secure_files / f"restore-{uuid.uuid4().hex}.fifo"
        os.mkfifo(fifo, 0o600)
        stop = threading.Event()
        failure: list[BaseException] = []

        def feed():
            try:
                while True:
                    try:
                        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                        break
                    except OSError as exc:
                        if exc.errno != errno.ENXIO or stop.is_set():
                            return
                        time.sleep(0.001)
                os.set_blocking(fd, True)
                try:
                    for piece in self._plain(f):
                        view = memoryview(piece)
                        while view:
                            view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
            except BrokenPipeError:
                pass  # the server stopped reading: its error is the one reported
            except BaseException as exc:  # noqa: BLE001
                failure.append(exc)

        th = threading.Thread(target=feed, daemon=True)
        th.start()
        try:
            with conn.cursor() as cur:
                import pymysql

                try:
                    cur.execute(sqlgen.load_statement(t, str(fifo)))
                except pymysql.err.MySQLError as exc:
                    raise RestoreFailed(f"loading {t.qname} from {f['name']}: error {exc.args[0]}: "
                                        f"{scrub(exc.args[-1])}") from None
                n = cur.rowcount
        finally:
            stop.set()
            th.join()
            try:
                fifo.unlink()
            except FileNotFoundError:
                pass
        if failure:
            raise failure[0]
        return n

    def _load_inserts(self, conn, t: sqlgen.Table, f: dict) -> int:
        n = 0
        pending: list[bytes] = []
        size = 0
        tail = b""
        for piece in self._plain(f):
            data = tail + piece
            lines = data.split(b"\n")
            tail = lines.pop()
            for ln in lines:
                pending.append(ln)
                size += len(ln)
                if size >= INSERT_BYTES:
                    q(conn, sqlgen.insert_values(t, pending))
                    n += len(pending)
                    pending, size = [], 0
        if tail:
            raise RestoreFailed(f"{t.qname}: {f['name']} does not end with a complete row (damaged)")
        if pending:
            q(conn, sqlgen.insert_values(t, pending))
            n += len(pending)
        return n

    # -- objects --------------------------------------------------------------------------------------------
    def objects(self, conn, src: str, dst: str, *, disable_events: bool, only: tuple[str, ...] | None = None,
                skip: tuple[str, ...] = ()) -> None:
        """Views (in dependency order: retried until no progress), routines, triggers, events, under the sql_mode
        and character set each was created with (`only`/`skip`: some kinds)."""
        objs = [o for o in self.backup.manifest["databases"][src].get("objects", [])
                if (only is None or o["type"] in only) and o["type"] not in skip]
        q(conn, f"USE {qi(dst)}")
        views = [o for o in objs if o["type"] == "VIEW"]
        rest = [o for o in objs if o["type"] != "VIEW"]
        pending = views
        while pending:
            failed = []
            last_error = None
            for o in pending:
                try:
                    self._create(conn, o, src, dst)
                except ServerError as exc:
                    failed.append(o)
                    last_error = exc
            if len(failed) == len(pending):
                raise RestoreFailed(f"view {dst}.{failed[0]['name']} cannot be created: {last_error}")
            pending = failed
        for o in rest:
            self._create(conn, o, src, dst)
            if o["type"] == "EVENT" and disable_events:
                q(conn, f"ALTER EVENT {qi(dst)}.{qi(o['name'])} DISABLE")

    def _create(self, conn, o: dict, src: str, dst: str) -> None:
        q(conn, f"SET SESSION sql_mode={_lit(o.get('sql_mode') or '')}")
        q(conn, f"SET NAMES {o.get('character_set_client') or 'utf8mb4'}")
        try:
            q(conn, f"SET SESSION collation_connection={o.get('collation_connection') or 'utf8mb4_general_ci'}")
            if o["type"] == "EVENT" and o.get("time_zone"):
                q(conn, f"SET SESSION time_zone={_lit(o['time_zone'])}")
            q(conn, f"DROP {o['type']} IF EXISTS {qi(dst)}.{qi(o['name'])}")
            q(conn, rewrite_db(o["sql"], src, dst))
        finally:
            q(conn, "SET NAMES utf8mb4")
            q(conn, "SET SESSION time_zone='+00:00', sql_mode='NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")


def _lit(v: str) -> str:
    from ..sql.quoting import string

    return string(v)
