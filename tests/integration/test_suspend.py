"""`suspend` / `resume` (issue 15, item 3, local part): under load, the suspended tenant's client loop fails within
1 s while another tenant's sees no error; plan and apply keep it locked; resume lets it back in."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from ..conftest import CLI
from .helpers import error_code, login


@pytest.fixture
def inst(instance_factory):
    i = instance_factory({"orders": {"max_connections": 5, "readonly": True}, "billing": {"max_connections": 5}})
    t = i.target()
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        t.apply(ex, plan, desired)
    return i


def secret(t, tenant):
    from shared_mysql.secrets import CURRENT
    from shared_mysql.tenants.model import account_secret

    t.store.reload()
    return t.store.get(account_secret(t.config, t.loaded.path, tenant, "app")[0], CURRENT)


def cli(i, *args):
    return subprocess.run([*CLI, "-c", str(i.config_path), *args], capture_output=True, text=True, timeout=120)


def test_suspend_under_load_cuts_one_tenant_off_within_a_second_and_resume_restores_it(inst):
    t = inst.target()
    creds = {n: secret(t, n) for n in ("orders", "billing")}
    errors: dict[str, list[float]] = {"orders": [], "billing": []}
    stop = threading.Event()

    def loop(tenant):
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = login(creds[tenant])
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
            except Exception:  # noqa: BLE001 - any failure counts
                errors[tenant].append(time.monotonic())
                conn = None
            time.sleep(0.02)

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in ("orders", "billing")]
    for th in threads:
        th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    res = cli(inst, "suspend", "orders", "--reason", "leaked credentials (INC-42)")
    done = time.monotonic()
    assert res.returncode == 0, res.stderr
    assert "suspended orders: leaked credentials (INC-42)" in res.stdout and "locked orders_user@%" in res.stdout
    assert "locked orders_user_alt@%" in res.stdout and "killed 1 session(s)" in res.stdout
    time.sleep(1.0)
    stop.set()
    for th in threads:
        th.join()
    assert errors["billing"] == []
    assert errors["orders"] and errors["orders"][0] - done < 1.0 and errors["orders"][0] > t0
    assert error_code(lambda: login(creds["orders"])) == 4151  # account locked
    # plan shows it, apply keeps it
    pl = cli(inst, "plan", "--detailed-exitcode")
    assert pl.returncode == 0 and "SUSPENDED tenant orders" in pl.stdout, pl.stdout
    assert cli(inst, "apply", "--auto-approve").returncode == 0
    assert error_code(lambda: login(creds["orders"])) == 4151
    assert "SUSPENDED tenant orders" in cli(inst, "status").stdout
    # resume
    r = cli(inst, "resume", "orders")
    assert r.returncode == 0 and "resumed orders" in r.stdout and "unlocked orders_user" in r.stdout, r.stdout
    login(creds["orders"]).close()
    assert cli(inst, "plan", "--detailed-exitcode").returncode == 0


def test_suspend_refuses_an_unknown_tenant_and_a_bad_reason(inst):
    assert cli(inst, "suspend", "nobody").returncode == 2
    bad = cli(inst, "suspend", "orders", "--reason", "a\nb")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "was not suspended" in cli(inst, "resume", "billing").stdout
    iso = cli(inst, "isolate", "--source", "10.0.0.0/8")  # security groups are the aws target's
    assert iso.returncode == 2 and "use `suspend TENANT`" in iso.stderr
