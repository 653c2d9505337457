"""Query fingerprints: pt-query-digest's abstraction of a statement (literals -> ?, one class per query shape).

Two modes, both on bytes (the slow log is bytes; pt-query-digest reads it as bytes, so its lowercasing and `\\w`
are ASCII-only, and so are ours):

* `pt_fingerprint` reproduces pt-query-digest 3.2.1's `QueryRewriter::fingerprint` exactly, bugs included, so
  `--pt-compatible` reports carry the same text and the same checksum (`make_checksum`: MD5, upper-case hex).
* `fingerprint` (the default) follows the same rules but tokenises the statement instead of running pt's
  broad regexes over it, so it is right where pt is wrong: `e1.account_id` stays a column of alias `e?`,
  operators survive (`amount + ?`, `k=k+?`, and `n + ?` is not `n - ?`), `utf8mb4` and `NOT NULL` stay,
  `0xDEADBEEF` is one literal, `'it''s'` is one string, a string ending in an escaped backslash ends there, and
  a multi-row `INSERT ... ON DUPLICATE KEY UPDATE` keeps its tail.

Statements that can carry a credential (IDENTIFIED ..., PASSWORD) are fingerprinted by the tokenising rules in
both modes: pt's string handling can leave part of a quoted password in its text.

Both are memoised on the statement with its free-standing numbers collapsed (`id=42` and `id=7` share a cache
entry): every rule either replaces a number whatever its digits or keeps it verbatim, and the cases that keep
digits (identifiers, CALL, the percona-toolkit marker) never see a collapsed number. A test proves this against
the uncached functions.
"""

from __future__ import annotations

import hashlib
import re

# -- pt-query-digest 3.2.1, transcribed (Perl's \Z is "end, or before a final newline": (?=\n?\Z) here) ---------
_PT_MYSQLDUMP = re.compile(rb"SELECT /\*!40001 SQL_NO_CACHE \*/ \* FROM `")
_PT_TOOLKIT = re.compile(rb"/\*\w+\.\w+:[0-9]/[0-9]\*/")
_PT_CALL = re.compile(rb"\s*(call\s+\S+)\(", re.I)
# pt: m/\A((?:INSERT|REPLACE)(?: IGNORE)?\s+INTO.+?VALUES\s*\(.*?\))\s*,\s*\(/is, in three linear steps (the
# regex itself backtracks quadratically on a statement with many VALUES and no "), (").
_PT_INSERT = re.compile(rb"(?:INSERT|REPLACE)(?: IGNORE)?\s+INTO", re.I)
_PT_VALUES = re.compile(rb"VALUES\s*\(", re.I)
_PT_NEXT_ROW = re.compile(rb"\)\s*,\s*\(")
_PT_OLC_START = re.compile(rb"--|#")
_PT_EOL = re.compile(rb"[\r\n]")
_PT_USE = re.compile(rb"\Ause \S+(?=\n?\Z)", re.I)
_PT_BSQ = re.compile(rb"\\[\"']")
_PT_DQ = re.compile(rb'".*?"', re.S)
_PT_SQ = re.compile(rb"'.*?'", re.S)
_PT_BOOL = re.compile(rb"\bfalse\b|\btrue\b", re.I)
_PT_NUM = re.compile(rb"[0-9+-][0-9a-f.xb+-]*")
_PT_LEFT = re.compile(rb"[xb.+-]\?")
_PT_WS = re.compile(rb"[ \n\t\r\f]+")
_PT_NULL = re.compile(rb"\bnull\b")
_PT_LIST = re.compile(rb"\b(in|values?)(?:[\s,]*\([\s?,]*\))+")
_SELECT = re.compile(rb"\bselect\s")
_UNION = re.compile(rb"\sunion(?=\s)")
_ALL = re.compile(rb"\sall(?=\s)")
_UNION_WORK = 1_000_000  # select x union pairs tried, at most (a hostile statement is left as it is)
_PT_LIMIT = re.compile(rb"\blimit \?(?:, ?\?| offset \?)?")
_PT_ORDER = re.compile(rb"\bORDER BY ", re.I)
_PT_ASC = re.compile(rb"(.+?)\s+ASC", re.I)

# Statements that can carry a credential: never fingerprinted by pt's string handling.
_SECRETISH = re.compile(rb"\bidentified\s+(?:by|with|via|as)\b|\bpassword\s*[(=]|\bset\s+password\b|"
                        rb"\b(?:master|source)_password\b", re.I)
_CACHE_MAX = 200_000


def _collapse_union(q: bytes) -> bytes:
    r"""pt's s/\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+/$1 \/*repeat$2*\//g without its backtracking (a
    backreference after a lazy .*? is quadratic per SELECT, cubic overall): for each SELECT, leftmost first, the
    shortest X = "select ..." that ends where a UNION [ALL] is followed by X again; then as many more as follow.
    `.` does not match a newline: X never spans one."""
    unions = [m.start() for m in _UNION.finditer(q)]
    if not unions:
        return q
    out, pos, work = [], 0, 0
    for sm in _SELECT.finditer(q):
        s = sm.start()
        if s < pos:
            continue
        nl = q.find(b"\n", s + 7)
        for u in unions:
            if u < s + 7:  # X is "select" + one space + .*?
                continue
            if 0 <= nl < u:
                break
            work += 1
            if work > _UNION_WORK:
                return b"".join(out) + q[pos:]
            x = q[s:u]
            end, sep = _repeat(q, u, x)
            if end:
                out.append(q[pos:s])
                out.append(x + b" /*repeat" + sep + b"*/")
                pos = end
                break
    out.append(q[pos:])
    return b"".join(out)


def _repeat(q: bytes, u: int, x: bytes) -> tuple[int, bytes]:
    r"""From a UNION at `u`: the end of the repetitions of `x` ((\sunion(?:\sall)?)\s\1)+ and the last
    separator, or (0, b"")."""
    end, sep = 0, b""
    while True:
        m = _UNION.match(q, u)
        if not m:
            break
        after = m.end()
        a = _ALL.match(q, after)
        found = False
        for stop in ((a.end(),) if a else ()) + (after,):  # \sall is optional and greedy: tried first
            if q[stop:stop + 1].isspace() and q.startswith(x, stop + 1):
                end, sep, u, found = stop + 1 + len(x), q[m.start():stop], stop + 1 + len(x), True
                break
        if not found:
            break
    return end, sep


def _pt_strip_mlc(q: bytes) -> bytes:
    r"""pt's s#/\*[^!].*?\*/##sg in one pass (the regex retries every /* to the end when no */ follows:
    quadratic). A /* with no */ after it matches nothing, and then no later /* can either."""
    out, pos = [], 0
    while True:
        i = q.find(b"/*", pos)
        if i < 0 or i + 2 >= len(q):
            break
        if q[i + 2] == 33:  # /*! is code
            out.append(q[pos:i + 2])
            pos = i + 2
            continue
        j = q.find(b"*/", i + 3)
        if j < 0:
            break
        out.append(q[pos:i])
        pos = j + 2
    out.append(q[pos:])
    return b"".join(out)


def _pt_strip_olc(q: bytes) -> bytes:
    r"""pt's s/(?:--|#)[^'"\r\n]*(?=[\r\n]|\Z)//g in one pass per line (the regex rescans the rest of the line
    from every -- or #: quadratic): on each line, the first -- or # after the line's last quote to its end."""
    out, pos, n = [], 0, len(q)
    while pos <= n:
        m = _PT_EOL.search(q, pos)
        end = m.start() if m else n
        last = max(q.rfind(b"'", pos, end), q.rfind(b'"', pos, end))
        c = _PT_OLC_START.search(q, last + 1 if last >= pos else pos, end)
        if c and (c.group() == b"#" or c.end() <= end):
            out.append(q[pos:c.start()])
        else:
            out.append(q[pos:end])
        if not m:
            break
        out.append(q[end:end + 1])
        pos = end + 1
    return b"".join(out)


def _pt_uncached(q: bytes) -> bytes:
    if _PT_MYSQLDUMP.match(q):
        return b"mysqldump"
    if b"/*" in q and _PT_TOOLKIT.search(q):
        return b"percona-toolkit"
    if q.startswith(b"administrator command: "):
        return q
    m = _PT_CALL.match(q)
    if m:
        return m.group(1).lower()
    m = _PT_INSERT.match(q)
    if m:
        v = _PT_VALUES.search(q, m.end() + 1)
        r = _PT_NEXT_ROW.search(q, v.end()) if v else None
        if r:
            q = q[:r.start() + 1]
    if b"/*" in q:
        q = _pt_strip_mlc(q)
    if b"#" in q or b"--" in q:
        q = _pt_strip_olc(q)
    if q[:4].lower() == b"use ":
        q, n = _PT_USE.subn(b"use ?", q, count=1)
        if n:
            return q
    if b"\\" in q:
        q = _PT_BSQ.sub(b"", q)
    if b'"' in q:
        q = _PT_DQ.sub(b"?", q)
    if b"'" in q:
        q = _PT_SQ.sub(b"?", q)
    low = q.lower()
    if b"true" in low or b"false" in low:
        q = _PT_BOOL.sub(b"?", q)
    q = _PT_NUM.sub(b"?", q)
    if b"?" in q:
        q = _PT_LEFT.sub(b"?", q)
    q = q.lstrip()  # s/\A\s+//: bytes.lstrip strips ASCII whitespace, Perl's \s on bytes
    if q.endswith(b"\n"):  # chomp
        q = q[:-1]
    q = _PT_WS.sub(b" ", q).lower()
    if b"null" in q:
        q = _PT_NULL.sub(b"?", q)
    if b"(" in q:
        q = _PT_LIST.sub(rb"\1(?+)", q)
    if b"union" in q:
        q = _collapse_union(q)
    if b"limit" in q:
        q = _PT_LIMIT.sub(b"limit ?", q, count=1)
    m = _PT_ORDER.search(q)
    if m:  # 1 while s/\G(.+?)\s+ASC/$1/gi && pos: one pass of consecutive matches from after ORDER BY
        pos, out = m.end(), [q[:m.end()]]
        while True:
            a = _PT_ASC.match(q, pos)
            if not a:
                break
            out.append(a.group(1))
            pos = a.end()
        out.append(q[pos:])
        q = b"".join(out)
    return q


# -- the default: strings, comments and quoted names by a tokeniser; the rest by regexes on what is left ------
# Pass 1 (only when the statement has a quote, a comment or a quoted name): strings -> ?, comments -> space,
# quoted names kept (a quote or a comment marker inside one is no string or comment).
_LEX = re.compile(rb"""
    (?P<c>/\*(?!!|M!)(?:[^*]++|\*(?!/))*+(?:\*/|\Z) | (?:--(?=[\x00-\x20\x7f]|\Z)|\#)[^\n]*+)
  | (?P<q>`(?:[^`]++|``)*+`?)
  | (?P<s>'(?:[^'\\]++|\\.|'')*+'?|"(?:[^"\\]++|\\.|"")*+"?)
""", re.S | re.X)
_LEXED = re.compile(rb"""['"`#]|/\*|--""")
# An odd number of backslashes before a quote: where that string ends depends on NO_BACKSLASH_ESCAPES.
_AMBIGUOUS = re.compile(rb"(?<!\\)(?:\\\\)*\\['\"]")
# Pass 2, on one line of lower-case text. Every rule decides by the *shape* of a digit run (where it is, how it
# is bounded), never by its value or length: the memo below relies on that. Patterns start with a character
# class (the regex engine then skips to candidates) and check what precedes with a lookbehind after it.
# String introducers and X'..' / B'..' / N'..' prefixes, now before a ?:
_INTRO = re.compile(rb"(?<![a-z0-9_$])(?:_[a-z][a-z0-9]* ?|[nxb])\?")
# Numbers: decimal, exponent, hex, binary; not inside a name (sbtest12) and not a name's start (12abc).
_NUM = re.compile(rb"[0-9.](?<![a-z0-9_$][0-9.])(?:(?<=0)x[0-9a-f]+|(?<=0)b[0-9]+|(?<=\.)[0-9]+(?:e[-+]?[0-9]+)?|"
                  rb"(?<=[0-9])[0-9]*(?:\.[0-9]*)?(?:e[-+]?[0-9]+)?)(?![a-z0-9_])")
# Names that end in digits and name one thing, not one of a numbered series (charsets, types, hash functions):
# kept by their shape, so `utf8mb4` stays and a table named `int7` does too.
KEEP_DIGITS = tuple(
    "utf8 utf8mb3 utf8mb4 utf16 utf16le utf32 ucs2 latin1 latin2 latin5 latin7 cp1250 cp1251 cp1256 cp1257 cp850 "
    "cp852 cp866 cp932 big5 gb2312 gb18030 koi8r koi8u hp8 dec8 swe7 armscii8 geostd8 keybcs2 int1 int2 int3 int4 "
    "int8 float4 float8 md5 sha1 sha2 crc32 log2 log10 atan2 ipv4 ipv6 inet4 inet6 x509".split())
_KEEP = re.compile(b"|".join(sorted({re.sub(r"[0-9]+", "[0-9]+", w).encode() for w in KEEP_DIGITS}, key=len,
                                    reverse=True)))
# The digits ending a name: -> ? (sbtest12 -> sbtest?, e1.id -> e?.id); not a function's name (sha2(...)).
_NAME_DIGITS = re.compile(rb"[0-9](?<=[a-z_$][0-9])[0-9]*(?![a-z0-9_$(])")
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_$")
# A unary sign: after an operator, an opening parenthesis, a comma or a keyword, before a number (now ?).
_SIGN_AFTER = ["[=<>(,*/%^&|~!+-]"] + [r"\b" + k for k in (
    "and", "or", "not", "by", "in", "is", "between", "select", "where", "when", "then", "else", "like", "limit",
    "offset", "return", "values", "value", "set", "interval", "having", "on", "div", "mod", "xor", "case")]
_SIGN = re.compile(("[-+](?:" + "|".join(f"(?<={k}[-+])|(?<={k} [-+])" for k in _SIGN_AFTER) + r") ?(?=\?)")
                   .encode())
_BOOL = re.compile(rb"(?<![a-z0-9_$])(?:true|false)(?![a-z0-9_$])")
_NULL = re.compile(rb"(?<![a-z0-9_$])(?<!not )(?<!is )null(?![a-z0-9_$])")
_ASC = re.compile(rb" asc\b(?=[ ,)]|\Z)")
# Rows of a multi-row VALUES that read the same once their literals are ? (`(?, ?, now())` n times): one row,
# as pt's cut to the first row gives, but keeping what follows (ON DUPLICATE KEY UPDATE ...).
_SAME_ROWS = re.compile(rb"(\bvalues? ?)(\((?:[^()]++|\([^()]*+\))*+\))(?: ?, ?\2)++")


class _Ambiguous(Exception):
    pass


def _pass1(q: bytes) -> bytes:
    out, pos = [], 0
    for m in _LEX.finditer(q):
        kind = m.lastgroup
        if kind == "q":
            continue
        out.append(q[pos:m.start()])
        pos = m.end()
        if kind == "c":
            out.append(b" ")
        elif _AMBIGUOUS.search(q, m.start(), pos):  # the rest could be code or string: none of it shows
            out.append(b"? /* ... */")
            return b"".join(out)
        else:
            out.append(b"?")
    out.append(q[pos:])
    return b"".join(out)


def _name_digits(m: re.Match) -> bytes:
    s, i = m.string, m.start()
    while i > 0 and s[i - 1] in _NAME_CHARS:
        i -= 1
    if _KEEP.fullmatch(s, i, m.end()):
        return m.group(0)
    return b"?"


_AMBIGUOUS_MARKS = re.compile(rb'--|#|/\*|\\|"')
_FIRST_MARK = re.compile(rb"""--|#|/\*|\\|["'`]""")


def guarded(q: bytes) -> bytes | None:
    """For a statement that can carry a credential and holds something whose reading depends on the server's
    settings (a comment marker: `--` without a space is one under sql_mode=ORACLE; a backslash:
    NO_BACKSLASH_ESCAPES; a double quote: ANSI_QUOTES), only what comes before the first quote or marker, then
    `?`: no reading of the rest can show a password. None for every other statement."""
    if not _SECRETISH.search(q) or not _AMBIGUOUS_MARKS.search(q):
        return None
    m = _FIRST_MARK.search(q)
    head = b" ".join(q[:m.start()].split()).lower()
    return _NUM.sub(b"?", head) + b" ?" if head else b"?"


def _ours_uncached(q: bytes) -> bytes:
    g = guarded(q)
    if g is not None:
        return g
    if _PT_MYSQLDUMP.match(q):
        return b"mysqldump"
    if b"/*" in q and _PT_TOOLKIT.search(q):
        return b"percona-toolkit"
    if q.startswith(b"administrator command: "):
        return q
    m = _PT_CALL.match(q)
    if m:
        return m.group(1).lower()
    if _LEXED.search(q):
        q = _pass1(q)
    q = b" ".join(q.split()).lower()  # bytes.split(): ASCII whitespace, as \s
    while q.endswith(b";"):
        q = q[:-1].rstrip()
    if q.startswith(b"use ") and b" " not in q[4:]:
        return b"use ?"
    if b"?" in q:
        q = _INTRO.sub(b"?", q)
    q = _NUM.sub(b"?", q)
    q = _NAME_DIGITS.sub(_name_digits, q)
    if b"-" in q or b"+" in q:
        q = _SIGN.sub(b"", q)
    if b"true" in q or b"false" in q:
        q = _BOOL.sub(b"?", q)
    if b"null" in q:
        q = _NULL.sub(b"?", q)
    if b"(" in q:
        if b"value" in q:
            q = _SAME_ROWS.sub(rb"\1\2", q)
        q = _PT_LIST.sub(rb"\1(?+)", q)
    if b"union" in q:
        q = _collapse_union(q)
    if b"limit" in q:
        q = _PT_LIMIT.sub(b"limit ?", q, count=1)
    i = q.find(b"order by ")
    if i >= 0:
        q = q[:i] + _ASC.sub(b"", q[i:])
    return q


# -- memoised entry points -------------------------------------------------------------------------------------
_pt_cache: dict[bytes, bytes] = {}
_our_cache: dict[bytes, bytes] = {}


_DIGIT0 = bytes.maketrans(b"123456789", b"000000000")
_ZEROS = re.compile(rb"00+")
_DIGIT = re.compile(rb"[0-9]")


_SIMPLE_STRING = re.compile(rb"'[^'`]*'")
_SIMPLE_COMMENT = re.compile(rb"/\*[^'\"`*/\\#!-]+\*/")  # pt keeps /**/ and /*!...*/
_NO_NORMALISE = re.compile(rb"\s*(?:call\s|use\s)|administrator command", re.I)
_INSERT = re.compile(rb"insert|replace", re.I)
# Code, back-quoted names without a quote or a star (so no comment), strings without a back-quote: nothing else.
_PAIRED = re.compile(rb"(?:[^'`]++|`[^`'*]*+`|'[^'`]*+')*+\Z")  # possessive: no backtracking
_CUTS_INSERT = re.compile(rb"[(),]|values", re.I)


def _normalised(q: bytes) -> bytes:
    """`q` with every '...' string emptied and every plain /* ... */ comment made `/* */`, where both
    fingerprints provably read them the same way; else `q`. That is when the statement has no backslash, double
    quote or one-line comment, its comments hold no quote, star, slash or dash, its back-quoted names hold no
    quote or comment, and every stretch between names holds an even number of quotes: then each string ends at
    the next quote and each comment at the next */, whatever reads them. pt cuts a multi-row INSERT at the first
    `), (`: there, strings holding a parenthesis, a comma or VALUES keep their text. Statements pt returns early
    by text (USE, CALL, administrator commands) are left alone."""
    if b"\\" in q or b'"' in q or b"#" in q or b"--" in q or _NO_NORMALISE.match(q):
        return q
    if b"/*" in q:
        q2 = _SIMPLE_COMMENT.sub(b"/* */", q)
        rest = q2.replace(b"/* */", b"")
        if b"/*" in rest or b"*/" in rest:
            return q
    else:
        q2 = q
    if b"'" in q2:
        if b"`" in q2 and not _PAIRED.match(q2):  # without names, quotes pair one after another everywhere
            return q
        if _INSERT.match(q2) and any(_CUTS_INSERT.search(x) for x in _SIMPLE_STRING.findall(q2)):
            return q
        q2 = _SIMPLE_STRING.sub(b"''", q2)
    elif b"`" in q2 and not _PAIRED.match(q2):
        return q
    return q2


def _key(q: bytes) -> bytes | None:
    """The memo key: the statement `_normalised`, then every digit run -> one 0 (`id=42`, `id=7`, `sbtest12`
    and `sbtest3` share it). None: the statement carries the percona-toolkit marker, whose test counts digits."""
    if b"'" in q or b"/*" in q:
        q = _normalised(q)
    key = _ZEROS.sub(b"0", q.translate(_DIGIT0))
    if b"/*" in key and _PT_TOOLKIT.search(key):
        return None
    return key


# Two levels: the statement with its digits made 0 (one C call: a hit costs a dict lookup), then the key. The key
# is a function of that text (emptying strings and collapsing digit runs do not look at a digit's value), so an
# entry stored under it holds for every statement that maps to it.
_pt_l1: dict[bytes, bytes] = {}
_our_l1: dict[bytes, bytes] = {}


def _memoised(q: bytes, l1: dict, l2: dict, compute) -> bytes:
    t = q.translate(_DIGIT0)
    fp = l1.get(t)
    if fp is not None:
        return fp
    key = _key(q)
    fp = l2.get(key)
    if fp is None:
        fp = compute(q, key)
        # A fingerprint without digits does not depend on the statement's digits (every rule reads a digit
        # run's shape only): it holds for every statement with this key. One with digits (CALL p1,
        # administrator commands, a name such as utf8mb4 or t1a) is computed each time.
        if key is None or _DIGIT.search(fp):
            return fp
        if len(l2) >= _CACHE_MAX:
            l2.clear()
        l2[key] = fp
    if len(l1) >= _CACHE_MAX:
        l1.clear()
    l1[t] = fp
    return fp


def _pt_or_ours(q: bytes, key: bytes | None) -> bytes:
    # (read on the key: its strings are empty, so a word inside a string literal does not decide)
    return _ours_uncached(q) if _SECRETISH.search(q if key is None else key) else _pt_uncached(q)


def pt_fingerprint(q: bytes) -> bytes:
    """pt-query-digest 3.2.1's fingerprint (statements that can carry a credential: ours)."""
    return _memoised(q, _pt_l1, _pt_cache, _pt_or_ours)


def fingerprint(q: bytes) -> bytes:
    """The default fingerprint: pt's rules, tokenised (right where pt 3.2.1 is wrong)."""
    return _memoised(q, _our_l1, _our_cache, lambda q, key: _ours_uncached(q))


def checksum(fp: bytes) -> str:
    """pt-query-digest's make_checksum: MD5 of the fingerprint, upper-case hex."""
    return hashlib.md5(fp, usedforsecurity=False).hexdigest().upper()


__all__ = ["fingerprint", "pt_fingerprint", "checksum", "KEEP_DIGITS"]
