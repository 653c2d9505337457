"""`shared-mysql exporter` on the real server: it serves mysqld_exporter's names and per-tenant series bounded by
the config; the shipped Prometheus rules pass promtool and, like every Grafana panel, use only metrics it serves."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ..conftest import free_port
from .helpers import login

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "shared-mysql-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "shared-mysql.json"


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    from ..conftest import Instance

    inst = Instance(tmp_path_factory.mktemp("exporter"), free_port(), None)
    inst.write({"orders": {"max_connections": 3, "readonly": True}, "billing": {"max_connections": 2}})
    inst.cli("up", check=True)
    t = inst.target()
    sneaky = t.executor()
    sneaky.query("CREATE USER 'legacy_app'@'%' IDENTIFIED BY 'Legacy-pass-1' REQUIRE SSL")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "shared_mysql", "exporter", "--port", str(port)], cwd=inst.dir,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stderr.read() if proc.poll() is not None else "exporter never came up")
                time.sleep(0.2)
        orders = [login({**t.store.get("test-orders-db-credentials"), "ssl_ca": t.ca}) for _ in range(2)]
        legacy = login({"username": "legacy_app", "password": "Legacy-pass-1", "host": "127.0.0.1",
                        "port": inst.port, "ssl_ca": t.ca}, database=None)
        bad = {**t.store.get("test-billing-db-credentials"), "ssl_ca": t.ca, "password": "wrong"}
        for _ in range(3):
            with pytest.raises(Exception):
                login(bad)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        for c in orders + [legacy]:
            c.close()
        yield inst, text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sneaky.query("DROP USER 'legacy_app'@'%'")
        sneaky.close()
        inst.cli("local", "down")


def series(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            out[name_labels] = float(value)
    return out


def names(text):
    return {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", k).group(0) for k in series(text)}


def test_mysqld_exporter_names_and_per_tenant_series(scraped):
    _, text = scraped
    s = series(text)
    assert s["mysql_up"] == 1.0 and s["mysql_global_status_threads_connected"] >= 4
    assert s["mysql_global_variables_max_connections"] == 200
    assert s['shared_mysql_tenant_connections{tenant="orders"}'] == 2
    assert s['shared_mysql_tenant_connections{tenant="unmanaged"}'] == 1  # legacy_app: not a label of its own
    assert s['shared_mysql_tenant_connection_limit{tenant="orders"}'] == 4
    assert s['shared_mysql_tenant_failed_logins_total{tenant="billing"}'] == 3
    assert 'shared_mysql_credential_age_seconds{role="readonly",tenant="orders"}' in s
    assert s['shared_mysql_alarm_threshold{alarm="database-connections"}'] == 180
    assert len([k for k in s if k.startswith("shared_mysql_alarm_state")]) == 7
    tenants = {m.group(1) for k in s for m in [re.search(r'tenant="([^"]*)"', k)] if m}
    assert tenants <= {"orders", "billing", "unmanaged", "master"}  # bounded by the config
    assert "Legacy-pass-1" not in text and "wrong" not in text


def _metrics_in(expr: str) -> set[str]:
    words = set(re.findall(r"\b((?:mysql|shared_mysql)_[a-z0-9_]+)\b", expr))
    return words


def test_rules_pass_promtool_and_use_only_served_metrics(scraped):
    _, text = scraped
    promtool = shutil.which("promtool") or str(Path(sys.executable).parent / "promtool")
    if not os.path.exists(promtool):
        if os.environ.get("CI") == "true":
            pytest.fail("promtool missing under CI: scripts/ensure-promtool.sh should have fetched it")
        pytest.skip("promtool not installed (make test fetches it)")
    res = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert res.returncode == 0 and "SUCCESS: 9 rules found" in res.stdout, res.stdout + res.stderr
    import yaml

    served = names(text)
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    used = set().union(*(_metrics_in(r["expr"]) for r in rules))
    assert used and used <= served, used - served
    alarms = {m for r in rules for m in re.findall(r'alarm="([a-z-]+)"', r["expr"])}
    assert alarms == {"cpu-utilization", "free-storage-space", "freeable-memory", "database-connections",
                      "read-latency", "write-latency", "failed-login-attempts"}


def test_every_dashboard_panel_uses_served_metrics(scraped):
    _, text = scraped
    served = names(text)
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs and all(_metrics_in(e) for e in exprs)
    missing = set().union(*(_metrics_in(e) for e in exprs)) - served
    assert not missing, missing
