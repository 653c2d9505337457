"""Where slow-log entries come from: files (plain or gzip, rotations in order, read in chunks cut before an entry,
digested by worker processes) and CloudWatch Logs (`filter_log_events`, paged)."""

from __future__ import annotations

import gzip
import os
import zlib
import re
from collections import deque
from pathlib import Path

from ..errors import SharedMySQLError, UsageError
from .parse import SPLIT, Digest, Options, digest_buffer

MAX_PENDING = 64 << 20  # an input with no entry start in this many bytes is passed on as it is (bounded memory)
_ROTATED = re.compile(r"^(?P<stem>.*?)(?:[.-](?P<n>\d{1,4})|[.-](?P<date>\d{8}(?:[-T]?\d{2,6})?))?$")


def rotation_order(paths: list[str]) -> list[Path]:
    """Files of one log oldest first: `slow.log.3.gz, slow.log.2, slow.log.1, slow.log` (logrotate's numbers) or
    `slow.log-20261124, slow.log-20261125, slow.log` (dates); different logs keep the order they were given."""
    groups: dict[str, list[tuple]] = {}
    for raw in paths:
        p = Path(raw)
        name = p.name
        for ext in (".gz", ".zst"):
            if name.endswith(ext):
                name = name[:-len(ext)]
        m = _ROTATED.match(name)
        stem = str(p.parent / m.group("stem"))
        if m.group("n") is not None:
            key = (0, -int(m.group("n")), "")
        elif m.group("date") is not None:
            key = (1, 0, m.group("date"))
        else:
            key = (2, 0, "")
        groups.setdefault(stem, []).append((key, p))
    return [p for items in groups.values() for _, p in sorted(items, key=lambda x: (x[0], str(x[1])))]


def _open(path: Path):
    """(reader, raw file): gzip is recognised by its magic bytes, not its name. Opened without blocking and
    checked to be a regular file first: a FIFO would wait for a writer for ever."""
    import fcntl
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such slow-log file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory; give the slow-log files in it") from None
    except OSError as exc:
        raise SharedMySQLError(f"{path}: cannot read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise UsageError(f"{path}: is a directory; give the slow-log files in it")
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UsageError(f"{path}: not a regular file (a FIFO or device would never end); copy the log to a file")
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    fh = os.fdopen(fd, "rb")
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb"), fh
    return fh, fh


def _cut(buf: bytes) -> int:
    """Where the last entry of `buf` starts (its `# Time:` line if it has one just before), or 0."""
    k = buf.rfind(SPLIT)
    if k < 0:
        return 0
    line = buf.rfind(b"\n", 0, k) + 1
    return line if buf.startswith(b"# Time: ", line) else k + 1


def chunks(paths: list[Path], size: int):
    """(bytes, is_last_of_its_file, path, error) pieces of whole entries, oldest file first. Linear whatever the
    input: an entry start is looked for only once at least `size` bytes wait, and after a miss only when twice as
    many do (a gzip bomb of zeros is read at decompression speed, in bounded memory)."""
    for path in paths:
        reader, raw = _open(path)
        try:
            buf = bytearray()
            check_at = size
            step = size if reader is raw else min(size, 64 << 10)  # gzip: a cut file loses at most this much
            while True:
                try:
                    data = reader.read(step)
                except (OSError, EOFError, zlib.error) as exc:  # a cut or corrupt gzip: keep what was read
                    yield bytes(buf), True, path, f"{exc.__class__.__name__}: {exc}"
                    buf = bytearray()
                    break
                if not data:
                    break
                buf += data
                if len(buf) < check_at:
                    continue
                cut = _cut(buf)
                if cut > 0:
                    yield bytes(buf[:cut]), False, path, None
                    del buf[:cut]
                    check_at = size
                elif len(buf) > MAX_PENDING:
                    yield bytes(buf), False, path, None
                    buf = bytearray()
                    check_at = size
                else:
                    check_at = min(2 * len(buf), MAX_PENDING + 1)
            if buf:
                yield bytes(buf), True, path, None
        finally:
            raw.close()


def _work(args):
    buf, last, opts = args
    return digest_buffer(buf, opts, last=last)


def _work_range(args):
    path, start, end, last, opts = args
    with open(path, "rb") as fh:
        fh.seek(start)
        return digest_buffer(fh.read(end - start), opts, last=last)


def _boundary(fh, x: int, size: int) -> int:
    """Where the first entry starting at or after byte `x` begins (its `# Time:` line, when it has one), or
    `size`. Two neighbouring ranges compute the same boundary, so each entry is read exactly once."""
    if x <= 0:
        return 0
    pos, tail = x - 1, b""
    while pos < size:
        fh.seek(pos)
        block = fh.read(1 << 20)
        if not block:
            break
        data = tail + block
        k = data.find(SPLIT)
        if k >= 0:
            b = pos - len(tail) + k + 1
            fh.seek(max(0, b - 4096))
            before = fh.read(b - max(0, b - 4096))
            line = before.rfind(b"\n", 0, len(before) - 1) + 1
            if before.startswith(b"# Time: ", line) and before.endswith(b"\n"):
                return b - (len(before) - line)
            return b
        tail = data[-(len(SPLIT) - 1):]
        pos += len(block)
    return size


def _plain(path: Path) -> bool:
    reader, raw = _open(path)
    try:
        return reader is raw
    finally:
        raw.close()


def digest_files(paths: list[Path], opts: Options, workers: int | None = None) -> tuple[Digest, dict]:
    """Digest files with `workers` processes (default: one per core when the input is big enough to pay for
    them). A plain file is cut into byte ranges at entry boundaries that each worker reads itself; a gzip file
    is read here and handed out in chunks, at most 2 per worker in flight. Memory stays a few chunks whatever
    the input's size."""
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:
            pass
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if total > (4 << 20) else 1
    size = max(1 << 20, min(16 << 20, total // max(1, workers * 2)))
    out = Digest()
    errors: list[str] = []
    if workers <= 1:
        for buf, last, path, err in chunks(paths, size):
            out.merge(digest_buffer(buf, opts, last=last))
            if err:
                errors.append(f"{path}: {err}")
        return out, {"files": [str(p) for p in paths], "bytes_on_disk": total, "workers": 1, "errors": errors}
    import multiprocessing

    from . import fingerprint

    fingerprint.checksum(b"")  # its regexes compiled once, here, before the workers fork

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        for path in paths:
            if _plain(path):
                n = path.stat().st_size
                with open(path, "rb") as fh:
                    cuts = sorted({_boundary(fh, x, n) for x in range(0, n, size)} | {n})
                tasks = [(str(path), a, b, b == n, opts) for a, b in zip(cuts, cuts[1:]) if b > a]
                for d in pool.imap_unordered(_work_range, tasks):
                    out.merge(d)
                continue
            pending: deque = deque()
            for buf, last, p, err in chunks([path], size):
                if err:
                    errors.append(f"{p}: {err}")
                pending.append(pool.apply_async(_work, ((buf, last, opts),)))
                while len(pending) >= 2 * workers:
                    out.merge(pending.popleft().get())
            while pending:
                out.merge(pending.popleft().get())
    return out, {"files": [str(p) for p in paths], "bytes_on_disk": total, "workers": workers, "errors": errors}


# -- CloudWatch Logs ------------------------------------------------------------------------------------------
def slowquery_group(config) -> str:
    return f"/aws/rds/instance/{config.db_instance_identifier}/slowquery"


def _iso(ms: int) -> bytes:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


def digest_cloudwatch(config, group: str, since: float | None, until: float | None, opts: Options,
                      client=None, page_limit: int = 10000) -> tuple[Digest, dict]:
    """RDS exports one event per slow-log entry; an event without `# Time:` gets its event timestamp (the
    entry's own `SET timestamp`, when present, still wins). Paged with nextToken, 10,000 events a page."""
    from ..aws import client_for, describe_error

    logs = client or client_for(config, "logs")
    kw: dict = {"logGroupName": group, "limit": page_limit}
    if since is not None:
        kw["startTime"] = int(since * 1000)
    if until is not None:
        kw["endTime"] = int(until * 1000) + 999
    out = Digest()
    events = pages = 0
    try:
        while True:
            page = logs.filter_log_events(**kw)
            pages += 1
            parts = []
            for e in page.get("events", []):
                msg = (e.get("message") or "").encode("utf-8", "surrogateescape")
                events += 1
                if not msg.lstrip().startswith(b"# Time: "):
                    msg = b"# Time: " + _iso(int(e.get("timestamp") or 0)) + b"\n" + msg.lstrip(b"\n")
                parts.append(msg.rstrip(b"\n") + b"\n")
            if parts:
                out.merge(digest_buffer(b"".join(parts), opts, last=True))
            token = page.get("nextToken")
            if not token or token == kw.get("nextToken"):
                break
            kw["nextToken"] = token
    except SharedMySQLError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"CloudWatch Logs {group}: {describe_error(exc)}; the instance exports its slow "
                               "log only with enabled_cloudwatch_logs_exports including slowquery") from None
    return out, {"log_group": group, "events": events, "pages": pages, "bytes_on_disk": out.bytes, "errors": []}


__all__ = ["rotation_order", "chunks", "digest_files", "digest_cloudwatch", "slowquery_group"]
