"""Group replayed binlog transactions into batches of commits (`mariadb-binlog` text in, text out).

A roll-forward goes into a staging database nobody sees until the restore swaps it in, so committing every
transaction on its own (an fsync each: ~1,000 a second here) buys nothing; one commit per BATCH transactions
gives the same end state many times faster. Every transaction is held back until its COMMIT is seen, so one cut
by `--stop-datetime`/`--stop-position` is never sent (mariadb-binlog would roll it back with a trailing ROLLBACK,
which here would undo the whole batch). The events' GTID and server_id settings are dropped: the replayed
changes are new events of the restoring server, not copies of the old ones (and MariaDB refuses to set them
inside a transaction).
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

BATCH = 1000
_GTID = re.compile(rb"^/\*M!100001 SET @@session\.(gtid_seq_no|gtid_domain_id|server_id)=\d+\*//\*!\*/;\s*$")
_BEGIN = (b"START TRANSACTION", b"BEGIN")
_END = b"/*!*/;"
_COMMIT = b"COMMIT/*!*/;"
_ADDED_ROLLBACK = b"ROLLBACK /* added by mysqlbinlog */;"
_HARMLESS = re.compile(rb"^\s*(SET\s|use\s|/\*|DELIMITER|BINLOG\s|'|$)", re.I)


def batched(lines: Iterable[bytes], every: int = BATCH) -> Iterator[bytes]:
    buf: list[bytes] = []
    in_txn = False
    expect_end = False  # the line after START TRANSACTION is its delimiter
    batch_open = False
    done = 0
    stmt: list[bytes] = []  # lines of a statement outside any transaction
    for raw in lines:
        line = raw.rstrip(b"\n")
        if _GTID.match(line):
            continue
        if expect_end:
            expect_end = False
            if line.strip() == _END:
                continue
        if not in_txn:
            if line.strip() in _BEGIN:
                in_txn, expect_end, buf = True, True, []
                continue
            if line.strip() == _ADDED_ROLLBACK:
                continue
            if not stmt and (line.startswith(b"#") or not line.strip()):
                continue  # mariadb-binlog's event comments between statements
            stmt.append(raw if raw.endswith(b"\n") else raw + b"\n")
            if line.endswith(_END) or line.endswith(b";"):
                text = b"".join(stmt)
                if batch_open and not _HARMLESS.match(text):
                    batch_open = False  # DDL commits implicitly: the next transaction opens a new batch
                yield text
                stmt = []
            continue
        if line.strip() == _COMMIT:
            if not batch_open:
                yield b"START TRANSACTION\n/*!*/;\n"
                batch_open = True
            yield b"".join(buf)
            buf, in_txn = [], False
            done += 1
            if done % every == 0:
                yield _COMMIT + b"\n"
                batch_open = False
            continue
        buf.append(raw if raw.endswith(b"\n") else raw + b"\n")
    # a transaction without its COMMIT (cut by the stop time or position) is dropped here
    if stmt:
        yield b"".join(stmt)
    if batch_open:
        yield _COMMIT + b"\n"
