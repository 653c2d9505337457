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
    assert failed(out)["name"] == "login" and failed(out)["detail"].startswith("TLS"), out
    assert "ssl_ca" in failed(out)["fix"]
    # the server stopped
    t.local_down()
    res, out = doctor(inst)
    assert res.returncode == 3 and failed(out)["name"] == "tcp" and "local up" in failed(out)["fix"]
