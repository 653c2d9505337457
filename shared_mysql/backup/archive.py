"""`backup archive`: every binlog copied off the server as it is written, sealed once complete, gaps reported.

`mariadb-binlog --read-from-remote-server --raw` (verified TLS, credentials in a 0600 defaults file) copies the
server's binlogs into `binlog/incoming/`. A copied file whose last event is ROTATE or STOP is complete: it is
sealed (zstd + AES-GCM with the archive's data key, sealed.py) into `binlog/<name>.sme` and the plaintext copy is
removed; the file being written stays in `incoming/` (0600, in a 0700 directory) until it rotates. The archive
resumes from its newest file (the active one is copied again from its start: `--raw` writes whole files). A
binlog the server purged before it was copied is a gap: recorded in the state, reported by `archive`, `list` and
`status`, and refused by any restore that needs it -- never papered over.

RPO: when the last pass ended level with the server, the age of that moment; otherwise the age of the newest
archived event.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SharedMySQLError
from ..secrets.file import private_dirs, write_private
from .sealed import DataKey, read_sealed, sha256_file, unwrap_key, wrap_key, write_file
from .store import BackupDir, backup_dir

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server_id, event_size, log_pos, flags
ROTATE, STOP, FORMAT_DESCRIPTION = 4, 3, 15
NAME_RE = re.compile(r"[A-Za-z0-9_.-]+\.(\d{6,})")
STATE = "archive.json"
KEY_COPY = "archive-key.json"  # the wrapped key again: a lost or edited state file never orphans the archive


class ArchiveBusy(SharedMySQLError):
    exit_code = 0


class ArchiveReset(SharedMySQLError):
    exit_code = 3


@dataclass
class Events:
    count: int
    first_ts: int | None
    last_ts: int | None
    end: int  # offset after the last complete event
    complete: bool  # ends with ROTATE or STOP
    size: int


def scan(data: bytes) -> Events:
    """Walk the event headers of a binlog (bytes): how many complete events, their time span, whether the file
    is closed. A torn last event (copy in progress) is not counted."""
    if data[:4] != MAGIC:
        return Events(0, None, None, 0, False, len(data))
    pos, n, first, last, last_type = 4, 0, None, None, None
    while pos + HEADER.size <= len(data):
        ts, typ, _sid, size, _lp, _fl = HEADER.unpack_from(data, pos)
        if size < HEADER.size or pos + size > len(data):
            break
        if ts:
            first = ts if first is None else first
            last = ts
        last_type = typ
        n += 1
        pos += size
    return Events(n, first, last, pos, last_type in (ROTATE, STOP) and pos == len(data), len(data))


def number(name: str) -> int:
    m = NAME_RE.fullmatch(name)
    if not m:
        raise SharedMySQLError(f"{name!r} is not a binlog file name")
    return int(m.group(1))


def successor(name: str) -> str:
    m = NAME_RE.fullmatch(name)
    digits = m.group(1)
    return name[: m.start(1)] + str(int(digits) + 1).zfill(len(digits))


class Archive:
    def __init__(self, target):
        self.target = target
        self.store = BackupDir(backup_dir(target))
        self.dir = self.store.binlog
        self.incoming = self.dir / "incoming"

    # -- state ----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        st = {"files": {}, "gaps": [], "key": None, "caught_up_at": None}
        try:
            got = json.loads((self.dir / STATE).read_text())
            if isinstance(got, dict) and isinstance(got.get("files"), dict):
                st = got
        except (OSError, ValueError):
            pass
        if st.get("key") is None:
            try:
                st["key"] = json.loads((self.dir / KEY_COPY).read_text())
            except (OSError, ValueError):
                pass
        return st

    def save(self, st: dict) -> None:
        write_private(self.dir / STATE, json.dumps(st, indent=1, sort_keys=True).encode())

    def key(self, st: dict, create: bool = False) -> DataKey:
        if st.get("key") is None:
            if any(self.dir.glob("*.sme")):  # a new key would make every sealed binlog unreadable
                raise SharedMySQLError(f"{self.dir / STATE}: the archive's key is missing but sealed binlogs exist; "
                                       f"restore {STATE} (its copy is {KEY_COPY}) instead of starting a new key")
            if not create:
                raise SharedMySQLError(f"{self.dir}: the archive has no key yet; run `shared-mysql backup archive`")
            raw = DataKey.generate()
            st["key"] = wrap_key(self.target, raw, f"binlog-archive-{self.target.config.identifier}")
            write_private(self.dir / KEY_COPY, json.dumps(st["key"]).encode())
            self.save(st)
            return DataKey(raw)
        return unwrap_key(self.target, st["key"], f"{self.dir / STATE}")

    @contextmanager
    def locked(self):
        private_dirs(self.dir)
        fd = os.open(self.dir / "archive.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise ArchiveBusy(f"another archiver (pid {holder}) is running on {self.dir}; nothing to do") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)

    # -- what is there --------------------------------------------------------------------------------------
    def files(self) -> dict[str, dict]:
        """name -> {"sealed": path} or {"raw": path}, for every archived binlog."""
        out: dict[str, dict] = {}
        if self.dir.is_dir():
            for p in self.dir.glob("*.sme"):
                out[p.name[:-4]] = {"sealed": p}
        if self.incoming.is_dir():
            for p in self.incoming.iterdir():
                if NAME_RE.fullmatch(p.name) and p.name not in out:
                    out[p.name] = {"raw": p}
        return dict(sorted(out.items(), key=lambda kv: number(kv[0])))

    def summary(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        st = self.state()
        files = self.files()
        newest = None
        for name in files:
            ent = st["files"].get(name) or {}
            if ent.get("last_ts"):
                newest = max(newest or 0, ent["last_ts"])
        caught = st.get("caught_up_at")
        ref = max(x for x in (newest, caught, 0) if x is not None)
        return {"dir": str(self.dir), "files": len(files), "first": next(iter(files), None),
                "last": next(reversed(files), None) if files else None,
                "newest_event": newest, "caught_up_at": caught, "rpo_s": round(now - ref, 1) if ref else None,
                "gaps": st.get("gaps", []), "size": sum(int((st["files"].get(n) or {}).get("size") or 0)
                                                        for n in files)}

    # -- copying --------------------------------------------------------------------------------------------
    def _defaults_file(self, tmp: Path) -> Path:
        from .tools import client_cnf

        return client_cnf(self.target.admin_info(), tmp)

    def _command(self, cnf: Path, start: str, follow: bool) -> list[str]:
        from .tools import tool

        cmd = [tool("mariadb-binlog", "mysqlbinlog"), f"--defaults-extra-file={cnf}", "--read-from-remote-server",
               "--raw", f"--result-file={self.incoming}/"]
        cmd += ["--stop-never", f"--stop-never-slave-server-id={_replica_id(self.target)}"] if follow \
            else ["--to-last-log"]
        return cmd + [start]

    def _server_logs(self) -> list[tuple[str, int]]:
        with self.target.executor() as ex:
            return [(r[0], int(r[1])) for r in ex.query("SHOW BINARY LOGS")]

    def _start(self, st: dict, server: list[tuple[str, int]], now: float) -> str | None:
        """The first file to copy, recording a gap when what we need is gone from the server."""
        names = [n for n, _ in server]
        if not names:
            raise SharedMySQLError("the server lists no binary logs (SHOW BINARY LOGS is empty); enable log_bin")
        have = self.files()
        for p in (self.incoming.iterdir() if self.incoming.is_dir() else ()):
            if p.is_symlink() or not p.is_file():  # a FIFO here would block the copier forever
                raise SharedMySQLError(f"{p}: not a regular file in the archive's incoming directory; remove it")
        if have:
            newest = next(reversed(have))
            want = newest if "raw" in have[newest] else successor(newest)
            sizes = dict(server)
            reset = number(names[-1]) < number(newest) or (
                "raw" in have[newest] and newest in sizes and sizes[newest] < have[newest]["raw"].stat().st_size)
            if reset:  # never overwrite the old server's binlogs with a new history under the same names
                raise ArchiveReset(
                    f"the server's binlogs start over ({names[-1]} is its newest, {sizes.get(newest, 'no')} bytes "
                    f"of {newest}) but the archive holds the old history up to {newest}: the server was rebuilt "
                    f"or its binlogs reset. Move {self.dir} aside (it restores the old history), then take a new "
                    "backup and archive again")
        else:
            oldest = self.store.list()
            want = oldest[0].position["file"] if oldest else names[0]
        if want in names:
            return want
        if number(want) > number(names[-1]):
            return names[-1]  # level with the server (the newest is sealed and nothing newer exists)
        first = names[0]
        if number(want) < number(first):
            gap = {"from": want, "to": _predecessor(first), "detected_at": now,
                   "reason": "purged from the server before it was archived"}
            if not any(g.get("from") == gap["from"] for g in st["gaps"]):
                st["gaps"].append(gap)
            return first
        return first

    def run_once(self, *, now: float | None = None) -> dict:
        """Copy everything up to the server's current end, seal what is complete; returns summary + what
        happened."""
        with self.locked():
            st = self.state()
            key = self.key(st, create=True)
            server = self._server_logs()
            began = time.time() if now is None else now
            gaps_before = len(st["gaps"])
            start = self._start(st, server, began)
            self.save(st)
            private_dirs(self.incoming)
            with tempfile.TemporaryDirectory(prefix="shared-mysql-archive-") as tmp:
                cnf = self._defaults_file(Path(tmp))
                res = subprocess.run(self._command(cnf, start, False), capture_output=True, text=True,
                                     env=_env(), timeout=3600, umask=0o077)
            if res.returncode != 0:
                raise SharedMySQLError(f"mariadb-binlog could not copy the binlogs from {start}: "
                                       f"{_first_line(res.stderr)}")
            sealed = self.seal(st, key)
            sizes = dict(server)
            files = self.files()
            last = next(reversed(files), None)
            if last and "raw" in files[last] and files[last]["raw"].stat().st_size >= sizes.get(last, 0):
                st["caught_up_at"] = began
            elif last and last in sizes and "sealed" in files[last]:
                st["caught_up_at"] = began
            self.save(st)
            out = self.summary()
            out["sealed"] = sealed
            out["new_gaps"] = st["gaps"][gaps_before:]
            return out

    def seal(self, st: dict, key: DataKey) -> list[str]:
        """Seal every complete raw copy; record every file's event span."""
        done = []
        if not self.incoming.is_dir():
            return done
        for p in sorted(self.incoming.iterdir(), key=lambda p: number(p.name) if NAME_RE.fullmatch(p.name) else -1):
            if not NAME_RE.fullmatch(p.name):
                continue
            os.chmod(p, 0o600)
            data = p.read_bytes()
            ev = scan(data)
            ent = {"events": ev.count, "first_ts": ev.first_ts, "last_ts": ev.last_ts, "size": ev.end}
            if ev.complete:
                dest = self.dir / (p.name + ".sme")
                tmp = self.dir / (p.name + ".sme.tmp")
                w = write_file(tmp, key, f"binlog/{p.name}", [data])
                os.replace(tmp, dest)
                ent.update(sealed=True, sha256=w.sha256, sealed_size=w.size)
                st["files"][p.name] = ent
                self.save(st)
                p.unlink()
                done.append(p.name)
            else:
                ent["sealed"] = False
                st["files"][p.name] = ent
        return done

    def follow(self, *, interval: float = 2.0, stop=None, on_event=None) -> None:
        """Archive continuously until SIGTERM/SIGINT (or `stop()` returns True): restarts the copier when the
        server goes away, seals files as they rotate."""
        stopping = {"flag": False}

        def handler(signum, frame):
            stopping["flag"] = True

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            with self.locked():
                st = self.state()
                key = self.key(st, create=True)
                while not stopping["flag"] and not (stop and stop()):
                    try:
                        server = self._server_logs()
                    except SharedMySQLError as exc:
                        if on_event:
                            on_event(f"server unreachable ({exc}); retrying")
                        _sleep(interval, stopping, stop)
                        continue
                    start = self._start(st, server, time.time())
                    self.save(st)
                    private_dirs(self.incoming)
                    with tempfile.TemporaryDirectory(prefix="shared-mysql-archive-") as tmp:
                        cnf = self._defaults_file(Path(tmp))
                        proc = subprocess.Popen(self._command(cnf, start, True), stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE, env=_env(), start_new_session=True,
                                                umask=0o077)
                        time.sleep(0.2)  # the client has read its defaults file
                    try:
                        while proc.poll() is None and not stopping["flag"] and not (stop and stop()):
                            _sleep(interval, stopping, stop)
                            self.seal(st, key)
                            self._level(st)
                            self.save(st)
                    finally:
                        if proc.poll() is None:
                            proc.terminate()
                            try:
                                proc.wait(10)
                            except subprocess.TimeoutExpired:
                                proc.kill()
                        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                        if proc.stderr:
                            proc.stderr.close()
                    self.seal(st, key)
                    self.save(st)
                    if not stopping["flag"] and not (stop and stop()) and on_event:
                        on_event(f"copier exited ({_first_line(err) or proc.returncode}); restarting")
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _level(self, st: dict) -> None:
        try:
            server = dict(self._server_logs())
        except SharedMySQLError:
            return
        files = self.files()
        last = next(reversed(files), None)
        if last and "raw" in files[last] and files[last]["raw"].stat().st_size >= server.get(last, 1 << 62):
            st["caught_up_at"] = time.time()

    # -- reading for a restore ------------------------------------------------------------------------------
    def materialise(self, first: str, until_ts: float | None, into: Path) -> list[Path]:
        """Plaintext copies (in `into`, a private temp dir) of the archived binlogs from `first` on, up to the
        first whose events start after `until_ts`. A missing file in the sequence is an error naming it."""
        st = self.state()
        files = self.files()
        if first not in files:
            gap = next((g for g in st.get("gaps", []) if number(g["from"]) <= number(first) <= number(g["to"])), None)
            why = " (a recorded gap: purged before it was archived)" if gap else ""
            raise SharedMySQLError(f"binlog {first} is not in the archive {self.dir}{why}; the backup cannot be "
                                   "rolled forward: restore without --to-time, or from a newer backup")
        key = self.key(st) if any("sealed" in v for v in files.values()) else None
        out = []
        name = first
        while name in files:
            ent = st["files"].get(name) or {}
            if until_ts is not None and out and ent.get("first_ts") and ent["first_ts"] > until_ts + 1:
                break
            dest = into / name
            src = files[name]
            if "sealed" in src:
                from .load import open_regular

                with open_regular(src["sealed"], str(src["sealed"])) as f, open(dest, "wb") as o:
                    for piece in read_sealed(f, key, f"binlog/{name}", str(src["sealed"])):
                        o.write(piece)
            else:
                from .load import open_regular

                with open_regular(src["raw"], str(src["raw"])) as f:
                    dest.write_bytes(f.read())
            os.chmod(dest, 0o600)
            out.append(dest)
            nxt = successor(name)
            if nxt not in files:
                if any(number(n) > number(nxt) for n in files):
                    raise SharedMySQLError(f"binlog {nxt} is missing from the archive {self.dir} (a gap); the "
                                           "restore cannot roll forward past it")
                break
            name = nxt
        return out

    def covered_until(self) -> float | None:
        """Up to when the archive is known complete: the last time it was level with the server, or its newest
        event."""
        s = self.summary()
        vals = [v for v in (s["caught_up_at"], s["newest_event"]) if v]
        return max(vals) if vals else None

    def verify(self) -> list[str]:
        """Problems with the archive: a sealed file that fails its checksum, a number missing in the sequence."""
        st = self.state()
        problems = []
        files = self.files()
        names = list(files)
        for a, b in zip(names, names[1:]):
            if number(b) != number(a) + 1:
                problems.append(f"binlog {successor(a)}..{_predecessor(b)} missing from the archive (a gap)")
        for name, src in files.items():
            if "sealed" in src:
                want = (st["files"].get(name) or {}).get("sha256")
                if want and sha256_file(src["sealed"]) != want:
                    problems.append(f"binlog {name}: sealed file does not match its checksum (corrupted)")
        return problems


def _sleep(seconds: float, stopping: dict, stop) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stopping["flag"] and not (stop and stop()):
        time.sleep(0.05)


def _predecessor(name: str) -> str:
    m = NAME_RE.fullmatch(name)
    digits = m.group(1)
    return name[: m.start(1)] + str(max(int(digits) - 1, 0)).zfill(len(digits))


def _replica_id(target) -> int:
    import zlib

    return 1_000_000 + zlib.crc32(str(target.state_dir).encode()) % 1_000_000


def _env() -> dict:
    env = {k: os.environ[k] for k in ("PATH",) if os.environ.get(k)}
    env["TZ"] = "UTC"
    env["LC_ALL"] = "C.UTF-8"
    return env


def _first_line(s: str) -> str:
    for line in (s or "").splitlines():
        line = line.strip()
        if line and not line.lower().startswith("warning"):
            return line[:300]
    return ""
