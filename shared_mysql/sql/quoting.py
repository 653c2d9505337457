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


def _account_part(part: str) -> str:
    # Names read back from the server can hold anything, backslashes included. A backslash means different
    # things in a string literal depending on sql_mode, never in a backtick identifier, and both forms are
    # accepted for account names; an empty part (anonymous user, role host) needs the string form.
    if "\\" in part:
        if "\x00" in part:
            raise ValueError("account names with a NUL character cannot be quoted")
        return ident(part)
    return literal(part)


def string(value: str) -> str:
    """Any string as a SQL expression: a plain literal, or (when it holds a backslash) hex converted to utf8mb4,
    which means the same bytes under every sql_mode."""
    if "\\" in value:
        return f"CONVERT(X'{value.encode().hex()}' USING utf8mb4)"
    return literal(value)


def account(user: str, host: str) -> str:
    return f"{_account_part(user)}@{_account_part(host)}"


def grantee(user: str, host: str) -> str:
    """Who a grant is revoked from: an account (user@host); MariaDB's PUBLIC pseudo-role; or a MariaDB role, which
    the grant tables store with an empty host and which must be named alone (`'r1'@''` is error 1141)."""
    if (user, host) == ("PUBLIC", ""):
        return "PUBLIC"
    if host == "" and user:
        return ident(user)
    return account(user, host)


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


def db_pattern_matches(pattern: str, name: str) -> bool:
    """Whether a database-level grant pattern (`_`/`%` wildcards, backslash escapes) covers database `name`."""
    import re

    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), name, re.S) is not None


def as_text(v) -> str:
    """A server value as str: bytes (binary collations) decoded losslessly, None as ''."""
    if type(v) is str:  # the common case first: called ~10 times per account
        return v
    return v.decode(errors="surrogateescape") if isinstance(v, (bytes, bytearray)) else ("" if v is None else str(v))
