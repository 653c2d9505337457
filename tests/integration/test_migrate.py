"""Flyway-compatible migrations on the real server (issue 14, part 1): run as the tenant, from empty, re-run is a
no-op, a changed applied file fails validate, a failed migration blocks until repair, two migrates serialise under
Flyway's own lock, baseline, repeatables re-run on a checksum change, a tenant cannot reach another's database."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from shared_mysql.migrations import history as H
from shared_mysql.migrations import runner

from ..conftest import CLI


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    from ..conftest import Instance, free_port, require_server_binary, stop_servers_under

    require_server_binary()
    i = Instance(tmp_path_factory.mktemp("migrate"), free_port())
    i.write({"orders": {"migrations": {"table": "schema_version"}}, "billing": {}})
    t = i.target()
    t.local_up()
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        t.apply(ex, plan, desired)
    yield i
    stop_servers_under(i.dir)


def reset(inst, db="orders_db"):
    with inst.target().executor() as ex:
        for name, kind in ex.query(f"SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE "
                                   f"TABLE_SCHEMA = '{db}'"):
            ex.query(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} `{db}`.`{name}`")


def write(d, files: dict):
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.sql"):
        old.unlink()
    for name, body in files.items():
        (d / name).write_bytes(body.encode() if isinstance(body, str) else body)
    return d


FILES = {
    "V1__initial_schema.sql": "CREATE TABLE users (\r\n  id BIGINT AUTO_INCREMENT PRIMARY KEY,\r\n"
                              "  email VARCHAR(255) NOT NULL UNIQUE\r\n) ENGINE=InnoDB;\r\n",
    "V1_1__add_name.sql": "ALTER TABLE users ADD COLUMN name VARCHAR(100);\n-- a comment; with a semicolon\n"
                          "INSERT INTO users (email, name) VALUES ('a@x', 'it''s; fine');\n",
    "V2__orders.sql": "CREATE TABLE orders (id INT PRIMARY KEY, user_id BIGINT);\n",
    "R__user_view.sql": "CREATE OR REPLACE VIEW user_names AS SELECT id, name FROM users;\n",
}


def cli(inst, *args, input=None):
    return subprocess.run([*CLI, "-c", str(inst.config_path), *args], capture_output=True, text=True, timeout=120,
                          input=input)


def test_migrate_from_empty_records_flyway_rows_and_a_rerun_is_a_no_op(inst, tmp_path):
    reset(inst)
    d = write(tmp_path / "m", FILES)
    res = cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [m["script"] for m in out["applied"]] == ["V1__initial_schema.sql", "V1_1__add_name.sql",
                                                     "V2__orders.sql", "R__user_view.sql"]
    with inst.target().executor() as ex:
        rows = ex.query("SELECT installed_rank, version, description, type, script, checksum, installed_by, success "
                        "FROM orders_db.schema_version ORDER BY installed_rank")
        cols = [r[0] for r in ex.query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                                       "'orders_db' AND TABLE_NAME = 'schema_version' ORDER BY ORDINAL_POSITION")]
    assert cols == ["installed_rank", "version", "description", "type", "script", "checksum", "installed_by",
                    "installed_on", "execution_time", "success"]
    assert [r[1] for r in rows] == ["1", "1.1", "2", None]
    assert [r[2] for r in rows] == ["initial schema", "add name", "orders", "user view"]
    assert {r[3] for r in rows} == {"SQL"} and all(r[7] == 1 for r in rows)
    assert {r[6] for r in rows} == {"orders_user"}  # run as the tenant, never as the admin
    from shared_mysql.migrations.scripts import checksum

    assert rows[0][5] == checksum(FILES["V1__initial_schema.sql"].encode())
    # CRLF and LF give Flyway's same checksum
    assert rows[0][5] == checksum(FILES["V1__initial_schema.sql"].replace("\r\n", "\n").encode())
    again = cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d))
    assert again.returncode == 0 and json.loads(again.stdout)["applied"] == []
    assert cli(inst, "migrate", "orders", "validate", "--dir", str(d)).returncode == 0


def test_a_changed_applied_file_fails_validate_and_migrate_until_repair(inst, tmp_path):
    reset(inst)
    d = write(tmp_path / "m", FILES)
    assert cli(inst, "migrate", "orders", "--dir", str(d)).returncode == 0
    (d / "V1_1__add_name.sql").write_text(FILES["V1_1__add_name.sql"] + "-- edited\n")
    v = cli(inst, "migrate", "orders", "validate", "--dir", str(d))
    assert v.returncode == 3 and "checksum mismatch for migration version 1.1" in v.stderr, v.stderr
    m = cli(inst, "migrate", "orders", "--dir", str(d))
    assert m.returncode == 1 and "validation failed" in m.stderr and m.stderr.count("\n") == 1, m.stderr
    r = cli(inst, "migrate", "orders", "repair", "--dir", str(d))
    assert r.returncode == 0 and "realigned checksum of V1_1__add_name.sql" in r.stdout
    assert cli(inst, "migrate", "orders", "validate", "--dir", str(d)).returncode == 0


def test_a_failed_migration_is_recorded_and_blocks_later_ones_until_repair(inst, tmp_path):
    reset(inst)
    files = {**FILES, "V3__broken.sql": "ALTER TABLE orders ADD COLUMN total INT;\nALTER TABLE nope ADD x INT;\n",
             "V4__later.sql": "CREATE TABLE later (id INT PRIMARY KEY);\n"}
    d = write(tmp_path / "m", files)
    res = cli(inst, "migrate", "orders", "--dir", str(d))
    assert res.returncode == 1
    assert "V3__broken.sql line 2 failed" in res.stderr and "error 1146" in res.stderr, res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert "`shared-mysql migrate orders repair`" in res.stderr
    with inst.target().executor() as ex:
        assert ex.query("SELECT version, success FROM orders_db.schema_version WHERE version = '3'") == [("3", 0)]
        assert ex.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'orders_db' AND "
                        "TABLE_NAME = 'later'")[0][0] == 0
    again = cli(inst, "migrate", "orders", "--dir", str(d))
    assert again.returncode == 1 and "Detected failed migration to version 3" in again.stderr
    # the fix: undo the half-done change, fix the script, repair, migrate
    with inst.target().executor() as ex:
        ex.query("ALTER TABLE orders_db.orders DROP COLUMN total")
    (d / "V3__broken.sql").write_text("ALTER TABLE orders ADD COLUMN total INT;\n")
    assert "removed failed V3__broken.sql" in cli(inst, "migrate", "orders", "repair", "--dir", str(d)).stdout
    ok = cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d))
    assert ok.returncode == 0, ok.stderr
    assert [m["version"] for m in json.loads(ok.stdout)["applied"]] == ["3", "4", None]  # and the repeatable


def test_repeatables_rerun_when_their_checksum_changes(inst, tmp_path):
    reset(inst)
    d = write(tmp_path / "m", FILES)
    assert cli(inst, "migrate", "orders", "--dir", str(d)).returncode == 0
    (d / "R__user_view.sql").write_text("CREATE OR REPLACE VIEW user_names AS SELECT id, name, email FROM users;\n")
    out = json.loads(cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d)).stdout)
    assert [m["script"] for m in out["applied"]] == ["R__user_view.sql"]
    with inst.target().executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM orders_db.schema_version WHERE version IS NULL")[0][0] == 2
        assert ex.query("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'orders_db' AND "
                        "TABLE_NAME = 'user_names'")[0][0] == 3


def test_two_concurrent_migrates_serialise_under_flyways_lock(inst, tmp_path):
    reset(inst)
    files = {"V1__slow.sql": "CREATE TABLE t1 (id INT PRIMARY KEY);\nDO SLEEP(2);\n",
             "V2__more.sql": "CREATE TABLE t2 (id INT PRIMARY KEY);\n"}
    d = write(tmp_path / "m", files)
    results = []

    def run():
        results.append(cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    applied = sorted(len(json.loads(r.stdout)["applied"]) for r in results)
    assert applied == [0, 2]  # one did the work, the other waited and found nothing to do
    with inst.target().executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM orders_db.schema_version")[0][0] == 2
    # a holder that does not let go: the second fails with one line naming the lock
    t = inst.target()
    conn, db = runner.open_as_tenant(t, "orders")
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT GET_LOCK('{H.lock_name(db, 'schema_version')}', 0)")
        res = cli(inst, "migrate", "orders", "--dir", str(d), "--lock-timeout", "1")
        assert res.returncode == 1 and "another migration of orders_db is running" in res.stderr
        assert H.lock_name(db, "schema_version") in res.stderr and ": orders_user from 127.0.0.1" in res.stderr
    finally:
        conn.close()


def test_baseline_on_an_existing_schema(inst, tmp_path):
    reset(inst)
    with inst.target().executor() as ex:
        ex.query("CREATE TABLE orders_db.legacy (id INT PRIMARY KEY)")
    res = cli(inst, "migrate", "orders", "baseline", "--version", "3")
    assert res.returncode == 0 and "baseline at version 3" in res.stdout
    d = write(tmp_path / "m", {"V2__old.sql": "CREATE TABLE old (id INT);\n",
                               "V3__also_old.sql": "CREATE TABLE also_old (id INT);\n",
                               "V4__new.sql": "CREATE TABLE fresh (id INT PRIMARY KEY);\n"})
    out = json.loads(cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d)).stdout)
    assert [m["version"] for m in out["applied"]] == ["4"]
    with inst.target().executor() as ex:
        assert ex.query("SELECT version, description, type, script, checksum FROM orders_db.schema_version "
                        "WHERE installed_rank = 1") == [("3", "<< Flyway Baseline >>", "BASELINE",
                                                         "<< Flyway Baseline >>", None)]
    again = cli(inst, "migrate", "orders", "baseline", "--version", "3")
    assert again.returncode == 2 and "already holds" in again.stderr


def test_a_tenant_cannot_migrate_another_tenants_database(inst, tmp_path):
    reset(inst)
    reset(inst, "billing_db")
    d = write(tmp_path / "m", {"V1__reach.sql": "CREATE TABLE billing_db.stolen (id INT);\n"})
    res = cli(inst, "migrate", "orders", "--dir", str(d))
    assert res.returncode == 1 and ("error 1142" in res.stderr or "error 1044" in res.stderr), res.stderr
    with inst.target().executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'billing_db' AND "
                        "TABLE_NAME = 'stolen'")[0][0] == 0
    bad = cli(inst, "migrate", "nobody", "--dir", str(d))
    assert bad.returncode == 2 and "not a tenant" in bad.stderr


def test_a_script_with_a_placeholder_or_an_open_quote_is_refused_before_anything_runs(inst, tmp_path):
    reset(inst)
    d = write(tmp_path / "m", {"V1__ok.sql": "CREATE TABLE ok1 (id INT);\n",
                               "V2__ph.sql": "CREATE TABLE ${prefix}_t (id INT);\n"})
    res = cli(inst, "migrate", "orders", "--dir", str(d))
    assert res.returncode == 2 and "V2__ph.sql: placeholder ${prefix} (line 1)" in res.stderr, res.stderr
    write(d, {"V1__ok.sql": "CREATE TABLE ok1 (id INT);\n", "V2__q.sql": "INSERT INTO ok1 VALUES ('open);\n"})
    res = cli(inst, "migrate", "orders", "--dir", str(d))
    assert res.returncode == 2 and "V2__q.sql: line 1: a ' quote is never closed" in res.stderr, res.stderr
    with inst.target().executor() as ex:  # nothing ran, not even V1
        assert ex.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'orders_db'")[0][0] == 0


def _big(inst, rows=1000):
    with inst.target().executor() as ex:
        ex.query("CREATE TABLE orders_db.big (id INT PRIMARY KEY, v VARCHAR(40), n INT)")
        ex.query(f"INSERT INTO orders_db.big SELECT seq, CONCAT('v', seq), seq FROM orders_db.seq_1_to_{rows}")
        ex.query("ANALYZE TABLE orders_db.big")


def test_the_online_ddl_check_asks_the_server_and_refuses_a_table_copy_above_the_threshold(inst, tmp_path):
    """max_locking_rows 500 here: the check's verdicts come from the server trying each statement on an empty
    copy (INSTANT, then NOCOPY, INPLACE/NONE, ... COPY), nothing is guessed from rules."""
    reset(inst)
    _big(inst)
    doc = inst.config_path.read_text()
    inst.config_path.write_text(doc.replace("migrations:\n      table: schema_version",
                                            "migrations:\n      table: schema_version\n      max_locking_rows: 500"))
    try:
        d = write(tmp_path / "m", {
            "V1__instant.sql": "ALTER TABLE big ADD COLUMN c INT;\n",
            "V2__index.sql": "CREATE INDEX big_v ON big (v);\n",
            "V3__new.sql": "CREATE TABLE fresh (id INT PRIMARY KEY);\nALTER TABLE fresh MODIFY id BIGINT;\n",
            "V4__copy.sql": "ALTER TABLE big MODIFY n VARCHAR(20);\n",
        })
        dry = cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d), "--dry-run")
        assert dry.returncode == 0, dry.stderr
        checks = {c["script"]: c for c in json.loads(dry.stdout)["checks"]}
        assert checks["V1__instant.sql"]["algorithm"] == "INSTANT" and checks["V1__instant.sql"]["verdict"] == "ok"
        assert checks["V2__index.sql"]["lock"] == "NONE" and checks["V2__index.sql"]["verdict"] == "ok"
        assert checks["V3__new.sql"]["algorithm"] is None and checks["V3__new.sql"]["verdict"] == "ok"
        assert checks["V4__copy.sql"]["algorithm"] == "COPY" and checks["V4__copy.sql"]["verdict"] == "refused"
        assert "online schema change tool" in checks["V4__copy.sql"]["safer"]
        text = cli(inst, "migrate", "orders", "--dir", str(d), "--dry-run").stdout
        assert "✗ V4__copy.sql:1 big (~1000 rows): ALGORITHM=COPY" in text and "REFUSED" in text
        with inst.target().executor() as ex:  # the dry run changed nothing, and left no scratch table
            assert ex.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'orders_db' AND "
                            "TABLE_NAME LIKE '\\_smm%'")[0][0] == 0
            assert ex.query("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'orders_db' AND "
                            "TABLE_NAME = 'big' AND COLUMN_NAME = 'c'")[0][0] == 0
        res = cli(inst, "migrate", "orders", "--dir", str(d))
        assert res.returncode == 1 and "V4__copy.sql line 1" in res.stderr and "copies table big" in res.stderr
        assert "nothing was run" in res.stderr and res.stderr.count("\n") == 1
        with inst.target().executor() as ex:
            assert ex.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'orders_db' AND "
                            "TABLE_NAME = 'schema_version'")[0][0] == 0
        ok = cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d), "--allow-locking")
        assert ok.returncode == 0 and len(json.loads(ok.stdout)["applied"]) == 4, ok.stderr
    finally:
        inst.config_path.write_text(doc)


def test_a_locking_alter_above_the_threshold_is_refused_and_its_safe_form_passes(inst, tmp_path):
    reset(inst)
    _big(inst, 100)
    d = write(tmp_path / "m", {"V1__forced.sql": "ALTER TABLE big ADD COLUMN x INT, ALGORITHM=COPY;\n"})
    out = json.loads(cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d), "--dry-run").stdout)
    [c] = out["checks"]
    assert c["algorithm"] == "COPY" and c["verdict"] == "locking"  # below the default threshold: allowed
    assert c["safer"] == "ALGORITHM=INSTANT"
    doc = inst.config_path.read_text()
    inst.config_path.write_text(doc + "migrations:\n  max_locking_rows: 50\n")  # for every tenant
    try:
        res = cli(inst, "migrate", "orders", "--dir", str(d))
        assert res.returncode == 1 and "safer: ALGORITHM=INSTANT" in res.stderr, res.stderr
        write(d, {"V1__forced.sql": "ALTER TABLE big ADD COLUMN x INT, ALGORITHM=INSTANT;\n"})
        ok = cli(inst, "migrate", "orders", "--dir", str(d))
        assert ok.returncode == 0, ok.stderr
    finally:
        inst.config_path.write_text(doc)


def test_on_aws_the_tenant_secret_comes_from_secrets_manager(instance_factory, tmp_path, fake_aws_env):
    """target aws (moto's Secrets Manager; a local server standing in for RDS): migrate reads the tenant's secret
    from Secrets Manager and logs in as the tenant."""
    import boto3
    import yaml
    from moto import mock_aws

    from shared_mysql import aws as aws_mod
    from shared_mysql.config.load import load_config
    from shared_mysql.target import open_target

    rds = instance_factory({})
    with mock_aws():
        aws_mod.session.cache_clear()
        kms = boto3.client("kms")
        kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        local = rds.target()
        with local.executor() as ex:
            ex.query("CREATE USER 'rdsmaster'@'%' IDENTIFIED BY 'first-Password-1' REQUIRE SSL")
            ex.query("GRANT ALL PRIVILEGES ON *.* TO 'rdsmaster'@'%' WITH GRANT OPTION")
        doc = {"environment": "test", "identifier": "remote", "target": "aws", "exports": {"backend": "none"},
               "instance": {"host": "127.0.0.1", "port": rds.port, "ca_bundle": str(local.ca),
                            "master_username": "rdsmaster"}, "tenants": {"orders": {"max_connections": 2}}}
        (tmp_path / "shared-mysql.yaml").write_text(yaml.safe_dump(doc))
        t = open_target(load_config(tmp_path / "shared-mysql.yaml"))
        assert t.import_master({"username": "rdsmaster", "password": "first-Password-1"}) is None
        with t.executor() as ex:
            plan, desired = t.plan(ex)
            t.apply(ex, plan, desired)
        d = write(tmp_path / "m", {"V1__t.sql": "CREATE TABLE t (id INT PRIMARY KEY);\n"})
        out = runner.migrate(t, "orders", d)
        assert [m["script"] for m in out["applied"]] == ["V1__t.sql"]
        with local.executor() as ex:
            assert ex.query("SELECT installed_by FROM orders_db.flyway_schema_history") == [("orders_user",)]
        aws_mod.session.cache_clear()


def _threshold(inst, n):
    doc = inst.config_path.read_text()
    inst.config_path.write_text(doc + f"migrations:\n  max_locking_rows: {n}\n")
    return doc


@pytest.mark.parametrize("stmt", [
    "/* c */ ALTER TABLE big MODIFY v BIGINT;",
    "/*!ALTER TABLE big MODIFY v BIGINT */;",
    "ALTER TABLE big MODIFY v BIGINT, LOCK=DEFAULT;",
    "ALTER TABLE big MODIFY v BIGINT, ALGORITHM=DEFAULT;",
    "ALTER TABLE big MODIFY v BIGINT COMMENT 'rename me later';",
    "ALTER TABLE big MODIFY v BIGINT, RENAME TO big2;",
    "CREATE TABLE IF NOT EXISTS big (id INT);\nALTER TABLE big MODIFY v BIGINT;",
    "ALTER TABLE big ADD FULLTEXT INDEX ft (v), ALGORITHM=INPLACE;",
    "CREATE TABLE big3 AS SELECT * FROM big;",
    "CREATE INDEX iv ON big (v) ALGORITHM=COPY LOCK=SHARED;",
])  # (OPTIMIZE TABLE other, big is now checked: an online rebuild, INPLACE with LOCK=NONE, on MariaDB)
def test_review_bypasses_of_the_online_ddl_check_are_refused(inst, tmp_path, stmt):
    """Review: each of these got a table-copying or write-locking change on a big table past the check."""
    reset(inst)
    _big(inst)
    with inst.target().executor() as ex:
        ex.query("CREATE TABLE orders_db.other (id INT PRIMARY KEY)")
    doc = _threshold(inst, 500)
    try:
        d = write(tmp_path / "m", {"V1__x.sql": stmt + "\n"})
        res = cli(inst, "migrate", "orders", "--dir", str(d))
        assert res.returncode == 1 and "nothing was run" in res.stderr, res.stdout + res.stderr
        with inst.target().executor() as ex:
            assert ex.query("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'orders_db' AND "
                            "TABLE_NAME = 'big' AND COLUMN_NAME = 'v'") == [("varchar",)]
            assert ex.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'orders_db' AND "
                            "TABLE_NAME LIKE '\\_smm%'")[0][0] == 0
    finally:
        inst.config_path.write_text(doc)


def test_a_dry_run_never_touches_a_table_but_its_scratch_copies(inst, tmp_path):
    """Review: a column named locked_at read as a LOCK clause made the probe run the statement as written, and a
    partition exchange with a real table emptied it during a dry run; a killed check's scratch table stayed."""
    reset(inst)
    with inst.target().executor() as ex:
        ex.query("CREATE TABLE orders_db.parted (id INT PRIMARY KEY, v VARCHAR(20)) PARTITION BY RANGE (id) "
                 "(PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN (1000))")
        ex.query("CREATE TABLE orders_db.lock_victim (id INT PRIMARY KEY, v VARCHAR(20))")
        ex.query("INSERT INTO orders_db.lock_victim SELECT seq, 'x' FROM orders_db.seq_1_to_50")
        ex.query("CREATE TABLE orders_db._smm_dead00_0 (id INT)")  # a killed check's leftover
    d = write(tmp_path / "m", {"V1__x.sql": "ALTER TABLE parted EXCHANGE PARTITION p0 WITH TABLE lock_victim;\n"
                                            "ALTER TABLE parted CONVERT PARTITION p1 TO TABLE lock_new;\n"})
    res = cli(inst, "-o", "json", "migrate", "orders", "--dir", str(d), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert all(c["algorithm"] == "INPLACE" and c["lock"] == "EXCLUSIVE" for c in json.loads(res.stdout)["checks"])
    with inst.target().executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM orders_db.lock_victim")[0][0] == 50
        names = {r[0] for r in ex.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                                        "TABLE_SCHEMA = 'orders_db'")}
    assert names == {"parted", "lock_victim"}  # no lock_new, no scratch, the leftover gone


def test_session_state_does_not_leak_from_one_script_to_the_next(inst, tmp_path):
    """Review: SET autocommit = 0 in V1 left V2 and both history rows uncommitted; the run said OK."""
    reset(inst)
    d = write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE t1 (a INT);\nSET autocommit = 0;\nINSERT INTO t1 VALUES (1);\n",
                               "V2__b.sql": "INSERT INTO t1 VALUES (2);\nLOCK TABLES t1 WRITE;\n"})
    assert cli(inst, "migrate", "orders", "--dir", str(d)).returncode == 0
    with inst.target().executor() as ex:
        assert ex.query("SELECT a FROM orders_db.t1 ORDER BY a") == [(1,), (2,)]
        assert ex.query("SELECT COUNT(*) FROM orders_db.schema_version WHERE success = 1")[0][0] == 2


def test_bad_target_and_version_options_are_usage_errors(inst, tmp_path):
    d = write(tmp_path / "m", {"V1__x.sql": "SELECT 1;\n"})
    for args in (("--target", "abc"), ("--target", "1.x"), ("--version", "3")):
        res = cli(inst, "migrate", "orders", "--dir", str(d), *args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, (args, res.stderr)
