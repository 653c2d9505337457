import json
from pathlib import Path

import pytest

from shared_mysql.config import parse_config
from shared_mysql.secrets import CURRENT, PENDING
from shared_mysql.secrets.document import MemorySecretStore
from shared_mysql.sql import MARIADB_10_11, MYSQL_8_0
from shared_mysql.tenants import (apply_plan, build_desired, build_plan, inspect_secrets, inspect_server,
                                  render_statements, render_text)
from shared_mysql.tenants.inspect import inspect_queries
from shared_mysql.tenants.plan import Action
from shared_mysql.errors import DestructiveChangeError

from .fakeserver import FakeServer

GOLDEN = Path(__file__).parent / "golden"
CFG = """
environment: dev
identifier: shared-mysql
tenants:
  orders: {max_connections: 20, readonly: true}
  billing: {max_connections: 10}
"""


def desired_for(text=CFG, flavor=MARIADB_10_11):
    c = parse_config(text)
    return build_desired(c, flavor, host="127.0.0.1", port=13306, ca="/ca.pem")


def plan_for(server, store, desired):
    actual = inspect_server(server.executor())
    inspect_secrets(store, desired.identifier, actual)
    return build_plan(desired, actual)


def apply_to_fake(server, store, desired, **kw):
    """Apply, then reflect what the SQL would have done into the fake server (via the stored passwords)."""
    plan = plan_for(server, store, desired)
    ex = server.executor()
    apply_plan(plan, desired, ex, store, **kw)
    cfg_tenants = {t.name: t for t in desired.tenants}
    server.reset()
    for name, t in cfg_tenants.items():
        pws = {a.user: store.get(a.secret)["password"] for a in t.accounts}
        ro = [a for a in t.accounts if a.role == "readonly"]
        app = [a for a in t.accounts if a.role == "app"][0]
        server.add_tenant(name, pws, readonly=bool(ro), limit=app.max_connections,
                          ro_limit=ro[0].max_connections if ro else None, twins=bool(app.alt))
    return plan, ex


def test_empty_server_plans_creates_in_order_and_golden_text():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    plan = plan_for(server, store, d)
    kinds = [a.kind for a in plan.actions]
    # Each account and its rotation twin (alternating, the default): same grants and TLS, 1 connection.
    assert kinds == ["create_database", "create_database"] + ["create_user"] * 6 + ["grant"] * 6
    assert all(a.op == "create" for a in plan.actions)
    text = render_text(plan, "header")
    assert text == (GOLDEN / "plan_create.txt").read_text().rstrip("\n")
    assert json.loads(json.dumps(plan.to_json()))["summary"] == {"create": 14, "update": 0, "delete": 0}


@pytest.mark.parametrize("n", [5, 50])
def test_inspect_costs_a_constant_number_of_queries(n):
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    tenants = "\n".join(f"  t{i}: {{max_connections: 1, readonly: true}}" for i in range(n))
    d = desired_for(f"instance: {{parameters: {{max_connections: 1000}}}}\ntenants:\n{tenants}")
    apply_to_fake(server, store, d)
    ex = server.executor()
    actual = inspect_server(ex)
    inspect_secrets(store, d.identifier, actual)
    assert len(ex.queries) == inspect_queries(ex) == 14
    assert build_plan(d, actual).empty


def test_apply_then_plan_is_empty_and_stores_are_written_twice():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    plan, ex = apply_to_fake(server, store, d)
    assert store.writes == 2  # one pending write, one promote
    assert len(ex.executed) == 14
    assert plan_for(server, store, d).empty
    for name in ("dev-orders-db-credentials", "dev-orders-db-readonly-credentials", "dev-billing-db-credentials"):
        s = store.get(name)
        assert set(s) == {"engine", "host", "port", "username", "password", "dbname", "database", "ssl_ca"}
        assert store.get(name, PENDING) is None
    assert store.names()["dev-orders-db-credentials"]["tags"]["tenant"] == "orders"


def test_sql_never_logged_with_plaintext_password():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    _, ex = apply_to_fake(server, store, d)
    pws = [v["password"] for v in store.get_all(CURRENT).values()]
    for stmt in ex.executed:
        for pw in pws:
            assert pw not in stmt.sql and pw not in stmt.safe


def test_drift_is_planned_as_updates():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    apply_to_fake(server, store, d)
    # outside changes
    server.accounts[("orders_user", "%")]["auth"] = "*0000"
    server.accounts[("billing_user", "%")]["ssl_type"] = ""
    server.accounts[("orders_readonly", "%")]["maxc"] = 99
    server.db_grants[("orders_user", "%", "billing\\_db")] = {"SELECT"}
    server.db_grants[("orders_readonly", "%", "orders_db")] = {"SELECT"}  # unescaped wildcard
    server.global_privs[("billing_user", "%")] = {"SUPER"}
    server.table_rows.append(("billing_user", "%", "billing_db", "t", "Insert"))
    server.column_rows.append(("orders_readonly", "%", "billing_db", "t", "a", "Select"))
    server.role_rows.append(("orders_user", "%", "r_ops", ""))
    from .fakeserver import account as _account
    server.accounts[("r_ops", "")] = _account(ssl_type="", is_role=True)
    server.schemata.append(("legacy", "latin1", "latin1_swedish_ci"))
    from .fakeserver import account
    server.accounts[("bob", "%")] = account(auth="*B", ssl_type="")
    plan = plan_for(server, store, d)
    got = {(a.kind, a.object, a.reason) for a in plan.actions}
    assert ("set_password", "user orders_user@%", "password on the server does not match the stored secret") in got
    assert ("alter_user", "user billing_user@%", "require_ssl NONE -> SSL") in got
    assert ("alter_user", "user orders_readonly@%", "max_connections 99 -> 5") in got
    assert ("revoke", "user orders_user@%", "grant outside the config") in got
    assert ("revoke", "user orders_readonly@%",
            "unescaped wildcard grant on orders_db also matches other databases") in got
    assert ("revoke", "user billing_user@%", "global privileges outside the config") in got
    assert ("revoke", "user billing_user@%", "table grant outside the config") in got
    assert ("revoke", "user orders_readonly@%", "column grant outside the config") in got
    assert ("revoke_role", "user orders_user@%", "role r_ops granted outside the config") in got
    assert not plan.destructive
    assert plan.unmanaged_databases == ("legacy",) and plan.unmanaged_users == ("bob@%", "r_ops@")
    sql = [s.sql for a in plan.actions for s in render_statements(a, d, "x" * 32)]
    assert "REVOKE SELECT ON `billing\\_db`.* FROM 'orders_user'@'%'" in sql
    assert "REVOKE SELECT ON `orders_db`.* FROM 'orders_readonly'@'%'" in sql
    assert "REVOKE SUPER ON *.* FROM 'billing_user'@'%'" in sql
    assert "REVOKE INSERT ON `billing_db`.`t` FROM 'billing_user'@'%'" in sql
    assert "REVOKE SELECT (`a`) ON `billing_db`.`t` FROM 'orders_readonly'@'%'" in sql
    assert "REVOKE `r_ops` FROM 'orders_user'@'%'" in sql
    apply_to_fake(server, store, d)
    server.schemata.append(("legacy", "latin1", "latin1_swedish_ci"))
    assert plan_for(server, store, d).empty


def test_removed_tenant_is_destructive_and_refused_before_any_sql_or_secret_write():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    apply_to_fake(server, store, desired_for())
    d2 = desired_for(CFG.replace("  billing: {max_connections: 10}\n", "  fresh: {}\n"))
    plan = plan_for(server, store, d2)
    assert [a.object for a in plan.destructive] == ["user billing_user@%", "user billing_user_alt@%",
                                                    "database billing_db", "secret dev-billing-db-credentials"]
    writes = store.writes
    ex = server.executor()
    with pytest.raises(DestructiveChangeError) as e:
        apply_plan(plan, d2, ex, store)
    assert "--allow-destructive" in str(e.value)
    assert ex.executed == [] and store.writes == writes
    apply_plan(plan, d2, ex, store, allow_destructive=True)
    assert "DROP DATABASE IF EXISTS `billing_db`" in ex.sql
    assert store.get("dev-billing-db-credentials") is None


def test_readonly_removed_drops_only_that_account():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    apply_to_fake(server, store, desired_for())
    d2 = desired_for(CFG.replace("readonly: true", "readonly: false"))
    plan = plan_for(server, store, d2)
    assert [(a.kind, a.object) for a in plan.actions] == [
        ("drop_user", "user orders_readonly@%"), ("drop_user", "user orders_readonly_alt@%"),
        ("delete_secret", "secret dev-orders-db-readonly-credentials")]


def test_pending_secret_finishes_interrupted_change():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    apply_to_fake(server, store, d)
    store.put_pending({"dev-billing-db-credentials": ({**store.get("dev-billing-db-credentials"), "password": "N" * 32}, {})})
    plan = plan_for(server, store, d)
    assert [(a.kind, a.detail.get("password_source")) for a in plan.actions] == [("set_password", "pending")]
    ex = server.executor()
    apply_plan(plan, d, ex, store)
    assert store.get("dev-billing-db-credentials")["password"] == "N" * 32
    assert store.get("dev-billing-db-credentials", "AWSPREVIOUS")["password"] != "N" * 32


def test_user_dropped_outside_is_recreated_with_stored_password():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    apply_to_fake(server, store, d)
    old = store.get("dev-billing-db-credentials")["password"]
    del server.accounts[("billing_user", "%")]
    server.db_grants = {k: v for k, v in server.db_grants.items() if k[0] != "billing_user"}
    plan = plan_for(server, store, d)
    assert [(a.kind, a.detail.get("password_source")) for a in plan.actions] == \
        [("create_user", "current"), ("grant", None)]
    apply_to_fake(server, store, d)
    assert store.get("dev-billing-db-credentials")["password"] == old


def test_port_change_updates_secret_metadata_only():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    apply_to_fake(server, store, d)
    old = store.get("dev-orders-db-credentials")["password"]
    d2 = build_desired(parse_config(CFG), MARIADB_10_11, host="127.0.0.1", port=13307, ca="/ca.pem")
    plan = plan_for(server, store, d2)
    assert {a.kind for a in plan.actions} == {"update_secret"}
    ex = server.executor()
    apply_plan(plan, d2, ex, store)
    assert ex.executed == []
    assert store.get("dev-orders-db-credentials")["port"] == 13307
    assert store.get("dev-orders-db-credentials")["password"] == old


def test_mysql_flavor_plans_caching_sha2_and_all_privileges():
    server, store = FakeServer(MYSQL_8_0), MemorySecretStore()
    d = desired_for(flavor=MYSQL_8_0)
    plan = plan_for(server, store, d)
    sql = [s.sql for a in plan.actions for s in render_statements(a, d, "p" * 32)]
    assert "CREATE USER 'billing_user'@'%' IDENTIFIED WITH caching_sha2_password BY '" + "p" * 32 + \
        "' REQUIRE SSL WITH MAX_USER_CONNECTIONS 10" in sql
    assert "GRANT ALL PRIVILEGES ON `billing\\_db`.* TO 'billing_user'@'%'" in sql


def test_every_action_kind_renders_and_describes():
    from shared_mysql.tenants.render import describe

    d = desired_for()
    base = {"user": "u", "host": "%", "role": "app", "secret": "s", "database": "a_db", "charset": "utf8mb4",
            "collation": "utf8mb4_unicode_ci", "max_connections": 1, "require_ssl": True, "password_source": "new",
            "privileges": ["SELECT"], "scope_kind": "database", "scope": "a_db", "table": "t", "fields": [],
            "role_name": "r", "role_host": "", "name": "/shared/rds/dev/port", "value": "3306",
            "proxied_user": "admin", "proxied_host": "%", "from": "r1", "routine": "p", "routine_type": "PROCEDURE",
            "proxy": "prod-shared-mysql-proxy", "to": "IAM_AUTH"}
    from shared_mysql.tenants.plan import ACTION_KINDS

    for k in ACTION_KINDS:
        a = Action(k, "update", "x", "t", base)
        render_statements(a, d, "p" * 32)
        assert describe(a)
    for scope_kind in ("global", "database", "table", "column", "routine"):
        a = Action("revoke", "update", "x", "t", {**base, "scope_kind": scope_kind, "column": "c"})
        assert render_statements(a, d) and describe(a)
    with pytest.raises(ValueError):
        render_statements(Action("nope", "update", "x"), d)


IAM_CFG = """
environment: dev
identifier: shared-mysql
target: server
instance: {host: db.example, ca_bundle: ca.pem}
tenants:
  orders: {auth: iam, readonly: true}
  billing: {rotation: single}
"""


def test_iam_tenants_on_mysql():
    server, store = FakeServer(MYSQL_8_0), MemorySecretStore()
    d = desired_for(IAM_CFG, flavor=MYSQL_8_0)
    plan = plan_for(server, store, d)
    ex = server.executor()
    apply_plan(plan, d, ex, store)
    assert ("CREATE USER 'orders_user'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' "
            "REQUIRE SSL WITH MAX_USER_CONNECTIONS 10") in ex.sql
    assert ("CREATE USER 'orders_readonly'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' "
            "REQUIRE SSL WITH MAX_USER_CONNECTIONS 2") in ex.sql
    s = store.get("dev-orders-db-credentials")
    assert s["auth"] == "iam" and "password" not in s and s["username"] == "orders_user"
    assert "password" in store.get("dev-billing-db-credentials")
    text = render_text(plan)
    assert "password <redacted>: none: IAM authentication" in text
    # the server now has the IAM plugin: nothing more to do; a plugin changed by hand is put back
    from .fakeserver import account
    server.accounts[("orders_user", "%")] = account("AWSAuthenticationPlugin", "RDS", maxc=10)
    server.accounts[("orders_readonly", "%")] = account("caching_sha2_password", "$A$005$x", maxc=2)
    server.accounts[("billing_user", "%")] = account("caching_sha2_password", "$A$005$y", maxc=10)
    for u in ("orders_user", "orders_readonly", "billing_user"):
        db = u.split("_")[0] + "\\_db"
        privs = MYSQL_8_0.db_all_privileges if u.endswith("_user") else {"SELECT"}
        server.db_grants[(u, "%", db)] = set(privs)
    server.schemata += [("orders_db", "utf8mb4", "utf8mb4_unicode_ci"), ("billing_db", "utf8mb4", "utf8mb4_unicode_ci")]
    plan = plan_for(server, store, d)
    assert [(a.kind, a.object) for a in plan.actions] == [("set_password", "user orders_readonly@%")]
    sql = [s.sql for a in plan.actions for s in render_statements(a, d)]
    assert sql == ["ALTER USER 'orders_readonly'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"]


def test_iam_on_mariadb_is_a_config_error():
    from shared_mysql.errors import ConfigError

    with pytest.raises(ConfigError, match="tenants.orders.auth: iam needs MySQL"):
        desired_for(IAM_CFG, flavor=MARIADB_10_11)


def test_mysql_inspect_sees_dynamic_privileges_default_and_mandatory_roles_lock_and_expiry():
    from .fakeserver import account

    server, store = FakeServer(MYSQL_8_0), MemorySecretStore()
    d = desired_for(CFG.replace("readonly: true}", "readonly: true, rotation: single}").replace(
        "max_connections: 10}", "max_connections: 10, rotation: single}"), flavor=MYSQL_8_0)
    plan = plan_for(server, store, d)
    apply_plan(plan, d, server.executor(), store)
    for name, t in (("orders", True), ("billing", False)):
        for role, suffix in (("app", "_user"), ("readonly", "_readonly")) if t else (("app", "_user"),):
            server.accounts[(f"{name}{suffix}", "%")] = account("caching_sha2_password", "$A$005$x",
                                                              maxc=20 if name == "orders" and role == "app" else
                                                              5 if role == "readonly" else 10)
            privs = MYSQL_8_0.db_all_privileges if role == "app" else {"SELECT"}
            server.db_grants[(f"{name}{suffix}", "%", f"{name}\\_db")] = set(privs)
        server.schemata.append((f"{name}_db", "utf8mb4", "utf8mb4_unicode_ci"))
    assert plan_for(server, store, d).empty
    server.dynamic_grants.append(("orders_user", "%", "SYSTEM_VARIABLES_ADMIN", "N"))
    server.accounts[("billing_user", "%")]["locked"] = True
    server.accounts[("orders_readonly", "%")]["expired"] = True
    server.accounts[("orders_readonly", "%")]["default_role"] = "r_ops"
    server.mandatory_roles = "`r_all`@`%`"
    server.accounts[("orders_user", "127.0.0.1")] = account("caching_sha2_password", "$A$005$s")  # a shadow
    plan = plan_for(server, store, d)
    got = {(a.kind, a.object): a for a in plan.actions}
    assert got[("revoke", "user orders_user@%")].detail["privileges"] == ["SYSTEM_VARIABLES_ADMIN"]
    assert "account_locked LOCK -> UNLOCK" in got[("alter_user", "user billing_user@%")].reason
    assert got[("set_password", "user orders_readonly@%")].reason.startswith("password is expired")
    assert ("set_default_role", "user orders_readonly@%") in got
    assert ("clear_mandatory_roles", "variable mandatory_roles") in got
    assert ("drop_shadow", "user orders_user@127.0.0.1") in got
    sql = [s.sql for a in plan.actions for s in render_statements(a, d, "p" * 32)]
    assert "REVOKE SYSTEM_VARIABLES_ADMIN ON *.* FROM 'orders_user'@'%'" in sql
    assert "SET DEFAULT ROLE NONE TO 'orders_readonly'@'%'" in sql
    assert "SET PERSIST mandatory_roles = ''" in sql
    assert "DROP USER IF EXISTS 'orders_user'@'127.0.0.1'" in sql
    assert any(s.startswith("ALTER USER 'billing_user'@'%' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 0") and
               s.endswith("PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK") and "MAX_STATEMENT_TIME" not in s for s in sql)
    assert not plan.destructive


def test_the_master_is_never_planned_whatever_the_tags_say():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    apply_to_fake(server, store, d)
    tags = {"managed-by": "shared-mysql", "instance": "shared-mysql", "environment": "dev", "role": "app"}
    # Tags that claim a removed tenant but point its username/dbname at the admin and another tenant's database.
    store.put_pending({"dev-shop-db-credentials": ({"username": "admin", "dbname": "orders_db", "password": "x"},
                                                   {**tags, "tenant": "shop"}),
                       "dev-admin-db-credentials": ({"username": "admin", "password": "x"},
                                                    {**tags, "tenant": "admin"}),
                       "prod-gone-db-credentials": ({"username": "gone_user", "password": "x"},
                                                    {**tags, "tenant": "gone"})})
    store.promote(["dev-shop-db-credentials", "dev-admin-db-credentials", "prod-gone-db-credentials"])
    plan = plan_for(server, store, d)
    assert not plan.destructive and len(plan.ignored_secrets) == 3
    assert any("its username 'admin' is not shop_user" in x for x in plan.ignored_secrets)
    assert any("its tenant tag is not a tenant name" in x for x in plan.ignored_secrets)  # 'admin' is reserved
    # a tenant whose account would be the master's is refused by the plan itself (a library caller bypassing config)
    from dataclasses import replace

    from shared_mysql.errors import ConfigError

    with pytest.raises(ConfigError, match="master or a system account"):
        build_plan(replace(d, admin_users=frozenset({"orders_user"})), inspect_server(server.executor()))


def test_a_statement_the_server_refuses_does_not_shield_the_rest():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    apply_to_fake(server, store, desired_for())
    server.global_privs[("billing_user", "%")] = {"SUPER"}
    server.db_grants[("orders_user", "%", "billing\\_db")] = {"SELECT"}
    d2 = desired_for(CFG.replace("readonly: true", "readonly: false"))
    plan = plan_for(server, store, d2)
    ex = server.executor()
    ex.fail_on = "REVOKE SUPER"
    res = apply_plan(plan, d2, ex, store, allow_destructive=True)
    assert len(res.failed) == 1 and "REVOKE SUPER ON *.* FROM 'billing_user'@'%'" in res.failed[0]
    assert "REVOKE SELECT ON `billing\\_db`.* FROM 'orders_user'@'%'" in ex.sql  # ran after the refused one
    assert store.get("dev-orders-db-readonly-credentials") is None  # its DROP USER ran: secret deleted
    # a refused DROP USER keeps the account's secret (the next run still knows the account is ours)
    server2, store2 = FakeServer(MARIADB_10_11), MemorySecretStore()
    apply_to_fake(server2, store2, desired_for())
    plan2 = plan_for(server2, store2, d2)
    ex2 = server2.executor()
    ex2.fail_on = "DROP USER IF EXISTS 'orders_readonly'"
    res2 = apply_plan(plan2, d2, ex2, store2, allow_destructive=True)
    assert len(res2.failed) == 1 and store2.get("dev-orders-db-readonly-credentials") is not None


def _edit_secret(store, name, **changes):
    """Store a new current version of `name` with `changes` (None removes a key), as a user editing it would."""
    value = {k: v for k, v in {**store.get(name), **changes}.items() if v is not None}
    store.put_pending({name: (value, {})})
    store.promote([name])


def test_fields_a_user_added_to_a_secret_are_kept_and_never_planned():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    apply_to_fake(server, store, d)
    name = "dev-orders-db-credentials"
    _edit_secret(store, name, team="payments", rotation_contact="ops@example.com")
    assert plan_for(server, store, d).empty  # theirs: not drift

    # A field this tool writes drifts (host) and one is removed (database): updated, and the user's stay.
    _edit_secret(store, name, host="10.0.0.9", database=None)
    plan = plan_for(server, store, d)
    [act] = [a for a in plan.actions if a.kind == "update_secret"]
    assert act.detail["fields"] == ["database", "host"]
    apply_plan(plan, d, server.executor(), store)
    got = store.get(name)
    assert got["team"] == "payments" and got["rotation_contact"] == "ops@example.com"
    assert got["host"] == "127.0.0.1" and got["database"] == got["dbname"] == "orders_db"
    assert plan_for(server, store, d).empty


def test_a_password_reset_keeps_the_users_fields():
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    d = desired_for()
    apply_to_fake(server, store, d)
    name = "dev-billing-db-credentials"
    _edit_secret(store, name, team="billing-team")
    server.accounts[("billing_user", "%")]["auth"] = "*0000000000000000000000000000000000000000"  # drift
    plan = plan_for(server, store, d)
    assert [a.kind for a in plan.actions] == ["set_password"]
    apply_plan(plan, d, server.executor(), store)
    assert store.get(name)["team"] == "billing-team"
