"""Observability on the real server (issue 10): `status` measures, records and evaluates the seven alarms with
CloudWatch's semantics; a tenant at its connection limit trips a lowered connections alarm; a burst of failed
logins fires the failed-login alarm."""

import json

import pymysql
import pytest

from .helpers import login


@pytest.fixture
def inst(instance_factory):
    i = instance_factory({"orders": {"max_connections": 4}, "billing": {"max_connections": 2}})
    i.cli("apply", "--auto-approve", check=True)
    return i


def status(inst):
    res = inst.cli("status", "-o", "json")
    assert res.returncode in (0, 3), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_a_fresh_server_is_healthy_and_status_records_a_history(inst):
    code, s = status(inst)
    assert code == 0 and s["firing"] == []
    states = {a["alarm"]: a["state"] for a in s["alarms"]}
    assert len(states) == 7 and set(states.values()) <= {"OK", "INSUFFICIENT_DATA"}
    assert all(a["values"][-1] is not None for a in s["alarms"])  # local: every metric measured
    hist = inst.dir / ".shared-mysql" / "itest" / "metrics.json"
    assert (hist.stat().st_mode & 0o777) == 0o600 and json.loads(hist.read_text())["samples"]
    text = inst.cli("status")
    assert text.returncode == 0 and "0 alarm(s) firing" in text.stdout.splitlines()[0]


def test_a_tenant_at_its_limit_trips_a_lowered_connections_alarm(inst):
    from shared_mysql.observe.status import PERIOD, load_history, save_history, take_sample

    t = inst.target()
    secret = {**t.store.get("test-orders-db-credentials"), "ssl_ca": t.ca}
    conns = [login(secret) for _ in range(4)]
    try:
        with pytest.raises(pymysql.err.OperationalError):
            login(secret)  # its limit
        # the threshold lowered under what is open now (the admin's session counts too, as on RDS)
        doc = inst.config_path.read_text().replace("instance:", "instance:\n  alarms: {database_connections_threshold: 3}", 1)
        inst.config_path.write_text(doc)
        # the period before was sampled too (a status, top or exporter run five minutes ago)
        path = inst.dir / ".shared-mysql" / "itest" / "metrics.json"
        hist = load_history(path)
        import time

        with t.executor() as ex:
            hist["samples"].append(take_sample(ex, now=time.time() - PERIOD))
        save_history(path, hist, time.time())
        code, s = status(inst)
        alarm = next(a for a in s["alarms"] if a["alarm"] == "database-connections")
        assert code == 3 and alarm["state"] == "ALARM" and "database-connections" in s["firing"], alarm
        assert alarm["values"][-1] >= 5 and alarm["values"][-2] >= 5
        res = inst.cli("status")
        assert res.returncode == 3 and "database-connections" in res.stderr and len(res.stderr.splitlines()) == 1
    finally:
        for c in conns:
            c.close()


def test_a_burst_of_failed_logins_fires_the_failed_login_alarm(inst):
    t = inst.target()
    status(inst)  # the baseline sample
    bad = {**t.store.get("test-orders-db-credentials"), "ssl_ca": t.ca, "password": "wrong-password-1"}
    for _ in range(12):
        with pytest.raises(pymysql.err.OperationalError):
            login(bad)
    code, s = status(inst)
    alarm = next(a for a in s["alarms"] if a["alarm"] == "failed-login-attempts")
    assert code == 3 and alarm["state"] == "ALARM" and alarm["values"][-1] >= 12, alarm
    assert not any("wrong-password-1" in json.dumps(a) for a in s["alarms"])


def _sessions(inst, *args):
    res = inst.cli("connections", "-o", "json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_a_tenant_at_its_limit_shows_in_top_and_connections_and_idle_ones_are_killed_safely(inst):
    import threading
    import time

    t = inst.target()
    orders = {**t.store.get("test-orders-db-credentials"), "ssl_ca": t.ca}
    idle = [login(orders) for _ in range(3)]
    busy = login(orders)
    admin = t.executor()
    admin_id = admin.query("SELECT CONNECTION_ID()")[0][0]
    worker = threading.Thread(target=lambda: busy.cursor().execute("SELECT SLEEP(6)"))
    worker.start()
    try:
        time.sleep(2.2)  # the idle ones have been idle 2 s
        top = json.loads(inst.cli("top", "--once", "-o", "json", check=True).stdout)
        row = next(r for r in top["tenants"] if r["tenant"] == "orders")
        assert (row["connections"], row["limit"], row["active"]) == (4, 4, 1) and row["used"] == 1.0
        assert top["tenants"][0]["tenant"] == "orders"  # sorted by connections used vs limit
        assert row["longest_s"] >= 2 and row["longest_query"] == "SELECT SLEEP(?)"
        assert top["connections"] >= 5 and top["max_connections"] == 200
        text = inst.cli("top", "--once", check=True).stdout
        assert "orders" in text and "4/4" in text
        listed = _sessions(inst, "--tenant", "orders")
        assert listed["by_tenant"] == {"orders": 4}
        idle_only = _sessions(inst, "--idle", "2")
        mine = [s for s in idle_only["sessions"] if s["tenant"] == "orders"]
        assert len(mine) == 3 and all(s["killable"] for s in mine)
        assert all(not s["killable"] for s in idle_only["sessions"] if s["tenant"] == "admin")  # listed, spared
        killed = _sessions(inst, "--idle", "2", "--kill")
        assert len(killed["killed"]) == 3 and killed["failed"] == []
        for c in idle:  # the idle sessions are gone ...
            with pytest.raises(pymysql.err.OperationalError):
                c.cursor().execute("SELECT 1")
        # ... the active one, the admin's and nothing else
        assert admin.query("SELECT CONNECTION_ID()")[0][0] == admin_id
        after = _sessions(inst, "--tenant", "orders")
        assert [s["command"] for s in after["sessions"]] == ["Query"]
        res = inst.cli("connections", "--tenant", "nope")
        assert res.returncode == 2 and "no such tenant" in res.stderr
    finally:
        worker.join()
        busy.close()
        admin.close()
        for c in idle:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - killed
                pass


def test_slow_queries_are_attributed_to_the_right_tenant(instance_factory):
    i = instance_factory({"orders": {"max_connections": 2}, "billing": {"max_connections": 2}},
                         parameters={"long_query_time": 0.2})
    i.cli("apply", "--auto-approve", check=True)
    t = i.target()
    for name, n in (("orders", 2), ("billing", 1)):
        c = login({**t.store.get(f"test-{name}-db-credentials"), "ssl_ca": t.ca})
        for _ in range(n):
            c.cursor().execute("SELECT SLEEP(0.3)")
        c.close()
    top = json.loads(i.cli("top", "--once", "--interval", "60", "-o", "json", check=True).stdout)
    slow = {r["tenant"]: r["slow_queries"] for r in top["tenants"]}
    assert slow == {"orders": 2, "billing": 1}, slow
