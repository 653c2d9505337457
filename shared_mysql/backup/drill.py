"""`backup test`: restore the latest backup plus the binlogs into a throwaway embedded server and prove it.

1. On the live server, one consistent snapshot gives a binlog position P and, in that snapshot, each table's row
   count and order-free checksum (sum of CRC32 over its rows' dump lines).
2. The archive is brought up to date (it then holds P).
3. A scratch server (the `local` code, a free port, a temp dir) gets the newest backup at or before P: after the
   load, every file's rows and CRC32 are checked against the manifest (re-read by the same range queries); then
   the binlogs are replayed up to exactly P and every table is compared with the live numbers.
4. The scratch server is always stopped and removed (also on failure or Ctrl-C).

RTO = wall time of the restore into the scratch server; RPO = the archive's (archive.py).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path

from ..db import ConnectionInfo, connect
from ..errors import SharedMySQLError
from . import sqlgen
from .archive import Archive
from .create import Task, _q, read_tables, session_setup, table_pieces
from .load import Destination, RestoreFailed, table_of
from .sealed import CorruptFile
from .restore import restore
from .store import BackupDir, backup_dir, iso


class VerificationFailed(SharedMySQLError):
    exit_code = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_position_and_sums(info: ConnectionInfo, dbs: list[str]) -> tuple[tuple[str, int], dict]:
    conn = connect(info)
    try:
        session_setup(conn, int(_q(conn, "SELECT @@max_allowed_packet")[0][0]))
        _q(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
        st = {k.lower(): v for k, v in _q(conn, "SHOW STATUS LIKE 'binlog_snapshot_%'")}
        pos = (st["binlog_snapshot_file"], int(st["binlog_snapshot_position"]))
        sums = table_sums(conn, dbs)
        _q(conn, "COMMIT")
        return pos, sums
    finally:
        conn.close()


def table_sums(conn, dbs: list[str], rename: dict[str, str] | None = None) -> dict:
    out: dict = {}
    tables = read_tables(conn, [(rename or {}).get(d, d) for d in dbs])
    back = {v: k for k, v in (rename or {}).items()}
    for db, ts in tables.items():
        for t in ts:
            n, s = _q(conn, sqlgen.checksum_query(t))[0]
            out[f"{back.get(db, db)}.{t.name}"] = [int(n), int(s)]
    return out


def check_files(conn, backup, staged: list[tuple[str, str]]) -> list[str]:
    """Rows and CRC32 of each backup file, re-read from the restored copy by the same range queries."""
    problems = []
    for src, stage in staged:
        for name, ent in backup.manifest["databases"][src]["tables"].items():
            t = table_of(stage, name, ent)
            for f in ent["files"]:
                if "range" in f:
                    lo, hi, step = f["range"]
                    task = Task(t, 0, lo, hi, step)
                    counters = {"rows": 0}
                    for _ in table_pieces(conn, task, counters):
                        pass
                    got = (counters["rows"], counters.get("crc32", 0))
                    want = (f["rows"], f["crc32"])
                else:
                    n, s = _q(conn, sqlgen.checksum_query(t))[0]
                    got, want = (int(n), int(s)), (f["rows"], f.get("line_crc_sum", 0))
                if got != want:
                    problems.append(f"{src}.{name} ({f['name']}): restored {got[0]} rows / checksum {got[1]}, "
                                    f"manifest {want[0]} / {want[1]}")
    return problems


def run(target, *, workers: int | None = None, keep: bool = False, progress=None) -> dict:
    from ..local import LocalServer
    from ..sql.passwords import generate_password

    store = BackupDir(backup_dir(target))
    latest = store.latest(full=True)
    if latest is None:
        raise SharedMySQLError(f"no full backup in {store.root}; make one with `shared-mysql backup create`")
    dbs = sorted(latest.manifest["databases"])
    info = target.admin_info()
    position, live = live_position_and_sums(info, dbs)
    arch = Archive(target)
    arch.run_once()
    rpo = arch.summary()["rpo_s"]
    root = Path(tempfile.mkdtemp(prefix="shared-mysql-backup-test-"))
    server = LocalServer(root / "scratch", host="127.0.0.1", port=_free_port(), master_username="admin")
    problems: list[str] = []
    report: dict = {"backup": latest.id, "backup_time": iso(latest.time), "position": list(position)}
    try:
        password = generate_password()
        t0 = time.monotonic()
        server.up(password)
        start_s = time.monotonic() - t0
        sinfo = ConnectionInfo("127.0.0.1", server.port, "admin", password, ca=str(server.paths.ca))
        dest = Destination(sinfo, secure_files=server.paths.secure_files, log_bin=False,
                           label="the scratch server")

        def after_load(base, staged):
            c = connect(sinfo)
            try:
                session_setup(c, int(_q(c, "SELECT @@max_allowed_packet")[0][0]))
                problems.extend(check_files(c, base, staged))
            finally:
                c.close()

        try:
            res = restore(target, backup_id=latest.id, dest=dest, stop_position=position, workers=workers,
                          archive_first=False, after_load=after_load, progress=progress)
        except (RestoreFailed, CorruptFile) as exc:  # a damaged backup is a failed verification (exit 3)
            problems.append(str(exc))
            res = None
        if res is None:
            report.update(rpo_s=rpo)
            return report
        c = connect(sinfo)
        try:
            session_setup(c, 1 << 24)
            restored = table_sums(c, dbs)
        finally:
            c.close()
        for name in sorted(set(live) | set(restored)):
            if live.get(name) != restored.get(name):
                lv, rv = live.get(name), restored.get(name)
                problems.append(f"{name}: live at {position[0]}:{position[1]} has "
                                f"{'no table' if lv is None else f'{lv[0]} rows / checksum {lv[1]}'}, restored "
                                f"{'no table' if rv is None else f'{rv[0]} rows / checksum {rv[1]}'}")
        report.update(tables=len(live), rows=sum(v[0] for v in live.values()), rto_s=res["rto_s"],
                      load_s=res["load_s"], replay_s=res["replay_s"], scratch_start_s=round(start_s, 2),
                      rpo_s=rpo, binlogs=res["binlogs"])
    finally:
        try:
            server.down()
        except Exception:  # noqa: BLE001 - removed below in any case
            try:
                server.kill()
            except Exception:  # noqa: BLE001
                pass
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        report["scratch_removed"] = not root.exists()
        report["problems"] = problems
        report["ok"] = not problems
    return report

