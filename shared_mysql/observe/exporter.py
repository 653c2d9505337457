"""`exporter`: Prometheus metrics for the shared instance, split by tenant.

Where a metric means what mysqld_exporter's does it has its name (`mysql_up`, `mysql_global_status_*`,
`mysql_global_variables_max_connections`), so existing dashboards keep working; the per-tenant series are
`shared_mysql_tenant_*`, labelled by the config's tenants only (any other account counts as
`tenant="unmanaged"`): label cardinality is bounded by the config. The seven alarms' inputs and states (the same
evaluation as `status`) are `shared_mysql_alarm_*`. One admin connection is kept across scrapes; what is slow to
read and changes slowly (database sizes, credential ages) is cached for a minute.
"""

from __future__ import annotations

import threading
import time

GLOBAL_STATUS = ("Threads_connected", "Threads_running", "Max_used_connections", "Connections", "Questions",
                 "Slow_queries", "Aborted_connects", "Aborted_clients", "Access_denied_errors", "Uptime")
STATE_VALUE = {"OK": 0, "ALARM": 1, "INSUFFICIENT_DATA": 2}
SLOW_CACHE_S = 60.0
SAMPLE_EVERY_S = 60.0
SCRAPE_TIMEOUT_S = 10.0


class Collector:
    """A prometheus_client collector over one target."""

    def __init__(self, target):
        self.t = target
        self.lock = threading.Lock()
        self.ex = None
        self.desired = None
        self.cache: dict[str, tuple[float, object]] = {}
        self.slow: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self._offsets: dict[str, int] = {}
        self.last_sample = 0.0
        self.scanner = None

    # -- helpers -------------------------------------------------------------------------------------------
    def _executor(self):
        if self.ex is None:
            # A stalled server must not hang the scrape (Prometheus would see a failed scrape, not mysql_up 0).
            self.ex = self.t.executor(read_timeout=SCRAPE_TIMEOUT_S)
            self.desired = self.t.desired(self.ex.flavor)
        return self.ex

    def _drop(self) -> None:
        if self.ex is not None:
            try:
                self.ex.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self.ex = None

    def _cached(self, key: str, fn):
        hit = self.cache.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < SLOW_CACHE_S:
            return hit[1]
        value = fn()
        self.cache[key] = (now, value)
        return value

    def _tail(self, path, parse) -> None:
        """Read what was appended to a local log since the last scrape (from its end at the first scrape)."""
        key = str(path)
        try:
            size = path.stat().st_size
        except OSError:
            return
        start = self._offsets.get(key)
        if start is None or size < start:  # first scrape (count from now) or rotated
            self._offsets[key] = size if start is None else 0
            if start is None:
                return
            start = 0
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(size - start)
        end = data.rfind(b"\n") + 1
        self._offsets[key] = start + end
        parse(data[:end].decode("utf-8", "replace"))

    def _count_logs(self, who: dict[str, str]) -> None:
        if self.t.kind != "local":
            return
        paths = self.t.server.paths

        from .sessions import SlowScanner

        if self.scanner is None:
            self.scanner = SlowScanner(who, self.desired.admin_users)

        def slow(text: str) -> None:
            for line in text.splitlines(keepends=True):
                hit = self.scanner.feed(line)
                if hit and hit[1] != "admin":
                    self.slow[hit[1]] = self.slow.get(hit[1], 0) + 1

        def audit(text: str) -> None:
            from .auditlog import is_failed_login, parse_line

            for line in text.splitlines():
                rec = parse_line(line)
                if rec and is_failed_login(rec[3], rec[5]):
                    tenant = who.get(rec[1], "unmanaged")
                    self.failed[tenant] = self.failed.get(tenant, 0) + 1

        self._tail(paths.slow_log, slow)
        self._tail(paths.audit_log, audit)

    # -- the scrape ----------------------------------------------------------------------------------------
    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self.lock:
            started = time.monotonic()
            up = GaugeMetricFamily("mysql_up", "Whether the last scrape could talk to the server.")
            families = []
            for attempt in (1, 2):  # a connection gone stale (the server restarted) is retried once, fresh
                try:
                    families = self._scrape(GaugeMetricFamily, CounterMetricFamily)
                    up.add_metric([], 1)
                    break
                except Exception:  # noqa: BLE001 - a scrape never fails: mysql_up says the server could not be read
                    stale = self.ex is not None
                    self._drop()
                    if attempt == 2 or not stale:
                        up.add_metric([], 0)
                        break
            yield up
            yield from families
            took = GaugeMetricFamily("shared_mysql_scrape_seconds", "How long this scrape took.")
            took.add_metric([], time.monotonic() - started)
            yield took

    def _scrape(self, Gauge, Counter) -> list:
        from ..sql.quoting import as_text
        from .sessions import Q_SIZES, owners, read_sessions
        from .status import ALARMS, record_and_evaluate

        ex = self._executor()
        desired = self.desired
        names = ", ".join(f"'{n}'" for n in GLOBAL_STATUS)
        status = {as_text(k): as_text(v) for k, v in ex.query(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")}
        variables = {as_text(k): as_text(v) for k, v in
                     ex.query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections')")}
        out = []
        for name in GLOBAL_STATUS:
            if name in status:
                g = Gauge(f"mysql_global_status_{name.lower()}", f"Generic metric from SHOW GLOBAL STATUS ({name}).")
                g.add_metric([], float(status[name]))
                out.append(g)
        g = Gauge("mysql_global_variables_max_connections", "Generic gauge metric from SHOW GLOBAL VARIABLES.")
        g.add_metric([], float(variables.get("max_connections", 0)))
        out.append(g)

        who = owners(desired)
        sessions = read_sessions(ex, desired)
        sizes = self._cached("sizes", lambda: {as_text(k): float(v or 0) for k, v in ex.query(Q_SIZES)})
        self._count_logs(who)
        tenants = [t.name for t in desired.tenants] + ["unmanaged"]
        conn = Gauge("shared_mysql_tenant_connections", "Sessions open per tenant (rotation twins together).",
                     labels=["tenant"])
        active = Gauge("shared_mysql_tenant_active_queries", "Sessions running a statement per tenant.",
                       labels=["tenant"])
        limit = Gauge("shared_mysql_tenant_connection_limit", "The tenant's MAX_USER_CONNECTIONS (app + readonly).",
                      labels=["tenant"])
        size = Gauge("shared_mysql_tenant_database_size_bytes", "Data + index size of the tenant's database.",
                     labels=["tenant"])
        slow = Counter("shared_mysql_tenant_slow_queries", "Slow-log entries per tenant since the exporter started.",
                       labels=["tenant"])
        failed = Counter("shared_mysql_tenant_failed_logins", "Failed logins per tenant since the exporter started.",
                         labels=["tenant"])
        for name in tenants:
            mine = [s for s in sessions if s.tenant == name]
            conn.add_metric([name], len(mine))
            active.add_metric([name], sum(1 for s in mine if s.command != "Sleep"))
            slow.add_metric([name], self.slow.get(name, 0))
            failed.add_metric([name], self.failed.get(name, 0))
        for t in desired.tenants:
            limit.add_metric([t.name], sum(a.max_connections for a in t.accounts))
            size.add_metric([t.name], sizes.get(t.database, 0.0))
        out += [conn, active, limit, size, slow, failed]

        ages = self._cached("ages", self._ages)
        age = Gauge("shared_mysql_credential_age_seconds", "Since the credential was last rotated (or written).",
                    labels=["tenant", "role"])
        for (tenant, role), seconds in sorted(ages.items()):
            age.add_metric([tenant, role], seconds)
        out.append(age)

        # The alarms: a sample into status's history at most once a minute, then the same evaluation.
        now = time.time()
        sample = now - self.last_sample >= SAMPLE_EVERY_S
        rows = record_and_evaluate(self.t, ex, now, sample=sample)
        if sample:
            self.last_sample = now
        state = Gauge("shared_mysql_alarm_state", "Alarm state: 0 OK, 1 ALARM, 2 INSUFFICIENT_DATA.", labels=["alarm"])
        value = Gauge("shared_mysql_alarm_value", "The alarm's most recent datapoint (its unit).", labels=["alarm"])
        threshold = Gauge("shared_mysql_alarm_threshold", "The alarm's threshold (instance.alarms).", labels=["alarm"])
        for r in rows:
            state.add_metric([r["alarm"]], STATE_VALUE[r["state"]])
            latest = next((v for v in reversed(r["values"]) if v is not None), None)
            if latest is not None:
                value.add_metric([r["alarm"]], latest)
            threshold.add_metric([r["alarm"]], r["threshold"])
        assert len(rows) == len(ALARMS)
        return out + [state, value, threshold]

    def _ages(self) -> dict[tuple[str, str], float]:
        from ..rotation import age_days

        store = self.t.store
        store.reload()
        names = store.names()
        now = time.time()
        out = {}
        for t in self.desired.tenants:
            for a in t.accounts:
                if a.auth == "password" and a.secret in names:
                    days = age_days(store, a.secret, now, names)
                    if days is not None:
                        out[(t.name, a.role)] = days * 86400.0
        days = age_days(store, self.t.config.master_secret_name, now, names)
        if days is not None:
            out[("master", "master")] = days * 86400.0
        return out


def serve(target, port: int, address: str = "127.0.0.1"):
    """Start the HTTP endpoint (/metrics) on a thread; returns (server, thread)."""
    from prometheus_client import start_http_server
    from prometheus_client.core import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(target))
    return start_http_server(port, addr=address, registry=registry)


def check_listen(address: str) -> str:
    """An IP address to bind (or localhost); the URL form of it. One line naming the option otherwise."""
    import ipaddress

    from ..errors import UsageError

    if address == "localhost":
        return "localhost"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise UsageError(f"--listen {address[:60]!r}: give an IP address such as 127.0.0.1, ::1 or 0.0.0.0") from None
    return f"[{ip}]" if ip.version == 6 else str(ip)
