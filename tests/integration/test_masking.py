"""Masking and its verification on the real local server (issue 13): 10k-row tables, unique indexes on masked
columns, NULLs and utf8mb4; a kill in the middle resumes; `mask --check` finds what was left unmasked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from shared_mysql.masking import engine
from shared_mysql.masking.plan import MaskingError
from shared_mysql.masking.rules import parse_rules
from shared_mysql.masking.run import check_database, mask_database

from ..conftest import CLI

ROWS = 10000
RULES = {"users.email": "email", "users.name": "hash", "users.phone": "fixed('010-0000-0000')",
         "users.nick": "shuffle", "payments.card": "null", "payments.user_email": "email",
         "sessions.*": "truncate"}


def seed(ex, db: str = "shop_db", rows: int = ROWS) -> None:
    ex.query(f"CREATE TABLE IF NOT EXISTS `{db}`.users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL, "
             "name VARCHAR(64) NULL, phone VARCHAR(20) NULL, nick VARCHAR(40) NULL, note TEXT, "
             "UNIQUE KEY (email), UNIQUE KEY (name)) DEFAULT CHARSET utf8mb4")
    ex.query(f"CREATE TABLE IF NOT EXISTS `{db}`.payments (pid BIGINT, seq INT, user_email VARCHAR(100), "
             "card VARCHAR(19), PRIMARY KEY (pid, seq)) DEFAULT CHARSET utf8mb4")
    ex.query(f"CREATE TABLE IF NOT EXISTS `{db}`.sessions (token CHAR(32) PRIMARY KEY, uid INT)")
    # utf8mb4 (emoji, Hangul), NULLs every 7th row, a quote and a backslash in names.
    ex.query(f"INSERT INTO `{db}`.users SELECT seq, CONCAT('user', seq, '@corp.example.net'), "
             "IF(seq % 7 = 0, NULL, CONCAT('김철수 ', seq, IF(seq % 3 = 0, ' 😀', ' o''\\\\brien'))), "
             "IF(seq % 5 = 0, NULL, CONCAT('010-', LPAD(seq, 4, '0'), '-1234')), CONCAT('nick', seq), 'kept' "
             f"FROM `{db}`.seq_1_to_{rows}")
    ex.query(f"INSERT INTO `{db}`.payments SELECT seq DIV 2, seq % 2, CONCAT('user', seq DIV 2 + 1, "
             f"'@corp.example.net'), CONCAT('4111-1111-1111-', LPAD(seq % 10000, 4, '0')) FROM `{db}`.seq_1_to_{rows}")
    ex.query(f"INSERT INTO `{db}`.sessions SELECT MD5(seq), seq FROM `{db}`.seq_1_to_100")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from ..conftest import Instance, free_port, require_server_binary, stop_servers_under

    require_server_binary()
    inst = Instance(tmp_path_factory.mktemp("mask"), free_port())
    inst.write({"shop": {"masking": RULES}})
    t = inst.target()
    t.local_up()
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        t.apply(ex, plan, desired)
    yield inst
    stop_servers_under(inst.dir)


def fresh(inst, db="shop_db", rows=ROWS):
    t = inst.target()
    with t.executor() as ex:
        for tb in ("users", "payments", "sessions"):
            ex.query(f"DROP TABLE IF EXISTS `{db}`.{tb}")
        seed(ex, db, rows)
    return t


def session(t):
    conn, notes = engine.open_session(t.admin_info())
    return conn


def rows(t, sql):
    with t.executor() as ex:
        return ex.query(sql)


def test_masking_applies_every_rule_and_the_check_passes(shop):
    t = fresh(shop)
    before = {r[0]: r[1:] for r in rows(t, "SELECT id, email, name, phone, nick, note FROM shop_db.users")}
    conn = session(t)
    try:
        r = mask_database(conn, "shop", parse_rules(RULES), source="test", new_run=True, batch=1500)
    finally:
        conn.close()
    assert r["ok"], r["problems"]
    assert r["fingerprints"] > 0
    # verified: the masking salt is forgotten (nobody can test guesses against the hashed columns with it)
    assert rows(t, f"SELECT salt FROM shared_mysql.mask_runs WHERE id = '{r['run']}'") == [("",)]
    after = {r[0]: r[1:] for r in rows(t, "SELECT id, email, name, phone, nick, note FROM shop_db.users")}
    assert len(after) == ROWS
    emails = [a[0] for a in after.values()]
    assert len(set(emails)) == ROWS and all(e.endswith("@example.com") and e.startswith("u") for e in emails)
    for i, (email, name, phone, nick, note) in after.items():
        b = before[i]
        assert email != b[0]
        assert (name is None) == (b[1] is None) and (name is None or (len(name) == 64 and name != b[1]))
        assert phone == (None if b[2] is None else "010-0000-0000")
        assert note == "kept"  # not masked
    # shuffle: the same multiset of values, no row keeps its own (they are all distinct)
    assert sorted(a[3] for a in after.values()) == sorted(b[3] for b in before.values())
    assert all(after[i][3] != before[i][3] for i in after)
    # deterministic within a run: payments.user_email masks to the same value as users.email
    joined = rows(t, "SELECT COUNT(*) FROM shop_db.payments p JOIN shop_db.users u ON u.email = p.user_email")
    assert joined[0][0] == ROWS  # every payment names a user (users 1..5001)
    assert rows(t, "SELECT COUNT(*) FROM shop_db.payments WHERE card IS NOT NULL")[0][0] == 0
    assert rows(t, "SELECT COUNT(*) FROM shop_db.sessions")[0][0] == 0
    # a second run of the same rules is a no-op check (the run is verified)
    conn = session(t)
    try:
        again = check_database(conn, "shop", parse_rules(RULES))
    finally:
        conn.close()
    assert again["ok"], again["problems"]


def test_the_check_finds_an_unmasked_value_and_a_value_breaking_its_rule(shop):
    t = fresh(shop)
    original = rows(t, "SELECT email, nick FROM shop_db.users WHERE id = 42")[0]
    conn = session(t)
    try:
        assert mask_database(conn, "shop", parse_rules(RULES), source="test", new_run=True)["ok"]
    finally:
        conn.close()
    # Someone (or a bug) writes a source value back, and a phone that is not the fixed one.
    with t.executor() as ex:
        ex.query(f"UPDATE shop_db.users SET email = '{original[0]}' WHERE id = 43")
        ex.query("UPDATE shop_db.users SET phone = '010-9999-9999' WHERE id = 44")
        ex.query(f"UPDATE shop_db.users SET nick = '{original[1]}' WHERE id = 42")
    conn = session(t)
    try:
        r = check_database(conn, "shop", parse_rules(RULES))
    finally:
        conn.close()
    assert not r["ok"]
    text = "\n".join(r["problems"])
    assert "users.email: 1 of" in text  # breaks the email rule
    assert "users.phone: 1 of" in text
    # the fingerprint sample is all 10k rows here (10k <= FP_SAMPLE): the source email and the row's own
    # original nick are both found
    assert "users.email: 1 value(s) equal a source value" in text
    assert "users.nick: 1 value(s) equal a source value" in text
    assert original[0] not in text and original[1] not in text  # findings never quote the values


def test_a_killed_masking_resumes_and_masks_no_row_twice(shop):
    t = fresh(shop)
    cfg = shop.config_path
    # A CLI `mask` run killed after a few batches (slowed by a tiny batch size), then re-run to the end.
    proc = subprocess.Popen([*CLI, "-c", str(cfg), "mask", "--tenant", "shop", "--batch", "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = rows(t, "SELECT IFNULL(SUM(rows_done), 0) FROM shared_mysql.mask_progress p JOIN "
                       "shared_mysql.mask_runs r ON r.id = p.run WHERE r.db = 'shop_db' AND r.phase = 'masking'") \
            if rows(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shared_mysql' AND "
                       "TABLE_NAME = 'mask_progress'")[0][0] else [(0,)]
        if int(done[0][0]) >= 1000:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mid = rows(t, "SELECT COUNT(*) FROM shop_db.payments WHERE user_email LIKE '%@example.com'")[0][0]
    assert 0 < mid < ROWS  # killed half-way through the first table (payments)
    res = subprocess.run([*CLI, "-c", str(cfg), "-o", "json", "mask", "--tenant", "shop", "--lock-timeout", "60"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["tenants"][0]["resumed"]
    # exactly once: a twice-masked email would not join with payments (which were masked once)
    joined = rows(t, "SELECT COUNT(*) FROM shop_db.payments p JOIN shop_db.users u ON u.email = p.user_email")
    assert joined[0][0] == ROWS
    chk = subprocess.run([*CLI, "-c", str(cfg), "mask", "--check"], capture_output=True, text=True, timeout=120)
    assert chk.returncode == 0, chk.stdout + chk.stderr


@pytest.mark.parametrize("rules, fragment", [
    ({"users.email": "fixed('x@y.z')"}, "is in a unique index of users"),
    ({"users.email": "null"}, "is NOT NULL"),
    ({"users.id": "hash"}, "is in the primary key"),
    ({"users.phone": "email"}, "email needs a text column of at least 29"),
    ({"users.nope": "hash"}, "has no column nope"),
    ({"ghost.email": "hash"}, "no table ghost"),
    ({"users.email": "shuffle"}, "values moved between rows"),
    ({"users.phone": "fixed('this value is much too long for the column')"}, "longer than varchar(20)"),
])
def test_a_rule_that_cannot_apply_is_refused_before_anything_changes(shop, rules, fragment):
    t = fresh(shop, rows=50)
    before = rows(t, "SELECT * FROM shop_db.users ORDER BY id")
    conn = session(t)
    try:
        with pytest.raises(MaskingError) as e:
            mask_database(conn, "shop", parse_rules(rules), source="test", new_run=True)
    finally:
        conn.close()
    assert fragment in str(e.value) and "tenants.shop.masking." in str(e.value)
    assert rows(t, "SELECT * FROM shop_db.users ORDER BY id") == before


def test_the_salt_never_appears_in_a_statement_the_server_logs(shop, tmp_path):
    t = fresh(shop, rows=200)
    with t.executor() as ex:
        ex.query("SET GLOBAL long_query_time = 0")
    try:
        conn = session(t)
        try:
            assert mask_database(conn, "shop", parse_rules(RULES), source="test", new_run=True)["ok"]
        finally:
            conn.close()
    finally:
        with t.executor() as ex:
            ex.query("SET GLOBAL long_query_time = 2")
    salts = rows(t, "SELECT salt, fp_salt FROM shared_mysql.mask_runs")
    slow = b"".join(p.read_bytes() for p in shop.dir.glob(".shared-mysql/*/**/*slow*.log"))
    assert slow, "no slow log found"
    assert b"UPDATE `shop_db`.`users`" in slow
    for s, f in salts:
        assert f.encode() not in slow and (not s or s.encode() not in slow)
    # and no salt-sized secret at all (the verified run's masking salt is gone from the table, so look for its
    # shape: 64 hex digits)
    import re

    digests = {r[0].encode() for r in rows(t, "SELECT digest FROM shared_mysql.mask_runs")}  # of the rules
    assert not set(re.findall(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", slow)) - digests
    # nor a source value: the masking session's statements carry rules, keys and no data
    assert b"user42@corp.example.net" not in slow


def test_mask_check_exits_3_and_names_the_column_from_the_cli(shop):
    fresh(shop, rows=300)
    res = subprocess.run([*CLI, "-c", str(shop.config_path), "mask", "--check", "--tenant", "shop"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "✗ shop: users.email email: 300 row(s), 300 breaking the rule" in res.stdout
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert "corp.example.net" not in res.stdout + res.stderr


def test_a_tenant_without_declared_rules_is_refused_by_mask(shop):
    doc = yaml.safe_load(shop.config_path.read_text())
    doc["tenants"]["other"] = {}
    p = shop.dir / "other.yaml"
    p.write_text(yaml.safe_dump(doc))
    res = subprocess.run([*CLI, "-c", str(p), "mask", "--tenant", "other"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "tenants.other.masking: not set" in res.stderr, res.stderr


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_hostile_names_a_table_without_key_and_a_foreign_key(shop):
    t = fresh(shop, rows=10)
    with t.executor() as ex:
        ex.query("CREATE TABLE shop_db.`we``ird tbl` (`id` INT PRIMARY KEY, `e'mail\\x` VARCHAR(80), "
                 "`이름` VARCHAR(40)) DEFAULT CHARSET utf8mb4")
        ex.query("INSERT INTO shop_db.`we``ird tbl` SELECT seq, CONCAT('p', seq, '@corp.example.net'), "
                 "CONCAT('홍길동', seq) FROM shop_db.seq_1_to_500")
        ex.query("CREATE TABLE shop_db.nokey (v VARCHAR(40))")
        ex.query("INSERT INTO shop_db.nokey SELECT CONCAT('secret', seq) FROM shop_db.seq_1_to_300")
        ex.query("CREATE TABLE shop_db.child (id INT PRIMARY KEY, email VARCHAR(100), "
                 "FOREIGN KEY (email) REFERENCES shop_db.users (email)) DEFAULT CHARSET utf8mb4")
        ex.query("INSERT INTO shop_db.child SELECT id, email FROM shop_db.users")
    rules = {"`we``ird tbl`.`e'mail\\x`": "email", "`we``ird tbl`.`이름`": "hash", "nokey.v": "hash",
             "users.email": "email"}
    conn = session(t)
    try:
        with pytest.raises(MaskingError, match="child.email references users.email, and child.email is not masked"):
            mask_database(conn, "shop", parse_rules(rules), source="test", new_run=True)
        r = mask_database(conn, "shop", parse_rules({**rules, "child.email": "email"}), source="test",
                          new_run=True, batch=64)
    finally:
        conn.close()
    assert r["ok"], r["problems"]
    assert rows(t, "SELECT COUNT(*) FROM shop_db.`we``ird tbl` WHERE `e'mail\\x` LIKE '%corp%' OR `이름` LIKE "
                   "'홍길동%'")[0][0] == 0
    assert rows(t, "SELECT COUNT(*) FROM shop_db.nokey WHERE v LIKE 'secret%'")[0][0] == 0
    # the child still references its parent (deterministic within a run)
    assert rows(t, "SELECT COUNT(*) FROM shop_db.child c JOIN shop_db.users u ON u.email = c.email")[0][0] == 10
    with t.executor() as ex:
        for tb in ("child", "nokey", "`we``ird tbl`"):
            ex.query(f"DROP TABLE shop_db.{tb if tb.startswith('`') else tb}")


def test_update_triggers_are_set_aside_while_masking_and_put_back_even_after_a_kill(shop, monkeypatch):
    """An audit trigger copying OLD values elsewhere would carry every unmasked value into its table: it is
    dropped (its definition kept in the tool's schema) while the table is masked, and re-created after, in its
    own sql_mode; a run killed in between re-creates it when resumed."""
    t = fresh(shop, rows=200)
    with t.executor() as ex:
        ex.query("CREATE TABLE shop_db.audit (old_email VARCHAR(100))")
        ex.query("SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES'")
        ex.query('CREATE TRIGGER shop_db."users_au" AFTER UPDATE ON shop_db.users FOR EACH ROW '
                 'INSERT INTO shop_db.audit VALUES (OLD.email)')
        before = ex.query("SELECT ACTION_STATEMENT, SQL_MODE FROM information_schema.TRIGGERS WHERE "
                          "TRIGGER_NAME = 'users_au'")
    calls = {"n": 0}
    real = engine._mask_table

    def killed_in_users(conn, run, db, tp, *a, **k):
        if tp.table == "users":
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt
        return real(conn, run, db, tp, *a, **k)

    monkeypatch.setattr(engine, "_mask_table", killed_in_users)
    conn = session(t)
    try:
        with pytest.raises(KeyboardInterrupt):
            mask_database(conn, "shop", parse_rules(RULES), source="test", new_run=True)
    finally:
        conn.close()
    with t.executor() as ex:  # set aside: gone from the table, kept in the tool's schema
        assert ex.query("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = 'users_au'")[0][0] == 0
        assert ex.query("SELECT COUNT(*) FROM shared_mysql.mask_triggers")[0][0] == 1
    conn = session(t)
    try:
        r = mask_database(conn, "shop", parse_rules(RULES), source="test")
    finally:
        conn.close()
    assert r["ok"] and r["resumed"], r["problems"]
    with t.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM shop_db.audit")[0][0] == 0  # never fired on a masked row
        after = ex.query("SELECT ACTION_STATEMENT, SQL_MODE FROM information_schema.TRIGGERS WHERE "
                         "TRIGGER_NAME = 'users_au'")
        assert after == before
        assert ex.query("SELECT COUNT(*) FROM shared_mysql.mask_triggers")[0][0] == 0
        ex.query("UPDATE shop_db.users SET note = 'x' WHERE id = 1")  # and it works again
        assert ex.query("SELECT COUNT(*) FROM shop_db.audit")[0][0] == 1
        ex.query("DROP TRIGGER shop_db.users_au")
        ex.query("DROP TABLE shop_db.audit")


def test_mask_check_fails_an_interrupted_run_and_a_rule_no_run_applied(shop, monkeypatch):
    """Review 2: a run killed while fingerprinting left nothing to fail on (hash of a BIGINT has no form), and a
    rule added after a verified run was reported OK with the original values in place."""
    t = fresh(shop, rows=100)
    with t.executor() as ex:
        ex.query("CREATE TABLE shop_db.ids (id INT PRIMARY KEY, ssn BIGINT)")
        ex.query("INSERT INTO shop_db.ids SELECT seq, 900000000 + seq FROM shop_db.seq_1_to_100")
    rules = parse_rules({**RULES, "ids.ssn": "hash"})

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "fingerprint", killed)
    conn = session(t)
    try:
        with pytest.raises(KeyboardInterrupt):
            mask_database(conn, "shop", rules, source="test", new_run=True)
        r = check_database(conn, "shop", rules)
        assert not r["ok"] and "stopped while fingerprinting" in r["problems"][0]
        monkeypatch.undo()
        assert mask_database(conn, "shop", rules, source="test")["ok"]
        assert check_database(conn, "shop", rules)["ok"]
        # a rule added later, with no form to check: the latest (verified) run never applied it
        with_new = parse_rules({**RULES, "ids.ssn": "hash", "users.note": "shuffle"})
        r = check_database(conn, "shop", with_new)
        assert not r["ok"] and any("users.note: shuffle was not applied by the latest masking run" in p
                                   for p in r["problems"]), r["problems"]
    finally:
        conn.close()
        with t.executor() as ex:
            ex.query("DROP TABLE shop_db.ids")


def test_a_value_the_column_refuses_fails_before_any_batch_commits(shop):
    """Review 2: values the schema check cannot see (a CHECK constraint, MariaDB's JSON validity check) failed
    mid-masking. A one-row trial UPDATE, rolled back, finds them first."""
    t = fresh(shop, rows=50)
    with t.executor() as ex:
        ex.query("CREATE TABLE shop_db.docs (id INT PRIMARY KEY, body JSON, code VARCHAR(20) CHECK (code LIKE '010-%'))")
        ex.query("INSERT INTO shop_db.docs SELECT seq, '{\"a\": 1}', '010-1' FROM shop_db.seq_1_to_10")
        before = ex.query("SELECT * FROM shop_db.docs ORDER BY id")
    conn = session(t)
    try:
        for rules, what in (({"docs.body": "hash"}, "docs"), ({"docs.code": "fixed('999')"}, "docs")):
            with pytest.raises(MaskingError, match=f"table {what}: error 4025"):
                mask_database(conn, "shop", parse_rules(rules), source="test", new_run=True)
    finally:
        conn.close()
    with t.executor() as ex:
        assert ex.query("SELECT * FROM shop_db.docs ORDER BY id") == before
        ex.query("DROP TABLE shop_db.docs")
