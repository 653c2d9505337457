"""Tenants on a real server: isolation, TLS, limits, drift found and reverted, unmanaged objects untouched."""

import json

import pymysql
import pytest

from .helpers import assert_all_stored_credentials_log_in, error_code, login

TENANTS = {"orders": {"max_connections": 3, "readonly": True, "readonly_max_connections": 2},
           "billing": {"max_connections": 4}}


@pytest.fixture
def applied(instance_factory):
    inst = instance_factory(TENANTS)
    res = inst.cli("apply", "--auto-approve", check=True)
    assert "Converged." in res.stdout
    t = inst.target()
    creds = {n: t.store.get(n) for n in ("test-orders-db-credentials", "test-orders-db-readonly-credentials",
                                          "test-billing-db-credentials")}
    return inst, t, creds


def test_every_account_logs_in_and_plan_is_empty(applied):
    inst, t, _ = applied
    assert assert_all_stored_credentials_log_in(t) == 3
    res = inst.cli("plan", "--detailed-exitcode")
    assert res.returncode == 0 and "No changes" in res.stdout


def test_tls_is_required(applied):
    _, t, creds = applied
    for s in list(creds.values()) + [t.store.get(t.config.master_secret_name)]:
        code = error_code(lambda: login(s, tls=False, database=None))
        assert code in (1045, 3159), s["username"]  # MariaDB answers 1045, MySQL 8 3159
    conn = login(creds["test-orders-db-credentials"])
    with conn.cursor() as cur:
        cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone()[1]
    conn.close()


def test_tenants_are_isolated_including_wildcard_lookalikes(applied):
    _, t, creds = applied
    with t.executor() as ex:
        # `orders_db` unescaped would also match `ordersXdb`; the grant is escaped, so it must not.
        ex.query("CREATE DATABASE IF NOT EXISTS ordersXdb")
    orders = creds["test-orders-db-credentials"]
    assert error_code(lambda: login(orders, database="billing_db")) == 1044
    assert error_code(lambda: login(orders, database="ordersXdb")) == 1044
    conn = login(orders)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute("INSERT INTO t VALUES (1, 'x')")
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute("SELECT * FROM billing_db.x")
        assert e.value.args[0] in (1142, 1044)
        cur.execute("SHOW DATABASES")
        assert {r[0] for r in cur.fetchall()} == {"information_schema", "orders_db"}
    conn.close()


def test_readonly_cannot_write(applied):
    _, _, creds = applied
    conn = login(creds["test-orders-db-credentials"])
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO t VALUES (1)")
    conn.close()
    ro = login(creds["test-orders-db-readonly-credentials"])
    with ro.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone()[0] == 1
        for sql in ("INSERT INTO t VALUES (2)", "DELETE FROM t", "CREATE TABLE u (id INT)", "DROP TABLE t"):
            with pytest.raises(pymysql.err.OperationalError) as e:
                cur.execute(sql)
            assert e.value.args[0] == 1142, sql
    ro.close()


def test_connection_limit_refuses_the_next_while_others_connect(applied):
    _, _, creds = applied
    orders = creds["test-orders-db-credentials"]
    held = [login(orders) for _ in range(3)]
    try:
        assert error_code(lambda: login(orders)) == 1226
        other = login(creds["test-billing-db-credentials"])  # another tenant is unaffected
        other.close()
        ro = [login(creds["test-orders-db-readonly-credentials"]) for _ in range(2)]
        assert error_code(lambda: login(creds["test-orders-db-readonly-credentials"])) == 1226
        for c in ro:
            c.close()
    finally:
        for c in held:
            c.close()


def test_manual_drift_is_found_and_reverted(applied):
    inst, t, creds = applied
    with t.executor() as ex:
        ex.query("GRANT SELECT ON billing_db.* TO 'orders_user'@'%'")
        ex.query("GRANT PROCESS ON *.* TO 'billing_user'@'%'")
        ex.query("GRANT SELECT ON `orders_db`.* TO 'orders_readonly'@'%'")
        ex.query("ALTER USER 'billing_user'@'%' REQUIRE NONE WITH MAX_USER_CONNECTIONS 50")
        ex.query("ALTER USER 'orders_user'@'%' IDENTIFIED BY 'changed-by-hand'")
        ex.query("CREATE DATABASE legacy")
        ex.query("CREATE USER 'reporting'@'%' IDENTIFIED BY 'x'")
        ex.query("CREATE TABLE billing_db.t (a INT, b INT)")
        ex.query("GRANT SELECT (a), UPDATE (b) ON billing_db.t TO 'orders_readonly'@'%'")
        ex.query("CREATE ROLE r_ops")
        ex.query("GRANT SELECT ON billing_db.* TO r_ops")
        ex.query("GRANT r_ops TO 'orders_user'@'%'")
        ex.query("SET DEFAULT ROLE r_ops FOR 'orders_user'@'%'")
    assert error_code(lambda: login(creds["test-orders-db-credentials"])) == 1045
    res = inst.cli("plan", "--detailed-exitcode", "-o", "json")
    assert res.returncode == 2
    plan = json.loads(res.stdout)
    reasons = {(a["kind"], a["object"]) for a in plan["actions"]}
    assert reasons == {
        ("revoke", "user orders_user@%"), ("revoke", "user billing_user@%"), ("revoke", "user orders_readonly@%"),
        ("alter_user", "user billing_user@%"), ("set_password", "user orders_user@%"),
        ("revoke_role", "user orders_user@%"), ("set_default_role", "user orders_user@%"),
        ("revoke", "role r_ops"),  # the role itself reaches billing_db, a tenant's database
    }
    assert sum(1 for a in plan["actions"] if a["kind"] == "revoke" and a["detail"]["scope_kind"] == "column") == 2
    assert plan["unmanaged"] == {"databases": ["legacy"], "users": ["r_ops@", "reporting@%"], "exports": [], "secrets": []}
    assert not any(a["destructive"] for a in plan["actions"])
    inst.cli("apply", "--auto-approve", check=True)
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0
    assert_all_stored_credentials_log_in(t)
    conn = login(creds["test-orders-db-credentials"])  # the revoked role no longer opens billing_db
    with conn.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as e:
            cur.execute("SELECT * FROM billing_db.t")
        assert e.value.args[0] == 1142
    conn.close()
    with t.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='legacy'")[0][0] == 1
        assert ex.query("SELECT COUNT(*) FROM mysql.user WHERE User='reporting'")[0][0] == 1
        assert ex.query("SELECT ssl_type, max_user_connections FROM mysql.user WHERE User='billing_user'")[0] == \
            ("ANY", 4)


def test_removing_a_tenant_needs_allow_destructive(applied):
    inst, t, creds = applied
    inst.write({"orders": TENANTS["orders"]})
    res = inst.cli("apply", "--auto-approve")
    assert res.returncode == 1
    assert "destructive" in res.stderr and "--allow-destructive" in res.stderr
    assert login(creds["test-billing-db-credentials"])  # nothing was changed
    res = inst.cli("up")
    assert res.returncode == 1 and "--allow-destructive" in res.stderr
    inst.cli("apply", "--auto-approve", "--allow-destructive", check=True)
    assert error_code(lambda: login(creds["test-billing-db-credentials"], database=None)) == 1045
    t.store.reload()
    assert t.store.get("test-billing-db-credentials") is None
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0


def test_apply_without_tty_needs_auto_approve(applied):
    inst, _, _ = applied
    inst.write({**TENANTS, "extra": {"max_connections": 1}})
    res = inst.cli("apply", input="")
    assert res.returncode == 1 and "--auto-approve" in res.stderr.splitlines()[-1]
    assert inst.cli("plan", "--detailed-exitcode").returncode == 2


def test_credentials_formats(applied):
    inst, _, creds = applied
    s = creds["test-orders-db-readonly-credentials"]
    j = json.loads(inst.cli("credentials", "orders", "--user", "readonly", "-o", "json", check=True).stdout)
    assert j == s
    assert set(j) == {"engine", "host", "port", "username", "password", "dbname", "database", "ssl_ca"}
    env = inst.cli("credentials", "orders", "--format", "env", check=True).stdout
    assert "DB_USERNAME=orders_user\n" in env and "DB_NAME=orders_db\n" in env
    dsn = inst.cli("credentials", "billing", "--format", "dsn", check=True).stdout.strip()
    b = creds["test-billing-db-credentials"]
    assert dsn.startswith(f"mysql://billing_user:{b['password']}@127.0.0.1:{inst.port}/billing_db?ssl-mode=VERIFY")
    admin = json.loads(inst.cli("credentials", "--admin", "-o", "json", check=True).stdout)
    assert admin["username"] == "admin" and login(admin, database=None)
