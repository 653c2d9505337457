"""Masking rules as written in the config: `tenants.<t>.masking: {"users.email": email, ...}`. Pure parsing.

  hash          deterministic per refresh (salted), keeps uniqueness: hex of SHA-256 cut to the column's width
  email         u<hex>@example.com: unique, valid, under a domain reserved for examples (RFC 2606)
  fixed(V)      every non-NULL value becomes V ('text' or a number)
  null          NULL (the column must be nullable)
  shuffle       the column's values moved between rows (a cyclic shift in a salted random order)
  truncate      the table's rows all deleted (key `table.*` or any `table.column`)

NULL stays NULL under hash, email and fixed: masking does not invent data where there was none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULES = ("hash", "email", "fixed", "null", "shuffle", "truncate")
EMAIL_DOMAIN = "example.com"
_IDENT = r"(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$]+))"
_KEY = re.compile(rf"{_IDENT}\.(?:{_IDENT}|(\*))")
_FIXED = re.compile(r"fixed\((.*)\)", re.S)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    table: str
    column: str | None  # None: the whole table (truncate on `table.*`)
    kind: str
    value: str | int | float | None = None  # fixed(V)

    @property
    def key(self) -> str:
        return f"{self.table}.{self.column or '*'}"

    def text(self) -> str:
        if self.kind != "fixed":
            return self.kind
        return f"fixed({self.value!r})" if isinstance(self.value, str) else f"fixed({self.value})"


def _ident(quoted: str | None, plain: str | None) -> str:
    name = quoted.replace("``", "`") if quoted is not None else plain
    if not name or len(name) > 64 or name != name.rstrip() or "\x00" in name:
        raise RuleError("a table or column name is 1-64 characters, without trailing spaces")
    return name


def parse_key(key: str) -> tuple[str, str | None]:
    m = _KEY.fullmatch(key)
    if not m:
        raise RuleError(f"{key!r} is not `table.column` (quote names with other characters in backticks: "
                        "`my table`.email)")
    table = _ident(m.group(1), m.group(2))
    column = None if m.group(5) else _ident(m.group(3), m.group(4))
    return table, column


def parse_value(text: str) -> str | int | float | None:
    t = text.strip()
    if t.upper() == "NULL":
        raise RuleError("fixed(NULL): use the rule null")
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        body = t[1:-1]
        q = t[0]
        if re.search(rf"(?<!{q}){q}(?!{q})", body.replace(q * 2, "")):
            raise RuleError(f"fixed({t}): a quote inside the value must be doubled ({q}{q})")
        return body.replace(q * 2, q)
    if _NUMBER.fullmatch(t):
        if re.fullmatch(r"[+-]?\d+", t):
            return int(t)
        v = float(t)
        if v != v or v in (float("inf"), float("-inf")):
            raise RuleError(f"fixed({t}): out of range for any column; give a smaller number")
        return v
    raise RuleError(f"fixed({t}): the value must be quoted ('010-0000-0000') or a number")


def parse_rule(key: str, text: object) -> Rule:
    if text is None:  # `users.card: null` in YAML is the null value: the rule null
        text = "null"
    if not isinstance(text, str):
        raise RuleError(f"{key}: the rule must be text, one of {', '.join(RULES[:2])}, fixed('value'), "
                        f"{', '.join(RULES[3:])}")
    table, column = parse_key(key)
    t = text.strip()
    m = _FIXED.fullmatch(t)
    if m:
        kind, value = "fixed", parse_value(m.group(1))
    elif t in RULES and t != "fixed":
        kind, value = t, None
    else:
        raise RuleError(f"{key}: unknown rule {text[:40]!r}; use one of hash, email, fixed('value'), null, shuffle, "
                        "truncate")
    if column is None and kind != "truncate":
        raise RuleError(f"{key}: `table.*` takes only truncate; name the column for {kind}")
    return Rule(table, column, kind, value)


def parse_rules(masking: dict) -> list[Rule]:
    """Every rule of one tenant; a table that is truncated takes no other rule."""
    rules = [parse_rule(k, v) for k, v in masking.items()]
    truncated = {r.table for r in rules if r.kind == "truncate"}  # exact: `Users` and `users` are two tables
    for r in rules:
        if r.table in truncated and r.kind != "truncate":
            raise RuleError(f"{r.key}: table {r.table} is truncated, so its columns take no other rule; remove one")
    seen: dict[tuple, Rule] = {}
    for r in rules:
        k = (r.table, (r.column or "*").lower())  # table names are case-sensitive (Linux), columns are not
        if k in seen and seen[k].text() != r.text():
            raise RuleError(f"{r.key}: given twice ({seen[k].text()} and {r.text()}); keep one")
        seen.setdefault(k, r)
    return list(seen.values())


def merge(primary: dict | None, other: dict | None, label: str) -> dict | None:
    """The rules of two configs (the target's and the source's): a column masked in either is masked; the same
    column with two different rules is an error. None when neither declares `masking`."""
    if primary is None and other is None:
        return None
    out = dict(primary or {})
    a = {(r.table, (r.column or "*").lower()): r for r in parse_rules(primary or {})}
    for k, v in (other or {}).items():
        r = parse_rule(k, v)
        key = (r.table, (r.column or "*").lower())
        if key in a and a[key].text() != r.text():
            raise RuleError(f"{label}: {k} is {a[key].text()} in this config but {r.text()} in the source's; make "
                            "them agree")
        if key not in a:
            out[k] = v
    parse_rules(out)
    return out
