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
_CREATE_TABLE = re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_TABLE})",
                           re.I | re.S)
# Only real clauses: a column named locked_at or algorithm_v is not one.
_EXPLICIT = re.compile(r"\b(ALGORITHM)\s*=?\s*(DEFAULT|INSTANT|NOCOPY|INPLACE|COPY)\b|"
                       r"\b(LOCK)\s*=?\s*(DEFAULT|NONE|SHARED|EXCLUSIVE)\b", re.I)
_ALL = (("INSTANT", None), ("NOCOPY", None), ("INPLACE", "NONE"), ("INPLACE", "SHARED"), ("INPLACE", "EXCLUSIVE"),
        ("COPY", "SHARED"), ("COPY", "EXCLUSIVE"))
# Statements that move rows between the table and another one: never run, not even on a copy.
_OTHER_TABLE = re.compile(r"\b(EXCHANGE\s+PARTITION|CONVERT\s+TABLE|CONVERT\s+PARTITION|TO\s+TABLE)\b", re.I)
_RENAME_TABLE = re.compile(rf"(?:^|,)\s*RENAME\s+(?:TO\s+|AS\s+)?(?!COLUMN\b|INDEX\b|KEY\b){_TABLE}\s*(?=,|$)",
                           re.I | re.S)


def code_only(sql: str) -> str:
    """The statement with string literals emptied and comments removed (keywords are searched in this)."""
    out = re.sub(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"", "''", sql, flags=re.S)
    out = re.sub(r"/\*(?![!M]).*?\*/", " ", out, flags=re.S)
    return re.sub(r"(?:--\s|#)[^\n]*", " ", out)


def normalize(sql: str) -> str:
    """Leading comments dropped; a statement wrapped whole in an executable comment (/*!ALTER ... */) unwrapped:
    the server runs it, so it is checked."""
    prev = None
    while prev != sql:
        prev = sql
        sql = re.sub(r"^\s*(?:/\*(?![!M])(?:.|\n)*?\*/|(?:--\s|#)[^\n]*(?:\n|$))", "", sql)
        m = re.match(r"^\s*/\*M?!\d*(.*)\*/\s*$", sql, re.S)
        if m:
            sql = m.group(1)
    return sql.strip()


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


_OPTIMIZE_MANY = re.compile(r"^\s*OPTIMIZE\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLES?\s+(.*)$", re.I | re.S)
_COPY_SELECT = re.compile(r"^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE|INSERT|REPLACE)\b.*?\bSELECT\b"
                          r"(.*)$", re.I | re.S)
_FROM = re.compile(rf"\b(?:FROM|JOIN)\s+({_TABLE})", re.I)


def as_alters(sql: str) -> list[tuple[str, str]]:
    """[(table as written, the ALTER specification)] for the statements that rebuild or lock tables."""
    m = _ALTER.match(sql)
    if m:
        return [(m.group(1), m.group(2))]
    m = _CREATE_INDEX.match(sql)
    if m:
        kind = (m.group(1) or "").strip().upper()
        return [(m.group(3), f"ADD {kind + ' ' if kind else ''}INDEX {m.group(2)} {m.group(4)}")]
    m = _DROP_INDEX.match(sql)
    if m:
        return [(m.group(2), f"DROP INDEX {m.group(1)} {m.group(3)}".strip())]
    m = _OPTIMIZE_MANY.match(sql)
    if m:  # InnoDB's OPTIMIZE is a rebuild (recreate + analyze), one per table named
        names = re.findall(_TABLE, m.group(1))
        return [(n, "FORCE") for n in names]
    return []


def as_alter(sql: str) -> tuple[str, str] | None:
    got = as_alters(sql)
    return got[0] if got else None


def copy_sources(sql: str) -> list[str]:
    """Tables a CREATE TABLE ... SELECT / INSERT ... SELECT reads (its shared row locks block their writers)."""
    m = _COPY_SELECT.match(code_only(sql))
    return [n for n in _FROM.findall(m.group(1))] if m else []


def error_code(exc: BaseException) -> int | None:
    m = re.search(r"error (\d+)", str(exc))
    return int(m.group(1)) if m else None


def probe(run, scratch: str, spec: str) -> tuple[str | None, str | None, str | None]:
    """(algorithm, lock, error): the cheapest (ALGORITHM, LOCK) the server accepts for `spec` on `scratch`, which it
    then carries. A clause the statement gives itself (ALGORITHM=INPLACE, LOCK=NONE) narrows the tries to it; a
    DEFAULT one means "the cheapest", as if absent. `run(sql)` executes or raises SharedMySQLError ("error N")."""
    explicit: dict[str, str] = {}
    for m in _EXPLICIT.finditer(code_only(spec)):
        k, v = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if v.upper() != "DEFAULT":
            explicit[k.upper()] = v.upper()
    base = _EXPLICIT.sub("", spec)
    base = re.sub(r"\s*,\s*(?=,|$)", "", re.sub(r"^\s*,", "", base.strip())).strip().rstrip(",").strip()
    last = None
    for algorithm, lock in _ALL:
        if "ALGORITHM" in explicit and algorithm != explicit["ALGORITHM"]:
            continue
        if "LOCK" in explicit and (lock or "NONE") != explicit["LOCK"]:
            continue
        parts = [f"ALGORITHM={algorithm}"] + ([f"LOCK={lock}"] if lock else [])
        try:
            run(f"ALTER TABLE {scratch} {base}{', ' if base else ' '}{', '.join(parts)}")
        except SharedMySQLError as exc:
            if error_code(exc) in REFUSED:
                last = exc
                continue
            return None, None, str(exc).split(": ", 1)[-1]  # the statement itself fails: it would at run time
        return algorithm, lock or "NONE", None
    return None, None, (str(last).split(": ", 1)[-1] if last else "no algorithm accepted")


def locking(algorithm: str | None, lock: str | None) -> bool:
    return algorithm == "COPY" or (lock or "NONE") in ("SHARED", "EXCLUSIVE")


def check(conn, q, db: str, found: list, statements: dict, max_rows: int) -> list[Check]:
    """Every pending table-changing statement, judged on scratch copies in `db` (dropped afterwards; a killed
    check's leftovers are dropped by the next, which runs under the same lock)."""
    tag = secrets.token_hex(3)
    scratch: dict[str, str] = {}  # live table name -> its scratch copy (names are case-sensitive on Linux)
    created: set[str] = set()  # tables the pending migrations create: empty when they are altered
    out: list[Check] = []
    rows_of = {r[0]: int(r[1] or 0) for r in q(conn, "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
                                                     f"WHERE TABLE_SCHEMA = {string(db)} AND TABLE_TYPE = 'BASE TABLE'")}
    for stale in [n for n in rows_of if n.startswith("_smm_")]:
        q(conn, f"DROP TABLE IF EXISTS {ident(db)}.{ident(stale)}")
        rows_of.pop(stale)

    def run(sql: str) -> None:
        q(conn, sql)

    try:
        for m in found:
            for st in statements[m.script]:
                sql = normalize(st.sql)
                short = " ".join(st.sql.split())[:100]
                ct = _CREATE_TABLE.match(sql)
                if ct and _split_table(ct.group(1))[1] not in rows_of:
                    created.add(_split_table(ct.group(1))[1])
                for src in copy_sources(sql):
                    schema, table = _split_table(src)
                    n = rows_of.get(table, 0) if schema in (None, db) else 0
                    if n > max_rows:
                        out.append(Check(m.script, st.line, short, table, n, "COPY", "SHARED", "refused",
                                         "copy the rows in batches (INSERT ... SELECT ... WHERE id BETWEEN ...), or "
                                         "--allow-locking"))
                for written, spec in as_alters(sql):
                    out.append(_one(run, conn, q, db, m.script, st.line, short, written, spec.strip().rstrip(";"),
                                    rows_of, created, scratch, tag, max_rows))
    finally:
        for name in scratch.values():
            try:
                q(conn, f"DROP TABLE IF EXISTS {name}")
            except SharedMySQLError:
                pass
    return out


def _one(run, conn, q, db, script, line, short, written, spec, rows_of, created, scratch, tag, max_rows) -> Check:
    schema, table = _split_table(written)
    c = Check(script, line, short, table, 0 if table in created else rows_of.get(table, 0))
    if schema is not None and schema != db:
        c.verdict, c.error = "error", f"names another database ({schema}): the tenant may change only {db}"
        return c
    if table in created:
        c.notes.append("a table the pending migrations create: empty when this runs")
        return c
    if table not in rows_of:
        c.verdict, c.error = "error", f"no table {table} in {db} (names are case-sensitive)"
        return c
    code = code_only(spec)
    if _OTHER_TABLE.search(code):
        # Moves rows between this table and another: never run, not even on a copy (the other table is real).
        c.notes.append("exchanges or converts partitions with another table: not tried")
        c.algorithm, c.lock = "INPLACE", "EXCLUSIVE"
        c.verdict = "refused" if c.rows > max_rows else "locking"
        c.safer = "run it in a maintenance window with --allow-locking"
        return c
    if _RENAME_TABLE.search(code):
        spec = _RENAME_TABLE.sub("", spec).strip().strip(",").strip()  # the rename itself is a metadata change
        if not spec:
            c.algorithm, c.lock = "INSTANT", "NONE"
            return c
    if table not in scratch:
        scratch[table] = ident(f"_smm_{tag}_{len(scratch)}")
        q(conn, f"CREATE TABLE {ident(db)}.{scratch[table]} LIKE {ident(db)}.{ident(table)}")
    c.algorithm, c.lock, c.error = probe(run, f"{ident(db)}.{scratch[table]}", spec)
    if c.error is not None:
        # The server refused it on the copy: it would fail for real too, or (a foreign key LIKE did not copy) the
        # cost is unknown. Unknown on a big table is not allowed through.
        c.verdict = "refused" if c.rows > max_rows else "error"
        c.safer = "check the statement; if it is right, --allow-locking runs it" if c.verdict == "refused" else None
    elif locking(c.algorithm, c.lock):
        c.verdict = "refused" if c.rows > max_rows else "locking"
        c.safer = _safer(run, conn, q, db, table, spec, tag, len(scratch))
    return c


def _safer(run, conn, q, db: str, table: str, spec: str, tag: str, n: int) -> str:
    """The safer form of a locking statement: without its explicit ALGORITHM/LOCK, on a fresh copy, if the server
    then does better; else an online schema change tool."""
    plain = _EXPLICIT.sub("", spec)
    plain = re.sub(r"\s*,\s*(?=,|$)", "", re.sub(r"^\s*,", "", plain.strip())).strip().rstrip(",").strip()
    if plain != spec and plain:
        tmp = f"{ident(db)}.{ident(f'_smm_{tag}_s{n}')}"
        try:
            q(conn, f"CREATE TABLE {tmp} LIKE {ident(db)}.{ident(table)}")
            algorithm, lock, err = probe(run, tmp, plain)
        finally:
            q(conn, f"DROP TABLE IF EXISTS {tmp}")
        if err is None and not locking(algorithm, lock):
            return f"ALGORITHM={algorithm}" + (f", LOCK={lock}" if algorithm != "INSTANT" else "")
    return ("no online form on this server: use an online schema change tool (pt-online-schema-change, gh-ost), "
            "or run it in a maintenance window with --allow-locking")
