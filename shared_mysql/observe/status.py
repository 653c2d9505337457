"""`status`: the seed's six alarms and the failed-login alarm, evaluated with CloudWatch's semantics (alarms.py).

aws: the values come from CloudWatch (GetMetricData, the same metrics, periods and statistics as the stack's
alarms) and the states the stack's alarms report (DescribeAlarms) are shown beside ours. local/server: the values
are measured: from the server (connections, failed logins: status counters) and, for local, from the host (the
server process's CPU, the datadir's filesystem, available memory, the datadir device's I/O latency). Each run
records a sample into a small history in the state dir (`metrics.json`, a day kept), so the two evaluation
periods of five minutes mean something between runs; periods nobody sampled are missing data, as in CloudWatch.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .alarms import ALARM, INSUFFICIENT, evaluate

PERIOD = 300
RANGE = 5  # periods looked at (CloudWatch's evaluation range for N = 2..3)
HISTORY_S = 86400


@dataclass(frozen=True)
class AlarmSpec:
    key: str  # the stack's alarm name is {instance}-{key}
    metric: str  # CloudWatch metric (AWS/RDS, or the stack's metric filter)
    threshold_attr: str  # in instance.alarms
    comparison: str
    statistic: str
    evaluation_periods: int
    treat_missing: str
    unit: str


# As the infra stack creates them (shared_mysql/infra/stack.py).
ALARMS = (
    AlarmSpec("cpu-utilization", "CPUUtilization", "cpu_utilization_threshold", "GreaterThanThreshold", "Average", 2,
              "missing", "%"),
    AlarmSpec("free-storage-space", "FreeStorageSpace", "free_storage_space_threshold", "LessThanThreshold",
              "Average", 2, "breaching", "bytes"),
    AlarmSpec("freeable-memory", "FreeableMemory", "freeable_memory_threshold", "LessThanThreshold", "Average", 2,
              "missing", "bytes"),
    AlarmSpec("database-connections", "DatabaseConnections", "database_connections_threshold",
              "GreaterThanThreshold", "Maximum", 2, "missing", "connections"),
    AlarmSpec("read-latency", "ReadLatency", "read_latency_threshold", "GreaterThanThreshold", "Average", 2,
              "missing", "s"),
    AlarmSpec("write-latency", "WriteLatency", "write_latency_threshold", "GreaterThanThreshold", "Average", 2,
              "missing", "s"),
    AlarmSpec("failed-login-attempts", "FailedLoginAttempts", "failed_login_threshold", "GreaterThanThreshold",
              "Sum", 1, "notBreaching", "logins"),
)


# -- measuring (local / server) ----------------------------------------------------------------------------------
def _proc_cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _device_stats(path: Path) -> tuple[int, int, int, int] | None:
    """(reads, ms reading, writes, ms writing) of the block device holding `path` (its whole disk when the
    filesystem sits on a partition), from /proc/diskstats."""
    try:
        st = os.stat(path)
        major, minor = os.major(st.st_dev), os.minor(st.st_dev)
        dev = Path(f"/sys/dev/block/{major}:{minor}").resolve()
        names = {dev.name}
        if (dev / "partition").exists():
            names.add(dev.parent.name)
        rows = {r.split()[2]: r.split() for r in Path("/proc/diskstats").read_text().splitlines() if len(r.split()) > 10}
        for name in (dev.name, dev.parent.name):
            f = rows.get(name)
            if f:
                return int(f[3]), int(f[6]), int(f[7]), int(f[10])
    except (OSError, ValueError):
        pass
    return None


def take_sample(ex, *, pid: int | None = None, datadir: Path | None = None, now: float | None = None) -> dict:
    """One sample: server counters always; host figures when the server runs here (pid, datadir)."""
    from ..sql.quoting import as_text

    rows = dict((as_text(k), as_text(v)) for k, v in ex.query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Aborted_connects')"))
    s: dict = {"t": time.time() if now is None else now,
               "connections": int(rows.get("Threads_connected", 0))}
    # Aborted_connects: connection attempts that failed (bad password, unknown account, refused TLS...).
    # Access_denied_errors also counts statements refused for want of a privilege: not a login.
    denied = rows.get("Aborted_connects")
    if denied is not None:
        s["denied"] = int(denied)
    if pid:
        s["cpu_ticks"] = _proc_cpu_ticks(pid)
        s["ncpu"] = os.cpu_count() or 1
        s["mem_available"] = _mem_available()
    if datadir:
        try:
            vfs = os.statvfs(datadir)
            s["free_storage"] = vfs.f_bavail * vfs.f_frsize
        except OSError:
            pass
        disk = _device_stats(datadir)
        if disk:
            s["disk"] = list(disk)
    return s


MAX_HISTORY_BYTES = 8 << 20


def load_history(path: Path) -> dict:
    """The sample history, or a fresh one when it is missing, unreadable, too big, or not what this tool writes
    (a FIFO, a symlink or a device is never read: the state dir's safe reader). Bad entries are dropped."""
    from ..secrets.file import read_regular

    fresh: dict = {"samples": [], "states": {}}
    try:
        if path.is_file() and path.stat().st_size > MAX_HISTORY_BYTES:
            return fresh
        raw = read_regular(path)
        data = json.loads(raw) if raw else None
    except (OSError, ValueError):
        return fresh
    if not isinstance(data, dict):
        return fresh
    samples = [x for x in data.get("samples") or [] if isinstance(x, dict) and isinstance(x.get("t"), (int, float))
               and not isinstance(x.get("t"), bool) and all(isinstance(v, (int, float, list, type(None)))
                                                             for v in x.values())] \
        if isinstance(data.get("samples"), list) else []
    states = data.get("states")
    states = {k: v for k, v in states.items() if isinstance(k, str) and v in (ALARM, "OK", INSUFFICIENT)} \
        if isinstance(states, dict) else {}
    return {"samples": samples, "states": states}


def save_history(path: Path, data: dict, now: float) -> None:
    from ..secrets.file import write_private

    data["samples"] = [s for s in data["samples"] if isinstance(s, dict) and now - s.get("t", 0) < HISTORY_S][-5000:]
    write_private(path, json.dumps(data, separators=(",", ":")).encode(), durable=False)


def _rates(samples: list[dict]):
    """Per consecutive pair (a, b): b's time and what happened in between (CPU %, latencies, failed logins)."""
    for a, b in zip(samples, samples[1:]):
        dt = b["t"] - a["t"]
        if dt <= 0:
            continue
        out: dict = {}
        if a.get("cpu_ticks") is not None and b.get("cpu_ticks") is not None:
            ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            out["CPUUtilization"] = max(0.0, (b["cpu_ticks"] - a["cpu_ticks"]) / ticks / dt * 100 / b.get("ncpu", 1))
        if isinstance(a.get("disk"), list) and isinstance(b.get("disk"), list) and len(a["disk"]) == len(b["disk"]) == 4:
            dr, dr_ms, dw, dw_ms = (float(y) - float(x) for x, y in zip(a["disk"], b["disk"]))
            out["ReadLatency"] = (dr_ms / dr / 1000.0) if dr > 0 else 0.0
            out["WriteLatency"] = (dw_ms / dw / 1000.0) if dw > 0 else 0.0
        if a.get("denied") is not None and b.get("denied") is not None and b["denied"] >= a["denied"]:
            out["FailedLoginAttempts"] = float(b["denied"] - a["denied"])
        yield b["t"], out


def datapoints(samples: list[dict], now: float, period: int = PERIOD, n: int = RANGE) -> dict[str, list]:
    """metric -> the last `n` periods' datapoints (oldest first, None where nothing was sampled)."""
    samples = sorted(samples, key=lambda s: s["t"])
    end = (int(now) // period + 1) * period  # the current period counts, as CloudWatch's most recent one
    starts = [end - period * (n - i) for i in range(n)]
    buckets: dict[str, list[list[float]]] = {}

    def put(metric, t, v):
        if v is None:
            return
        i = int((t - starts[0]) // period)
        if 0 <= i < n:
            buckets.setdefault(metric, [[] for _ in range(n)])[i].append(float(v))

    for s in samples:
        put("DatabaseConnections", s["t"], s.get("connections"))
        put("FreeStorageSpace", s["t"], s.get("free_storage"))
        put("FreeableMemory", s["t"], s.get("mem_available"))
    for t, r in _rates(samples):
        for metric, v in r.items():
            put(metric, t, v)
    stat = {a.metric: a.statistic for a in ALARMS}
    out = {}
    for metric, lists in buckets.items():
        agg = {"Maximum": max, "Sum": sum, "Average": lambda xs: sum(xs) / len(xs)}[stat[metric]]
        out[metric] = [agg(xs) if xs else None for xs in lists]
    return out


def evaluate_all(config, points: dict[str, list], previous: dict[str, str], measurable: set[str]) -> list[dict]:
    rows = []
    for a in ALARMS:
        threshold = float(getattr(config.instance.alarms, a.threshold_attr))
        values = points.get(a.metric) or [None] * RANGE
        if a.metric not in measurable:
            state, note = INSUFFICIENT, "not measurable on this target"
        else:
            state = evaluate(values, threshold=threshold, comparison=a.comparison,
                             evaluation_periods=a.evaluation_periods, treat_missing=a.treat_missing,
                             current_state=previous.get(a.key, INSUFFICIENT))
            note = ""
        rows.append({"alarm": a.key, "metric": a.metric, "threshold": threshold, "comparison": a.comparison,
                     "statistic": a.statistic, "unit": a.unit, "values": values, "state": state, "note": note})
    return rows


LOCAL_METRICS = {a.metric for a in ALARMS}
SERVER_METRICS = {"DatabaseConnections", "FailedLoginAttempts"}


def record_and_evaluate(target, ex, now: float, *, sample: bool = True, short_rate: bool = False) -> list[dict]:
    """Add a sample to the target's history (when `sample`), evaluate the alarms over it, keep their states.
    `short_rate`: with no recent sample to take rates from, take two, 0.25 s apart (CPU, I/O, failed logins).
    Shared by `status` (every run) and the exporter (once a minute)."""
    pid = datadir = None
    if target.kind == "local":  # the host's figures only where the server runs here
        pid, datadir = target.server.pid(), target.server.paths.datadir
    path = target.state_dir / "metrics.json"
    hist = load_history(path)
    if sample:
        last = hist["samples"][-1] if hist["samples"] else None
        fresh = take_sample(ex, pid=pid, datadir=datadir, now=now)
        if short_rate and pid and (last is None or now - last.get("t", 0) > 2 * PERIOD):
            time.sleep(0.25)
            first, fresh = fresh, take_sample(ex, pid=pid, datadir=datadir, now=now + 0.25)
            hist["samples"].append(first)
        hist["samples"].append(fresh)
    rows = evaluate_all(target.config, datapoints(hist["samples"], now), hist.get("states", {}),
                        LOCAL_METRICS if pid else SERVER_METRICS)
    hist["states"] = {r["alarm"]: r["state"] for r in rows}
    save_history(path, hist, now)
    return rows


def local_status(target, now: float | None = None) -> dict:
    """Measure, record, evaluate (local / server)."""
    now = time.time() if now is None else now
    started = time.monotonic()
    with target.executor() as ex:
        version = ex.flavor.label
        rows = record_and_evaluate(target, ex, now, short_rate=True)
        from ..tenants import blocks

        blocked = blocks.read(ex)
    return {"target": target.kind, "server": version, "host": target.host, "port": target.port,
            "alarms": rows, "firing": [r["alarm"] for r in rows if r["state"] == ALARM],
            "backups": backup_status(target, now), "blocked_tenants": blocked,
            "seconds": round(time.monotonic() - started, 3)}


def backup_status(target, now: float) -> dict:
    """The newest backup and the binlog archive's RPO and gaps (local/server: what `backup list` shows)."""
    from ..backup.archive import Archive
    from ..backup.restore import Journal
    from ..backup.store import BackupDir, backup_dir

    store = BackupDir(backup_dir(target))
    latest = store.latest()
    arch = Archive(target).summary(now)
    return {"latest": latest.summary() if latest else None,
            "latest_age_s": round(now - latest.time, 1) if latest else None,
            "rpo_s": arch["rpo_s"], "archived_binlogs": arch["files"], "gaps": arch["gaps"],
            "unfinished_restores": Journal(store).pending()}


def aws_status(target, now: float | None = None) -> dict:
    """GetMetricData for each alarm's metric (its period and statistic, the evaluation range), evaluated here, and
    DescribeAlarms for what CloudWatch itself says of the stack's alarms."""
    from datetime import datetime, timezone

    from ..aws import client_for, describe_error

    now = time.time() if now is None else now
    c = target.config
    name = c.db_instance_identifier
    cw = client_for(c, "cloudwatch")
    end = (int(now) // PERIOD + 1) * PERIOD
    start = end - PERIOD * RANGE
    queries = []
    for i, a in enumerate(ALARMS):
        ns, dims = ("AWS/RDS", [{"Name": "DBInstanceIdentifier", "Value": name}])
        if a.metric == "FailedLoginAttempts":
            ns, dims = f"SharedMySQL/{name}", []
        queries.append({"Id": f"m{i}", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": a.metric,
                                                                 "Dimensions": dims},
                                                      "Period": PERIOD, "Stat": a.statistic}, "ReturnData": True})
    started = time.monotonic()
    try:
        res = cw.get_metric_data(MetricDataQueries=queries, StartTime=datetime.fromtimestamp(start, timezone.utc),
                                 EndTime=datetime.fromtimestamp(end, timezone.utc), ScanBy="TimestampAscending")
        alarms = {x["AlarmName"]: x for x in cw.describe_alarms(AlarmNamePrefix=f"{name}-").get("MetricAlarms", [])}
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        from ..errors import SharedMySQLError

        raise SharedMySQLError(f"CloudWatch: {describe_error(exc)}") from None
    points: dict[str, list] = {}
    for i, a in enumerate(ALARMS):
        r = next((x for x in res.get("MetricDataResults", []) if x["Id"] == f"m{i}"), {})
        slots: list = [None] * RANGE
        for ts, v in zip(r.get("Timestamps", []), r.get("Values", [])):
            k = int((ts.timestamp() - start) // PERIOD)
            if 0 <= k < RANGE:
                slots[k] = v
        points[a.metric] = slots
    rows = evaluate_all(c, points, {k.removeprefix(f"{name}-"): v.get("StateValue", INSUFFICIENT)
                                    for k, v in alarms.items()}, LOCAL_METRICS)
    for r in rows:
        cw_alarm = alarms.get(f"{name}-{r['alarm']}")
        r["cloudwatch_state"] = cw_alarm.get("StateValue") if cw_alarm else None
        if cw_alarm is None:
            r["note"] = "no such alarm in CloudWatch (deploy the infra stack)"
    firing = [r["alarm"] for r in rows if r["state"] == ALARM or r.get("cloudwatch_state") == ALARM]
    return {"target": "aws", "instance": name, "alarms": rows, "firing": firing,
            "seconds": round(time.monotonic() - started, 3)}


def render(status: dict) -> str:
    def fmt(v, unit):
        if v is None:
            return "-"
        if unit == "bytes":
            return f"{v / 1024**3:.1f}G" if v >= 1024**3 else f"{v / 1024**2:.0f}M"
        if unit == "s":
            return f"{v * 1000:.1f}ms"
        return f"{v:.1f}" if unit == "%" else f"{v:g}"

    op = {"GreaterThanThreshold": ">", "LessThanThreshold": "<"}
    head = status.get("instance") or f"{status['host']}:{status['port']} ({status['server']})"
    lines = [f"{head}: {len(status['firing'])} alarm(s) firing" + (f": {', '.join(status['firing'])}"
                                                                      if status["firing"] else "")]
    for r in status["alarms"]:
        values = " ".join(fmt(v, r["unit"]) for v in r["values"])
        cw = f"  cloudwatch: {r['cloudwatch_state']}" if "cloudwatch_state" in r else ""
        note = f"  ({r['note']})" if r["note"] else ""
        lines.append(f"  {r['state']:<17} {r['alarm']:<22} {op.get(r['comparison'], '?')} "
                     f"{fmt(r['threshold'], r['unit']):<8} last 5 periods: {values}{cw}{note}")
    b = status.get("backups")
    if b is not None:
        latest = b["latest"]
        lines.append("  backups: " + (f"latest {latest['id']} ({b['latest_age_s']:.0f} s ago, "
                                       + ("verified" if (latest.get("verified") or {}).get("ok") else "not verified")
                                       + ")" if latest else "none yet (`shared-mysql backup create`)")
                     + (f"; binlog archive RPO {b['rpo_s']} s" if b["rpo_s"] is not None else
                        "; no binlog archive (`shared-mysql backup archive --follow`)")
                     + "".join(f"; GAP {g['from']}..{g['to']}" for g in b["gaps"])
                     + "".join(f"; UNFINISHED restore into {', '.join(v)} (re-run it)"
                               for v in b.get("unfinished_restores", {}).values()))
    for tenant, why in sorted((status.get("blocked_tenants") or {}).items()):
        if why.get("kind") == "suspend":
            lines.append(f"  SUSPENDED tenant {tenant} (accounts locked since {why['since']}): {why['reason']}; "
                         f"`shared-mysql resume {tenant}` lets it back in")
        else:
            lines.append(f"  UNUSABLE tenant {tenant} (accounts locked since {why['since']}): {why['reason']}; "
                         "re-run `shared-mysql refresh --from SOURCE.yaml` to finish it")
    return "\n".join(lines)
