"""The online-DDL safety check: what each pending ALTER will cost *this* server, asked of the server itself.

For every ALTER TABLE, CREATE/DROP INDEX and OPTIMIZE TABLE in the pending migrations, the table's definition is
copied into an empty scratch table in the tenant's own database (`CREATE TABLE ... LIKE`), and the statement is
tried there with ALGORITHM=INSTANT, then NOCOPY (MariaDB), then INPLACE with LOCK=NONE, SHARED, then COPY: the
first the server accepts is what it would use (it refuses the others at once: error 1845/1846, or 1800 for an
algorithm it does not know). The scratch copy carries each statement's effect to the next, so a later ALTER is
judged on the schema the earlier ones leave. A change that copies the table or blocks writes (COPY, or LOCK
SHARED/EXCLUSIVE) on a table above `max_locking_rows` (live TABLE_ROWS) is refused unless --allow-locking; the
safer form is named when the server accepts one, else an online schema change tool.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from ..errors import SharedMySQLError
from ..sql.quoting import ident, string

DEFAULT_MAX_LOCKING_ROWS = 1_000_000
REFUSED = {1845, 1846, 1800}  # not supported for this operation / with this reason / unknown algorithm
# (algorithm, lock) in the order of cost; the first the server accepts is what it would do.
TRIES = (("INSTANT", None), ("NOCOPY", None), ("INPLACE", "NONE"), ("INPLACE", "SHARED"), ("COPY", "SHARED"),
         ("COPY", "EXCLUSIVE"))
_NAME = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_TABLE = rf"(?:{_NAME}\s*\.\s*)?{_NAME}"
_ALTER = re.compile(rf"^\s*ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+({_TABLE})\s*(.*)$", re.I | re.S)
_CREATE_INDEX = re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+|OFFLINE\s+)?"
                           rf"((?:UNIQUE|FULLTEXT|SPATIAL)\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})\s+"
                           rf"(?:USING\s+\w+\s+)?ON\s+({_TABLE})\s*(\(.*)$", re.I | re.S)
_DROP_INDEX = re.compile(rf"^\s*DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?({_NAME})\s+ON\s+({_TABLE})\s*(.*)$", re.I | re.S)
_OPTIMIZE = re.compile(rf"^\s*OPTIMIZE\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLE\s+({_TABLE})\s*$", re.I | re.S)
_CREATE_TABLE = re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_TABLE})",
                           re.I | re.S)
_EXPLICIT = re.compile(r"\b(ALGORITHM|LOCK)\s*=?\s*(\w+)", re.I)


@dataclass
class Check:
    script: str
    line: int
    statement: str
    table: str
    rows: int
    algorithm: str | None = None
    lock: str | None = None
    verdict: str = "ok"  # ok | locking | refused | error
    safer: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("script", "line", "statement", "table", "rows", "algorithm", "lock",
                                              "verdict", "safer", "error")}


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _split_table(t: str) -> tuple[str | None, str]:
    m = re.fullmatch(rf"(?:({_NAME})\s*\.\s*)?({_NAME})", t.strip())
    return (_unquote(m.group(1)) if m.group(1) else None), _unquote(m.group(2))


def as_alter(sql: str) -> tuple[str, str] | None:
    """(table as written, the ALTER's specification) for the statements that rebuild or lock a table."""
    m = _ALTER.match(sql)
    if m:
        return m.group(1), m.group(2)
    m = _CREATE_INDEX.match(sql)
    if m:
        kind = (m.group(1) or "").strip().upper()
        return m.group(3), f"ADD {kind + ' ' if kind else ''}INDEX {m.group(2)} {m.group(4)}"
    m = _DROP_INDEX.match(sql)
    if m:
        return m.group(2), f"DROP INDEX {m.group(1)} {m.group(3)}".strip()
    m = _OPTIMIZE.match(sql)
    if m:
        return m.group(1), "FORCE"  # InnoDB's OPTIMIZE is a rebuild (recreate + analyze)
    return None


def error_code(exc: BaseException) -> int | None:
    m = re.search(r"error (\d+)", str(exc))
    return int(m.group(1)) if m else None


def probe(run, scratch: str, spec: str) -> tuple[str | None, str | None, str | None]:
    """(algorithm, lock, error): the cheapest (ALGORITHM, LOCK) the server accepts for `spec` on `scratch`, which it
    then carries. An explicit ALGORITHM/LOCK in the statement is tried as written. `run(sql)` executes or raises
    SharedMySQLError carrying "error N"."""
    explicit = {k.upper(): v.upper() for k, v in _EXPLICIT.findall(spec)}
    if explicit:
        try:
            run(f"ALTER TABLE {scratch} {spec}")
        except SharedMySQLError as exc:
            return None, None, str(exc).split(": ", 1)[-1]
        return explicit.get("ALGORITHM", "DEFAULT"), explicit.get("LOCK", "DEFAULT"), None
    last = None
    for algorithm, lock in TRIES:
        clause = f"ALGORITHM={algorithm}" + (f", LOCK={lock}" if lock else "")
        try:
            run(f"ALTER TABLE {scratch} {spec}{', ' if spec.strip() else ' '}{clause}")
        except SharedMySQLError as exc:
            if error_code(exc) in REFUSED:
                last = exc
                continue
            return None, None, str(exc).split(": ", 1)[-1]  # the statement itself fails: it would at run time
        return algorithm, lock or "NONE", None
    return None, None, str(last).split(": ", 1)[-1] if last else "no algorithm accepted"


def locking(algorithm: str | None, lock: str | None) -> bool:
    return algorithm == "COPY" or (lock or "NONE") in ("SHARED", "EXCLUSIVE")


def check(conn, q, db: str, found: list, statements: dict, max_rows: int) -> list[Check]:
    """Every pending table-changing statement, judged on scratch copies in `db` (dropped afterwards)."""
    tag = secrets.token_hex(3)
    scratch: dict[str, str] = {}  # live table name -> scratch table (lowercase key)
    created: set[str] = set()  # tables the pending migrations create: empty when they are altered
    out: list[Check] = []
    rows_of = {r[0].lower(): int(r[1] or 0) for r in q(conn, "SELECT TABLE_NAME, TABLE_ROWS FROM "
                                                              "information_schema.TABLES WHERE TABLE_SCHEMA = "
                                                              f"{string(db)} AND TABLE_TYPE = 'BASE TABLE'")}

    def run(sql: str) -> None:
        q(conn, sql)

    try:
        for m in found:
            for st in statements[m.script]:
                ct = _CREATE_TABLE.match(st.sql)
                if ct:
                    created.add(_split_table(ct.group(1))[1].lower())
                    continue
                parsed = as_alter(st.sql)
                if parsed is None:
                    continue
                schema, table = _split_table(parsed[0])
                spec = parsed[1].strip().rstrip(";")
                key = table.lower()
                short = " ".join(st.sql.split())[:100]
                c = Check(m.script, st.line, short, table, 0 if key in created else rows_of.get(key, 0))
                out.append(c)
                if schema is not None and schema != db:
                    c.verdict, c.error = "error", f"names another database ({schema}): the tenant may change only {db}"
                    continue
                if key in created or key not in rows_of:
                    c.algorithm, c.lock = None, None
                    c.notes.append("a table the pending migrations create: empty when this runs")
                    continue
                if re.search(r"\bRENAME\b(?!\s+(?:COLUMN|INDEX|KEY))", spec, re.I):
                    c.algorithm, c.lock = "INSTANT", "NONE"  # renaming the table itself: a metadata change
                    continue
                if key not in scratch:
                    scratch[key] = f"{ident('_smm_' + tag + '_' + str(len(scratch)))}"
                    q(conn, f"CREATE TABLE {scratch[key]} LIKE {ident(db)}.{ident(table)}")
                c.algorithm, c.lock, c.error = probe(run, scratch[key], spec)
                if c.error is not None:
                    c.verdict = "error"
                elif locking(c.algorithm, c.lock):
                    c.verdict = "refused" if c.rows > max_rows else "locking"
                    c.safer = _safer(run, conn, q, db, table, spec, tag, len(scratch))
    finally:
        for name in scratch.values():
            try:
                q(conn, f"DROP TABLE IF EXISTS {name}")
            except SharedMySQLError:
                pass
    return out


def _safer(run, conn, q, db: str, table: str, spec: str, tag: str, n: int) -> str:
    """The safer form of a locking statement: without its explicit ALGORITHM/LOCK, on a fresh copy, if the server
    then does better; else an online schema change tool."""
    plain = _EXPLICIT.sub("", spec)
    plain = re.sub(r",\s*(,|$)", r"\1", re.sub(r"^\s*,", "", plain)).strip().rstrip(",")
    if plain != spec and plain:
        tmp = ident(f"_smm_{tag}_s{n}")
        try:
            q(conn, f"CREATE TABLE {tmp} LIKE {ident(db)}.{ident(table)}")
            algorithm, lock, err = probe(run, tmp, plain)
        finally:
            q(conn, f"DROP TABLE IF EXISTS {tmp}")
        if err is None and not locking(algorithm, lock):
            return f"ALGORITHM={algorithm}" + (f", LOCK={lock}" if algorithm != "INSTANT" else "")
    return ("no online form on this server: use an online schema change tool (pt-online-schema-change, gh-ost), "
            "or run it in a maintenance window with --allow-locking")
