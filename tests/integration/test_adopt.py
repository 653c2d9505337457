"""Adopting the password a running service already uses (issue 8, item 7), and secrets that keep what users
add to them (item 5), on the real server."""

import json

from .helpers import assert_all_stored_credentials_log_in, login

TENANTS = {"orders": {"max_connections": 3, "readonly": True}, "billing": {"max_connections": 3}}
SERVICE_PW = "svc-Already-In-Production-0123456789"


def _service_password(t, user):
    with t.executor() as ex:
        ex.query(f"ALTER USER '{user}'@'%' IDENTIFIED BY '{SERVICE_PW}'")


def test_import_adopts_a_password_that_logs_in_and_apply_keeps_it(instance_factory):
    inst = instance_factory(TENANTS)
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    _service_password(t, "orders_user")  # the service's own password, set before it joined the platform
    assert inst.cli("plan", "--detailed-exitcode").returncode == 2  # the stored one no longer matches

    given = {"username": "orders_user", "password": SERVICE_PW, "host": "db.internal", "team": "payments"}
    res = inst.cli("credentials", "orders", "--import", input=json.dumps(given))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "stored test-orders-db-credentials" and SERVICE_PW not in res.stdout + res.stderr

    assert inst.cli("plan", "--detailed-exitcode").returncode == 0  # kept: no new password
    t.store.reload()
    s = t.store.get("test-orders-db-credentials")
    assert s["password"] == SERVICE_PW and s["team"] == "payments"
    assert s["host"] == "127.0.0.1" and s["database"] == s["dbname"] == "orders_db"  # ours follow the config
    login(s).close()
    assert_all_stored_credentials_log_in(t)


def test_import_refuses_what_does_not_log_in_and_stores_nothing(instance_factory):
    inst = instance_factory(TENANTS)
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    before = t.store.get("test-billing-db-credentials")
    cases = [
        ({"username": "billing_user", "password": "not-the-password-at-all"}, "does not log in"),
        ({"username": "orders_user", "password": before["password"]}, "is not the account"),
        ({"username": "billing_user"}, "missing password"),
        ({"username": "billing_user", "password": "x\ny"}, "printable"),
        (["billing_user"], "JSON object"),
    ]
    for value, expected in cases:
        res = inst.cli("credentials", "billing", "--import", input=json.dumps(value))
        assert res.returncode != 0, value
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], res.stderr
        assert "not-the-password" not in res.stderr and before["password"] not in res.stderr
    res = inst.cli("credentials", "billing", "--user", "readonly", "--import", input="{}")
    assert res.returncode != 0 and "no read-only account" in res.stderr
    t.store.reload()
    assert t.store.get("test-billing-db-credentials") == before
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0


def test_readonly_import_and_stdin_that_is_not_json(instance_factory):
    inst = instance_factory(TENANTS)
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    _service_password(t, "orders_readonly")
    res = inst.cli("credentials", "orders", "--user", "readonly", "--import",
                   input=json.dumps({"username": "orders_readonly", "password": SERVICE_PW}))
    assert res.returncode == 0, res.stderr
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0
    res = inst.cli("credentials", "orders", "--import", input="not json")
    assert res.returncode == 2 and "not JSON" in res.stderr


def test_import_takes_the_twin_a_rotated_secret_names_and_master_import_needs_a_login(instance_factory):
    inst = instance_factory(TENANTS)
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    assert inst.cli("rotate", "orders").returncode == 0
    cur = inst.cli("credentials", "orders", "-o", "json", check=True).stdout
    assert json.loads(cur)["username"] == "orders_user_alt"
    res = inst.cli("credentials", "orders", "--import", input=cur)
    assert res.returncode == 0, res.stderr
    master = t.master_secret()
    res = inst.cli("credentials", "--admin", "--import",
                   input=json.dumps({**master, "password": "wrong-master-password-123"}))
    assert res.returncode == 1 and "does not log in" in res.stderr and "nothing was stored" in res.stderr
    res = inst.cli("credentials", "--admin", "--import", input=json.dumps({**master, "username": "orders_user"}))
    assert res.returncode == 1 and "tenant's account" in res.stderr
    t.store.reload()
    assert t.master_secret() == master
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0
