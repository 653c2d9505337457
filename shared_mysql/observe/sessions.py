"""Sessions by tenant: the seed's "too many connections" runbook (`connections`) and the live `top` screen.

Every session is attributed to the tenant whose account opened it (both accounts of a rotation pair count for the
same tenant), the admin, the server itself, or `unmanaged`. Query texts are shown with every literal masked.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass

from ..sql.quoting import as_text

Q_SESSIONS = ("SELECT ID, USER, HOST, DB, COMMAND, TIME, STATE, LEFT(INFO, 400), CONNECTION_ID() "
              "FROM information_schema.PROCESSLIST")
Q_SIZES = ("SELECT TABLE_SCHEMA, SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES "
           "GROUP BY TABLE_SCHEMA")
Q_LIMITS = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections')"
SERVER_USERS = {"system user", "event_scheduler", "unauthenticated user", "rdsadmin", "rdsrepladmin", "rdstopmgr"}
SERVER_COMMANDS = {"Daemon", "Binlog Dump", "Binlog Dump GTID", "Slave_IO", "Slave_SQL", "Slave_worker"}

_TOKENS = re.compile(r"""
    (?P<comment>/\*(?!!|M!).*?(?:\*/|\Z) | (?:--(?=[\x00-\x20\x7f]|\Z)|\#)[^\n]*)  # comments: dropped; /*! is code
  | (?P<ident>`(?:[^`]|``)*`?)                                   # backquoted names: kept (a quote inside is no string)
  | (?P<string>'(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.|"")*"?)     # strings
  | (?P<number>\b0x[0-9a-f]+\b|\b0b[01]+\b|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b|\.\d+\b)
""", re.S | re.I | re.X)


def mask(sql: str | None, limit: int = 200) -> str:
    """A statement with every literal (strings, numbers, hex, bit values) replaced by ?, comments dropped, on one
    line: a password in an ALTER USER, a card number in a WHERE, none of them shows. A string holding a
    backslash-quote could end earlier under NO_BACKSLASH_ESCAPES: everything from it on is masked."""
    if not sql:
        return ""
    out, pos = [], 0
    for m in _TOKENS.finditer(sql):
        out.append(sql[pos:m.start()])
        pos = m.end()
        kind = m.lastgroup
        if kind == "comment":
            out.append(" ")
        elif kind == "ident":
            out.append(m.group(0))
        elif kind == "string":
            out.append("?")
            if "\\'" in m.group(0) or '\\"' in m.group(0):
                out.append(" ...")
                pos = len(sql)
                break
        else:
            out.append("?")
    out.append(sql[pos:])
    return " ".join("".join(out).split())[:limit]


@dataclass
class Session:
    id: int
    user: str
    host: str
    db: str
    command: str
    seconds: int
    state: str
    query: str  # masked
    tenant: str  # a tenant's name, "admin", "server" or "unmanaged"
    own: bool = False  # this tool's own session

    @property
    def killable(self) -> bool:
        return not self.own and self.tenant not in ("admin", "server")

    def to_json(self) -> dict:
        return {**asdict(self), "killable": self.killable}


def owners(desired) -> dict[str, str]:
    """account name -> tenant (both twins)."""
    return {n: t.name for t in desired.tenants for a in t.accounts for n in a.names}


def read_sessions(ex, desired) -> list[Session]:
    who = owners(desired)
    out = []
    for sid, user, host, db, command, secs, st, info, own in ex.query(Q_SESSIONS):
        user, command = as_text(user), as_text(command)
        if user in who:
            tenant = who[user]
        elif user in desired.admin_users:
            tenant = "admin"
        elif user in SERVER_USERS or command in SERVER_COMMANDS or not user:
            tenant = "server"
        else:
            tenant = "unmanaged"
        out.append(Session(int(sid), user, as_text(host), as_text(db), command, int(secs or 0), as_text(st),
                           mask(as_text(info)), tenant, int(sid) == int(own)))
    return out


def select(sessions: list[Session], *, tenant: str | None = None, idle: int | None = None) -> list[Session]:
    """The sessions `connections` lists: a tenant's (or every tenant's and unmanaged), idle for `idle` s."""
    out = [s for s in sessions if s.tenant not in ("server",) and not s.own]
    if tenant:
        out = [s for s in out if s.tenant == tenant]
    if idle is not None:
        out = [s for s in out if s.command == "Sleep" and s.seconds >= idle]
    return out


def kill(ex, sessions: list[Session]) -> tuple[list[int], list[str]]:
    """KILL CONNECTION each killable session; never this tool's own, the admin's or the server's. A session gone
    meanwhile (error 1094) is not a failure."""
    from ..errors import ServerError

    killed, failed = [], []
    for s in sessions:
        if not s.killable:
            continue
        try:
            ex.query(f"KILL CONNECTION {int(s.id)}")
            killed.append(s.id)
        except ServerError as exc:
            if "1094" in str(exc):  # Unknown thread id: it ended on its own
                continue
            failed.append(f"session {s.id}: {exc}")
    return killed, failed


def per_tenant(sessions: list[Session], desired, sizes: dict[str, int]) -> list[dict]:
    """top's rows: per tenant, connections in use vs its limit (twins together), active queries, the longest
    running one (age, masked sample), the database's size."""
    rows = []
    for t in desired.tenants:
        mine = [s for s in sessions if s.tenant == t.name]
        active = [s for s in mine if s.command not in ("Sleep",)]
        longest = max(active, key=lambda s: s.seconds, default=None)
        limit = sum(a.max_connections for a in t.accounts)
        rows.append({"tenant": t.name, "connections": len(mine), "limit": limit,
                     "used": round(len(mine) / limit, 3) if limit else 0.0, "active": len(active),
                     "longest_s": longest.seconds if longest else 0,
                     "longest_query": longest.query if longest else "",
                     "size_bytes": int(sizes.get(t.database, 0) or 0)})
    rows.sort(key=lambda r: (-r["used"], -r["connections"], r["tenant"]))
    other = [s for s in sessions if s.tenant == "unmanaged"]
    if other:
        rows.append({"tenant": "unmanaged", "connections": len(other), "limit": 0, "used": 0.0,
                     "active": sum(1 for s in other if s.command != "Sleep"), "longest_s": 0, "longest_query": "",
                     "size_bytes": 0})
    return rows


def snapshot(target, ex, desired) -> dict:
    sessions = read_sessions(ex, desired)
    sizes = {as_text(k): int(v or 0) for k, v in ex.query(Q_SIZES)}
    limits = {as_text(k).lower(): as_text(v) for k, v in ex.query(Q_LIMITS)}
    max_conn = int(limits.get("max_connections", target.config.instance.max_connections))
    reserve = target.config.instance.connection_reserve
    total = sum(1 for s in sessions if s.tenant != "server")
    return {"time": time.time(), "connections": total, "max_connections": max_conn, "reserve": reserve,
            "tenant_budget": max_conn - reserve,
            "by_tenant": {k: sum(1 for s in sessions if s.tenant == k) for k in ("admin", "unmanaged")},
            "tenants": per_tenant(sessions, desired, sizes)}


_USER_HOST = re.compile(r"^# User@Host: ([^\s\[\]]*)\[([^\s\[\]]*)\] @ (\S*) \[(\S*)\](?:\s+Id:\s*\d+)?\s*$")


class SlowScanner:
    """Slow-log lines in, (entry time, tenant) out, one per entry (at its `# Query_time:` line). An entry is
    attributed only when it has exactly one well-formed `# User@Host: name[name] @ host [ip]` line: the server
    writes account names as they are, so a name holding `[` or a newline (a forged header line) makes the entry
    `unmanaged`, never another tenant's. The admin's own queries count as `admin`."""

    def __init__(self, who: dict[str, str], admins=()):
        self.who, self.admins = who, set(admins)
        self.when = None
        self.user: str | None = None
        self.headers = 0

    def feed(self, line: str):
        if line.startswith("# Time:"):
            self.when = _slow_time(line[7:].strip())
        elif line.startswith("# User@Host:"):
            self.headers += 1
            m = _USER_HOST.match(line.rstrip("\n"))
            self.user = m.group(2) if m and m.group(1) == m.group(2) else None
        elif line.startswith("# Query_time:"):
            user, tainted = self.user, self.headers != 1
            self.user, self.headers = None, 0
            if user is None or tainted:
                return self.when, "unmanaged"
            if user in self.admins:
                return self.when, "admin"
            return self.when, self.who.get(user, "unmanaged")
        return None


def _slow_time(stamp: str):
    from ..slowlog.parse import parse_time  # one reader of `# Time:` (MariaDB local time, MySQL 8 UTC)

    return parse_time(stamp.encode("utf-8", "replace"))


def slow_counts(path, since: float, who: dict[str, str], admins=()) -> dict[str, int]:
    """Slow-log entries per tenant since `since` (epoch s), from a local slow log (MariaDB or MySQL format)."""
    counts: dict[str, int] = {}
    scanner = SlowScanner(who, admins)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(max(0, size - (8 << 20)))  # the recent end is enough for an interval
            for raw in fh:
                hit = scanner.feed(raw.decode("utf-8", "replace"))
                if hit and hit[0] is not None and hit[0] >= since:
                    counts[hit[1]] = counts.get(hit[1], 0) + 1
    except OSError:
        pass
    return counts


def _size(n: int) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)


def render_top(snap: dict, identifier: str) -> str:
    from ..tenants.render import shown

    lines = [f"{identifier}: {snap['connections']} connections of max_connections {snap['max_connections']} "
             f"(reserve {snap['reserve']}: tenants may use {snap['tenant_budget']}); admin "
             f"{snap['by_tenant'].get('admin', 0)}, unmanaged {snap['by_tenant'].get('unmanaged', 0)}",
             f"{'TENANT':<20} {'CONN':>9} {'USED':>6} {'ACTIVE':>6} {'LONGEST':>8} {'SIZE':>8} {'SLOW':>5}  QUERY"]
    for r in snap["tenants"]:
        slow = "-" if r.get("slow_queries") is None else str(r["slow_queries"])
        lines.append(f"{shown(r['tenant']):<20} {r['connections']:>4}/{r['limit']:<4} {r['used'] * 100:>5.0f}% "
                     f"{r['active']:>6} {r['longest_s']:>7}s {_size(r['size_bytes']):>8} {slow:>5}  "
                     f"{shown(r['longest_query'])[:80]}")
    return "\n".join(lines)


def rich_top(snap: dict, identifier: str):
    from rich.table import Table

    from ..tenants.render import shown

    table = Table(title=f"{identifier}: {snap['connections']}/{snap['max_connections']} connections "
                        f"(tenants may use {snap['tenant_budget']})", expand=True)
    for col, just in (("tenant", "left"), ("conn/limit", "right"), ("used", "right"), ("active", "right"),
                      ("longest", "right"), ("size", "right"), ("slow", "right"), ("query", "left")):
        table.add_column(col, justify=just, no_wrap=col != "query")
    for r in snap["tenants"]:
        style = "bold red" if r["used"] >= 0.9 else ("yellow" if r["used"] >= 0.7 else None)
        table.add_row(shown(r["tenant"]), f"{r['connections']}/{r['limit']}", f"{r['used'] * 100:.0f}%",
                      str(r["active"]), f"{r['longest_s']}s", _size(r["size_bytes"]),
                      "-" if r.get("slow_queries") is None else str(r["slow_queries"]),
                      shown(r["longest_query"])[:120], style=style)
    return table
