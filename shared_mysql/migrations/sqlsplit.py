"""A migration script split into statements, as the mysql client (and Flyway's MySQL parser) splits it.

Statements end at the delimiter (`;` unless a `DELIMITER xx` line changes it) outside quotes ('...', "...",
`...`) and comments (`-- `, `#`, `/* */`). Executable comments (`/*! ... */`) belong to the statement. A compound
statement body (CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT ... BEGIN ... END) is kept whole without a DELIMITER line,
as Flyway does, by counting BEGIN/END (and CASE/IF/LOOP/REPEAT/WHILE ... END) blocks. Each statement carries the
line it starts on, for error messages. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPOUND = re.compile(r"^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*(?:\S+|`[^`]*`@`[^`]*`)\s+)?"
                       r"(?:AGGREGATE\s+)?(?:PROCEDURE|FUNCTION|TRIGGER|EVENT)\b|BEGIN\s+NOT\s+ATOMIC\b)", re.I)


class SplitError(ValueError):
    pass


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based line of the script where it starts


def _next_semicolon(code: str, start: int) -> int:
    i = code.find(";", start)
    return len(code) if i < 0 else i


def _words(code: str) -> list[tuple[str, int]]:
    """Block keywords in code with strings and comments removed: ('open'|'end', position)."""
    out = []
    for m in re.finditer(r"\b(END(?:\s+(?:IF|CASE|LOOP|REPEAT|WHILE))?|BEGIN|CASE|IF|LOOP|REPEAT|WHILE)\b", code,
                         re.I):
        w = m.group(1).upper()
        if w.startswith("END"):
            out.append(("end", m.start()))
        elif w == "IF" and re.match(r"\s*(?:NOT\s+)?EXISTS\b", code[m.end():], re.I):
            continue  # DROP ... IF EXISTS, CREATE ... IF NOT EXISTS
        elif w == "IF" and not re.search(r"\bTHEN\b", code[m.end():_next_semicolon(code, m.end())], re.I):
            continue  # IF(a, b, c), the function: an IF statement has its THEN before the next ;
        elif w in ("REPEAT", "LOOP", "WHILE") and re.match(r"\s*\(", code[m.end():]) and \
                not re.search(r"\b(?:DO|UNTIL)\b", code[m.end():_next_semicolon(code, m.end())], re.I):
            continue  # REPEAT('a', 3), the function
        elif w == "BEGIN" and re.match(r"\s*(?:WORK\b|;|$)", code[m.end():], re.I):
            continue  # BEGIN WORK / BEGIN; (a transaction)
        else:
            out.append(("open", m.start()))
    return out


def split(text: str) -> list[Statement]:
    out: list[Statement] = []
    delim = ";"
    buf: list[str] = []
    code: list[str] = []  # the statement without strings/comments (for block keywords)
    start_line = None
    line = 1
    i, n = 0, len(text)
    at_line_start = True

    def flush() -> None:
        nonlocal buf, code, start_line
        sql = "".join(buf).strip()
        if sql:
            out.append(Statement(sql, start_line or line))
        buf, code, start_line = [], [], None

    def depth() -> int:
        joined = "".join(code)
        if not _COMPOUND.match(joined):
            return 0
        d = 0
        for kind, _ in _words(joined):
            d += 1 if kind == "open" else -1
        return d

    while i < n:
        c = text[i]
        if at_line_start:
            m = re.match(r"[ \t]*DELIMITER[ \t]+(\S+)[ \t]*(?:(?:--[ \t]|#)[^\r\n]*)?(?:\r\n|\n|\r|$)", text[i:],
                         re.I)
            if m and not "".join(buf).strip():
                delim = m.group(1)
                if delim in ("\\", "'", '"', "`"):
                    raise SplitError(f"line {line}: DELIMITER {delim} is not supported")
                i += m.end()
                line += 1
                continue
        at_line_start = False
        if c in "\r\n":
            buf.append(c)
            code.append(" ")
            if c == "\r" and i + 1 < n and text[i + 1] == "\n":
                buf.append("\n")
                i += 1
            line += 1
            i += 1
            at_line_start = True
            continue
        if start_line is None and not c.isspace():
            start_line = line
        if c in "'\"`":
            j = i + 1
            while j < n:
                if text[j] == "\\" and c != "`":
                    j += 2
                    continue
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            if j >= n:
                raise SplitError(f"line {start_line or line}: a {c} quote is never closed")
            chunk = text[i:j + 1]
            buf.append(chunk)
            code.append(" " * len(chunk))
            line += chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")
            i = j + 1
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise SplitError(f"line {line}: a /* comment is never closed")
            chunk = text[i:j + 2]
            executable = chunk.startswith("/*!") or chunk.startswith("/*M!")
            buf.append(chunk)
            code.append(chunk if executable else " ")
            line += chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")
            i = j + 2
            continue
        if (text.startswith("--", i) and (i + 2 >= n or text[i + 2] in " \t\r\n")) or c == "#":
            j = i
            while j < n and text[j] not in "\r\n":
                j += 1
            if not "".join(buf).strip():
                start_line = None  # a comment before a statement does not start it
            i = j
            continue
        if text.startswith(delim, i) and depth() <= 0:
            i += len(delim)
            flush()
            continue
        buf.append(c)
        code.append(c)
        i += 1
    if "".join(buf).strip():
        flush()
    return out
