"""Slow-log entries -> per-fingerprint aggregates, one buffer at a time (the unit a worker process digests).

Formats (both are `# `-headed entries, the server writes the statement verbatim and ends it with `;`):

    # Time: 2026-11-26T10:15:00.123456Z                 MySQL 8 (always); MariaDB `# Time: 261126 10:15:00`,
    # User@Host: orders_user[orders_user] @ localhost [127.0.0.1]  Id: 8      only when the second changed
    # Thread_id: 8  Schema: orders  QC_hit: No           MariaDB
    # Query_time: 0.000215  Lock_time: 0.000063  Rows_sent: 1  Rows_examined: 1
    # Rows_affected: 0  Bytes_sent: 74                   MariaDB
    use orders;                                          when the default database changed
    SET timestamp=1764152100;                            the statement's start, epoch seconds
    SELECT ...;

An entry starts at its `# User@Host:` line (with the `# Time:` line just before it, if any); everything up to the
next one is its headers and its statement. The statement's time is `SET timestamp` when present (exact, no time
zone), else `# Time:`, else the previous entry's, else the caller's (a CloudWatch event's timestamp). An entry
without `# Query_time:` or without a statement is skipped and counted (truncated when it is the input's last),
bytes that belong to no entry are counted as garbage, header fields this reader does not know are counted by
name. Nothing in the input raises.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

SPLIT = b"\n# User@Host: "
# Entries start at `# User@Host:`, with the `# Time:` line just before it when there is one (captured).
_SPLIT = re.compile(rb"\n(?:# Time: ([^\n]*)\n)?# User@Host: ")
_ENTRY = re.compile(
    rb"([^\n]*)\n"  # the User@Host line
    rb"(?:# Thread_id: [0-9]+ +Schema: [^\n]*?QC_hit: [A-Za-z]+\n)?"  # MariaDB's usual line (lazy: linear)
    rb"((?:#[^\n]*\n)*?)"  # other header lines before Query_time
    rb"# Query_time: +([0-9.]+)\s+Lock_time: +([0-9.]+)\s+Rows_sent: +([0-9]+)\s+Rows_examined: +([0-9]+)"
    rb"([^\n]*)\n"  # MySQL's log_slow_extra fields, on the same line
    rb"(?:# Rows_affected: [0-9]+ +Bytes_sent: [0-9]+\n)?"  # MariaDB's usual line
    rb"((?:#[^\n]*\n)*)"  # other header lines after it (Percona's and MariaDB's log_slow_verbosity extras)
    rb"(?:use [^\n]*\n)?"
    rb"(?:SET (?=last_insert_id|insert_id|timestamp)(?:[a-z_]+=[0-9]+,\s*)*(?:timestamp=([0-9]+))?[^\n]*(?:\n|\Z))?")
_FIELDS = re.compile(rb"([A-Za-z_][A-Za-z0-9_]*): ")
_NOT_SHAPE = b"0123456789."
_USER_HOST = re.compile(rb"([^\s\[\]]*)\[([^\s\[\]]*)\] @ (\S*) \[(\S*)\](?:\s+Id:\s*[0-9]+)?\s*\Z")
# A server (re)start writes its banner into the log: three lines, not a statement.
_BANNER_TAIL = re.compile(rb"(?:Tcp port:[^\n]*\n)?(?:Time\s+Id\s+Command[^\n]*\n?)?")


def _strip_banners(text: bytes) -> bytes:
    """Remove every `<path>, Version: ... started with:` line and the two that follow it (found by its fixed
    end, so a hostile line of repeated ", Version: " costs one pass)."""
    out, pos = [], 0
    while True:
        k = text.find(b"started with:\n", pos)
        if k < 0:
            break
        start = text.rfind(b"\n", 0, k) + 1
        end = k + len(b"started with:\n")
        if start < pos or text.find(b", Version: ", start, k) < 0:
            out.append(text[pos:end])
            pos = end
            continue
        out.append(text[pos:start])
        pos = _BANNER_TAIL.match(text, end).end()
    out.append(text[pos:])
    return b"".join(out)


KNOWN_FIELDS = frozenset(x.encode() for x in (
    "Query_time Lock_time Rows_sent Rows_examined Rows_affected Bytes_sent Bytes_received Thread_id Schema QC_hit "
    "Id Time User Host Full_scan Full_join Tmp_table Tmp_table_on_disk Filesort Filesort_on_disk Merge_passes "
    "Priority_queue Tmp_tables Tmp_disk_tables Tmp_table_sizes Pages_accessed Pages_read Pages_updated "
    "Old_rows_read Pages_read_time Engine_lock_time Explain Log_slow_rate_type Log_slow_rate_limit Errno Killed "
    "Read_first Read_last Read_key Read_next Read_prev Read_rnd Read_rnd_next Sort_merge_passes Sort_range_count "
    "Sort_rows Sort_scan_count Created_tmp_disk_tables Created_tmp_tables Count_hit_tmp_table_size Start End "
    "Select_full_join Select_full_range_join Select_range Select_range_check Select_scan InnoDB_IO_r_ops "
    "InnoDB_IO_r_bytes InnoDB_IO_r_wait InnoDB_rec_lock_wait InnoDB_queue_wait InnoDB_pages_distinct "
    "InnoDB_trx_id Rows_read Last_errno Cpu_time Sort_range_rows".split()))
LOG_BASE = math.log(1.05)  # pt-query-digest's buckets: 5% wide, so p95 is within 5%


def parse_time(text: bytes):
    """`# Time:` value -> epoch seconds, or None. MariaDB writes the server's local time, MySQL 8 UTC."""
    s = " ".join(text.decode("ascii", "replace").split())
    for fmt, utc in (("%y%m%d %H:%M:%S", False), ("%Y-%m-%dT%H:%M:%S.%fZ", True), ("%Y-%m-%dT%H:%M:%SZ", True),
                     ("%Y-%m-%dT%H:%M:%S.%f%z", None), ("%Y-%m-%dT%H:%M:%S%z", None)):
        try:
            t = datetime.strptime(s, fmt)
        except ValueError:
            continue
        if utc:
            t = t.replace(tzinfo=timezone.utc)
        elif utc is False:
            t = t.astimezone()
        return t.timestamp()
    return None


class Digest:
    """Aggregates of one part of the input; `merge` adds another's. Everything here pickles (worker -> parent).

    cells: (fingerprint, tenant) -> [count, sum_qt, sum_lock, sum_sent, sum_examined, max_qt, min_qt, first,
                                     last, histogram {bucket: n}, sample (the slowest statement's first bytes)]
    """

    def __init__(self):
        self.cells: dict[tuple, list] = {}
        self.unmanaged: dict[str, list] = {}  # user -> [count, sum_qt]
        self.entries = 0
        self.filtered = 0
        self.truncated = 0
        self.garbage = 0
        self.garbage_bytes = 0
        self.unknown_fields: dict[str, int] = {}
        self.bytes = 0

    def skip(self, last: bool, nbytes: int = 0) -> None:
        """An entry that cannot be read: `truncated` when the input ends with it, else garbage."""
        if last:
            self.truncated += 1
        else:
            self.garbage += 1
            self.garbage_bytes += nbytes

    def merge(self, other: "Digest") -> None:
        cells = self.cells
        for k, o in other.cells.items():
            c = cells.get(k)
            if c is None:
                cells[k] = o
                continue
            c[0] += o[0]
            c[1] += o[1]
            c[2] += o[2]
            c[3] += o[3]
            c[4] += o[4]
            if o[5] > c[5]:
                c[5], c[10] = o[5], o[10]
            if o[6] < c[6]:
                c[6] = o[6]
            if o[7] < c[7]:
                c[7] = o[7]
            if o[8] > c[8]:
                c[8] = o[8]
            h = c[9]
            for b, n in o[9].items():
                h[b] = h.get(b, 0) + n
        for u, (n, s) in other.unmanaged.items():
            x = self.unmanaged.setdefault(u, [0, 0.0])
            x[0] += n
            x[1] += s
        for k, n in other.unknown_fields.items():
            self.unknown_fields[k] = self.unknown_fields.get(k, 0) + n
        self.entries += other.entries
        self.filtered += other.filtered
        self.truncated += other.truncated
        self.garbage += other.garbage
        self.garbage_bytes += other.garbage_bytes
        self.bytes += other.bytes


class Options:
    """What a worker needs: picklable, small. `pair`: key classes by (pt's fingerprint, ours) (the benchmark's
    agreement measure)."""

    def __init__(self, pt_compatible=False, who=None, admins=(), since=None, until=None, tenant=None,
                 sample_limit=4096, pair=False):
        self.pt_compatible = pt_compatible
        self.who = dict(who or {})
        self.admins = frozenset(admins)
        self.since, self.until, self.tenant = since, until, tenant
        self.sample_limit = sample_limit
        self.pair = pair


_INF = float("inf")
MAX_SECONDS = 366 * 86400.0  # a Query_time or Lock_time beyond this is not a measurement


def digest_buffer(buf: bytes, opts: Options, *, last: bool = True, fallback_ts=None) -> Digest:
    """Digest one buffer of whole entries (a file's chunk cut before an entry, or CloudWatch events).
    `last`: the input ends here (an incomplete final entry is `truncated`, not garbage)."""
    from .fingerprint import fingerprint, pt_fingerprint

    if opts.pair:
        def fp_of(q):
            return pt_fingerprint(q) + b"\0" + fingerprint(q)
    else:
        fp_of = pt_fingerprint if opts.pt_compatible else fingerprint
    who, admins, tenant_only = opts.who, opts.admins, opts.tenant
    since, until, limit = opts.since, opts.until, opts.sample_limit
    d = Digest()
    d.bytes = len(buf)
    cells, unmanaged, unknown = d.cells, d.unmanaged, d.unknown_fields
    entry_match = _ENTRY.match
    log, floor, inv = math.log, math.floor, 1.0 / LOG_BASE
    times: dict[bytes, float | None] = {}  # `# Time:` text -> epoch (MariaDB repeats one per second)
    shapes: dict[bytes, tuple] = {}  # header block without numbers -> unknown field names
    users: dict[bytes, tuple] = {}  # User@Host line -> (tenant, user)
    parts = _SPLIT.split(b"\n" + buf)
    head = parts[0]
    if len(head) > 65536:  # no banner is this long: garbage, counted without copying it around
        d.garbage += 1
        d.garbage_bytes += len(head) - 1  # the newline put in front above
    else:
        head = _strip_banners(head.strip(b"\n"))
        if head.strip():
            d.garbage += 1
            d.garbage_bytes += len(head)
    n_parts = len(parts)
    when = fallback_ts
    entries = 0
    for i in range(2, n_parts, 2):
        p = parts[i]
        is_last = last and i == n_parts - 1
        m = entry_match(p)
        if m is None:
            d.skip(is_last, len(p))
            continue
        if p[-1:] == b";" and b"started with:\n" not in p:  # the usual: the statement and its ;
            q = p[m.end():-1]
        else:
            q = p[m.end():]
            if b"started with:\n" in q:  # a restart banner after the statement
                q = _strip_banners(q)
            q = q.rstrip(b"\n")
            if q.endswith(b";"):
                q = q[:-1]
            else:
                k = q.rfind(b";\n")
                if k < 0:  # the statement itself is cut off (or no statement at all)
                    d.skip(is_last, len(p))
                    continue
                d.skip(is_last, len(q) - k - 2)  # bytes after the statement: an entry cut off, or garbage
                q = q[:k]
        if not q:  # headers and no statement
            d.skip(is_last)
            continue
        if q.startswith(b"# administrator command: "):  # MySQL: a command (Quit, Prepare...), not a statement
            q = q[2:]
        uh, other1, qt, lt, sent, exam, extra, other2, ts = m.groups()
        if other1 or extra or other2:
            shape_key = (other1 + extra + other2).translate(None, _NOT_SHAPE)
            shape = shapes.get(shape_key)
            if shape is None:
                if len(shapes) > 4096:
                    shapes.clear()
                shape = tuple(f.decode("ascii") for f in _FIELDS.findall(other1 + extra + b"\n" + other2)
                              if f not in KNOWN_FIELDS)
                shapes[shape_key] = shape
            for f in shape:
                unknown[f] = unknown.get(f, 0) + 1
        if ts is not None:
            when = float(ts)
        else:
            raw = parts[i - 1]
            if raw is not None:
                w = times.get(raw)
                if w is None:
                    w = times[raw] = parse_time(raw)
                if w is not None:
                    when = w
        if since is not None and (when is None or when < since) or \
                until is not None and (when is None or when > until):
            d.filtered += 1
            continue
        who_ = users.get(uh)
        if who_ is None:
            u = _USER_HOST.match(uh)
            if u is None or u.group(1) != u.group(2):
                who_ = ("unmanaged", None)
            else:
                user = u.group(2).decode("utf-8", "replace")
                who_ = ("admin" if user in admins else who.get(user, "unmanaged"), user)
            if len(users) > 65536:
                users.clear()
            users[uh] = who_
        tenant = who_[0]
        if tenant_only is not None and tenant != tenant_only:
            d.filtered += 1
            continue
        try:
            query_time, lock_time, n_sent, n_exam = float(qt), float(lt), int(sent), int(exam)
        except ValueError:  # "1.2.3": a number only by its characters
            query_time = lock_time = _INF
        if not query_time < MAX_SECONDS or not lock_time < MAX_SECONDS:  # inf, nan, or longer than a year
            d.garbage += 1
            continue
        entries += 1
        key = (fp_of(q), tenant)
        c = cells.get(key)
        if c is None:
            c = cells[key] = [0, 0.0, 0.0, 0, 0, -1.0, _INF, _INF, -_INF, {}, None]
        c[0] += 1
        c[1] += query_time
        c[2] += lock_time
        c[3] += n_sent
        c[4] += n_exam
        if query_time > c[5]:
            c[5], c[10] = query_time, q[:limit]
        if query_time < c[6]:
            c[6] = query_time
        if when is not None:
            if when < c[7]:
                c[7] = when
            if when > c[8]:
                c[8] = when
        b = floor(log(query_time) * inv) if query_time > 0 else -1000
        h = c[9]
        h[b] = h.get(b, 0) + 1
        if tenant == "unmanaged":
            name = who_[1] if who_[1] is not None else "?"
            x = unmanaged.get(name)
            if x is None:
                x = unmanaged[name] = [0, 0.0]
            x[0] += 1
            x[1] += query_time
    d.entries = entries
    return d


def percentile(hist: dict[int, int], count: int, max_qt: float, p: float = 0.95) -> float:
    """The p-th percentile from the 5% buckets: the upper edge of the bucket holding it (never above max)."""
    if count <= 0:
        return 0.0
    rank = math.ceil(p * count)
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return 0.0 if b == -1000 else min(max_qt, math.exp((b + 1) * LOG_BASE))
    return max_qt


__all__ = ["Digest", "Options", "digest_buffer", "parse_time", "percentile", "SPLIT"]
