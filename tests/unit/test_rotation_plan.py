"""Plans with rotation twins (issue 8), on the fake server: which twin is active, the idle twin's password and
limit, strategy changes, shadows of twins, and the rotation steps' SQL per strategy and flavor."""

import time

import pytest

from shared_mysql.secrets import PENDING, PREVIOUS
from shared_mysql.secrets.document import MemorySecretStore
from shared_mysql.sql import MARIADB_10_11, MYSQL_8_0
from shared_mysql.sql.passwords import native_hash
from shared_mysql.tenants import apply_plan

from .fakeserver import FakeServer, account
from .test_plan import apply_to_fake, desired_for, plan_for

CFG = """
environment: dev
identifier: shared-mysql
tenants:
  orders: {max_connections: 20}
"""
NAME = "dev-orders-db-credentials"


def rotated(server, store, when):
    """What a rotation leaves: the secret names the twin (new password), the old one is AWSPREVIOUS."""
    cur = store.get(NAME)
    new = {**cur, "username": "orders_user_alt", "password": "N" * 32}
    store.put_pending({NAME: (new, {})})
    store.promote([NAME], tags={"rotated-at": str(when)})
    server.accounts[("orders_user_alt", "%")]["auth"] = native_hash("N" * 32)
    server.accounts[("orders_user_alt", "%")]["maxc"] = 20
    server.accounts[("orders_user_alt", "%")]["locked"] = False  # setSecret unlocks the twin it makes current
    return cur, new


def test_after_a_rotation_the_plan_is_empty_within_the_grace_and_limits_the_idle_twin_after():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for(CFG)
    apply_to_fake(server, store, d)
    now = time.time()
    rotated(server, store, now)
    assert plan_for(server, store, d).empty  # within the grace: the previous twin keeps 20
    from shared_mysql.tenants import build_plan, inspect_secrets, inspect_server

    actual = inspect_secrets(store, d.identifier, inspect_server(server.executor()))
    later = build_plan(d, actual, now=now + 7201)
    assert [(a.kind, a.object, a.detail.get("max_connections"), a.detail.get("locked")) for a in later.actions] == [
        ("alter_user", "user orders_user@%", 1, False)]  # it still logs in (AWSPREVIOUS), with 1 connection


def test_a_twin_nobody_holds_a_password_for_is_locked_and_a_hand_set_password_opens_nothing():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for(CFG)
    plan = plan_for(server, store, d)
    from shared_mysql.tenants import render_statements

    [twin] = [a for a in plan.actions if a.object == "user orders_user_alt@%" and a.kind == "create_user"]
    assert twin.detail["locked"] and render_statements(twin, d, "p" * 32)[0].sql.endswith("ACCOUNT LOCK")
    apply_to_fake(server, store, d)
    assert plan_for(server, store, d).empty
    server.accounts[("orders_user_alt", "%")]["locked"] = False  # someone unlocks it (to use a password set by hand)
    [act] = plan_for(server, store, d).actions
    assert act.kind == "alter_user" and act.detail["changes"]["account_locked"] == ["UNLOCK", "LOCK"]
    assert render_statements(act, d)[0].sql.endswith("ACCOUNT LOCK")


def test_the_idle_twins_password_is_the_previous_versions_and_drift_on_it_is_reverted():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for(CFG)
    apply_to_fake(server, store, d)
    old, _ = rotated(server, store, time.time())
    server.accounts[("orders_user", "%")]["auth"] = native_hash("someone-else")
    plan = plan_for(server, store, d)
    [act] = plan.actions
    assert (act.kind, act.object, act.detail["password_source"]) == ("set_password", "user orders_user@%", "previous")
    ex = server.executor()
    apply_plan(plan, d, ex, store)
    assert store.get(NAME)["username"] == "orders_user_alt"  # the store is not touched
    assert store.get(NAME, PREVIOUS)["password"] == old["password"]
    assert any("orders_user" in s and "ALTER USER" in s for s in ex.sql)


def test_a_passwordless_twin_gets_a_random_password():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for(CFG)
    apply_to_fake(server, store, d)
    server.accounts[("orders_user_alt", "%")]["auth"] = ""
    [act] = plan_for(server, store, d).actions
    assert (act.kind, act.detail["password_source"]) == ("set_password", "random")
    assert "anyone could log in" in act.reason


def test_grants_on_the_twin_follow_the_account_and_a_twin_on_another_host_is_a_shadow():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for(CFG)
    apply_to_fake(server, store, d)
    server.global_privs[("orders_user_alt", "%")] = {"FILE"}
    server.accounts[("orders_user_alt", "10.0.0.%")] = account(auth=native_hash("x"))
    kinds = sorted((a.kind, a.object) for a in plan_for(server, store, d).actions)
    assert ("drop_shadow", "user orders_user_alt@10.0.0.%") in kinds
    assert ("revoke", "user orders_user_alt@%") in kinds


def test_leaving_alternating_drops_the_twin_and_moves_the_secret_back():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for(CFG)
    apply_to_fake(server, store, d)
    rotated(server, store, time.time())
    single = desired_for(CFG.replace("max_connections: 20}", "max_connections: 20, rotation: single}"))
    plan = plan_for(server, store, single)
    got = [(a.kind, a.object, a.detail.get("password_source")) for a in plan.actions]
    assert ("set_password", "user orders_user@%", "current") in got
    assert ("drop_user", "user orders_user_alt@%", None) in got
    assert ("update_secret", f"secret {NAME}", None) in got
    apply_plan(plan, single, server.executor(), store, allow_destructive=True)
    assert store.get(NAME)["username"] == "orders_user" and store.get(NAME)["password"] == "N" * 32


@pytest.mark.parametrize("flavor", [MARIADB_10_11, MYSQL_8_0])
def test_rotation_statements_per_strategy(flavor):
    from shared_mysql.rotation import _set_statements

    d = desired_for(CFG, flavor=flavor)
    acc = d.tenants[0].accounts[0]
    alt = [s.sql for s in _set_statements(flavor, acc, "orders_user_alt", "P" * 32)]
    assert alt[0].startswith("ALTER USER 'orders_user_alt'@'%' IDENTIFIED")
    assert "MAX_USER_CONNECTIONS 20" in alt[1] and "REQUIRE SSL" in alt[1]
    if flavor.is_mariadb:
        assert "P" * 32 not in alt[0]  # MariaDB gets the hash: the plaintext never reaches the binlog
    if flavor.is_mariadb:
        return  # dual-password: MySQL 8.0.14+ only (refused below)
    dual = desired_for(CFG.replace("max_connections: 20}", "max_connections: 20, rotation: dual-password}"),
                       flavor=flavor).tenants[0].accounts[0]
    sql = [s for s in _set_statements(flavor, dual, "orders_user", "P" * 32)]
    assert sql[0].sql.endswith("RETAIN CURRENT PASSWORD") and "P" * 32 not in sql[0].safe
    assert len(sql) == 1


def test_dual_password_is_refused_on_mariadb_with_one_line():
    from shared_mysql.rotation import RotationError, _precheck

    from shared_mysql.errors import ConfigError
    from shared_mysql.sql import MYSQL_8_0

    text = CFG.replace("max_connections: 20}", "max_connections: 20, rotation: dual-password}")
    with pytest.raises(ConfigError, match=r"tenants\.orders\.rotation: dual-password needs MySQL 8\.0\.14"):
        desired_for(text)  # plan and apply refuse it on MariaDB, not only rotate
    acc = desired_for(text, flavor=MYSQL_8_0).tenants[0].accounts[0]
    with pytest.raises(RotationError, match="dual-password needs MySQL 8.0.14"):
        _precheck(acc, MARIADB_10_11, {"password": "x"})
    assert acc.alt is None  # no twin for dual-password


def test_a_pending_version_from_an_interrupted_apply_is_not_taken_for_a_rotation():
    from shared_mysql.rotation import rotate_accounts

    class T:
        host, port, ca = "127.0.0.1", 1, None

    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for(CFG)
    apply_to_fake(server, store, d)
    store.put_pending({NAME: ({**store.get(NAME)}, {})})  # what a killed apply leaves
    t = T()
    t.store = store
    ex = server.executor()
    ex.responses = {"SELECT User, Host FROM": [("orders_user_alt", "%")], **ex.responses}
    [err] = rotate_accounts(t, ex, d, [d.tenants[0].accounts[0]], test_login=lambda i: None)
    assert "interrupted apply" in str(err)
    assert store.get(NAME, PENDING) is not None
