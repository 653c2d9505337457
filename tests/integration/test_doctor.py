"""`doctor` on a local target (issue 15, item 4, the local faults so far): each fault induced, the right step and
fix named, exit 3; healthy: every step passes."""

from __future__ import annotations

import json
import subprocess

import pytest

from ..conftest import CLI


@pytest.fixture
def inst(instance_factory):
    i = instance_factory({"orders": {"max_connections": 2}, "billing": {}})
    t = i.target()
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        t.apply(ex, plan, desired)
    return i


def doctor(i, *args):
    res = subprocess.run([*CLI, "-c", str(i.config_path), "-o", "json", "doctor", "orders", *args],
                         capture_output=True, text=True, timeout=120)
    return res, (json.loads(res.stdout) if res.stdout.strip() else None)


def failed(out):
    return next(s for s in out["steps"] if not s["ok"])


def test_healthy_then_each_fault_names_its_step(inst):
    res, out = doctor(inst)
    assert res.returncode == 0 and out["ok"] and out["not_checked"] == [], res.stderr
    assert [s["name"] for s in out["steps"]] == ["config", "secret", "exports", "dns", "tcp", "tls", "login",
                                                 "privileges", "headroom"]
    assert "more days" in next(s for s in out["steps"] if s["name"] == "tls")["detail"]
    assert set(out["not_applicable"]) == {"access", "instance", "network", "proxy"}
    t = inst.target()
    # the store's password differs from the server's
    with t.executor() as ex:
        ex.query("ALTER USER 'orders_user'@'%' IDENTIFIED BY 'changed-by-hand-1'")
    res, out = doctor(inst)
    assert res.returncode == 3 and failed(out)["name"] == "login"
    assert "not the one the server holds" in failed(out)["detail"] and "apply" in failed(out)["fix"]
    assert out["not_checked"] == ["privileges", "headroom"]
    assert res.stderr.count("\n") == 1 and "changed-by-hand" not in res.stdout + res.stderr
    subprocess.run([*CLI, "-c", str(inst.config_path), "apply", "--auto-approve"], capture_output=True, timeout=120)
    # an interrupted rotation: the server took the pending password, the store's current is still the old one
    from shared_mysql.secrets import CURRENT

    t.store.reload()
    cur = t.store.get("test-orders-db-credentials", CURRENT)
    t.store.put_pending({"test-orders-db-credentials": ({**cur, "password": "Pending-Passw0rd-123456"}, {})})
    with t.executor() as ex:
        ex.query("ALTER USER 'orders_user'@'%' IDENTIFIED BY 'Pending-Passw0rd-123456'")
    res, out = doctor(inst)
    assert res.returncode == 3 and failed(out)["name"] == "login", out
    assert "took the pending password of an interrupted apply" in failed(out)["detail"]
    assert failed(out)["fix"] == "finish the interrupted apply: `shared-mysql apply`"
    assert "Pending-Passw0rd" not in res.stdout + res.stderr
    rot = subprocess.run([*CLI, "-c", str(inst.config_path), "apply", "--auto-approve"], capture_output=True,
                         text=True, timeout=120)
    assert rot.returncode == 0, rot.stderr
    res, out = doctor(inst)
    assert res.returncode == 0, out
    # a revoked grant
    with t.executor() as ex:
        ex.query("REVOKE ALL PRIVILEGES ON `orders\\_db`.* FROM 'orders_user'@'%'")  # granted as an escaped pattern
    res, out = doctor(inst)
    assert res.returncode == 3 and failed(out)["name"] == "privileges", out
    subprocess.run([*CLI, "-c", str(inst.config_path), "apply", "--auto-approve"], capture_output=True, timeout=120)
    # a suspended tenant
    subprocess.run([*CLI, "-c", str(inst.config_path), "suspend", "orders", "--reason", "INC-7"],
                   capture_output=True, timeout=120)
    res, out = doctor(inst)
    assert failed(out)["name"] == "login" and "suspend: INC-7" in failed(out)["detail"]
    assert failed(out)["fix"] == "`shared-mysql resume orders`"
    subprocess.run([*CLI, "-c", str(inst.config_path), "resume", "orders"], capture_output=True, timeout=120)
    # at its connection limit (2)
    from .helpers import login

    from shared_mysql.secrets import CURRENT

    t.store.reload()
    s = t.store.get("test-orders-db-credentials", CURRENT)
    held = [login({**s, "ssl_ca": t.ca}) for _ in range(2)]
    try:
        res, out = doctor(inst)
        assert failed(out)["name"] == "login" and "too many connections" in failed(out)["detail"], out
    finally:
        for c in held:
            c.close()
    # a wrong CA in the secret (another CA's bundle)
    from ..throwaway_ca import write_ca

    bad = write_ca(inst.dir / "other-ca.pem")
    t.store.reload()
    t.store.put_pending({"test-orders-db-credentials": ({**s, "ssl_ca": str(bad)}, {})})
    t.store.promote(["test-orders-db-credentials"])
    res, out = doctor(inst)
    assert failed(out)["name"] == "tls" and failed(out)["detail"].startswith("TLS"), out
    assert "ssl_ca" in failed(out)["fix"]
    # a CA path that is no bundle: the secret's link, before any connection is opened (a connection closed before
    # it authenticates counts against max_connect_errors)
    with t.executor() as ex:
        before = int(ex.query("SHOW GLOBAL STATUS LIKE 'Aborted_connects'")[0][1])
    for bad_ca in (inst.dir / "missing.pem", inst.dir):
        t.store.put_pending({"test-orders-db-credentials": ({**s, "ssl_ca": str(bad_ca)}, {})})
        t.store.promote(["test-orders-db-credentials"])
        res, out = doctor(inst)
        assert failed(out)["name"] == "secret" and "cannot be used" in failed(out)["detail"], out
    with t.executor() as ex:
        assert int(ex.query("SHOW GLOBAL STATUS LIKE 'Aborted_connects'")[0][1]) == before
    # --via proxy: the config names a proxy endpoint the secrets do not carry yet (the service's connect(via=
    # "proxy") would fail): the proxy step says so and names apply; applied, the path goes through it
    import yaml

    t.store.put_pending({"test-orders-db-credentials": (s, {})})
    t.store.promote(["test-orders-db-credentials"])
    doc = yaml.safe_load(inst.config_path.read_text())
    doc["instance"]["proxy_endpoint"] = "localhost"
    inst.config_path.write_text(yaml.safe_dump(doc))
    res, out = doctor(inst, "--via", "proxy")
    assert failed(out)["name"] == "proxy" and "names no proxy endpoint" in failed(out)["detail"], out
    assert "apply" in failed(out)["fix"] and "proxy" not in out["not_applicable"]
    subprocess.run([*CLI, "-c", str(inst.config_path), "apply", "--auto-approve"], capture_output=True, timeout=120)
    res, out = doctor(inst, "--via", "proxy")
    assert res.returncode == 0, out
    assert next(x for x in out["steps"] if x["name"] == "tcp")["detail"].startswith("localhost:")
    # the server stopped
    t = inst.target()
    t.local_down()
    res, out = doctor(inst)
    assert res.returncode == 3 and failed(out)["name"] == "tcp" and "local up" in failed(out)["fix"]


def _hang_target(inst, monkeypatch, port):
    """The tenant's secret pointed at `port` on 127.0.0.1 (the service's view), the doctor's timeout cut to 1 s:
    the step must time out on its own clock, not the default socket timeout (none)."""
    from shared_mysql import doctor as d

    monkeypatch.setattr(d, "TIMEOUT", 1.0)
    # the published port is the real server's: that link is not what these tests break
    monkeypatch.setattr(d, "_exports", lambda *a: d.Step("exports", True, "not under test"))
    t = inst.target()
    t.host  # noqa: B018
    monkeypatch.setattr(type(t), "port", property(lambda self: port))
    return t, d


def test_a_hung_tcp_or_tls_step_times_out_on_the_doctors_clock_with_the_step_named(inst, monkeypatch):
    """A listener that accepts and never speaks (the tls step), then one whose backlog is full, so Linux drops
    further SYNs and connect() hangs as behind a security group (the tcp step)."""
    import socket
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        t, d = _hang_target(inst, monkeypatch, srv.getsockname()[1])
        start = time.monotonic()
        r = d.diagnose(t, "orders")
        took = time.monotonic() - start
        bad = next(s for s in r.steps if not s.ok)
        assert bad.name == "tls" and "within 1 s" in bad.detail and "no MySQL greeting" in bad.detail, bad
        assert took < 4, took  # one TIMEOUT, not PyMySQL's default or a hang
    finally:
        srv.close()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fill = []
    try:
        for _ in range(8):  # fill the accept queue (never accepted)
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(srv.getsockname())
            fill.append(c)
        time.sleep(0.2)
        t, d = _hang_target(inst, monkeypatch, srv.getsockname()[1])
        r = d.diagnose(t, "orders")
        bad = next(s for s in r.steps if not s.ok)
        assert bad.name == "tcp" and "did not answer within 1 s" in bad.detail, bad
        assert r.not_checked() == ["tls", "login", "privileges", "headroom"]
    finally:
        for c in fill:
            c.close()
        srv.close()
