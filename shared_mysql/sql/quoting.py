"""Quoting for identifiers, string literals, accounts and database-level grant patterns."""

from __future__ import annotations


def ident(name: str) -> str:
    """Backtick-quote an identifier (database, table)."""
    return "`" + name.replace("`", "``") + "`"


def literal(value: str) -> str:
    """A single-quoted string literal, safe under both the default sql_mode and NO_BACKSLASH_ESCAPES."""
    if "\\" in value:
        # Backslash means different things depending on sql_mode: refuse rather than guess.
        raise ValueError("string literals with a backslash are not supported")
    return "'" + value.replace("'", "''") + "'"


def account(user: str, host: str) -> str:
    return f"{literal(user)}@{literal(host)}"


def escape_db_pattern(database: str) -> str:
    """The database name as a literal grant pattern.

    In database-level grants `_` and `%` are wildcards: `GRANT ... ON service1_db.*` also grants `service1Xdb`.
    Escaping them with a backslash makes the grant match exactly one database.
    """
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def db_pattern_matches_exactly(pattern: str) -> bool:
    """True when a stored grant pattern has no unescaped wildcard (matches exactly one database)."""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c in "_%":
            return False
        i += 1
    return True


def unescape_db_pattern(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)
