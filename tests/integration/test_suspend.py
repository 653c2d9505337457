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


def test_suspend_disables_the_tenants_events_with_their_definer_and_resume_enables_exactly_those(inst):
    """Review: an event runs as its definer whether or not the account is locked, so one planted with a leaked
    credential outlived `suspend`. A plain ALTER EVENT would make the admin its definer (and resume would run the
    tenant's code as the admin)."""
    t = inst.target()
    for tenant in ("billing", "orders"):
        c = login(secret(t, tenant))
        with c.cursor() as cur:
            cur.execute("CREATE TABLE ticks (t DATETIME(3))")
            cur.execute("CREATE EVENT ev ON SCHEDULE EVERY 1 SECOND DO INSERT INTO ticks VALUES (NOW(3))")
        c.close()
    with t.executor() as ex:
        ex.query("SET GLOBAL event_scheduler = ON")
        ex.query("REVOKE SELECT ON `orders\\_db`.* FROM 'orders_user'@'%'")  # another tenant's drift

        def events():
            return {r[0]: (r[1], r[2]) for r in ex.query(
                "SELECT EVENT_SCHEMA, STATUS, DEFINER FROM information_schema.EVENTS WHERE EVENT_NAME = 'ev'")}

        def ticks(db):
            return ex.query(f"SELECT COUNT(*) FROM `{db}`.ticks")[0][0]

        try:
            res = cli(inst, "suspend", "billing", "--reason", "INC-7")
            assert res.returncode == 0, res.stderr
            assert "disabled event `billing_db`.`ev` (runs as billing_user@%)" in res.stdout
            assert events() == {"billing_db": ("DISABLED", "billing_user@%"), "orders_db": ("ENABLED", "orders_user@%")}
            n = ticks("billing_db")
            time.sleep(2.5)
            assert ticks("billing_db") == n and ticks("orders_db") >= 2  # stopped; the neighbour's runs on
            rot = cli(inst, "rotate", "--all")
            assert rot.returncode == 0 and "skipped billing: blocked (suspend: INC-7)" in rot.stdout, rot.stderr
            again = cli(inst, "suspend", "billing", "--reason", "a second reason")
            assert "already suspended since" in again.stdout and "INC-7 (kept)" in again.stdout
            r = cli(inst, "resume", "billing")
            assert r.returncode == 0 and "enabled event `billing_db`.`ev`" in r.stdout, r.stdout + r.stderr
            assert events()["billing_db"] == ("ENABLED", "billing_user@%")  # its own definer, never the admin
            # resume touched this tenant only: the other tenant's drift is still for `apply` to show
            assert cli(inst, "plan", "--detailed-exitcode").returncode == 2
        finally:
            ex.query("SET GLOBAL event_scheduler = OFF")


def test_events_reenabled_during_suspend_overlapping_tenants_and_a_refresh_block(inst):
    """Second review: (1) an event that runs while suspend disables the others can enable one again (a planted
    "spawner"): suspend re-reads until none is left; (2) events defined across two tenants: resuming one never
    enables an event that is also the other, still suspended, tenant's; (3) a refresh block outliving the
    suspension: the events come back when the last block is lifted, not never."""
    from shared_mysql.tenants import blocks

    t = inst.target()
    with t.executor() as ex:
        ex.query("CREATE DEFINER = 'billing_user'@'%' EVENT `billing_db`.a ON SCHEDULE EVERY 1 HOUR DO SELECT 1")
        ex.query("CREATE DEFINER = 'billing_user'@'%' EVENT `billing_db`.zzz ON SCHEDULE EVERY 1 HOUR DO SELECT 1")
        # in orders' database, defined by billing's account: both tenants' event
        ex.query("CREATE DEFINER = 'billing_user'@'%' EVENT `orders_db`.cross ON SCHEDULE EVERY 1 HOUR DO SELECT 1")

        class Racing:  # the spawner fires once, between two of suspend's statements
            fired = False

            def __getattr__(self, name):
                return getattr(ex, name)

            def query(self, sql, *a, **kw):
                out = ex.query(sql, *a, **kw)
                if "EVENT `billing_db`.`zzz` DISABLE" in sql and not Racing.fired:
                    Racing.fired = True
                    ex.query("ALTER DEFINER = 'billing_user'@'%' EVENT `billing_db`.a ENABLE")
                return out

        def status(schema, name):
            return ex.query(f"SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{schema}' AND "
                            f"EVENT_NAME = '{name}'")[0][0]

        # orders suspended first: `cross` (in its database) is recorded as orders'
        blocks.block(ex, "orders", "INC-8", kind="suspend")
        done, _ = blocks.disable_events(ex, "orders", "orders_db")
        assert [d.split(" ")[0] for d in done] == ["`orders_db`.`cross`"]
        blocks.block(ex, "billing", "INC-8", kind="suspend")
        done, failed = blocks.disable_events(Racing(), "billing", "billing_db")
        assert Racing.fired and failed == [] and status("billing_db", "a") == "DISABLED"
        assert sorted(d.split(" ")[0] for d in done) == ["`billing_db`.`a`", "`billing_db`.`zzz`"]
        # orders resumed while billing stays suspended: `cross` runs as billing's account, so it stays disabled
        assert blocks.unblock(ex, "orders", kind="suspend") == []
        assert status("orders_db", "cross") == "DISABLED"
        # billing resumed while a refresh block remains: its events wait for that block
        blocks.block(ex, "billing", "unverified refresh", kind="refresh")
        assert blocks.unblock(ex, "billing", kind="suspend") == []
        assert status("billing_db", "a") == "DISABLED" and status("orders_db", "cross") == "DISABLED"
        back = blocks.unblock(ex, "billing", kind="refresh")
        assert sorted(back) == ["`billing_db`.`a`", "`billing_db`.`zzz`", "`orders_db`.`cross`"]
        assert status("orders_db", "cross") == "ENABLED"
        definers = {r[0] for r in ex.query("SELECT DEFINER FROM information_schema.EVENTS")}
        assert definers == {"billing_user@%"}  # never the admin
