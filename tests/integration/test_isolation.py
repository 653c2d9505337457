"""Who can reach a tenant's data, asked of the whole server (issue 7, item 1, 3, 4, 7): grants to PUBLIC, routine
grants, proxies, roles to PUBLIC, default roles, shadow and anonymous accounts, lock/expiry, per-hour limits, the
master account under a colliding name, drops decided by tags alone, and names that try to forge plan lines.

Each test shows the leak on the real server first (so it cannot pass vacuously), then that plan finds it, apply
reverts it, the leak is gone, and the next plan is empty."""

import json

import pymysql
import pytest

from shared_mysql.tenants.inspect import inspect_queries, inspect_server

from .helpers import assert_all_stored_credentials_log_in, error_code, login

TENANTS = {"orders": {"max_connections": 3, "readonly": True}, "billing": {"max_connections": 3}}


@pytest.fixture
def applied(instance_factory):
    inst = instance_factory(TENANTS)
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    creds = {"orders": t.store.get("test-orders-db-credentials"), "billing": t.store.get("test-billing-db-credentials"),
             "orders_ro": t.store.get("test-orders-db-readonly-credentials")}
    with t.executor() as ex:
        ex.query("CREATE TABLE billing_db.cards (id INT PRIMARY KEY, pan VARCHAR(20))")
        ex.query("INSERT INTO billing_db.cards VALUES (1, '4111111111111111')")
    return inst, t, creds


def sql(t, *statements):
    with t.executor() as ex:
        for s in statements:
            ex.query(s)


def plan_json(inst) -> dict:
    res = inst.cli("plan", "--detailed-exitcode", "-o", "json")
    assert res.returncode == 2, res.stderr
    return json.loads(res.stdout)


def converge(inst, t):
    res = inst.cli("apply", "--auto-approve")
    assert res.returncode == 0, res.stderr
    assert "Converged." in res.stdout
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0
    assert_all_stored_credentials_log_in(t)


def reads_cards(secret, database="orders_db") -> bool:
    try:
        conn = login(secret, database=database)
    except pymysql.err.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pan FROM billing_db.cards")
            return cur.fetchone() is not None
    except pymysql.err.MySQLError:
        return False
    finally:
        conn.close()


def test_grants_to_public_are_drift_and_revoked(applied):
    inst, t, creds = applied
    sql(t, "GRANT SELECT ON billing_db.* TO PUBLIC", "GRANT FILE ON *.* TO PUBLIC",
        "GRANT SELECT ON mysql.user TO PUBLIC", "GRANT SELECT (pan) ON billing_db.cards TO PUBLIC",
        "CREATE ROLE leaky", "GRANT SELECT ON billing_db.* TO leaky", "GRANT leaky TO PUBLIC")
    assert reads_cards(creds["orders"]) and reads_cards(creds["orders_ro"])  # the leak is real
    plan = plan_json(inst)
    public = [a for a in plan["actions"] if a["object"] == "PUBLIC"]
    assert {(a["kind"], a["detail"].get("scope_kind")) for a in public} == {
        ("revoke", "database"), ("revoke", "global"), ("revoke", "table"), ("revoke", "column"), ("revoke_role", None)}
    assert not any(a["destructive"] for a in plan["actions"])
    converge(inst, t)
    assert not reads_cards(creds["orders"]) and not reads_cards(creds["orders_ro"])
    with t.executor() as ex:
        assert ex.query("SELECT JSON_VALUE(Priv, '$.access') FROM mysql.global_priv WHERE User='PUBLIC'")[0][0] == "0"


def test_routine_grant_on_a_definer_routine_is_drift(applied):
    inst, t, creds = applied
    sql(t, "CREATE PROCEDURE billing_db.leak() SQL SECURITY DEFINER SELECT pan FROM billing_db.cards",
        "CREATE FUNCTION billing_db.f() RETURNS INT READS SQL DATA SQL SECURITY DEFINER RETURN (SELECT COUNT(*) FROM billing_db.cards)",
        "GRANT EXECUTE ON PROCEDURE billing_db.leak TO 'orders_user'@'%'",
        "GRANT EXECUTE, ALTER ROUTINE ON FUNCTION billing_db.f TO 'orders_readonly'@'%' WITH GRANT OPTION")
    conn = login(creds["orders"])
    with conn.cursor() as cur:
        cur.execute("CALL billing_db.leak()")
        assert cur.fetchone() == ("4111111111111111",)  # definer's rights: the leak is real
    conn.close()
    plan = plan_json(inst)
    routine = [a for a in plan["actions"] if a["kind"] == "revoke" and a["detail"]["scope_kind"] == "routine"]
    assert {(a["object"], a["detail"]["scope"]) for a in routine} == {
        ("user orders_user@%", "PROCEDURE billing_db.leak"), ("user orders_readonly@%", "FUNCTION billing_db.f")}
    converge(inst, t)
    conn = login(creds["orders"])
    with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as e:
        cur.execute("CALL billing_db.leak()")
    assert e.value.args[0] in (1370, 1142, 1044)
    conn.close()


def test_shadow_account_on_another_host_is_dropped(applied):
    inst, t, creds = applied
    sql(t, "CREATE USER 'orders_user'@'127.0.0.1' IDENTIFIED BY 'shadow-pass-1' REQUIRE SSL",
        "GRANT ALL ON *.* TO 'orders_user'@'127.0.0.1'",
        "CREATE USER 'billing_readonly_alt'@'localhost' IDENTIFIED BY 'x'",
        # ''@'%' (not a more specific host: that would capture the admin's own logins and lock the tool out).
        "CREATE USER ''@'%' IDENTIFIED BY 'anon-pass-1' REQUIRE SSL", "GRANT SELECT ON billing_db.* TO ''@'%'",
        "CREATE USER ''@'localhost'")
    # The shadow wins for logins from 127.0.0.1 (more specific host): the tenant's own password fails...
    assert error_code(lambda: login(creds["orders"])) == 1045
    # ...and the shadow's password opens everything; the anonymous account opens billing_db to any user name.
    assert reads_cards({**creds["orders"], "password": "shadow-pass-1"})
    assert reads_cards({**creds["orders"], "username": "nobody-at-all", "password": "anon-pass-1"}, database=None)
    plan = plan_json(inst)
    shadows = {a["object"]: a["tenant"] for a in plan["actions"] if a["kind"] == "drop_shadow"}
    # A configured account's name on another host, and anonymous accounts. An unused name of a tenant's namespace
    # (billing_readonly_alt) is just an unmanaged account: never dropped, its reach into tenants revoked.
    assert shadows == {"user orders_user@127.0.0.1": "orders", "user @%": None, "user @localhost": None}
    assert "billing_readonly_alt@localhost" in plan["unmanaged"]["users"]
    assert not any(a["destructive"] for a in plan["actions"])
    text = inst.cli("plan").stdout
    assert "drop user orders_user@127.0.0.1 (shadow of tenant orders" in text
    converge(inst, t)
    assert not reads_cards({**creds["orders"], "password": "shadow-pass-1"})
    assert not reads_cards({**creds["orders"], "username": "nobody-at-all", "password": "anon-pass-1"}, database=None)


def expired_error(secret) -> int | None:
    """MariaDB lets a client that cannot change passwords in (sandbox mode) and refuses its statements (1820)."""
    try:
        conn = login(secret)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
    except pymysql.err.MySQLError as exc:
        return exc.args[0]
    return None


def test_proxy_default_role_lock_expiry_and_limits_are_drift(applied):
    inst, t, creds = applied
    sql(t, "GRANT PROXY ON 'admin'@'%' TO 'orders_user'@'%'",
        "CREATE USER 'ops'@'%' IDENTIFIED BY 'x'",
        # Only a root-like account can GRANT PROXY on another account; it is what such a grant leaves behind.
        "INSERT INTO mysql.proxies_priv (Host, User, Proxied_host, Proxied_user, With_grant, Grantor) "
        "VALUES ('%', 'ops', '%', 'billing_user', 0, 'root@localhost')", "FLUSH PRIVILEGES",
        "CREATE ROLE r_side", "GRANT r_side TO 'orders_readonly'@'%'", "SET DEFAULT ROLE r_side FOR 'orders_readonly'@'%'",
        "ALTER USER 'billing_user'@'%' ACCOUNT LOCK",
        "ALTER USER 'orders_readonly'@'%' PASSWORD EXPIRE",
        "ALTER USER 'orders_user'@'%' WITH MAX_QUERIES_PER_HOUR 1 MAX_STATEMENT_TIME 0.001")
    assert error_code(lambda: login(creds["billing"])) == 4151  # locked
    assert expired_error(creds["orders_ro"]) in (1820, 1862)  # expired: sandbox mode, or refused
    plan = plan_json(inst)
    kinds = {(a["kind"], a["object"]) for a in plan["actions"]}
    assert ("revoke_proxy", "user orders_user@%") in kinds and ("revoke_proxy", "user ops@%") in kinds
    assert ("set_default_role", "user orders_readonly@%") in kinds
    assert ("revoke_role", "user orders_readonly@%") in kinds
    reasons = {a["object"]: a["reason"] for a in plan["actions"] if a["kind"] in ("alter_user", "set_password")}
    assert "account_locked LOCK -> UNLOCK" in reasons["user billing_user@%"]
    assert "max_questions 1 -> 0" in reasons["user orders_user@%"]
    assert "expired" in reasons["user orders_readonly@%"]
    converge(inst, t)
    with t.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM mysql.proxies_priv WHERE User IN ('orders_user', 'ops')")[0][0] == 0
        assert ex.query("SELECT default_role FROM mysql.user WHERE User='orders_readonly'")[0][0] == ""
        assert ex.query("SELECT COUNT(*) FROM mysql.user WHERE User='ops'")[0][0] == 1  # unmanaged: kept


def test_inspect_is_a_constant_number_of_queries_and_sees_everything(applied):
    _, t, _ = applied
    sql(t, "GRANT SELECT ON billing_db.* TO PUBLIC",
        "CREATE PROCEDURE billing_db.p() SELECT 1", "GRANT EXECUTE ON PROCEDURE billing_db.p TO 'orders_user'@'%'")
    with t.executor() as ex:
        before = ex.queries
        a = inspect_server(ex)
        assert ex.queries - before == inspect_queries(ex) == 14
    assert a.db_privs[("PUBLIC", "")] == {"billing_db": {"SELECT"}}
    assert a.routine_privs[("orders_user", "%")] == {("billing_db", "p", "PROCEDURE"): {"EXECUTE"}}
    assert a.current_user == ("admin", "%")


def test_inspect_reads_the_same_with_or_without_a_second_connection_and_on_a_thread(applied):
    """DEFINER objects are read on a second connection (query_later); when none can be had, on the first. The
    threaded inspect (start_inspect) that plan uses gives the same Actual as the plain one."""
    from dataclasses import replace

    from shared_mysql.tenants.inspect import start_inspect

    _, t, _ = applied
    sql(t, "CREATE DEFINER='admin'@'%' VIEW billing_db.v AS SELECT 1 AS one")
    with t.executor() as ex:
        plain = inspect_server(ex)
        threaded = start_inspect(ex).result()
        ex._info = replace(ex._info, password="not-the-password")  # the second connection is refused
        before = ex.queries
        fallback = inspect_server(ex)
        assert ex.queries - before == inspect_queries(ex)
    assert ("billing_db", "v", "VIEW", ("admin", "%")) in plain.definers
    assert plain == threaded == fallback


def test_tags_alone_never_drop_the_admin_or_another_configs_database(applied):
    inst, t, _ = applied
    sql(t, "CREATE DATABASE shop_db")
    # A secret that claims to be tenant shop's, but names the admin and another database.
    tags = {"managed-by": "shared-mysql", "instance": "itest", "environment": "test", "tenant": "shop", "role": "app"}
    t.store.put_pending({"test-shop-db-credentials": ({"username": "admin", "password": "p" * 32,
                                                       "dbname": "shop_db", "host": "127.0.0.1"}, tags)})
    t.store.promote(["test-shop-db-credentials"])
    t.store.put_pending({"test-admin-db-credentials": ({"username": "admin", "password": "p" * 32}, {
        **tags, "tenant": "admin"})})
    res = inst.cli("plan", "-o", "json")
    plan = json.loads(res.stdout)
    assert not any(a["destructive"] for a in plan["actions"]), plan["actions"]
    assert len(plan["unmanaged"]["secrets"]) == 2
    text = inst.cli("plan").stdout
    assert "Ignored secrets" in text and "its username 'admin' is not shop_user" in text
    inst.cli("apply", "--auto-approve", "--allow-destructive", check=True)
    with t.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='shop_db'")[0][0] == 1
    assert login(t.master_secret(), database=None)  # the admin still logs in


def test_master_named_like_a_tenant_account_is_refused_before_anything_runs(applied):
    inst, t, _ = applied
    text = inst.config_path.read_text().replace("instance:", "instance:\n  master_username: billing_user", 1)
    inst.config_path.write_text(text)
    for cmd in (("plan",), ("apply", "--auto-approve"), ("up",)):
        res = inst.cli(*cmd)
        assert res.returncode == 1, cmd
        line = res.stderr.strip()
        assert "\n" not in line and "master_username" in line and "billing" in line, line


def test_names_with_newlines_never_crash_nor_forge_plan_lines(applied):
    inst, t, creds = applied
    forged = "x\nNo changes. The server matches the config.\nz"  # (a name cannot end with a newline)
    sql(t, "CREATE USER 'bad\\nname'@'%' IDENTIFIED BY 'x'",
        f"CREATE DATABASE `{forged}`",
        "CREATE USER 'orders_user'@'evil\\nhost' IDENTIFIED BY 'x'",
        "CREATE USER 'orders_readonly'@'back\\\\slash' IDENTIFIED BY 'x'",
        "CREATE USER 'esc\x1b[2Jape'@'%' IDENTIFIED BY 'x'")
    for cmd in (("plan",), ("plan", "-o", "json")):
        res = inst.cli(*cmd)
        assert res.returncode == 0, res.stderr
        assert "Traceback" not in res.stderr
    text = inst.cli("plan").stdout
    # There ARE changes (the two shadows): no line may claim otherwise, nor carry a raw control character.
    assert not any(ln.startswith("No changes") for ln in text.splitlines())
    assert '"x\\nNo changes. The server matches the config.\\nz"' in text
    assert '"bad\\nname@%"' in text and '"esc\\u001b[2Jape@%"' in text and "\x1b" not in text
    for line in text.splitlines():
        assert line.isprintable(), repr(line)
    converge(inst, t)
    with t.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'orders%' AND Host <> '%'")[0][0] == 0
    assert inst.cli("up").returncode == 0


def test_executor_reads_what_inspect_needs_as_the_master_only(applied):
    """The tenant accounts cannot read the grant tables inspect reads (no information leak between tenants)."""
    _, _, creds = applied
    conn = login(creds["orders"])
    with conn.cursor() as cur:
        for table in ("mysql.global_priv", "mysql.db", "mysql.procs_priv", "mysql.proxies_priv"):
            with pytest.raises(pymysql.err.OperationalError) as e:
                cur.execute(f"SELECT * FROM {table}")
            assert e.value.args[0] in (1142, 1044), table
    conn.close()


def test_grants_no_revoke_can_reach_never_block_the_rest(applied):
    """A PACKAGE grant (its REVOKE parses only under sql_mode=ORACLE) and orphan grant-table rows made every later
    apply fail, so no other drift was reverted. They are removed from the grant tables; the rest converges."""
    inst, t, creds = applied
    with t.executor() as ex:
        ex.query("SET SESSION sql_mode = 'ORACLE'")
        ex.query("CREATE PACKAGE billing_db.pkg AS PROCEDURE p; END")
        ex.query("CREATE PACKAGE BODY billing_db.pkg AS PROCEDURE p AS BEGIN NULL; END; END")
        ex.query("GRANT EXECUTE ON PACKAGE billing_db.pkg TO 'orders_user'@'%'")
        ex.query("GRANT EXECUTE ON PACKAGE BODY billing_db.pkg TO 'orders_user'@'%'")
    sql(t, "INSERT INTO mysql.roles_mapping (Host, User, Role, Admin_option) VALUES ('%', 'orders_user', 'gone', 'N')",
        "INSERT INTO mysql.db (Host, Db, User, Select_priv) VALUES ('%', 'billing\\\\_db', 'futureuser', 'Y')",
        "FLUSH PRIVILEGES",
        "GRANT SELECT ON billing_db.* TO 'orders_readonly'@'%'", "GRANT SELECT ON *.* TO PUBLIC")
    assert reads_cards(creds["orders_ro"])
    plan = plan_json(inst)
    orphan = [a for a in plan["actions"] if a["detail"].get("orphan")]
    assert {a["kind"] for a in orphan} == {"revoke_role", "revoke"}
    converge(inst, t)
    assert not reads_cards(creds["orders_ro"])
    with t.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM mysql.procs_priv WHERE User = 'orders_user'")[0][0] == 0
        assert ex.query("SELECT COUNT(*) FROM mysql.roles_mapping WHERE Role = 'gone'")[0][0] == 0
        assert ex.query("SELECT COUNT(*) FROM mysql.db WHERE User = 'futureuser'")[0][0] == 0


def test_other_accounts_reaching_tenant_data_are_revoked_or_reported(applied):
    inst, t, creds = applied
    sql(t, "CREATE USER 'eve'@'%' IDENTIFIED BY 'eve-pass-1' REQUIRE SSL", "GRANT SELECT ON `billing\\_db`.* TO 'eve'@'%'",
        "GRANT SELECT ON `bill%`.* TO 'eve'@'%'", "GRANT SELECT ON test_other.* TO 'eve'@'%'",
        "CREATE USER 'mallory'@'%' IDENTIFIED BY 'x'", "GRANT SELECT ON *.* TO 'mallory'@'%' WITH GRANT OPTION",
        "CREATE USER 'monitor'@'%' IDENTIFIED BY 'x'", "GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'monitor'@'%'",
        "RENAME USER 'billing_user'@'%' TO 'ghost'@'%'",
        "CREATE DEFINER='admin'@'%' VIEW orders_db.v_hashes AS SELECT User, Priv FROM mysql.global_priv")
    eve = {**creds["billing"], "username": "eve", "password": "eve-pass-1"}
    assert reads_cards(eve, database=None)
    plan = plan_json(inst)
    revokes = {(a["object"], a["detail"]["scope"]) for a in plan["actions"] if a["kind"] == "revoke"}
    assert {("user eve@%", "billing\\_db"), ("user eve@%", "bill%"), ("user ghost@%", "billing\\_db")} <= revokes
    assert not any(a["object"] == "user eve@%" and a["detail"]["scope"] == "test_other" for a in plan["actions"])
    assert not any(a["kind"] in ("drop_shadow", "drop_user") and "alt" in a["object"] for a in plan["actions"])
    exposures = "\n".join(plan["exposures"])
    assert "mallory@% holds GRANT OPTION, SELECT ON *.*" in exposures and "monitor@%" not in exposures
    assert "view orders_db.v_hashes runs as admin@%" in exposures
    assert "Exposures" in inst.cli("plan").stdout
    converge(inst, t)
    assert not reads_cards(eve, database=None)
    with t.executor() as ex:  # the accounts themselves are left alone; their reach into tenants is gone
        assert ex.query("SELECT COUNT(*) FROM mysql.user WHERE User IN ('eve', 'mallory', 'ghost', "
                        "'orders_readonly_alt')")[0][0] == 4
        assert ex.query("SELECT COUNT(*) FROM mysql.db WHERE User = 'eve' AND Db = 'test_other'")[0][0] == 1
    assert login(creds["billing"])  # the renamed tenant account was recreated with its stored password


def test_account_names_with_trailing_spaces_are_seen_as_they_really_are(applied):
    """The grant tables (CHAR columns) read 'billing_user ' back as 'billing_user'; the server's accounts keep the
    spaces. A renamed tenant account locked the tenant out with plan saying "No changes", and a spaced shadow
    survived apply."""
    inst, t, creds = applied
    sql(t, "RENAME USER 'billing_user'@'%' TO 'billing_user '@'%'",
        "CREATE USER 'orders_user '@'127.0.0.1' IDENTIFIED BY 'spaced-pass-1'",
        "GRANT ALL ON *.* TO 'orders_user '@'127.0.0.1'")
    assert error_code(lambda: login(creds["billing"])) == 1045  # locked out
    plan = plan_json(inst)
    kinds = [(a["kind"], a["object"]) for a in plan["actions"]]
    assert ("drop_shadow", "user billing_user @%") in kinds and ("drop_shadow", "user orders_user @127.0.0.1") in kinds
    assert ("create_user", "user billing_user@%") in kinds
    assert kinds.index(("drop_shadow", "user billing_user @%")) < kinds.index(("create_user", "user billing_user@%"))
    converge(inst, t)
    assert login(creds["billing"])
    assert not reads_cards({**creds["orders"], "username": "orders_user ", "password": "spaced-pass-1"}, database=None)
    with t.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE LIKE '% ''@%'")[0][0] == 0


def test_a_tenant_cannot_write_files_outside_the_datadir(applied, tmp_path):
    """With symbolic links on (the default), CREATE TABLE ... DATA DIRECTORY='/anywhere' made the server, running as
    root, create files wherever a tenant asked."""
    _, t, creds = applied
    target = tmp_path / "evil"
    conn = login(creds["orders"])
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE t1 (a INT) ENGINE=InnoDB DATA DIRECTORY='{target}'")
        cur.execute(f"CREATE TABLE t2 (a INT) ENGINE=MyISAM DATA DIRECTORY='{target}' INDEX DIRECTORY='{target}'")
        cur.execute(f"CREATE TABLE t3 (a INT) ENGINE=Aria DATA DIRECTORY='{target}'")
        cur.execute(f"CREATE TABLE t4 (a INT) ENGINE=MyISAM DATA DIRECTORY='{t.server.paths.logs}'")
        cur.execute("SELECT @@have_symlink, @@local_infile")
        assert cur.fetchone() == ("DISABLED", 0)
    conn.close()
    assert not target.exists()
    assert not list(t.server.paths.logs.glob("t4*"))


def test_live_changes_apply_does_not_own_are_reported(applied):
    """A SET GLOBAL outlives my.cnf, and an account made without a password logs in until the next restart: plan
    reports both (apply leaves them to a person)."""
    inst, t, _ = applied
    sql(t, "SET GLOBAL require_secure_transport = OFF", "CREATE USER 'ops'@'%'",
        "CREATE USER 'sock'@'localhost' IDENTIFIED VIA unix_socket")
    try:
        plan = json.loads(inst.cli("plan", "-o", "json", check=True).stdout)
        exposures = "\n".join(plan["exposures"])
        assert "require_secure_transport is OFF on the running server" in exposures
        assert "ops@% logs in without a password" in exposures
        assert "sock@localhost logs in without a password (plugin unix_socket)" in exposures
        assert "admin@%" not in exposures
    finally:
        sql(t, "SET GLOBAL require_secure_transport = ON")
