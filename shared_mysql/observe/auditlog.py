"""`logs audit`: failed logins per 5 minutes (by user and host) and account changes (CREATE/ALTER/DROP/RENAME
USER, GRANT, REVOKE, SET PASSWORD), from the MariaDB audit plugin's log: the local file (and its rotations), or on
aws the instance's `audit` log group through CloudWatch Logs Insights (`start_query`, the seed's queries).
Statements are shown with every literal masked: a password in an ALTER USER never prints."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from .sessions import mask

BUCKET = 300
_CHANGE = re.compile(r"^(CREATE\s+(OR\s+REPLACE\s+)?(USER|ROLE)|ALTER\s+(USER|ROLE)|DROP\s+(USER|ROLE)|RENAME\s+USER|"
                     r"GRANT|REVOKE|SET\s+(PASSWORD|DEFAULT\s+ROLE))\b", re.IGNORECASE)
_LEADING = re.compile(r"^(?:\s+|/\*.*?\*/|(?:--\s|\#)[^\n]*\n)*", re.S)
_SECRET = re.compile(r"""((?:IDENTIFIED\s+(?:VIA|WITH)\s+\S+\s+(?:USING|BY|AS)|IDENTIFIED\s+BY(?:\s+PASSWORD)?|"""
                     r"""PASSWORD\s*\(|SET\s+PASSWORD\b[^=]*=(?:\s*PASSWORD\s*\()?)\s*)"""
                     r"""('(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.|"")*"?)""", re.I | re.S)


def mask_change(statement: str) -> str:
    """An account change as it reads, with what secures the account (passwords, hashes) masked: the names it
    changes stay readable. Anything ambiguous (a backslash-quote) is masked as every other statement is."""
    if "\\'" in statement or '\\"' in statement:
        return mask(statement)
    text = _SECRET.sub(lambda m: m.group(1) + "?", statement)
    text = re.sub(r"/\*.*?(\*/|\Z)", " ", text, flags=re.S)
    return " ".join(text.split())[:300]
_DURATION = re.compile(r"(\d+)\s*([smhd])")

# The seed's Logs Insights queries (failed logins; GRANT/REVOKE tracking), run as they are on aws.
INSIGHTS_FAILED = ("fields @timestamp, @message | filter @message like /FAILED_CONNECT/ "
                   "| sort @timestamp desc | limit 10000")
INSIGHTS_CHANGES = ("fields @timestamp, @message | filter @message like /(?i)(GRANT|REVOKE|CREATE USER|ALTER USER|"
                    "DROP USER|RENAME USER|SET PASSWORD)/ | sort @timestamp desc | limit 10000")


def duration(text: str) -> float | None:
    """`1h`, `30m`, `2d`, `90s` (or combinations such as 1h30m) -> seconds; None when it is not one."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text.strip().lower()):
        return None
    return float(sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts))


def parse_since(text: str) -> float:
    """`1h`, `30m`, `2d`, `90s` (or combinations such as 1h30m) -> seconds."""
    seconds = duration(text)
    if seconds is None:
        from ..errors import UsageError

        raise UsageError(f"--since {text[:40]!r}: write a duration such as 90s, 30m, 1h or 2d")
    return seconds


_HEAD = re.compile(r"^(\d{8} \d\d:\d\d:\d\d),([^,]*),")
# Connection events end with a tail the server writes after the (unescaped) account name: read from the right,
# so a name holding commas or a newline cannot pose as another field, another account or another record.
_CONNECT_TAIL = re.compile(r",([^,]*),(\d+),(\d+),(CONNECT|DISCONNECT|FAILED_CONNECT|CHANGEUSER),([^,]*),([^,]*),"
                           r"(-?\d+)$")
_QUERY = re.compile(r"^(\d{8} \d\d:\d\d:\d\d),([^,]*),([^,]*),([^,]*),(\d+),(\d+),(QUERY[A-Z_]*),([^,]*),"
                    r"'(.*)',(-?\d+)$", re.S)


def parse_line(line: str):
    """One audit-plugin line -> (epoch, user, host, operation, statement, retcode), or None. A statement's record
    needs an account name without commas (only authenticated accounts run statements; the admin makes them)."""
    head = _HEAD.match(line)
    if not head:
        return None
    try:
        when = datetime.strptime(head.group(1), "%Y%m%d %H:%M:%S").timestamp()
    except ValueError:
        return None
    tail = _CONNECT_TAIL.search(line)
    if tail and tail.start() >= head.end() - 1:
        user = line[head.end():tail.start()]
        return when, user, tail.group(1), tail.group(4), "", int(tail.group(7))
    q = _QUERY.match(line)
    if q:
        return when, q.group(3), q.group(4), q.group(7), q.group(9).replace("\\'", "'"), int(q.group(10))
    return None


def is_failed_login(op: str, retcode: int) -> bool:
    return op == "FAILED_CONNECT" or (op == "CONNECT" and retcode != 0)


def read_local(path: Path, since: float) -> list[tuple]:
    """The audit log and its rotations (audit.log.1 ... oldest last), entries since `since`."""
    files = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit()
                   else 0) + [path]
    out = []
    for f in files:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    rec = parse_line(line.rstrip("\n"))
                    if rec and rec[0] >= since:
                        out.append(rec)
        except OSError:
            continue
    return out


def read_cloudwatch(config, since: float, now: float, poll=time.sleep) -> list[tuple]:
    """Run the seed's two Logs Insights queries on the instance's audit log group; each result message is an
    audit-plugin line (RDS writes them unchanged)."""
    from ..aws import client_for, describe_error
    from ..errors import SharedMySQLError

    logs = client_for(config, "logs")
    group = f"/aws/rds/instance/{config.db_instance_identifier}/audit"
    seen: dict = {}
    try:
        for q in (INSIGHTS_FAILED, INSIGHTS_CHANGES):
            qid = logs.start_query(logGroupName=group, startTime=int(since), endTime=int(now) + 1,
                                   queryString=q)["queryId"]
            deadline = time.monotonic() + 60
            while True:
                res = logs.get_query_results(queryId=qid)
                if res.get("status") in ("Complete", "Failed", "Cancelled", "Timeout"):
                    break
                if time.monotonic() > deadline:
                    raise SharedMySQLError(f"CloudWatch Logs Insights query on {group} did not finish in 60 s")
                poll(1)
            for fields in res.get("results", []):
                f = {x.get("field"): x.get("value") for x in fields}
                rec = parse_line(f.get("@message") or "")
                if rec:  # both queries may return an event: one record per event (its @ptr)
                    seen[f.get("@ptr") or f.get("@message")] = rec
    except SharedMySQLError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"CloudWatch Logs {group}: {describe_error(exc)}") from None
    return sorted(seen.values())


def summarise(records, who: dict[str, str], tenant: str | None = None, threshold: int = 10,
              admins=()) -> dict:
    """Failed logins per 5-minute bucket by user and host; account changes (in log order), passwords masked.
    `tenant`: its accounts' failed logins and the changes made by or to them; `unmanaged`: accounts that are
    neither a tenant's nor the admin's."""
    admins = set(admins)
    names = {u for u, t in who.items() if t == tenant} if tenant and tenant != "unmanaged" else None

    def mine(user: str, statement: str = "") -> bool:
        if tenant is None:
            return True
        if tenant == "unmanaged":
            return user not in who and user not in admins
        return user in names or any(re.search(rf"[`'\"]{re.escape(n)}[`'\"]", statement) for n in names)

    failed: dict[tuple, int] = {}
    changes = []
    for when, user, host, op, statement, retcode in sorted(records, key=lambda r: r[0]):  # stable: log order
        if is_failed_login(op, retcode):
            if mine(user):
                key = (int(when // BUCKET * BUCKET), user or "(no user)", host)
                failed[key] = failed.get(key, 0) + 1
        elif op.startswith("QUERY"):
            body = _LEADING.sub("", statement or "")
            if _CHANGE.match(body) and mine(user, body):
                changes.append({"time": _iso(when), "user": user, "host": host, "statement": mask_change(body),
                                "ok": retcode == 0})
    buckets: dict[int, int] = {}
    for (start, _, _), n in failed.items():
        buckets[start] = buckets.get(start, 0) + n
    return {
        "failed_logins": [{"period_start": _iso(s), "user": u, "host": h, "count": n}
                          for (s, u, h), n in sorted(failed.items())],
        "failed_login_periods_over_threshold": [_iso(s) for s, n in sorted(buckets.items()) if n > threshold],
        "account_changes": changes,
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def render(summary: dict) -> str:
    from ..tenants.render import shown

    lines = [f"Failed logins (per 5 minutes; alarm above the threshold in: "
             f"{', '.join(summary['failed_login_periods_over_threshold']) or 'none'}):"]
    lines += [f"  {r['period_start']}  {r['count']:>5}  {shown(r['user'])}@{shown(r['host'])}"
              for r in summary["failed_logins"]] or ["  none"]
    lines.append("Account changes:")
    lines += [f"  {c['time']}  {shown(c['user'])}@{shown(c['host'])}  {'' if c['ok'] else '(refused) '}"
              f"{shown(c['statement'])}" for c in summary["account_changes"]] or ["  none"]
    return "\n".join(lines)
