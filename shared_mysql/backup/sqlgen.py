"""SQL for backups, no I/O: how each column travels, the chunk and checksum queries, and the load statement.

Rows travel as LOAD DATA's default text format (tab-separated, backslash-escaped, `\\N` for NULL), made by the
server itself: one `GROUP_CONCAT` over a primary-key range returns a whole chunk as one value (the server's C
code formats; Python reads one packet stream per chunk), with its row count and the sum of each line's CRC32 (the
table's checksum, computed in the same consistent snapshot). Text and binary values go as their raw bytes
(`CAST(... AS BINARY)`, loaded back `CHARACTER SET binary`), so no character set conversion ever touches them.
Every literal is hex, so the SQL means the same under any sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES).
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field

from ..sql.quoting import ident as qi
from ..sql.quoting import literal

# Types whose text form never holds a tab, newline or backslash: sent as they are.
PLAIN_TYPES = frozenset({
    "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double",
    "real", "date", "time", "datetime", "timestamp", "year",
})
INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
NULL_MARK = "0x5c4e"  # \N
# Longer string columns travel as HEX(): REPLACE moves the rest of the value at every match, so escaping a 3 MB
# BLOB full of tabs took 16 s (quadratic); HEX is one linear pass. Up to this many bytes the REPLACE chain is
# cheaper (CHAR(120) utf8mb4 is 480) and its worst case small.
SHORT_OCTETS = 512


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # information_schema DATA_TYPE, lower case
    generated: bool = False
    octets: int | None = None  # CHARACTER_OCTET_LENGTH (None: not a string type, or unknown)

    @property
    def kind(self) -> str:
        """plain (numbers, times) | bit | bytes (short strings, escaped) | hex (long strings, BLOB, JSON, spatial)"""
        t = self.data_type.lower()
        if t in PLAIN_TYPES:
            return "plain"
        if t == "bit":
            return "bit"
        if t != "json" and self.octets is not None and self.octets <= SHORT_OCTETS:
            return "bytes"
        return "hex"

    @property
    def json(self) -> bool:
        return self.data_type.lower() == "json"


@dataclass
class Table:
    schema: str
    name: str
    columns: list[Column]
    pk: list[str] = field(default_factory=list)
    rows_estimate: int = 0
    avg_row_length: int = 0
    create_sql: str = ""

    @property
    def stored(self) -> list[Column]:
        """The columns whose values are stored (generated ones are recomputed on load)."""
        return [c for c in self.columns if not c.generated]

    @property
    def int_pk(self) -> str | None:
        """The single integer primary-key column that chunks the table by range, if any."""
        if len(self.pk) != 1:
            return None
        col = next((c for c in self.columns if c.name == self.pk[0]), None)
        return col.name if col and col.data_type.lower() in INTEGER_TYPES else None

    @property
    def qname(self) -> str:
        return f"{qi(self.schema)}.{qi(self.name)}"


def value_expr(c: Column) -> str:
    """The column's field in a line, escaped as LOAD DATA reads it by default."""
    col = qi(c.name)
    kind = c.kind
    if kind == "plain":
        if c.data_type.lower() == "float":  # FLOAT prints 6 digits; as DOUBLE it is exact and reads back the same
            return f"IFNULL(CAST({col} AS DOUBLE),{NULL_MARK})"
        return f"IFNULL({col},{NULL_MARK})"
    if kind == "bit":
        return f"IFNULL(CAST({col} AS UNSIGNED),{NULL_MARK})"
    if kind == "hex":
        return f"IFNULL(HEX({col}),{NULL_MARK})"
    return (f"IFNULL(REPLACE(REPLACE(REPLACE(CAST({col} AS BINARY),0x5c,0x5c5c),0x09,0x5c74),0x0a,0x5c6e),"
            f"{NULL_MARK})")


def line_expr(t: Table) -> str:
    return "CONCAT_WS(0x09," + ",".join(value_expr(c) for c in t.stored) + ")"


def chunk_query(t: Table, lo: int, hi: int) -> str:
    """Rows with lo <= pk <= hi as one value (in key order: a range scan of the clustered index), with their
    count. The CRC of each file is taken by the client over these bytes (zlib, GB/s), not by the server (CRC32()
    per row doubled the server's time)."""
    return (f"SELECT COUNT(*), GROUP_CONCAT({line_expr(t)} SEPARATOR 0x0a) FROM {t.qname} FORCE INDEX (PRIMARY) "
            f"WHERE {qi(t.int_pk)} BETWEEN {int(lo)} AND {int(hi)}")


def rows_query(t: Table) -> str:
    """Every row as one line each (tables without a single integer primary key; streamed, in key order when
    there is a key)."""
    order = " ORDER BY " + ",".join(qi(c) for c in t.pk) if t.pk else ""
    return f"SELECT {line_expr(t)} FROM {t.qname}{order}"


def checksum_query(t: Table) -> str:
    """Row count and the sum of the lines' CRC32 (order-free): compares two servers' copies of a table."""
    return f"SELECT COUNT(*), IFNULL(SUM(CRC32({line_expr(t)})),0) FROM {t.qname}"


def bounds_query(t: Table) -> str:
    pk = qi(t.int_pk)
    return f"SELECT MIN({pk}), MAX({pk}) FROM {t.qname}"


def load_statement(t: Table, path: str, *, mysql8: bool = False) -> str:
    """LOAD DATA INFILE of a dump file, its defaults being exactly the dump's format."""
    cols, sets = [], []
    for i, c in enumerate(t.stored):
        kind = c.kind
        if kind == "bit":
            cols.append(f"@v{i}")
            sets.append(f"{qi(c.name)}=CAST(@v{i} AS UNSIGNED)")
        elif kind == "hex":
            cols.append(f"@v{i}")
            # MySQL 8 refuses JSON from a binary string
            sets.append(f"{qi(c.name)}=CONVERT(UNHEX(@v{i}) USING utf8mb4)" if c.json and mysql8 else
                        f"{qi(c.name)}=UNHEX(@v{i})")
        else:
            cols.append(qi(c.name))
    stmt = f"LOAD DATA INFILE {literal(path)} INTO TABLE {t.qname} CHARACTER SET binary ({','.join(cols)})"
    if sets:
        stmt += " SET " + ",".join(sets)
    return stmt


_REFERENCES = re.compile(r"\) REFERENCES (?:`(?:[^`]|``)+`\.)?`((?:[^`]|``)+)` \(")


def referenced_tables(creates) -> set[str]:
    """Names of the tables that foreign keys in these CREATE TABLE statements point at."""
    out = set()
    for sql in creates:
        for ln in sql.split("\n"):
            if ln.lstrip().startswith("CONSTRAINT ") and " FOREIGN KEY " in ln:
                m = _REFERENCES.search(ln)
                if m:
                    out.add(m.group(1).replace("``", "`"))
    return out


def split_create(create_sql: str, keep_all: bool = False) -> tuple[str, list[str]]:
    """A CREATE TABLE without its secondary indexes, and the index definitions to add after the load (loading
    into a table and then building each index once is several times faster than maintaining them row by row).
    Tables with foreign keys keep everything (their indexes back the constraints), and so do tables that foreign
    keys point at (`keep_all`)."""
    lines = create_sql.split("\n")
    if keep_all or any(ln.lstrip().startswith("CONSTRAINT ") and " FOREIGN KEY " in ln for ln in lines):
        return create_sql, []
    keep, indexes = [], []
    for ln in lines:
        s = ln.strip()
        if s.startswith(("KEY ", "UNIQUE KEY ", "FULLTEXT KEY ", "SPATIAL KEY ")) and ln.startswith("  "):
            indexes.append(s.rstrip(","))
        else:
            keep.append(ln)
    if not indexes:
        return create_sql, []
    # The line before the closing ")" must not end with a comma any more.
    for i in range(len(keep) - 1, 0, -1):
        if keep[i].startswith(")"):
            keep[i - 1] = keep[i - 1].rstrip(",")
            break
    return "\n".join(keep), indexes


def add_indexes(t: Table, indexes: list[str]) -> str:
    return f"ALTER TABLE {t.qname} " + ", ".join("ADD " + d for d in indexes)


# -- inserting without LOAD DATA (a server we cannot hand files to) ----------------------------------------------
_UNESCAPE = {ord("t"): b"\t", ord("n"): b"\n", ord("\\"): b"\\", ord("0"): b"\0", ord("r"): b"\r",
             ord("b"): b"\b", ord("Z"): b"\x1a"}


def unescape(field: bytes) -> bytes | None:
    if field == b"\\N":
        return None
    if b"\\" not in field:
        return field
    out = bytearray()
    i, n = 0, len(field)
    while i < n:
        ch = field[i]
        if ch == 0x5c and i + 1 < n:
            out += _UNESCAPE.get(field[i + 1], bytes([field[i + 1]]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return bytes(out)


def insert_values(t: Table, lines: list[bytes]) -> str:
    """One multi-row INSERT for dump lines: every value a hex literal (bytes) or a checked plain literal."""
    cols = t.stored
    rows = []
    for line in lines:
        fields = line.split(b"\t")
        if len(fields) != len(cols):
            raise ValueError(f"{t.qname}: a dump line has {len(fields)} fields, the table {len(cols)}")
        vals = []
        for c, f in zip(cols, fields):
            v = unescape(f)
            if v is None:
                vals.append("NULL")
            elif c.kind in ("plain", "bit"):
                s = v.decode("ascii")
                if not all(ch in "0123456789+-.:eE " for ch in s):
                    raise ValueError(f"{t.qname}.{c.name}: unexpected value in a {c.data_type} column")
                vals.append(s if c.kind == "bit" else f"'{s}'")
            elif c.kind == "hex":
                h = v.decode("ascii", "replace")
                if len(h) % 2 or h.strip("0123456789ABCDEFabcdef"):
                    raise ValueError(f"{t.qname}.{c.name}: a value that is not hexadecimal")
                vals.append(("''" if not h else f"CONVERT(X'{h}' USING utf8mb4)") if c.json else
                            (f"X'{h}'" if h else "''"))
            else:
                vals.append(f"X'{v.hex()}'" if v else "''")
        rows.append("(" + ",".join(vals) + ")")
    return (f"INSERT INTO {t.qname} (" + ",".join(qi(c.name) for c in cols) + ") VALUES " + ",".join(rows))
