"""Masking on the server: runs, fingerprints, batched resumable UPDATEs, and the check.

A *run* masks one tenant database once: it has its own salts (hash/email are deterministic within a run, so a
value masked in two tables stays joinable, and differ between runs). Its state lives in the tool's own schema
(readable by the admin only): the salts, a fingerprint of a sample of the source values of each masked column
(chosen by hashing), and per table how far masking got. Each batch's UPDATE and its progress row commit in one
transaction, so a killed run resumes exactly where it stopped and no row is masked twice.

Every statement goes through backup.load.q, which strips quoted row values from server messages (a duplicate key
error would otherwise print an unmasked value).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from ..backup.load import q
from ..db import ConnectionInfo, connect
from ..errors import SharedMySQLError
from ..sql.quoting import as_text, ident, string
from ..tenants.model import META_DATABASE
from . import plan as mp
from .plan import ColumnInfo, MaskingError, TableInfo, TablePlan
from .rules import Rule

META = ident(META_DATABASE)
BATCH = 20000
FP_SAMPLE = 10000  # fingerprints per column: about this many source values, chosen by hashing


@dataclass
class Run:
    id: str
    database: str
    digest: str
    phase: str  # fingerprinting | masking | failed | verified | abandoned (its data was replaced)
    source: str
    rules: frozenset = frozenset()  # (table, column in lower case or "*", rule text): what this run masks


def rule_keys(rules: list[Rule]) -> list[list[str]]:
    return sorted([r.table, (r.column or "*").lower(), r.text()] for r in rules)


def rules_digest(rules: list[Rule]) -> str:
    return hashlib.sha256(json.dumps(rule_keys(rules)).encode()).hexdigest()


def open_session(info: ConnectionInfo) -> tuple[object, list[str]]:
    """A connection for masking, and notes: the binlog is off for it when the account may turn it off (the
    masked rows' before-images would otherwise carry every unmasked value into the binlog); otherwise rows are
    logged with their key only (binlog_row_image=MINIMAL) where allowed, and said so."""
    conn = connect(info)
    notes: list[str] = []
    for s in ("SET SESSION time_zone = '+00:00'", "SET SESSION foreign_key_checks = 0",
              "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
              "SET SESSION group_concat_max_len = 1048576"):
        q(conn, s)
    try:
        q(conn, "SET SESSION sql_log_bin = 0")
    except SharedMySQLError:
        try:
            q(conn, "SET SESSION binlog_row_image = 'MINIMAL'")
            notes.append("the admin may not turn the binlog off: masked rows are logged with their keys only "
                         "(binlog_row_image MINIMAL); the unmasked rows the restore wrote are in the binlog")
        except SharedMySQLError:
            notes.append("the admin may not turn the binlog off nor set binlog_row_image: the binlog holds the "
                         "unmasked values; purge it (or restore into a server without a binlog) after the refresh")
    return conn, notes


def is_mysql(conn) -> bool:
    from ..sql import detect_flavor

    return not detect_flavor(conn.get_server_info()).is_mariadb


def ensure_meta(conn) -> None:
    """Names (databases, tables, columns, steps) are kept as bytes: compared with a literal of any collation."""
    q(conn, f"CREATE DATABASE IF NOT EXISTS {META} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    # n orders the runs: two started in the same second must not tie (the latest is the one a re-run resumes).
    q(conn, f"CREATE TABLE IF NOT EXISTS {META}.mask_runs (n BIGINT NOT NULL AUTO_INCREMENT UNIQUE, "
            "id CHAR(16) NOT NULL PRIMARY KEY, "
            "db VARBINARY(256) NOT NULL, "
            "digest CHAR(64) NOT NULL, salt CHAR(64) NOT NULL, fp_salt CHAR(64) NOT NULL, phase VARCHAR(16) NOT NULL, "
            "source VARBINARY(1024) NOT NULL, rules LONGBLOB NOT NULL, started DATETIME NOT NULL, "
            "updated DATETIME NOT NULL, "
            "KEY (db, started)) ENGINE=InnoDB")
    q(conn, f"CREATE TABLE IF NOT EXISTS {META}.mask_progress (run CHAR(16) NOT NULL, step VARBINARY(800) NOT NULL, "
            "done_upto TEXT NULL, finished TINYINT NOT NULL DEFAULT 0, rows_done BIGINT NOT NULL DEFAULT 0, "
            "PRIMARY KEY (run, step)) ENGINE=InnoDB")
    q(conn, f"CREATE TABLE IF NOT EXISTS {META}.mask_triggers (run CHAR(16) NOT NULL, db VARBINARY(256) NOT NULL, "
            "tbl VARBINARY(256) NOT NULL, name VARBINARY(256) NOT NULL, sql_mode TEXT NOT NULL, "
            "create_sql LONGBLOB NOT NULL, PRIMARY KEY (run, db, name)) ENGINE=InnoDB")
    q(conn, f"CREATE TABLE IF NOT EXISTS {META}.mask_fp (run CHAR(16) NOT NULL, tbl VARBINARY(256) NOT NULL, "
            "col VARBINARY(256) NOT NULL, fp BINARY(16) NOT NULL, PRIMARY KEY (run, tbl, col, fp)) ENGINE=InnoDB")


def latest_run(conn, db: str) -> Run | None:
    try:
        rows = q(conn, f"SELECT id, digest, phase, source, rules FROM {META}.mask_runs WHERE db = {string(db)} "
                       "ORDER BY n DESC LIMIT 1")
    except SharedMySQLError as exc:
        if "error 1146" in str(exc) or "error 1049" in str(exc):
            return None
        raise
    if not rows:
        return None
    i, d, p, s, r = (as_text(v) for v in rows[0])
    try:
        keys = frozenset(tuple(k) for k in json.loads(r))
    except (ValueError, TypeError):
        keys = frozenset()
    return Run(i, db, d, p, s, keys)


def abandon_runs(conn, db: str) -> list[str]:
    """Unfinished runs of `db` become `abandoned` (their progress, fingerprints, shuffle maps and salts are
    dropped): the data they were masking is about to be replaced (a refresh restores again), so resuming one would
    skip its finished steps on new, unmasked data. Returns the runs abandoned."""
    try:
        ids = [as_text(r[0]) for r in q(conn, f"SELECT id FROM {META}.mask_runs WHERE db = {string(db)} AND phase "
                                              "NOT IN ('verified', 'abandoned')")]
    except SharedMySQLError as exc:
        if "error 1146" in str(exc) or "error 1049" in str(exc):
            return []
        raise
    for rid in ids:
        for (name,) in q(conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                               f"{string(META_DATABASE)} AND TABLE_NAME LIKE {string('shuf_' + rid + '%')}"):
            q(conn, f"DROP TABLE IF EXISTS {META}.{ident(as_text(name))}")
        q(conn, f"DELETE FROM {META}.mask_progress WHERE run = {string(rid)}")
        q(conn, f"DELETE FROM {META}.mask_fp WHERE run = {string(rid)}")
        try:  # triggers it set aside belong to the data being replaced (the restore brings the source's)
            q(conn, f"DELETE FROM {META}.mask_triggers WHERE run = {string(rid)}")
        except SharedMySQLError as exc:
            if "error 1146" not in str(exc):
                raise
        q(conn, f"UPDATE {META}.mask_runs SET phase = 'abandoned', salt = '', fp_salt = '', updated = UTC_TIMESTAMP() "
                f"WHERE id = {string(rid)}")
    return ids


def new_run(conn, db: str, digest: str, source: str, rules: list[Rule] | None = None) -> Run:
    ensure_meta(conn)
    rid = secrets.token_hex(8)
    # The salts are made by the server (RANDOM_BYTES: MySQL 8, MariaDB 10.10+): a literal would be in the text of
    # a statement, which the slow or general log may keep. Older MariaDB mixes UUID_SHORT, RAND and the clock.
    try:
        q(conn, "SELECT RANDOM_BYTES(1)")
        rnd = "SHA2(RANDOM_BYTES(32), 256)"
    except SharedMySQLError:
        rnd = "SHA2(CONCAT(UUID(), UUID_SHORT(), RAND(), SYSDATE(6), CONNECTION_ID()), 256)"
    keys = rule_keys(rules or [])
    text = json.dumps(keys).encode()
    q(conn, f"INSERT INTO {META}.mask_runs (id, db, digest, salt, fp_salt, phase, source, rules, started, updated) "
            f"VALUES ({string(rid)}, {string(db)}, {string(digest)}, {rnd}, {rnd}, 'fingerprinting', "
            f"{string(source[:255])}, X'{text.hex()}', UTC_TIMESTAMP(), UTC_TIMESTAMP())")
    return Run(rid, db, digest, "fingerprinting", source, frozenset(tuple(k) for k in keys))


def set_phase(conn, run: Run, phase: str) -> None:
    """A verified run forgets its masking salt: only a resumed run needs it, and with it anyone who can read the
    tool's schema could test guesses against hash and email columns (is alice@corp in there?)."""
    forget = ", salt = ''" if phase == "verified" else ""
    q(conn, f"UPDATE {META}.mask_runs SET phase = {string(phase)}, updated = UTC_TIMESTAMP(){forget} WHERE id = "
            f"{string(run.id)}")
    run.phase = phase


def load_salts(conn, run: Run) -> None:
    """@smr_salt and @smr_fp for this session, read inside the server: never in a statement's text."""
    # Binary: CONCAT with a column of any collation is then its bytes (a text salt would clash with the column's
    # collation, error 1267, and the bytes hashed would not depend on it anyway).
    q(conn, f"SELECT CAST(salt AS BINARY), CAST(fp_salt AS BINARY) INTO @smr_salt, @smr_fp FROM {META}.mask_runs "
            f"WHERE id = {string(run.id)}")


# -- the schema ------------------------------------------------------------------------------------------------
def read_schema(conn, db: str) -> dict[str, TableInfo]:
    d = string(db)
    cols: dict[str, dict[str, ColumnInfo]] = {}
    for t, c, dt, ct, nul, chars, octets, extra, gen, cs in q(
            conn, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, "
                  "CHARACTER_OCTET_LENGTH, EXTRA, IFNULL(GENERATION_EXPRESSION, ''), CHARACTER_SET_NAME FROM "
                  f"information_schema.COLUMNS WHERE TABLE_SCHEMA = {d}"):
        t, c, dt = as_text(t), as_text(c), as_text(dt).lower()
        width = octets if dt in mp.BINARY else chars
        generated = "GENERATED" in as_text(extra).upper() or "VIRTUAL" in as_text(extra).upper() or \
            "PERSISTENT" in as_text(extra).upper() or bool(as_text(gen))
        cols.setdefault(t, {})[c.lower()] = ColumnInfo(c, dt, as_text(ct), as_text(nul) == "YES",
                                                        int(width) if width is not None else None, generated,
                                                        as_text(cs) or None)
    keys: dict[str, dict[str, list[tuple[int, str]]]] = {}
    for t, idx, seq, c in q(conn, "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME FROM "
                                  f"information_schema.STATISTICS WHERE TABLE_SCHEMA = {d} AND NON_UNIQUE = 0"):
        keys.setdefault(as_text(t), {}).setdefault(as_text(idx), []).append((int(seq), as_text(c)))
    trig: dict[str, list[str]] = {}
    for t, name in q(conn, "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
                           f"TRIGGER_SCHEMA = {d} AND EVENT_MANIPULATION IN ('UPDATE', 'DELETE')"):
        trig.setdefault(as_text(t), []).append(as_text(name))
    refs: dict[str, list[tuple[str, str, str]]] = {}
    for t, c, rt, rc in q(conn, "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM "
                                f"information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = {d} AND "
                                f"REFERENCED_TABLE_SCHEMA = {d}"):
        refs.setdefault(as_text(t), []).append((as_text(c), as_text(rt), as_text(rc)))
    rows = {as_text(t): int(n or 0) for t, n in q(
        conn, f"SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = {d} "
              "AND TABLE_TYPE = 'BASE TABLE'")}
    out = {}
    for t in rows:
        idx = {k: tuple(c for _, c in sorted(v)) for k, v in keys.get(t, {}).items()}
        pk = idx.pop("PRIMARY", ())
        out[t] = TableInfo(t, cols.get(t, {}), pk, tuple(idx.values()), rows[t], tuple(trig.get(t, ())),
                           tuple(refs.get(t, ())))
    return out


# -- values of a key, as SQL -------------------------------------------------------------------------------------
def _lit(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return f"X'{bytes(v).hex()}'" if v else "''"
    if isinstance(v, str):
        return f"CONVERT(X'{v.encode().hex()}' USING utf8mb4)" if v else "''"
    return string(str(v))  # Decimal, dates and times: their text form


def _after(pk: tuple[str, ...], vals: list) -> str:
    """Rows whose key is after `vals` in key order (expanded, so the optimizer ranges on the index)."""
    ors = []
    for i in range(len(pk)):
        eq = [f"{ident(pk[j])} = {_lit(vals[j])}" for j in range(i)]
        ors.append("(" + " AND ".join(eq + [f"{ident(pk[i])} > {_lit(vals[i])}"]) + ")")
    return "(" + " OR ".join(ors) + ")"


def _upto(pk: tuple[str, ...], vals: list) -> str:
    return f"NOT {_after(pk, vals)}"


def _encode(vals) -> str:
    return json.dumps([{"b": bytes(v).hex()} if isinstance(v, (bytes, bytearray)) else
                       v if isinstance(v, (int, str)) or v is None else {"s": str(v)} for v in vals])


def _decode(text: str) -> list:
    out = []
    for v in json.loads(text):
        out.append(bytes.fromhex(v["b"]) if isinstance(v, dict) and "b" in v else
                   v["s"] if isinstance(v, dict) else v)
    return out


# -- fingerprints ----------------------------------------------------------------------------------------------
def fingerprint(conn, run: Run, db: str, tables: list[TablePlan]) -> int:
    """A sample of each masked column's source values (about FP_SAMPLE, chosen by a salted hash), hashed with
    another salt: `check` proves none of them is left. Shuffled columns: (key, value) pairs of values that occur
    once (a repeated value may land on a row that had it, which reveals nothing)."""
    n = 0
    for tp in tables:
        src = f"{ident(db)}.{ident(tp.table)}"
        count = int(q(conn, f"SELECT COUNT(*) FROM {src}")[0][0])  # TABLE_ROWS is 0 right after a load
        every = max(1, -(-count // FP_SAMPLE))
        for cp in tp.columns:
            if not cp.fingerprint:
                continue
            fp = mp.fp_expr(cp, tp.pk)
            pick = f"CRC32(CONCAT(@smr_fp, {cp.canon})) % {every} = 0"
            where = f"{ident(cp.column)} IS NOT NULL AND {pick}"
            if cp.rule.kind == "shuffle":
                where += (f" AND {cp.canon} IN (SELECT v FROM (SELECT {cp.canon} AS v FROM {src} GROUP BY 1 "
                          "HAVING COUNT(*) = 1) once)")
            q(conn, f"INSERT IGNORE INTO {META}.mask_fp (run, tbl, col, fp) SELECT {string(run.id)}, "
                    f"{string(tp.table)}, {string(cp.column)}, {fp} FROM {src} WHERE {where}")
            n += int(q(conn, f"SELECT COUNT(*) FROM {META}.mask_fp WHERE run = {string(run.id)} AND tbl = "
                             f"{string(tp.table)} AND col = {string(cp.column)}")[0][0])
    return n


# -- masking ---------------------------------------------------------------------------------------------------
def _progress(conn, run: Run, step: str) -> tuple[bool, list | None, int]:
    rows = q(conn, f"SELECT finished, done_upto, rows_done FROM {META}.mask_progress WHERE run = {string(run.id)} "
                   f"AND step = {string(step)}")
    if not rows:
        q(conn, f"INSERT IGNORE INTO {META}.mask_progress (run, step) VALUES ({string(run.id)}, {string(step)})")
        return False, None, 0
    fin, upto, done = rows[0]
    return bool(fin), (_decode(as_text(upto)) if upto is not None else None), int(done)


def _commit_step(conn, run: Run, step: str, upto, rows: int, finished: bool) -> str:
    return (f"UPDATE {META}.mask_progress SET done_upto = {string(_encode(upto)) if upto is not None else 'NULL'}, "
            f"rows_done = rows_done + {int(rows)}, finished = {int(finished)} WHERE run = {string(run.id)} AND "
            f"step = {string(step)}")


def _batches(conn, src: str, pk: tuple[str, ...], start: list | None, batch: int):
    """(lower bound or None, upper key or None): key ranges of about `batch` rows, found on the primary key."""
    cols = ", ".join(ident(p) for p in pk)
    order = ", ".join(ident(p) for p in pk)
    lo = start
    while True:
        where = f"WHERE {_after(pk, lo)} " if lo is not None else ""
        rows = q(conn, f"SELECT {cols} FROM {src} {where}ORDER BY {order} LIMIT 1 OFFSET {batch - 1}")
        hi = list(rows[0]) if rows else None
        yield lo, hi
        if hi is None:
            return
        lo = hi


def set_triggers_aside(conn, run: Run, db: str, tp: TablePlan) -> None:
    """Each UPDATE/DELETE trigger of the table: its definition kept in the tool's schema first, then dropped.
    A killed run finds the definitions there (put_triggers_back)."""
    for name in tp.triggers:
        got = q(conn, f"SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {string(db)} AND "
                      f"TRIGGER_NAME = {string(name)}")[0][0]
        if got:
            row = q(conn, f"SHOW CREATE TRIGGER {ident(db)}.{ident(name)}")[0]
            mode, create = as_text(row[1]), row[2]
            create = create.encode() if isinstance(create, str) else bytes(create)
            q(conn, f"INSERT IGNORE INTO {META}.mask_triggers VALUES ({string(run.id)}, {string(db)}, "
                    f"{string(tp.table)}, {string(name)}, {string(mode)}, X'{create.hex()}')")
            q(conn, f"DROP TRIGGER IF EXISTS {ident(db)}.{ident(name)}")


def put_triggers_back(conn, run: Run, db: str, table: str | None = None) -> list[str]:
    """Re-create the triggers set aside (of one table, or all of the run), each in its own sql_mode and in its
    database; the kept definition is deleted once the trigger exists again."""
    where = f"run = {string(run.id)} AND db = {string(db)}" + (f" AND tbl = {string(table)}" if table else "")
    try:
        rows = q(conn, f"SELECT name, sql_mode, create_sql FROM {META}.mask_triggers WHERE {where}")
    except SharedMySQLError as exc:
        if "error 1146" in str(exc):
            return []
        raise
    done = []
    mode = as_text(q(conn, "SELECT @@SESSION.sql_mode")[0][0])
    for name, tmode, create in rows:
        name = as_text(name)
        exists = q(conn, f"SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {string(db)} AND "
                         f"TRIGGER_NAME = {string(name)}")[0][0]
        if not exists:
            q(conn, f"SET SESSION sql_mode = {string(as_text(tmode))}")
            try:
                q(conn, f"USE {ident(db)}")
                q(conn, bytes(create).decode())
            except SharedMySQLError as exc:
                raise MaskingError(f"trigger {name} of {db}: it could not be re-created after masking ({exc}); its "
                                   f"definition is kept in {META_DATABASE}.mask_triggers: create it by hand") from None
            finally:
                q(conn, f"SET SESSION sql_mode = {string(mode)}")
        q(conn, f"DELETE FROM {META}.mask_triggers WHERE {where} AND name = {string(name)}")
        done.append(name)
    return done


def trial(conn, db: str, tables: list[TablePlan]) -> None:
    """Each table's UPDATE on one row, rolled back: a value the column refuses (a CHECK constraint, MariaDB's JSON
    validity check, strict mode) fails here, before any batch commits, with one line naming the table."""
    for tp in tables:
        if not tp.updates:
            continue
        sets = ", ".join(f"{ident(c.column)} = {c.expr}" for c in tp.updates)
        order = f" ORDER BY {', '.join(ident(p) for p in tp.pk)}" if tp.pk else ""
        q(conn, "START TRANSACTION")
        try:
            _update(conn, f"UPDATE {ident(db)}.{ident(tp.table)} SET {sets}{order} LIMIT 1")
        except MaskingError as exc:
            raise MaskingError(f"table {tp.table}: {str(exc).replace('masking failed: ', '')}; the rules of "
                               f"{', '.join(c.column for c in tp.updates)} give values the column refuses: change "
                               "the rule") from None
        finally:
            q(conn, "ROLLBACK")


def mask_table(conn, run: Run, db: str, tp: TablePlan, batch: int = BATCH, progress=None) -> int:
    """Every rule of one table; resumable (each batch commits with its progress row). Returns rows changed.
    Its UPDATE/DELETE triggers are set aside meanwhile (they would fire on every masked row)."""
    if tp.triggers:
        set_triggers_aside(conn, run, db, tp)
    total = _mask_table(conn, run, db, tp, batch, progress)
    put_triggers_back(conn, run, db, tp.table)
    return total


def _mask_table(conn, run: Run, db: str, tp: TablePlan, batch: int, progress) -> int:
    src = f"{ident(db)}.{ident(tp.table)}"
    total = 0
    if tp.truncate:
        step = f"{tp.table}\x00truncate"
        fin, _, _ = _progress(conn, run, step)
        if not fin:
            n = int(q(conn, f"SELECT COUNT(*) FROM {src}")[0][0])
            try:
                q(conn, f"TRUNCATE TABLE {src}")
            except SharedMySQLError:
                q(conn, f"DELETE FROM {src}")  # TRUNCATE refused (a foreign key on another engine): row by row
            q(conn, _commit_step(conn, run, step, None, n, True))
            total += n
        return total
    if tp.updates:
        sets = ", ".join(f"{ident(c.column)} = {c.expr}" for c in tp.updates)
        step = f"{tp.table}\x00update"
        fin, upto, _ = _progress(conn, run, step)
        if not fin and not tp.pk:  # no key to batch on: one statement, atomic with its progress
            q(conn, "START TRANSACTION")
            n = _update(conn, f"UPDATE {src} SET {sets}")
            q(conn, _commit_step(conn, run, step, None, n, True))
            q(conn, "COMMIT")
            total += n
        elif not fin:
            for lo, hi in _batches(conn, src, tp.pk, upto, batch):
                conds = ([_after(tp.pk, lo)] if lo is not None else []) + ([_upto(tp.pk, hi)] if hi else [])
                where = f" WHERE {' AND '.join(conds)}" if conds else ""
                q(conn, "START TRANSACTION")
                n = _update(conn, f"UPDATE {src} SET {sets}{where}")
                q(conn, _commit_step(conn, run, step, hi, n, hi is None))
                q(conn, "COMMIT")
                total += n
                if progress:
                    progress(tp.table, total)
    for cp in tp.shuffles:
        total += _shuffle(conn, run, db, tp, cp, batch, progress)
    return total


def _update(conn, sql: str) -> int:
    with conn.cursor() as cur:
        try:
            return int(cur.execute(sql))
        except Exception as exc:  # noqa: BLE001 - PyMySQL errors: re-raised as one scrubbed line by q()
            import pymysql

            if isinstance(exc, pymysql.err.MySQLError):
                q(conn, "ROLLBACK")
                from ..backup.load import scrub

                code = exc.args[0] if exc.args else None
                raise MaskingError(f"masking failed: error {code}: {scrub(exc.args[-1])}") from None
            raise


def _shuffle(conn, run: Run, db: str, tp: TablePlan, cp, batch: int, progress) -> int:
    """A cyclic shift of the column's values in a salted random order of the rows: row k (in that order) takes
    row k+1's value, so no row keeps its own (unless the value repeats). The order and values are copied once
    into a map in the tool's schema (kept until the column is done, so a killed run resumes on the same map),
    then moved in batches of map positions."""
    step = f"{tp.table}\x00shuffle:{cp.column}"
    fin, upto, _ = _progress(conn, run, step)
    mapname = f"{META}.{ident('shuf_' + run.id + '_' + hashlib.sha256(step.encode()).hexdigest()[:12])}"
    if fin:
        q(conn, f"DROP TABLE IF EXISTS {mapname}")
        return 0
    src = f"{ident(db)}.{ident(tp.table)}"
    pkcols = ", ".join(ident(p) for p in tp.pk)
    have = q(conn, f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {string(META_DATABASE)} "
                   f"AND TABLE_NAME = {string(mapname.split('.', 1)[1].strip('`'))}")[0][0]
    if not have:
        tmp = mapname[:-1] + "_new`"
        q(conn, f"DROP TABLE IF EXISTS {tmp}")
        order = f"SHA2(CONCAT(@smr_salt, {string(cp.column)}, 0x00, {mp.pk_string(tp.pk)}), 256)"
        q(conn, f"CREATE TABLE {tmp} ENGINE=InnoDB AS SELECT ROW_NUMBER() OVER (ORDER BY {order}) AS smr_n, "
                f"{pkcols}, {ident(cp.column)} AS smr_v FROM {src}")
        q(conn, f"ALTER TABLE {tmp} ADD PRIMARY KEY (smr_n), ADD KEY smr_k ({pkcols})")
        q(conn, f"RENAME TABLE {tmp} TO {mapname}")
    count = int(q(conn, f"SELECT COUNT(*) FROM {mapname}")[0][0])
    start = int(upto[0]) if upto else 0
    total = 0
    join = " AND ".join(f"t.{ident(p)} <=> a.{ident(p)}" for p in tp.pk)
    while start < count:
        end = min(count, start + batch)
        q(conn, "START TRANSACTION")
        n = _update(conn, f"UPDATE {src} t JOIN {mapname} a ON {join} JOIN {mapname} b ON b.smr_n = "
                          f"IF(a.smr_n = {count}, 1, a.smr_n + 1) SET t.{ident(cp.column)} = b.smr_v WHERE "
                          f"a.smr_n > {start} AND a.smr_n <= {end}")
        q(conn, _commit_step(conn, run, step, [end], n, end >= count))
        q(conn, "COMMIT")
        total += n
        start = end
        if progress:
            progress(tp.table, total)
    if count == 0:
        q(conn, _commit_step(conn, run, step, None, 0, True))
    q(conn, f"DROP TABLE IF EXISTS {mapname}")
    return total


# -- the check -------------------------------------------------------------------------------------------------
def check(conn, run: Run | None, db: str, tables: list[TablePlan]) -> list[dict]:
    """Per masked column (or truncated table): rows, rows breaking the rule, fingerprints compared and matched.
    A finding is any breaking row, any surviving source value, or masking not finished."""
    out = []
    unfinished = set()
    if run is not None:
        load_salts(conn, run)
        for step, fin in q(conn, f"SELECT step, finished FROM {META}.mask_progress WHERE run = {string(run.id)}"):
            if not fin:
                unfinished.add(as_text(step).split("\x00")[0])
        try:  # a trigger set aside and not back yet: the run is not finished
            for (tbl,) in q(conn, f"SELECT tbl FROM {META}.mask_triggers WHERE run = {string(run.id)}"):
                unfinished.add(as_text(tbl))
        except SharedMySQLError as exc:
            if "error 1146" not in str(exc):
                raise
    for tp in tables:
        src = f"{ident(db)}.{ident(tp.table)}"
        if tp.truncate:
            n = int(q(conn, f"SELECT COUNT(*) FROM {src}")[0][0])
            out.append({"table": tp.table, "column": None, "rule": "truncate", "rows": n, "violations": n,
                        "fingerprints": 0, "matches": 0, "unfinished": tp.table in unfinished, "covered": True,
                        "form_checked": True})
            continue
        sums = [f"IFNULL(SUM({c.violation}), 0)" if c.violation else "0" for c in tp.columns]
        row = q(conn, f"SELECT COUNT(*), {', '.join(sums)} FROM {src}")[0]
        for i, cp in enumerate(tp.columns):
            covered = run is not None and (tp.table, cp.column.lower(), cp.rule.text()) in run.rules
            fps = matches = 0
            if run is not None and cp.fingerprint:
                base = f"run = {string(run.id)} AND tbl = {string(tp.table)} AND col = {string(cp.column)}"
                fps = int(q(conn, f"SELECT COUNT(*) FROM {META}.mask_fp WHERE {base}")[0][0])
                if fps:
                    matches = int(q(conn, f"SELECT COUNT(*) FROM (SELECT {mp.fp_expr(cp, tp.pk)} AS fp FROM {src} "
                                          f"WHERE {ident(cp.column)} IS NOT NULL) x JOIN {META}.mask_fp f ON "
                                          f"f.run = {string(run.id)} AND f.tbl = {string(tp.table)} AND f.col = "
                                          f"{string(cp.column)} AND f.fp = x.fp")[0][0])
            out.append({"table": tp.table, "column": cp.column, "rule": cp.rule.text(), "rows": int(row[0]),
                        "violations": int(row[i + 1]), "fingerprints": fps, "matches": matches,
                        "unfinished": tp.table in unfinished, "covered": covered,
                        "form_checked": cp.violation is not None})
    return out


def findings(results: list[dict]) -> list[str]:
    out = []
    for r in results:
        what = f"{r['table']}.{r['column']}" if r["column"] else f"{r['table']}.*"
        if r["unfinished"]:
            out.append(f"{what}: masking did not finish (re-run it)")
        elif not r.get("covered", True) and not r.get("form_checked", True) and r["rows"]:
            # hash of a number or of bytes, shuffle: nothing to see in the values; only the run that masked them
            # (its fingerprints) can vouch for them, and the latest run did not have this rule
            out.append(f"{what}: {r['rule']} was not applied by the latest masking run (the rule is newer, or no run "
                       "masked this data) and cannot be checked by form; run `shared-mysql mask`")
        if r["violations"]:
            out.append(f"{what}: {r['violations']} of {r['rows']} row(s) do not match {r['rule']}")
        if r["matches"]:
            hint = (f"; with {r['rows']} row(s) a shuffle has nowhere to move a value: use hash, fixed or null"
                    if r["rule"] == "shuffle" and r["rows"] < 2 else "")
            out.append(f"{what}: {r['matches']} value(s) equal a source value ({r['rule']} not applied to them)"
                       f"{hint}")
    return out


def elapsed(t0: float) -> float:
    return round(time.monotonic() - t0, 3)
