"""Backups and point-in-time recovery on the real embedded server: consistency under writers with no long
stall, PITR exact to the second, interrupted backups and restores, damaged files, a purged binlog, every column
type and object, and nothing secret or plaintext where it should not be."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import threading
import time

import pytest

from shared_mysql.backup import create as bcreate
from shared_mysql.backup.drill import table_sums
from shared_mysql.backup.store import BackupDir, backup_dir
from shared_mysql.db import connect

from ..conftest import CLI, stop_servers_under

TENANTS = {"orders": {}, "billing": {}, "ledger": {}}


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    from ..conftest import Instance, free_port, require_server_binary

    require_server_binary()
    i = Instance(tmp_path_factory.mktemp("backup"), free_port())
    i.write(TENANTS)
    i.target().local_up()
    i.cli("apply", "--auto-approve", check=True)
    yield i
    stop_servers_under(i.dir)


def admin(i, db: str | None = None, multi=False):
    conn = connect(i.target().admin_info(), multi_statements=multi)
    if db:
        with conn.cursor() as cur:
            cur.execute(f"USE `{db}`")
    return conn


def run(conn, *stmts):
    with conn.cursor() as cur:
        for s in stmts:
            cur.execute(s)
        return cur.fetchall()


def seed(i, rows=3000):
    for t in TENANTS:
        c = admin(i, f"{t}_db")
        run(c, "CREATE TABLE IF NOT EXISTS items (id INT AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL, v VARCHAR(40), "
               "KEY n_idx (n))",
            "CREATE TABLE IF NOT EXISTS kv (k VARCHAR(20) PRIMARY KEY, v INT)",
            f"INSERT INTO items (n, v) SELECT seq, CONCAT('{t}-', seq) FROM seq_1_to_{rows}")
        c.close()


class Writers:
    """One writer per tenant: transactions of INSERT + UPDATE (+ a DELETE now and then), commit latency kept;
    `pause()` returns once every writer is between transactions."""

    def __init__(self, i, tenants):
        self.i = i
        self.tenants = tenants
        self.stop = threading.Event()
        self.hold = threading.Event()
        self.parked = threading.Semaphore(0)
        self.lat: list[float] = []
        self.errors: list[BaseException] = []
        self.commits = 0
        self.threads = [threading.Thread(target=self.work, args=(t, n), daemon=True) for n, t in enumerate(tenants)]

    def work(self, tenant, n):
        try:
            c = admin(self.i, f"{tenant}_db")
            c.autocommit(False)
            k = 0
            while not self.stop.is_set():
                if self.hold.is_set():
                    self.parked.release()
                    while self.hold.is_set() and not self.stop.is_set():
                        time.sleep(0.001)
                k += 1
                with c.cursor() as cur:
                    cur.execute("INSERT INTO items (n, v) VALUES (%s, %s)", (k, f"w{n}-{k}"))
                    cur.execute("UPDATE items SET n = n + 1 WHERE id = %s", (1 + k % 500,))
                    cur.execute("INSERT INTO kv VALUES (%s, 1) ON DUPLICATE KEY UPDATE v = v + 1", (f"k{k % 37}",))
                    if k % 10 == 0:
                        cur.execute("DELETE FROM items WHERE id = %s", (1000 + k,))
                t0 = time.monotonic()
                c.commit()
                self.lat.append(time.monotonic() - t0)
                self.commits += 1
            c.close()
        except BaseException as exc:  # noqa: BLE001
            self.errors.append(exc)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def pause(self):
        self.hold.set()
        for _ in self.threads:
            assert self.parked.acquire(timeout=10)

    def resume(self):
        self.hold.clear()

    def finish(self):
        self.stop.set()
        self.hold.clear()
        for t in self.threads:
            t.join(10)
        assert not self.errors, self.errors


def sums(i, dbs):
    c = admin(i)
    try:
        bcreate.session_setup(c, 1 << 24)
        run(c, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
        return table_sums(c, dbs)
    finally:
        c.close()


def test_backup_under_writers_never_stalls_them_and_backup_test_proves_it(inst):
    seed(inst)
    w = Writers(inst, list(TENANTS)).start()
    try:
        time.sleep(0.5)
        before = len(w.lat)
        res = inst.cli("-o", "json", "backup", "create")
        assert res.returncode == 0, res.stderr
        s = json.loads(res.stdout)
        # the backup holds commits for milliseconds, reported; no write waits anywhere near a second
        assert s["lock_ms"] is not None and s["lock_ms"] < 1000
        assert len(w.lat) > before + 20
        assert max(w.lat) < 1.0, max(w.lat)
        # restore into a scratch server while the writers go on: files == manifest, data == live at position
        test = inst.cli("-o", "json", "backup", "test")
        assert test.returncode == 0, test.stdout + test.stderr
        r = json.loads(test.stdout)
        assert r["ok"] and r["problems"] == [] and r["scratch_removed"]
        assert r["rows"] > 9000 and r["rto_s"] > 0 and r["rpo_s"] is not None
    finally:
        w.finish()
    txt = inst.cli("backup", "test")
    assert txt.returncode == 0 and "RTO" in txt.stdout and "RPO" in txt.stdout, txt.stdout + txt.stderr
    assert not list((inst.dir).glob("shared-mysql-backup-test-*"))


def test_pitr_is_exact_to_the_second_under_concurrent_writes(inst):
    seed(inst, 500)
    dbs = [f"{t}_db" for t in TENANTS]
    inst.cli("backup", "create", check=True)
    w = Writers(inst, list(TENANTS)).start()
    try:
        time.sleep(1.2)
        # park the writers just before a second ends: everything committed so far is at or before T
        while time.time() % 1 > 0.7:
            time.sleep(0.01)
        w.pause()
        T = int(time.time())
        reference = sums(inst, dbs)
        while time.time() < T + 1.05:
            time.sleep(0.01)
        w.resume()
        time.sleep(1.5)
    finally:
        w.finish()
    assert w.commits > 50
    after = sums(inst, dbs)
    assert after != reference  # writes after T exist, and must not come back
    when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(T))
    for t in TENANTS:
        res = inst.cli("-o", "json", "restore", "--to-time", when, "--tenant", t, "--into", f"{t}_pitr")
        assert res.returncode == 0, res.stderr
    restored = sums(inst, [f"{t}_pitr" for t in TENANTS])
    renamed = {k.replace("_pitr.", "_db."): v for k, v in restored.items()}
    assert renamed == reference
    assert sums(inst, dbs) == after  # the live databases untouched
    c = admin(inst)
    run(c, *[f"DROP DATABASE {t}_pitr" for t in TENANTS])
    c.close()


def test_an_interrupted_backup_never_becomes_latest(inst):
    seed(inst, 100)
    store = BackupDir(backup_dir(inst.target()))

    def latest_id():
        b = store.latest()
        return b.id if b else None

    before = latest_id()

    def boom(done, total, res):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bcreate.create(inst.target(), progress=boom)
    assert latest_id() == before
    assert any(n.startswith(".partial-") for n in store.broken())
    listing = json.loads(inst.cli("-o", "json", "backup", "list", check=True).stdout)
    assert all(not b["id"].startswith(".") for b in listing["backups"]) and listing["incomplete"]
    # a killed process, too: killed once its first file is written
    stale = set(store.broken())
    p = subprocess.Popen([*CLI, "backup", "create", "--workers", "1"], cwd=inst.dir, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline and p.poll() is None:
        fresh = [d for d in store.root.glob(".partial-*") if d.name not in stale]
        if fresh and any(fresh[0].rglob("*.sme")):
            break
        time.sleep(0.002)
    killed = p.poll() is None
    p.send_signal(signal.SIGKILL)
    p.wait()
    if killed:
        assert latest_id() == before
    # the next backup removes the stale partial directories and becomes latest
    inst.cli("backup", "create", check=True)
    assert not [n for n in store.broken() if n.startswith(".partial-")]
    assert latest_id() != before


def test_verify_finds_corrupted_truncated_missing_and_planted_files_and_an_edited_manifest(inst):
    seed(inst, 2000)
    s = json.loads(inst.cli("-o", "json", "backup", "create", check=True).stdout)
    store = BackupDir(backup_dir(inst.target()))
    b = store.get(s["id"])
    ok = inst.cli("backup", "verify", b.id)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    files = sorted(b.path.rglob("*.sme"))
    assert len(files) >= 6

    def check(mutate, restore, expect):
        mutate()
        try:
            res = inst.cli("backup", "verify", b.id)
            assert res.returncode == 3, (expect, res.stdout, res.stderr)
            assert expect in res.stdout, (expect, res.stdout)
            listed = json.loads(inst.cli("-o", "json", "backup", "list").stdout)["backups"]
            assert next(x for x in listed if x["id"] == b.id)["verified"]["ok"] is False
        finally:
            restore()

    f = files[0]
    orig = f.read_bytes()
    check(lambda: f.write_bytes(orig[:100] + bytes([orig[100] ^ 1]) + orig[101:]), lambda: f.write_bytes(orig),
          "corrupted")
    check(lambda: f.write_bytes(orig[:-7]), lambda: f.write_bytes(orig), "truncated")
    check(lambda: f.unlink(), lambda: (f.write_bytes(orig), f.chmod(0o600)), "missing")
    planted = f.parent / "planted.00000.tsv.sme"
    check(lambda: planted.write_bytes(orig), lambda: planted.unlink(), "not in the manifest")
    man = b.path / "manifest.json"
    mtext = man.read_text()
    doc = json.loads(mtext)
    doc["position"]["pos"] += 1
    check(lambda: man.write_text(json.dumps(doc)), lambda: man.write_text(mtext), "MAC")
    assert inst.cli("backup", "verify", b.id).returncode == 0
    # and backup test fails with exit 3 on a damaged newest backup, the scratch server still removed
    f.write_bytes(orig[:-7])
    try:
        res = inst.cli("-o", "json", "backup", "test")
        assert res.returncode == 3, res.stdout + res.stderr
        r = json.loads(res.stdout)
        assert not r["ok"] and r["scratch_removed"]
    finally:
        f.write_bytes(orig)


def test_restore_into_leaves_every_other_database_untouched_and_never_overwrites(inst):
    seed(inst, 300)
    dbs = [f"{t}_db" for t in TENANTS]
    inst.cli("backup", "create", check=True)
    before = sums(inst, dbs)
    res = inst.cli("restore", "--tenant", "billing")
    assert res.returncode == 1 and "exists" in res.stderr and "--into" in res.stderr
    res = inst.cli("restore")
    assert res.returncode == 1 and "--allow-destructive" in res.stderr
    assert inst.cli("restore", "--tenant", "billing", "--into", "mysql").returncode == 2
    assert inst.cli("restore", "--tenant", "billing", "--into", "x`; DROP DATABASE orders_db; --").returncode == 2
    assert inst.cli("restore", "--into", "copy").returncode == 2  # --into needs --tenant

    # interrupted during the load: nothing live changed, no staging left behind after the re-run
    from shared_mysql.backup.restore import restore

    calls = {"n": 0}

    def boom(name, n):
        calls["n"] += 1
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore(inst.target(), tenant="billing", into="billing_copy", progress=boom)
    assert sums(inst, dbs) == before
    res = inst.cli("restore", "--tenant", "billing", "--into", "billing_copy")
    assert res.returncode == 0, res.stderr
    copy = sums(inst, ["billing_copy"])
    assert {k.replace("billing_copy.", "billing_db."): v for k, v in copy.items()} == \
        {k: v for k, v in before.items() if k.startswith("billing_db.")}
    assert sums(inst, dbs) == before
    c = admin(inst)
    left = [r[0] for r in run(c, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_smr\\_%'")]
    assert left == []
    # --allow-destructive replaces in place, grants stay (they are by name)
    run(c, "INSERT INTO billing_db.items (n, v) VALUES (-1, 'to be undone')")
    res = inst.cli("restore", "--tenant", "billing", "--allow-destructive")
    assert res.returncode == 0, res.stderr
    assert run(c, "SELECT COUNT(*) FROM billing_db.items WHERE n = -1")[0][0] == 0
    run(c, "DROP DATABASE billing_copy")
    c.close()
    t = inst.target()
    from .helpers import login

    app = login({**t.store.get("test-billing-db-credentials"), "ssl_ca": t.ca})
    assert run(app, "SELECT COUNT(*) FROM items")[0][0] > 0
    app.close()


def test_every_column_type_and_object_restores_identically(inst):
    c = admin(inst, "ledger_db")
    run(c, "DROP TABLE IF EXISTS child", "DROP TABLE IF EXISTS kinds", "DROP TABLE IF EXISTS nokey",
        "DROP TABLE IF EXISTS parent", "DROP TABLE IF EXISTS audit_trail",
        """CREATE TABLE kinds (
             id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
             j JSON, b BLOB, vb VARBINARY(64), t TEXT CHARACTER SET utf8mb4, l1 VARCHAR(30) CHARACTER SET latin1,
             d DECIMAL(30,10), f FLOAT, g DOUBLE, bits BIT(10), e ENUM('a','b','c'), s SET('x','y','z'),
             dt DATETIME(6), ts TIMESTAMP(3) NULL, dd DATE, tm TIME(2), yr YEAR, pt POINT,
             u UUID, ip INET6,
             virt INT AS (CHAR_LENGTH(t)) VIRTUAL, stor VARCHAR(80) AS (CONCAT(IFNULL(l1,''), '#')) STORED,
             UNIQUE KEY (vb), KEY (d), FULLTEXT KEY (t)
           ) ENGINE=InnoDB""",
        "CREATE TABLE nokey (a VARCHAR(10), b INT)",
        "CREATE TABLE parent (code VARCHAR(8) PRIMARY KEY, name VARCHAR(20))",
        "CREATE TABLE child (id INT PRIMARY KEY, code VARCHAR(8), KEY (code), "
        "CONSTRAINT fk FOREIGN KEY (code) REFERENCES parent (code))",
        "CREATE TABLE audit_trail (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))",
        "CREATE OR REPLACE VIEW big AS SELECT id, d FROM kinds WHERE d > 1",
        "CREATE OR REPLACE VIEW bigger AS SELECT id FROM big",
        "CREATE OR REPLACE TRIGGER kinds_ai AFTER INSERT ON kinds FOR EACH ROW "
        "INSERT INTO audit_trail (what) VALUES (CONCAT('kinds ', NEW.id))",
        "CREATE OR REPLACE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
        "CREATE OR REPLACE PROCEDURE bump() MODIFIES SQL DATA UPDATE kinds SET f = f + 1",
        "CREATE OR REPLACE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit_trail WHERE id < 0")
    with c.cursor() as cur:
        nasty = bytes(range(256)) + b"\t\n\\N\\\r\x00"
        cur.execute("INSERT INTO kinds (j, b, vb, t, l1, d, f, g, bits, e, s, dt, ts, dd, tm, yr, pt, u, ip) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,b'1010101010','b','x,z','2026-11-26 10:15:00.123456',"
                    "'2026-11-26 10:15:00.5','2026-02-28','-12:34:56.78',2026,ST_GeomFromText('POINT(1.5 -2)'),"
                    "'123e4567-e89b-12d3-a456-426614174000','2001:db8::1')",
                    ('{"a": [1, 2.5, "ü😀"], "b": null}', nasty, b"\x00\x01\t\n", "emoji 😀 tab\t nl\n bs\\ \\N",
                     "caf\xe9", "12345678901234567890.0123456789", 3.14159, 2.718281828459045))
        cur.execute("INSERT INTO kinds (id) VALUES (0)")  # AUTO_INCREMENT column holding 0
        cur.execute("INSERT INTO kinds (t, l1) VALUES ('', NULL), (NULL, '')")
        cur.execute("INSERT INTO nokey VALUES ('dup', 1), ('dup', 1), (NULL, NULL), ('\\\\N', 2)")
        cur.execute("INSERT INTO parent VALUES ('p1', 'one'), ('p2', 'two')")
        cur.execute("INSERT INTO child VALUES (1, 'p1'), (2, 'p2'), (3, NULL)")
    inst.cli("backup", "create", "--tenant", "ledger", check=True)
    res = inst.cli("restore", "--tenant", "ledger", "--into", "ledger_copy")
    assert res.returncode == 0, res.stderr

    def dump(db):
        out = {}
        cc = admin(inst, db)
        run(cc, "SET SESSION time_zone = '+00:00'")
        for tname in ("kinds", "nokey", "parent", "child", "audit_trail"):
            out[tname] = sorted(run(cc, f"SELECT * FROM {tname}"), key=repr)
            out["create " + tname] = run(cc, f"SHOW CREATE TABLE {tname}")[0][1]
        for kind, name in (("VIEW", "big"), ("VIEW", "bigger"), ("TRIGGER", "kinds_ai"), ("FUNCTION", "twice"),
                           ("PROCEDURE", "bump"), ("EVENT", "nightly")):
            row = run(cc, f"SHOW CREATE {kind} {name}")[0]
            out[f"{kind} {name}"] = [str(x).replace(f"`{db}`", "`DB`") for x in row[1:3]]
        out["twice"] = run(cc, "SELECT twice(21)")
        cc.close()
        return out

    a, b = dump("ledger_db"), dump("ledger_copy")
    assert a["kinds"] and a["nokey"].count(("dup", 1)) == 2
    for k in a:
        if k.startswith("EVENT"):
            continue  # the copy's events are created disabled (an --into copy must not run the live one's jobs)
        assert a[k] == b[k], k
    copy = admin(inst, "ledger_copy")
    assert run(copy, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='ledger_copy'")[0][0] != "ENABLED"
    run(copy, "DROP DATABASE ledger_copy")
    copy.close()
    # and the whole instance through a scratch server (from a new full backup: an earlier test restored billing
    # in place, and no roll-forward crosses a restore; see test_a_roll_forward_never_crosses_a_restore)
    inst.cli("backup", "create", check=True)
    t = inst.cli("-o", "json", "backup", "test")
    assert t.returncode == 0, t.stdout + t.stderr


def test_nothing_secret_or_plaintext_where_it_should_not_be(inst):
    marker = "Row-Secret-Marker-8f3a"
    c = admin(inst, "orders_db")
    run(c, f"INSERT INTO items (n, v) VALUES (424242, '{marker}')")
    c.close()
    t = inst.target()
    password = t.master_password()
    outs = []
    for args in (("backup", "create"), ("backup", "archive"), ("backup", "list"), ("-o", "json", "backup", "list"),
                 ("backup", "test"), ("restore", "--tenant", "orders", "--into", "orders_leak"),
                 ("restore", "--tenant", "orders", "--into", "orders_leak"), ("backup", "prune", "--dry-run"),
                 ("--debug", "backup", "create")):
        r = inst.cli(*args)
        outs.append(r.stdout + r.stderr)
    blob = "\n".join(outs)
    assert password not in blob and marker not in blob
    root = backup_dir(t)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for p in root.rglob("*"):
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, (p, oct(mode))
        if p.is_file() and p.suffix != ".json" and "incoming" not in p.parts:
            assert marker.encode() not in p.read_bytes(), p
        if p.is_file():
            assert password.encode() not in p.read_bytes(), p
    logs = t.server.paths.logs
    for p in logs.iterdir():
        data = p.read_bytes()
        assert password.encode() not in data, p
        assert marker.encode() not in data or p.name == "general.log", p
    assert not list(t.server.paths.secure_files.iterdir())  # no FIFO or file left behind
    c = admin(inst)
    run(c, "DROP DATABASE orders_leak")
    c.close()


def test_archive_is_single_instance_and_follow_seals_rotated_binlogs(inst):
    p = subprocess.Popen([*CLI, "backup", "archive", "--follow"], cwd=inst.dir, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        arch_dir = backup_dir(inst.target()) / "binlog"
        deadline = time.time() + 20
        while time.time() < deadline and not (arch_dir / "incoming").is_dir():
            time.sleep(0.05)
        time.sleep(0.5)
        second = inst.cli("backup", "archive")
        assert second.returncode == 0 and "another archiver" in second.stderr, second.stderr
        c = admin(inst, "orders_db")
        run(c, "INSERT INTO items (n, v) VALUES (1, 'follow')", "FLUSH BINARY LOGS")
        current = run(c, "SHOW MASTER STATUS")[0][0]
        c.close()
        from shared_mysql.backup.archive import _predecessor

        prev = _predecessor(current)
        deadline = time.time() + 20
        while time.time() < deadline and not (arch_dir / f"{prev}.sme").exists():
            time.sleep(0.1)
        assert (arch_dir / f"{prev}.sme").exists()
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    st = json.loads(inst.cli("-o", "json", "backup", "list", check=True).stdout)["archive"]
    assert st["rpo_s"] is not None and st["gaps"] == []


def test_prune_keeps_the_window_base_and_the_newest_verified(inst):
    from shared_mysql.backup.manage import prune, prune_plan

    inst.cli("backup", "create", check=True)
    inst.cli("backup", "create", check=True)
    t = inst.target()
    store = BackupDir(backup_dir(t))
    all_ids = [b.id for b in store.list()]
    verified = all_ids[-2]
    assert inst.cli("backup", "verify", verified).returncode == 0
    # far in the future: everything is past retention
    plan = prune_plan(t, now=time.time() + 400 * 86400)
    assert all_ids[-1] in plan["kept"] and verified in plan["kept"]
    assert set(plan["backups"]) == set(all_ids) - set(plan["kept"])
    dry = inst.cli("backup", "prune", "--dry-run")
    assert dry.returncode == 0 and "nothing to prune" in dry.stdout  # within 14 days: nothing
    prune(t, plan)
    left = [b.id for b in store.list()]
    assert set(left) == set(plan["kept"])
    oldest = min(int(b.position["file"].rsplit(".", 1)[1]) for b in store.list())
    from shared_mysql.backup.archive import Archive, number

    assert all(number(n) >= oldest for n in Archive(t).files())


def test_a_purged_binlog_is_a_reported_gap_never_papered_over(instance_factory):
    i = instance_factory({"orders": {}})
    i.cli("apply", "--auto-approve", check=True)
    c = admin(i, "orders_db")
    run(c, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    i.cli("backup", "create", check=True)
    i.cli("backup", "archive", check=True)
    run(c, "INSERT INTO t VALUES (2)", "FLUSH BINARY LOGS", "INSERT INTO t VALUES (3)", "FLUSH BINARY LOGS",
        "INSERT INTO t VALUES (4)")
    newest = run(c, "SHOW MASTER STATUS")[0][0]
    run(c, f"PURGE BINARY LOGS TO '{newest}'")
    time.sleep(1.1)
    T = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(time.time()))
    c.close()
    res = i.cli("backup", "archive")
    assert res.returncode == 3 and "gap" in res.stderr, res.stdout + res.stderr
    lst = json.loads(i.cli("-o", "json", "backup", "list", check=True).stdout)
    assert lst["archive"]["gaps"] and lst["archive"]["gaps"][0]["reason"].startswith("purged")
    assert "GAP" in i.cli("backup", "list").stdout
    res = i.cli("restore", "--to-time", T, "--tenant", "orders", "--into", "orders_pitr")
    assert res.returncode == 1 and ("gap" in res.stderr or "missing" in res.stderr), res.stderr
    # restoring the backup as it was still works
    assert i.cli("restore", "--tenant", "orders", "--into", "orders_asis").returncode == 0


def test_restore_refuses_an_older_server(monkeypatch):
    from shared_mysql.backup.load import Destination
    from shared_mysql.backup.restore import _check_version
    from shared_mysql.db import ConnectionInfo
    from shared_mysql.errors import SharedMySQLError

    class Conn:
        def get_server_info(self):
            return "5.5.5-10.11.6-MariaDB-0+deb12u1"

    class B:
        id = "x"
        manifest = {"server": {"flavor": "mariadb", "version": "11.4.2-MariaDB", "version_tuple": [11, 4, 2]}}

    dest = Destination(ConnectionInfo("h", 1, "u", "p"), label="scratch")
    with pytest.raises(SharedMySQLError, match="older than the backup"):
        _check_version(Conn(), B(), dest)
    B.manifest = {"server": {"flavor": "mysql", "version": "8.0.35", "version_tuple": [8, 0, 35]}}
    with pytest.raises(SharedMySQLError, match="same kind"):
        _check_version(Conn(), B(), dest)
    B.manifest = {"server": {"flavor": "mariadb", "version": "10.11.2", "version_tuple": [10, 11, 2]}}
    _check_version(Conn(), B(), dest)


def test_backup_refuses_hostile_tenant_names_and_unknown_ids(inst):
    res = inst.cli("backup", "create", "--tenant", "nobody")
    assert res.returncode == 1 and "not a tenant" in res.stderr
    for bad in ("../../etc", "20261126T101500Z-zzzz", "x\ny"):
        res = inst.cli("backup", "verify", bad)
        assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert os.path.exists(inst.dir)


def test_a_server_we_cannot_hand_files_to_gets_the_same_rows_by_insert(inst):
    """The `server` target path: no FIFO in secure_file_priv, rows go in as multi-row INSERTs of hex literals."""
    from shared_mysql.backup.load import Destination
    from shared_mysql.backup.restore import restore

    c = admin(inst, "ledger_db")
    run(c, "CREATE TABLE IF NOT EXISTS raw (id INT PRIMARY KEY, b BLOB, t TEXT, d DECIMAL(20,5), x BIT(3), "
           "f DOUBLE)")
    with c.cursor() as cur:
        cur.executemany("INSERT INTO raw VALUES (%s, %s, %s, %s, b'101', %s)",
                        [(k, bytes([k % 256]) * (k % 7) + b"\t\n\\N\x00", f"t{k}\t\\😀", f"{k}.12345", k / 3)
                         for k in range(1, 3001)])
        cur.execute("INSERT INTO raw VALUES (0, NULL, NULL, NULL, NULL, NULL)")
    c.close()
    inst.cli("backup", "create", "--tenant", "ledger", check=True)
    t = inst.target()
    dest = Destination(t.admin_info(), secure_files=None, is_live=True, label="server")
    res = restore(t, tenant="ledger", into="ledger_ins", dest=dest)
    assert res["rows_loaded"] >= 3001
    a = sums(inst, ["ledger_db"])
    b = sums(inst, ["ledger_ins"])
    assert {k.replace("ledger_ins.", "ledger_db."): v for k, v in b.items()} == a
    c = admin(inst)
    run(c, "DROP DATABASE ledger_ins")
    c.close()


def test_odd_table_names_a_planted_fifo_and_a_concurrent_restore(inst):
    long_name = "가 나" * 12  # multibyte characters and spaces (the server stores it as @-encoded file names)
    c = admin(inst, "billing_db")
    run(c, f"CREATE TABLE IF NOT EXISTS `{long_name}` (id INT PRIMARY KEY, v VARCHAR(5))",
        "CREATE TABLE IF NOT EXISTS `we``ird name.x` (id INT PRIMARY KEY, `co``l` INT)",
        f"INSERT IGNORE INTO `{long_name}` VALUES (1, 'a'), (2, NULL)",
        "INSERT IGNORE INTO `we``ird name.x` VALUES (1, 7)")
    s = json.loads(inst.cli("-o", "json", "backup", "create", "--tenant", "billing", check=True).stdout)
    res = inst.cli("restore", "--tenant", "billing", "--into", "billing_odd")
    assert res.returncode == 0, res.stderr
    assert sums(inst, ["billing_odd"]) == {k.replace("billing_db.", "billing_odd."): v
                                           for k, v in sums(inst, ["billing_db"]).items()}
    run(c, "DROP DATABASE billing_odd")
    # a FIFO in place of a backup file: refused at once, never a hang
    b = BackupDir(backup_dir(inst.target())).get(s["id"])
    victim = sorted(b.path.rglob("*.sme"))[0]
    saved = victim.read_bytes()
    victim.unlink()
    os.mkfifo(victim)
    try:
        res = inst.cli("restore", "--tenant", "billing", "--into", "billing_odd", timeout=60)
        assert res.returncode == 1 and "not a regular file" in res.stderr, res.stderr
        res = inst.cli("backup", "verify", s["id"], timeout=60)
        assert res.returncode == 3 and "not a regular file" in res.stdout
    finally:
        victim.unlink()
        victim.write_bytes(saved)
        victim.chmod(0o600)
    left = [r[0] for r in run(c, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_smr\\_%'")]
    for name in left:
        run(c, f"DROP DATABASE `{name}`")
    # two restores at once: the second waits for nobody and says who holds the lock
    t = inst.target()
    with t.executor() as ex, t.server_lock(ex, what="test"):
        res = inst.cli("restore", "--tenant", "billing", "--into", "billing_two")
        assert res.returncode == 1 and "another shared-mysql command" in res.stderr, res.stderr
    c.close()


def test_a_restore_killed_while_swapping_in_is_reported_and_the_rerun_finishes_it(inst, monkeypatch):
    from shared_mysql.backup import load
    from shared_mysql.backup.restore import restore

    c = admin(inst, "orders_db")
    run(c, "CREATE TABLE IF NOT EXISTS big (id INT PRIMARY KEY, b LONGBLOB)",
        "CREATE OR REPLACE TRIGGER big_bi BEFORE INSERT ON big FOR EACH ROW SET NEW.id = NEW.id")
    blob = os.urandom(3 << 20) + b"\t\n\\" * 50000  # a long value full of what the escaping would multiply
    with c.cursor() as cur:
        cur.execute("REPLACE INTO big VALUES (1, %s)", (blob,))
    inst.cli("backup", "create", "--tenant", "orders", check=True)
    real = load.Loader.objects

    def killed(self, conn, src, dst, *, disable_events, only=None, skip=()):
        if only is None:
            raise KeyboardInterrupt  # after the tables are renamed in, before the triggers and views
        return real(self, conn, src, dst, disable_events=disable_events, only=only, skip=skip)

    monkeypatch.setattr(load.Loader, "objects", killed)
    with pytest.raises(KeyboardInterrupt):
        restore(inst.target(), tenant="orders", into="orders_swap")
    monkeypatch.setattr(load.Loader, "objects", real)
    listing = inst.cli("backup", "list")
    assert "UNFINISHED restore into orders_swap" in listing.stdout, listing.stdout
    assert json.loads(inst.cli("-o", "json", "backup", "list").stdout)["unfinished_restores"]
    assert "UNFINISHED" in inst.cli("status").stdout
    res = inst.cli("restore", "--tenant", "orders", "--into", "orders_swap")  # no --allow-destructive needed
    assert res.returncode == 0, res.stderr
    assert "UNFINISHED" not in inst.cli("backup", "list").stdout
    assert run(c, "SELECT b FROM orders_swap.big WHERE id = 1")[0][0] == blob
    assert run(c, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'orders_swap'")[0][0] == 1
    res = inst.cli("restore", "--tenant", "orders", "--into", "orders_swap")  # finished: it is not ours any more
    assert res.returncode == 1 and "exists" in res.stderr
    run(c, "DROP DATABASE orders_swap", "DROP TABLE big")
    c.close()


def test_review_regressions_big_values_floats_sequences_and_other_databases(instance_factory):
    """A value the server would cut or null is never backed up silently; FLOAT is exact; a table kind backups
    do not hold is refused, not skipped; a roll-forward never replays a statement that changes another database;
    an archive never takes a reset server's binlogs for the old ones."""
    i = instance_factory({"orders": {}, "billing": {}})
    i.cli("apply", "--auto-approve", check=True)
    c = admin(i, "orders_db")
    run(c, "CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB)", "CREATE TABLE f (id INT PRIMARY KEY, x FLOAT)",
        "INSERT INTO f VALUES (1, 16777217), (2, 3.14159265), (3, 123456.789), (4, -1.17549435e-38)")
    rows = [os.urandom(6 << 20) for _ in range(3)]
    with c.cursor() as cur:
        for k, b in enumerate(rows, 1):
            cur.execute("INSERT INTO big VALUES (%s, %s)", (k, b))
    i.cli("backup", "create", "--tenant", "orders", check=True)
    res = i.cli("restore", "--tenant", "orders", "--into", "o_copy")
    assert res.returncode == 0, res.stderr
    assert [r[0] for r in run(c, "SELECT b FROM o_copy.big ORDER BY id")] == rows
    assert run(c, "SELECT x FROM o_copy.f ORDER BY id") == run(c, "SELECT x FROM orders_db.f ORDER BY id")
    # a value too big to encode in one packet: the backup fails with one line, and never becomes latest
    with c.cursor() as cur:
        cur.execute("INSERT INTO big VALUES (9, %s)", (os.urandom(5 << 20),))
        cur.execute("UPDATE big SET b = CONCAT(b, b) WHERE id = 9")  # 10 MB: its HEX() passes max_allowed_packet
    store = BackupDir(backup_dir(i.target()))
    before = store.latest().id
    res = i.cli("backup", "create", "--tenant", "orders")
    assert res.returncode == 1 and "max_allowed_packet" in res.stderr, res.stderr
    assert store.latest().id == before
    run(c, "DELETE FROM big WHERE id = 9", "CREATE SEQUENCE s1")
    res = i.cli("backup", "create", "--tenant", "orders")
    assert res.returncode == 1 and "SEQUENCE" in res.stderr, res.stderr
    run(c, "DROP SEQUENCE s1")
    # a statement run under orders_db that changes billing_db stops a roll-forward of orders
    b = admin(i, "billing_db")
    run(b, "CREATE TABLE bt (id INT PRIMARY KEY)", "INSERT INTO bt VALUES (1), (7)")
    i.cli("backup", "create", check=True)
    run(c, "INSERT INTO f VALUES (5, 5)", "TRUNCATE TABLE billing_db.bt")
    run(b, "INSERT INTO bt VALUES (8)")
    time.sleep(1.1)
    when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(time.time() - 0.05))
    res = i.cli("restore", "--tenant", "orders", "--into", "o_pitr", "--to-time", when)
    assert res.returncode == 1 and "changes billing_db" in res.stderr, res.stderr
    assert run(b, "SELECT id FROM bt") == ((8,),)
    # the server's binlogs start over: the archive refuses to take the new ones for the old
    i.cli("backup", "archive", check=True)
    run(c, "FLUSH BINARY LOGS", "FLUSH BINARY LOGS", "INSERT INTO f VALUES (6, 6)")
    i.cli("backup", "archive", check=True)
    run(c, "RESET MASTER")
    res = i.cli("backup", "archive")
    assert res.returncode == 3 and "start over" in res.stderr, res.stderr
    assert i.cli("restore", "--to-time", "").returncode == 2
    # a newer backup whose manifest is damaged: listed as DAMAGED, and a restore says it skipped it
    newest = store.latest()
    (newest.path / "manifest.json").write_text("{not json")
    assert f"{newest.id}  DAMAGED" in i.cli("backup", "list").stdout
    res = i.cli("restore", "--tenant", "orders", "--into", "o_older")
    assert res.returncode == 0 and f"backup {newest.id} is newer" in res.stderr, res.stderr
    b.close()
    c.close()
