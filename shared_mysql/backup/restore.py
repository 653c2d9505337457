"""`restore`: the newest full backup before T, rolled forward with the archived binlogs to T, exactly.

Exactness: the binlog is written in commit order, and a transaction's events carry the time its commit
statement started. Replaying up to the first event stamped T+1 s (`--stop-datetime`, which stops there) applies
every transaction committed at or before T and none after; a transaction cut in the middle has no COMMIT and is
rolled back by the client.

Per database: `mariadb-binlog --database=src --rewrite-db=src->staging`. That filter keeps row events by their
table map, but a DDL statement only by its default database, so before replaying, the window is read once for
DDL (`--short-form`): DDL run with another default database but naming src (`ALTER TABLE orders_db.t ...`) would
be skipped or go to the live database, so the restore stops and says which statement (take a backup after it).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import SharedMySQLError, UsageError
from ..sql.quoting import ident as qi
from ..sql.quoting import literal
from ..tenants.model import DATABASE_SUFFIX
from .archive import Archive, _env, _first_line
from .batch import batched
from .load import Destination, Loader, RestoreFailed, q, scrub, session, staging_name
from .sealed import unwrap_key
from .store import BackupDir, backup_dir, iso, mac_key, manifest_mac
from .tools import client_cnf, tool

DB_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")
SYSTEM = ("mysql", "information_schema", "performance_schema", "sys")


def parse_time(text: str) -> float:
    """'2026-11-26 10:15:00' (this machine's local time), or with Z / +09:00; ISO 'T' accepted."""
    s = text.strip().replace("T", " ")
    if not s:
        raise UsageError("--to-time is empty; give a time like '2026-11-26 10:15:00' (or leave the option out to "
                         "restore the backup as it was)")
    try:
        if s.endswith("Z"):
            dt = datetime.fromisoformat(s[:-1]).replace(tzinfo=timezone.utc)
        else:
            dt = datetime.fromisoformat(s)
            if dt.tzinfo is None:
                dt = dt.astimezone()  # local time
    except ValueError:
        raise UsageError(f"--to-time {text!r}: not a time; use 'YYYY-MM-DD HH:MM:SS' (local time), or add Z or an "
                         "offset like +09:00") from None
    return dt.timestamp()


def check_manifest(target, backup) -> None:
    wrapped = backup.manifest.get("key") or {}
    label = f"backup {backup.id}"
    data_key = _raw_key(target, wrapped, label)
    if manifest_mac(backup.manifest, mac_key(data_key)) != backup.manifest.get("mac"):
        raise RestoreFailed(f"{label}: the manifest was changed after the backup was made (its MAC does not "
                            "match); do not trust this backup")


def _raw_key(target, wrapped: dict, label: str) -> bytes:
    """The unwrapped 32 bytes (for the manifest MAC)."""
    import base64

    if wrapped.get("kind") == "kms":
        from ..aws import client_for

        return client_for(target.config, "kms").decrypt(
            CiphertextBlob=base64.b64decode(wrapped["wrapped"]),
            EncryptionContext={"shared-mysql": wrapped["context"]})["Plaintext"]
    from cryptography.fernet import InvalidToken

    try:
        plain = target.store._cipher().decrypt(wrapped["wrapped"].encode())
    except (InvalidToken, KeyError):
        raise SharedMySQLError(f"{label}: the backup key does not open with this secret store's key") from None
    return plain.partition(b"|")[2]


def live_destination(target) -> Destination:
    secure = None
    if target.kind == "local":
        secure = target.server.paths.secure_files
    return Destination(target.admin_info(), secure_files=secure, log_bin=True, label=target.config.identifier,
                       is_live=True)


def choose(store: BackupDir, *, to_time: float | None, backup_id: str | None, need: list[str] | None):
    """The backup to start from: the given one, or the newest whose snapshot is at or before T and which holds
    the databases needed."""
    if backup_id:
        b = store.get(backup_id)
        if to_time is not None and int(b.time) > to_time:
            raise UsageError(f"backup {b.id} was taken at {iso(b.time)}, after --to-time {iso(to_time)}")
        return b
    for b in reversed(store.list()):
        if to_time is not None and int(b.time) > to_time:
            continue
        if need and not all(d in b.manifest["databases"] for d in need):
            continue
        return b
    when = f" at or before {iso(to_time)}" if to_time is not None else ""
    raise SharedMySQLError(f"no backup{when} in {store.root}{' holding ' + ', '.join(need) if need else ''}; "
                           "make one with `shared-mysql backup create`")


def restore(target, *, to_time: float | None = None, tenant: str | None = None, into: str | None = None,
            allow_destructive: bool = False, backup_id: str | None = None, dest: Destination | None = None,
            stop_position: tuple[str, int] | None = None, workers: int | None = None, progress=None,
            archive_first: bool = True, after_load=None) -> dict:
    t0 = time.monotonic()
    store = BackupDir(backup_dir(target))
    if into and not tenant:
        raise UsageError("--into needs --tenant: one tenant's database is restored under the new name")
    if tenant and tenant not in target.config.tenants:
        raise UsageError(f"--tenant {tenant}: not a tenant in {target.loaded.path}")
    from ..tenants.model import META_DATABASE

    if into is not None and (not DB_NAME.fullmatch(into) or into.lower() in SYSTEM or into.startswith("_smr_")
                             or into.lower() == META_DATABASE.lower()):
        raise UsageError(f"--into {into!r}: a database name is 1-64 letters, digits, _ or $ (and not a system "
                         "database)")
    need = [f"{tenant}{DATABASE_SUFFIX}"] if tenant else None
    base = choose(store, to_time=to_time, backup_id=backup_id, need=need)
    check_manifest(target, base)
    key = unwrap_key(target, base.manifest["key"], f"backup {base.id}")
    srcs = need or sorted(base.manifest["databases"])
    plan = [(s, into or s) for s in srcs]
    dest = dest or live_destination(target)
    live = dest.is_live

    if (to_time is not None or stop_position is not None) and any(not DB_NAME.fullmatch(s) for s in srcs):
        bad = next(s for s in srcs if not DB_NAME.fullmatch(s))
        raise UsageError(f"database {bad!r}: its name has characters mariadb-binlog's --database/--rewrite-db "
                         "cannot take; restore it without --to-time, or restore the tenants one by one (--tenant)")
    if dest.is_live:
        from contextlib import ExitStack

        with ExitStack() as stack:  # one operator at a time: the lock apply and rotate take (GET_LOCK)
            ex = stack.enter_context(target.executor())
            stack.enter_context(target.server_lock(ex, what="restore"))
            return _restore(target, store, base, key, plan, srcs, dest, live, to_time, stop_position, workers,
                            progress, archive_first, after_load, t0, tenant, into, allow_destructive)
    return _restore(target, store, base, key, plan, srcs, dest, live, to_time, stop_position, workers, progress,
                    archive_first, after_load, t0, tenant, into, allow_destructive)


def _restore(target, store, base, key, plan, srcs, dest, live, to_time, stop_position, workers, progress,
             archive_first, after_load, t0, tenant, into, allow_destructive) -> dict:
    from .create import _remove_stale_partials

    _remove_stale_partials(store)  # a killed restore's decrypted binlogs
    if dest.secure_files is not None and dest.is_live:  # under the operator lock: no other restore's FIFO
        for fifo in dest.secure_files.glob("restore-*.fifo"):
            try:  # a killed restore's LOAD DATA may still wait on it: open and close it, the server reads EOF
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # nobody reading it
            fifo.unlink(missing_ok=True)
    conn = session(dest)
    try:
        _check_version(conn, base, dest)
        existing = {r[0] for r in q(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}
        journal = Journal(store, dest)
        for src, dst in plan:
            if dst in existing and not allow_destructive and not journal.owns(dst):
                hint = (f"restore it next to the live one with --tenant {tenant} --into NEW_NAME, or"
                        if tenant else "restore one tenant with --tenant T --into NEW_NAME, or")
                raise SharedMySQLError(f"database {dst} exists on {dest.label}; {hint} replace it with "
                                       "--allow-destructive")
    finally:
        conn.close()
    # Roll-forward inputs first: fail before the long load when the archive cannot reach T.
    arch = Archive(target)
    if to_time is not None or stop_position is not None:
        if archive_first and live:
            try:
                arch.run_once()
            except SharedMySQLError:
                pass  # the server may be the thing being recovered: use what the archive has
        covered = arch.covered_until()
        if to_time is not None and (covered is None or covered < to_time):
            raise SharedMySQLError(f"the binlog archive reaches {iso(covered) if covered else 'nothing'}, before "
                                   f"--to-time {iso(to_time)}; run `shared-mysql backup archive` (or pick an "
                                   "earlier time)")
    # Decrypted binlogs live in a private directory of the backup dir, held (flock) while in use: a killed
    # restore's is removed by the next backup or prune.
    from .create import _hold

    store.ensure()
    tmp = tempfile.mkdtemp(prefix=".restore-", dir=store.root)
    os.chmod(tmp, 0o700)
    held = _hold(Path(tmp))
    try:
        binlogs: list[Path] = []
        if to_time is not None or stop_position is not None:
            binlogs = arch.materialise(base.position["file"], to_time, Path(tmp))
            if stop_position is not None:
                binlogs = [p for p in binlogs if _num(p.name) <= _num(stop_position[0])]
            check_ddl(binlogs, base, plan, to_time, stop_position, existing | set(base.manifest["databases"]))
        staged = [(src, staging_name(dst)) for src, dst in plan]
        loader = Loader(dest, base, key, workers or target.config.backup.workers, progress)
        t_load = time.monotonic()
        loader.load(staged)
        load_s = time.monotonic() - t_load
        checked_s = 0.0
        if after_load is not None:  # verification (backup test) is not part of the restore's time
            t_check = time.monotonic()
            after_load(base, staged)
            checked_s = time.monotonic() - t_check
        t_replay = time.monotonic()
        replayed = 0
        if binlogs:
            cnf = client_cnf(dest.info, Path(tmp))
            for src, stage in staged:
                replayed += replay(binlogs, base.position["pos"], src, stage, to_time, stop_position, cnf, dest)
        replay_s = time.monotonic() - t_replay
        journal.start([dst for _, dst in plan])
        swap(dest, loader, plan, staged, disable_events=bool(into) or not live)
        journal.done([dst for _, dst in plan])
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        os.close(held)
    return {"backup": base.id, "backup_time": iso(base.time), "to_time": iso(to_time) if to_time else None,
            "stop_position": list(stop_position) if stop_position else None,
            "databases": {src: dst for src, dst in plan}, "rows_loaded": loader.rows, "binlogs": len(binlogs),
            "replayed_databases": replayed, "load_s": round(load_s, 2), "replay_s": round(replay_s, 2),
            "rto_s": round(time.monotonic() - t0 - checked_s, 2),
            "skipped_damaged": [n for n in store.broken() if not n.startswith(".") and n > base.id]}


def _num(name: str) -> int:
    from .archive import number

    return number(name)


def _check_version(conn, base, dest: Destination) -> None:
    from ..sql import detect_flavor

    flavor = detect_flavor(conn.get_server_info())
    want = tuple(base.manifest["server"]["version_tuple"])
    if flavor.name != base.manifest["server"]["flavor"]:
        raise SharedMySQLError(f"backup {base.id} is of a {base.manifest['server']['flavor']} server; "
                               f"{dest.label} is {flavor.name}: restore into the same kind of server")
    if tuple(flavor.version) < want:
        raise SharedMySQLError(f"{dest.label} runs {flavor.version_string}, older than the backup's server "
                               f"{base.manifest['server']['version']}; restore into {'.'.join(map(str, want))} or newer")


class Journal:
    """Databases a restore is swapping in: an interrupted swap leaves its entry, so the re-run may replace
    what it half-made without --allow-destructive (and nothing else)."""

    def __init__(self, store: BackupDir, dest: Destination | None = None):
        self.path = store.root / "restore-journal.json"
        self.server = f"{dest.info.host}:{dest.info.port}" if dest else ""

    def _read(self) -> dict:
        from ..secrets.file import read_json_dict

        return read_json_dict(self.path)

    def pending(self) -> dict[str, list[str]]:
        """Restores interrupted while swapping in: server -> databases (re-run the same restore to finish)."""
        return {k: v for k, v in self._read().items() if v}

    def owns(self, dst: str) -> bool:
        return dst in self._read().get(self.server, [])

    def start(self, dsts: list[str]) -> None:
        from ..secrets.file import write_json

        d = self._read()
        d[self.server] = sorted(set(d.get(self.server, [])) | set(dsts))
        write_json(self.path, d)

    def done(self, dsts: list[str]) -> None:
        from ..secrets.file import write_json

        d = self._read()
        d[self.server] = [x for x in d.get(self.server, []) if x not in dsts]
        if not d[self.server]:
            del d[self.server]
        write_json(self.path, d)


def swap(dest: Destination, loader: Loader, plan, staged, *, disable_events: bool) -> None:
    """Each staging database becomes its target: the old one dropped, the tables renamed in one statement,
    then views, routines, triggers, events."""
    conn = session(dest)
    try:
        for (src, dst), (_, stage) in zip(plan, staged):
            db = loader.backup.manifest["databases"][src]
            tables = [r[0] for r in q(conn, f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                                            f"TABLE_SCHEMA={literal(stage)} AND TABLE_TYPE='BASE TABLE'")]
            q(conn, f"DROP DATABASE IF EXISTS {qi(dst)}")
            q(conn, f"CREATE DATABASE {qi(dst)} CHARACTER SET {_word(db['charset'])} COLLATE {_word(db['collation'])}")
            # Routines need no table: in before the tables, so a kill in between leaves fewer objects missing
            # (triggers and views need the tables; the journal marks the window, `backup list` reports it).
            routines = ("PROCEDURE", "FUNCTION")
            loader.objects(conn, src, dst, disable_events=disable_events, only=routines)
            if tables:
                q(conn, "RENAME TABLE " + ", ".join(f"{qi(stage)}.{qi(t)} TO {qi(dst)}.{qi(t)}" for t in tables))
            loader.objects(conn, src, dst, disable_events=disable_events, skip=routines)
            q(conn, f"DROP DATABASE IF EXISTS {qi(stage)}")
    finally:
        conn.close()


def _word(v: str) -> str:
    if not re.fullmatch(r"\w+", v or ""):
        raise RestoreFailed(f"{v!r} is not a character set or collation name")
    return v


def _binlog_args(binlogs: list[Path], start: int, to_time: float | None, stop_position) -> list[str]:
    args = ["--no-defaults", f"--start-position={int(start)}"]
    if to_time is not None:
        # Stops at the first event stamped at or after T+1 s: everything committed during second T is in.
        args.append("--stop-datetime=" + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(to_time) + 1)))
    if stop_position is not None:
        args.append(f"--stop-position={int(stop_position[1])}")
    return args


# Not DDL on a database's data: transaction control, session settings, and account statements (GRANT ... ON
# orders_db.* names the database but changes no row or table).
_STMT_SKIP = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION|SET\s|DELIMITER|XA\s|use\s|GRANT\s|REVOKE\s|"
                        r"(CREATE|ALTER|DROP|RENAME)\s+(USER|ROLE)\s|FLUSH\s)", re.I)


_QUALIFIER = re.compile(r"(?:`((?:[^`]|``)+)`|(?<![\w$`.])([A-Za-z0-9_$]+))\s*\.\s*(?=[`A-Za-z_$])")


def check_ddl(binlogs: list[Path], base, plan, to_time, stop_position, databases: set[str] = frozenset()) -> None:
    """Refuse a roll-forward that a per-database filter would get wrong (module docstring)."""
    if not binlogs:
        return
    cmd = [tool("mariadb-binlog", "mysqlbinlog"), *_binlog_args(binlogs, base.position["pos"], to_time,
                                                                 stop_position), "--short-form",
           *map(str, binlogs)]
    res = subprocess.run(cmd, capture_output=True, env=_env(), timeout=3600)
    if res.returncode != 0:
        raise RestoreFailed(f"mariadb-binlog cannot read the archived binlogs: "
                            f"{scrub(_first_line(res.stderr.decode(errors='replace')))}")
    current = None
    for stmt in res.stdout.decode(errors="replace").split("/*!*/;"):
        s = "\n".join(ln for ln in stmt.splitlines() if not ln.startswith("#")).strip()
        if not s:
            continue
        m = re.match(r"use\s+`((?:[^`]|``)+)`", s, re.I)
        if m:
            current = m.group(1).replace("``", "`")
            s = s[m.end():].strip()
            if not s:
                continue
        if _STMT_SKIP.match(s) or s.startswith("/*!"):
            continue
        if current in {src for src, _ in plan}:
            # Run under a restored database but naming another one (TRUNCATE TABLE billing_db.t under USE
            # orders_db): the filter keeps it, and replayed it would change that other, live database.
            for quoted, bare in _QUALIFIER.findall(s):
                other = (quoted.replace("``", "`") if quoted else bare)
                if other.lower() != current.lower() and other.lower() in {d.lower() for d in databases}:
                    head = " ".join(s.split())[:60]
                    raise RestoreFailed(f"the binlog after backup {base.id} holds a statement run under {current} "
                                        f"that changes {other} ({head!r}...); replaying it would touch that live "
                                        "database, so the roll-forward stops here: take a backup after it and "
                                        "restore from that")
        for src, _ in plan:
            named = re.search(r"(?<![\w$])`?" + re.escape(src) + r"`?\s*\.", s, re.I) is not None
            if named or (current != src and re.search(r"(?<![\w$])`?" + re.escape(src) + r"`?(?![\w$])", s, re.I)):
                head = " ".join(s.split())[:60]
                raise RestoreFailed(f"the binlog after backup {base.id} holds DDL naming {src} explicitly "
                                    f"({head!r}...), which a per-database roll-forward would skip or misapply; "
                                    "take a backup after it (`backup create`) and restore from that")


def replay(binlogs: list[Path], start: int, src: str, stage: str, to_time, stop_position, cnf: Path,
           dest: Destination) -> int:
    """Apply one database's events from the binlogs to its staging copy."""
    args = [tool("mariadb-binlog", "mysqlbinlog"), *_binlog_args(binlogs, start, to_time, stop_position),
            f"--database={src}"]
    if src != stage:
        args.append(f"--rewrite-db={src}->{stage}")
    args += [str(p) for p in binlogs]
    client = [tool("mariadb", "mysql"), f"--defaults-extra-file={cnf}", "--binary-mode", "--batch",
              "--init-command=SET SESSION foreign_key_checks=0" + ("" if dest.log_bin else ", sql_log_bin=0")]
    producer = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    consumer = subprocess.Popen(client, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=_env())
    perr: list[bytes] = []
    cerr: list[bytes] = []
    readers = [threading.Thread(target=lambda: perr.append(producer.stderr.read()), daemon=True),
               threading.Thread(target=lambda: cerr.append(consumer.stderr.read()), daemon=True)]
    for r in readers:
        r.start()
    try:
        for piece in batched(producer.stdout):
            consumer.stdin.write(piece)
    except BrokenPipeError:
        pass  # the client stopped (an error): its message is reported below
    finally:
        try:
            consumer.stdin.close()
        except BrokenPipeError:
            pass
        producer.stdout.close()
    consumer.wait()
    if producer.poll() is None:
        producer.kill()
    producer.wait()
    for r in readers:
        r.join()
    cerr_b = b"".join(cerr)
    if producer.returncode != 0:
        raise RestoreFailed(f"mariadb-binlog failed reading the archived binlogs for {src}: "
                            f"{scrub(_first_line(b''.join(perr).decode(errors='replace')))}")
    if consumer.returncode != 0:
        raise RestoreFailed(f"replaying the binlog into {src} failed: "
                            f"{scrub(_first_line(cerr_b.decode(errors='replace')))}")
    return 1

