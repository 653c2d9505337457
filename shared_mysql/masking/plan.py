"""Rules checked against the real schema, and the SQL each rule becomes. Pure: the schema comes in as data.

Every expression reads the refresh's salts from session variables (@smr_salt for masking, @smr_fp for the
fingerprints of the source values), set from the tool's own schema: no salt ever appears in a statement's text,
so none reaches the slow log, the general log or a binlog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SharedMySQLError
from ..sql.quoting import ident, string
from .rules import EMAIL_DOMAIN, Rule

TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
INTS = {"tinyint", "smallint", "mediumint", "int", "bigint"}
NUMBERS = INTS | {"decimal", "float", "double"}
MIN_HASH_CHARS = 16  # 64 bits of SHA-256: ~1 chance in 30 million of any collision among 1M distinct values
FP_HEX = 32  # fingerprints: 128 bits


class MaskingError(SharedMySQLError):
    exit_code = 1


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str
    column_type: str
    nullable: bool
    max_chars: int | None  # characters (text) or bytes (binary)
    generated: bool = False
    charset: str | None = None


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: dict[str, ColumnInfo]  # lower-case name -> info
    pk: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...]  # UNIQUE indexes (column names), the primary key excluded
    rows: int  # an estimate (information_schema.TABLES.TABLE_ROWS)
    triggers: tuple[str, ...] = ()  # UPDATE/DELETE triggers: masking would fire them
    # foreign keys of this table: (column, referenced table, referenced column)
    references: tuple[tuple[str, str, str], ...] = ()


@dataclass
class ColumnPlan:
    rule: Rule
    column: str
    expr: str  # the masked value (UPDATE ... SET col = expr); shuffle: none
    violation: str | None  # a row breaking the rule (mask --check); None: nothing checkable by form
    canon: str  # the column's value as the bytes fingerprints hash
    fingerprint: bool  # hash/email/shuffle: a sample of source values is kept to prove none survived


@dataclass
class TablePlan:
    table: str
    pk: tuple[str, ...]
    columns: list[ColumnPlan] = field(default_factory=list)
    truncate: bool = False
    # UPDATE/DELETE triggers: masking would fire them (an audit trigger copies the unmasked values elsewhere), so
    # they are set aside while the table is masked and put back after (engine.mask_table)
    triggers: tuple[str, ...] = ()

    @property
    def updates(self) -> list[ColumnPlan]:
        return [c for c in self.columns if c.rule.kind != "shuffle"]

    @property
    def shuffles(self) -> list[ColumnPlan]:
        return [c for c in self.columns if c.rule.kind == "shuffle"]


def _where(tenant: str, rule: Rule) -> str:
    return f'tenants.{tenant}.masking."{rule.key}"'


def canon(col: ColumnInfo) -> str:
    c = ident(col.name)
    if col.data_type in TEXT or col.data_type in ("enum", "set"):
        return f"CONVERT({c} USING utf8mb4)"
    if col.data_type in BINARY:
        return c
    return f"CAST({c} AS CHAR)"


def _sha(inner: str, var: str = "@smr_salt") -> str:
    return f"SHA2(CONCAT({var}, {inner}), 256)"


def not_matching(c: str, pattern: str, mysql: bool) -> str:
    """A case-sensitive "does not match": MariaDB's PCRE on the bytes; MySQL 8's ICU refuses binary strings
    (error 3995), so REGEXP_LIKE with the 'c' flag on the text."""
    if mysql:
        return f"NOT REGEXP_LIKE({c}, '{pattern}', 'c')"
    return f"CAST({c} AS BINARY) NOT REGEXP '{pattern}'"


_INT_RANGE = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}
_TEMPORAL = {"date": r"\d{4}-\d{2}-\d{2}", "datetime": r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d{1,6})?)?",
             "timestamp": r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d{1,6})?)?",
             "time": r"-?\d{1,3}:\d{2}(:\d{2}(\.\d{1,6})?)?", "year": r"\d{4}"}


def _fits_number(where: str, v, col: ColumnInfo) -> None:
    """A fixed number the column can hold (strict mode would fail the UPDATE after the data was restored)."""
    import re

    ct = col.column_type.lower()
    if col.data_type == "year" and not (v == 0 or 1901 <= v <= 2155):
        raise MaskingError(f"{where}: {v} is not a YEAR (1901..2155)")
    if col.data_type == "float" and abs(v) > 3.4e38:
        raise MaskingError(f"{where}: {v} does not fit {col.column_type}")
    m = re.match(r"bit\((\d+)\)", ct)
    if m and not (isinstance(v, int) and 0 <= v < 2 ** int(m.group(1))):
        raise MaskingError(f"{where}: {v} does not fit {col.column_type}")
    if col.data_type in _INT_RANGE:
        bits = _INT_RANGE[col.data_type]
        lo, hi = (0, 2 ** bits - 1) if "unsigned" in ct else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not lo <= v <= hi:
            raise MaskingError(f"{where}: {v} does not fit {col.column_type} ({lo}..{hi})")
    m = re.match(r"decimal\((\d+),(\d+)\)", ct)
    if m:
        p, sc = int(m.group(1)), int(m.group(2))
        if abs(round(v, sc)) >= 10 ** (p - sc) or ("unsigned" in ct and v < 0):  # rounds to the scale first
            raise MaskingError(f"{where}: {v} does not fit {col.column_type}")


def _fits_temporal_or_enum(where: str, v: str, col: ColumnInfo) -> None:
    import re
    from datetime import datetime

    if col.data_type in _TEMPORAL:
        bad = not re.fullmatch(_TEMPORAL[col.data_type], v)
        if not bad and col.data_type in ("date", "datetime", "timestamp"):
            try:
                when = datetime.strptime(v[:19], "%Y-%m-%d %H:%M:%S" if len(v) > 10 else "%Y-%m-%d")
            except ValueError:
                bad = True
            else:
                bad = col.data_type == "timestamp" and not (datetime(1970, 1, 1, 0, 0, 1) <= when <=
                                                            datetime(2038, 1, 19, 3, 14, 7))
        if not bad and col.data_type == "time":
            h, mi, *rest = v.lstrip("-").split(":")
            bad = int(h) > 838 or int(mi) > 59 or (rest and float(rest[0]) >= 60)
        if not bad and col.data_type == "year":
            bad = not 1901 <= int(v) <= 2155
        if bad:
            raise MaskingError(f"{where}: {v!r} is not a {col.data_type} value the column can hold (e.g. "
                               f"{'2000-01-01' if col.data_type != 'time' else '00:00:00'})")
    if col.data_type == "bit":
        raise MaskingError(f"{where}: {col.name} is {col.column_type}; give a number: fixed(0)")
    if (col.charset or "").lower() in ("latin1", "ascii"):
        try:
            v.encode("cp1252" if col.charset.lower() == "latin1" else "ascii")
        except UnicodeEncodeError:
            raise MaskingError(f"{where}: {v!r} has characters {col.charset} {col.name} cannot hold") from None
    if col.data_type in ("enum", "set"):
        members = [m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", col.column_type)]
        parts = v.split(",") if col.data_type == "set" and v else [v]
        if any(p not in members for p in parts):
            raise MaskingError(f"{where}: {v!r} is not one of {col.column_type}")


def column_plan(tenant: str, rule: Rule, col: ColumnInfo, table: TableInfo, mysql: bool = False) -> ColumnPlan:
    where = _where(tenant, rule)
    c = ident(col.name)
    low = col.name.lower()
    if col.generated:
        raise MaskingError(f"{where}: {col.name} is a generated column (the server computes it); mask the columns "
                           "it is computed from")
    if low in (p.lower() for p in table.pk):
        raise MaskingError(f"{where}: {col.name} is in the primary key of {table.name}; masking a key would move "
                           "rows under the batches: mask the values that reference people, not the row's key")
    in_unique = any(low in (x.lower() for x in u) for u in table.unique)
    x = canon(col)
    kind = rule.kind
    if kind == "hash":
        if col.data_type in TEXT:
            width = min(64, col.max_chars or 64)
            if width < MIN_HASH_CHARS:
                raise MaskingError(f"{where}: {col.column_type} holds {width} characters; hash needs at least "
                                   f"{MIN_HASH_CHARS} to stay unique: widen the column or use fixed/null")
            expr = f"LEFT({_sha(x)}, {width})"
            viol = not_matching(c, f"^[0-9a-f]{{{width}}}$", mysql)
        elif col.data_type in BINARY:
            width = min(32, col.max_chars or 32)
            if width < MIN_HASH_CHARS // 2:
                raise MaskingError(f"{where}: {col.column_type} holds {width} bytes; hash needs at least "
                                   f"{MIN_HASH_CHARS // 2}: widen the column or use fixed/null")
            expr = f"UNHEX(LEFT({_sha(x)}, {2 * width}))"
            viol = None
        elif col.data_type == "bigint":
            unsigned = "unsigned" in col.column_type.lower()
            digits = 16 if unsigned else 15
            expr = f"CAST(CONV(LEFT({_sha(x)}, {digits}), 16, 10) AS {'UNSIGNED' if unsigned else 'SIGNED'})"
            viol = None
        else:
            raise MaskingError(f"{where}: hash needs a text column of at least {MIN_HASH_CHARS} characters, a "
                               f"binary one of at least {MIN_HASH_CHARS // 2} bytes, or a BIGINT; {col.name} is "
                               f"{col.column_type}: use fixed, null or shuffle")
        return ColumnPlan(rule, col.name, f"IF({c} IS NULL, NULL, {expr})",
                          f"{c} IS NOT NULL AND {viol}" if viol else None, x, True)
    if kind == "email":
        width = (col.max_chars or 0) if col.data_type in TEXT else 0
        room = min(32, width - 2 - len(EMAIL_DOMAIN))
        if room < MIN_HASH_CHARS:
            need = MIN_HASH_CHARS + 2 + len(EMAIL_DOMAIN)
            raise MaskingError(f"{where}: email needs a text column of at least {need} characters "
                               f"(u<hex>@{EMAIL_DOMAIN}); {col.name} is {col.column_type}")
        expr = f"CONCAT('u', LEFT({_sha(x)}, {room}), '@{EMAIL_DOMAIN}')"
        viol = not_matching(c, f"^u[0-9a-f]{{{room}}}@{EMAIL_DOMAIN.replace('.', '[.]')}$", mysql)
        return ColumnPlan(rule, col.name, f"IF({c} IS NULL, NULL, {expr})", f"{c} IS NOT NULL AND {viol}", x, True)
    if kind == "fixed":
        if in_unique:
            raise MaskingError(f"{where}: {col.name} is in a unique index of {table.name}; one fixed value for every "
                               "row would break it: use hash or email")
        v = rule.value
        if isinstance(v, str):
            if col.data_type in NUMBERS:
                raise MaskingError(f"{where}: {col.name} is {col.column_type}; give a number: fixed(0)")
            if col.max_chars is not None and len(v.encode() if col.data_type in BINARY else v) > col.max_chars:
                raise MaskingError(f"{where}: {v!r} is longer than {col.column_type} holds; give a shorter value")
            _fits_temporal_or_enum(where, v, col)
            lit = string(v)
        else:
            if col.data_type in INTS and not isinstance(v, int):
                raise MaskingError(f"{where}: {col.name} is {col.column_type}; give a whole number")
            if col.data_type not in NUMBERS and col.data_type not in ("year", "bit"):
                raise MaskingError(f"{where}: {col.name} is {col.column_type}; give a quoted value")
            _fits_number(where, v, col)
            lit = repr(v) if isinstance(v, float) else str(v)
        return ColumnPlan(rule, col.name, f"IF({c} IS NULL, NULL, {lit})", f"{c} IS NOT NULL AND NOT ({c} <=> {lit})",
                          x, False)
    if kind == "null":
        if not col.nullable:
            raise MaskingError(f"{where}: {col.name} is NOT NULL; use fixed('...') or hash")
        return ColumnPlan(rule, col.name, "NULL", f"{c} IS NOT NULL", x, False)
    if kind == "shuffle":
        if in_unique:
            raise MaskingError(f"{where}: {col.name} is in a unique index of {table.name}; values moved between rows "
                               "in batches would collide on the way: use hash or email")
        if not table.pk:
            raise MaskingError(f"{where}: table {table.name} has no primary key; shuffle moves values between rows "
                               "by key: add one, or use another rule")
        return ColumnPlan(rule, col.name, "", None, x, True)
    raise MaskingError(f"{where}: unknown rule {kind}")  # pragma: no cover - rules.py parsed it


def build(tenant: str, rules: list[Rule], tables: dict[str, TableInfo], mysql: bool = False) -> list[TablePlan]:
    """One TablePlan per table, in name order; one line naming the config key for the first rule that cannot
    apply to the real schema. `mysql`: the server is MySQL (not MariaDB)."""
    out: dict[str, TablePlan] = {}
    for r in rules:
        t = find_table(tenant, r, tables)
        tp = out.setdefault(t.name, TablePlan(t.name, t.pk, triggers=t.triggers))
        if r.kind == "truncate":
            tp.truncate = True
            continue
        col = t.columns.get((r.column or "").lower())
        if col is None:
            raise MaskingError(f"{_where(tenant, r)}: table {t.name} has no column {r.column}; fix the key or remove "
                               "the rule")
        tp.columns.append(column_plan(tenant, r, col, t, mysql))
    _check_references(tenant, rules, tables)
    return [out[k] for k in sorted(out)]


def find_table(tenant: str, r: Rule, tables: dict[str, TableInfo]) -> TableInfo:
    """The table a rule names: exactly, else the one table whose name differs only in case. Table names are
    case-sensitive on Linux servers (`Users` and `users` can both exist): two candidates are an error."""
    if r.table in tables:
        return tables[r.table]
    near = [t for name, t in tables.items() if name.lower() == r.table.lower()]
    if len(near) == 1:
        return near[0]
    if near:
        raise MaskingError(f"{_where(tenant, r)}: tables {' and '.join(sorted(t.name for t in near))} differ from "
                           f"{r.table} only in case; write the exact name (one rule per table)")
    raise MaskingError(f"{_where(tenant, r)}: no table {r.table} in the tenant's database; fix the key or remove "
                       "the rule")


def _check_references(tenant: str, rules: list[Rule], tables: dict[str, TableInfo]) -> None:
    """A foreign key's two columns hold the same values: when either is masked (hash, email), the other must be
    masked by the same rule (then they still join, hash and email being deterministic within a run), or its table
    truncated. Otherwise the unmasked side keeps every value the masked side hid."""
    by_col: dict[tuple[str, str], Rule] = {}
    for r in rules:
        t = find_table(tenant, r, tables)
        by_col[(t.name, (r.column or "*").lower())] = r

    def rule_of(table: str, col: str) -> Rule | None:
        if (table, "*") in by_col:
            return by_col[(table, "*")]
        return by_col.get((table, col.lower()))

    for t in tables.values():
        for col, ref_table, ref_col in t.references:
            child, parent = rule_of(t.name, col), rule_of(ref_table, ref_col)
            if child is not None and child.kind == "truncate" or parent is not None and parent.kind == "truncate":
                continue
            if child is None and parent is None:
                continue
            if child is not None and parent is not None and child.text() == parent.text():
                continue
            masked, other, other_rule = (parent, f"{t.name}.{col}", child) if parent is not None else \
                (child, f"{ref_table}.{ref_col}", parent)
            have = f"is {other_rule.text()}" if other_rule else "is not masked"
            raise MaskingError(f'{_where(tenant, masked)}: {t.name}.{col} references {ref_table}.{ref_col}, and '
                               f'{other} {have}: the two hold the same values; add "{other}": {masked.text()}')


def pk_string(pk: tuple[str, ...]) -> str:
    """The row's key as one string (fingerprints of shuffled values are per row)."""
    return "CONCAT_WS(0x1f, " + ", ".join(f"CAST({ident(p)} AS CHAR)" for p in pk) + ")"


def fp_expr(cp: ColumnPlan, pk: tuple[str, ...]) -> str:
    """The fingerprint of a value (shuffle: of the row's key and its value), 16 bytes."""
    inner = f"CONCAT({pk_string(pk)}, 0x00, {cp.canon})" if cp.rule.kind == "shuffle" else cp.canon
    return f"UNHEX(LEFT({_sha(inner, '@smr_fp')}, {FP_HEX}))"
