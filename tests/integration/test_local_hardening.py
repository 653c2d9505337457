"""The embedded server as an attacker sees it: my.cnf injection, passwordless accounts, the Unix socket, the
child environment, stale certificates after a host change, and two starts at once. Real MariaDB servers."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pymysql
import pytest
import yaml

from shared_mysql.config import params
from shared_mysql.errors import LocalServerError
from shared_mysql.local import LocalServer
from shared_mysql.local.server import listening_tcp, parse_cnf
from shared_mysql.secrets import CURRENT

from ..conftest import ROOT, free_port, require_server_binary
from .helpers import error_code, login

PASSWORDLESS_SQL = """
SELECT User, Host FROM mysql.global_priv
WHERE NOT (User = 'admin' AND Host = '%') AND IFNULL(JSON_VALUE(Priv, '$.is_role'), '') NOT IN ('1', 'true')
  AND (User = '' OR JSON_VALUE(Priv, '$.plugin') IN ('unix_socket', 'auth_socket')
       OR IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') = '' OR JSON_QUERY(Priv, '$.auth_or') IS NOT NULL)
  AND NOT (User = 'mariadb.sys' AND Host = 'localhost')
"""


def tenant_secret(t, tenant: str) -> dict:
    t.store.reload()
    return {"ssl_ca": t.ca, **t.store.get(f"{t.config.environment}-{tenant}-db-credentials", CURRENT)}


def set_instance(inst, **instance) -> None:
    doc = yaml.safe_load(inst.config_path.read_text())
    doc["instance"].update(instance)
    inst.config_path.write_text(yaml.safe_dump(doc, sort_keys=False))


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- 1. my.cnf injection ------------------------------------------------------------------------------------
@pytest.mark.parametrize("parameters, needle", [
    ({"max_connections": "200\nskip_grant_tables"}, "instance.parameters.max_connections"),
    ({"sql_mode": "STRICT_TRANS_TABLES\nskip_grant_tables = ON"}, "instance.parameters.sql_mode"),
    ({"require_secure_transport": False}, "instance.parameters.require_secure_transport"),
    ({"require_secure": "OFF"}, "instance.parameters.require_secure"),
    ({"loose_skip_name_resolve": "OFF"}, "instance.parameters.loose_skip_name_resolve"),
    ({"log_bin_trust_function_creators": False}, "instance.parameters.log_bin_trust_function_creators"),
    ({"secure_file_priv": "/"}, "instance.parameters.secure_file_priv"),
])
def test_hostile_parameter_is_one_line_and_nothing_starts(instance_factory, parameters, needle):
    inst = instance_factory(parameters=parameters, start=False)
    res = inst.cli("local", "up")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr
    assert not (inst.dir / ".shared-mysql" / "itest" / "my.cnf").exists()
    assert not (inst.dir / ".shared-mysql" / "itest" / "data").exists()


def test_server_refuses_forced_overrides_even_if_config_let_them_through(tmp_path, monkeypatch):
    """Defense in depth: with the config check switched off, the server side still writes nothing."""
    require_server_binary()
    monkeypatch.setattr(params, "check_parameter", lambda name, value: None)
    for name in ("require_secure", "skip_require_secure_transport", "enable_skip_name_resolve", "loose_ssl",
                 "maximum_secure_file_priv", "plugin_server_audit_logging"):
        s = LocalServer(tmp_path / "state", host="127.0.0.1", port=free_port(), parameters={name: "OFF"})
        with pytest.raises(LocalServerError, match=rf"^instance.parameters.{name}: shared-mysql owns "):
            s.up("Irrelevant1password")
        assert not s.paths.cnf.exists() and not s.paths.datadir.exists()


def test_tenant_can_create_triggers_and_functions(instance_factory):
    inst = instance_factory({"shop": {}})
    inst.cli("apply", "--auto-approve", check=True)
    conn = login(tenant_secret(inst.target(), "shop"))
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT)")
        cur.execute("CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.n = NEW.id * 2")
        cur.execute("CREATE FUNCTION twice(x INT) RETURNS INT NO SQL RETURN x * 2")
        cur.execute("CREATE PROCEDURE p() INSERT INTO t (id) VALUES (21)")
        cur.execute("CALL p()")
        cur.execute("SELECT n, twice(n) FROM t")
        assert cur.fetchone() == (42, 84)
    conn.close()


def test_secure_file_priv_is_a_private_directory(instance_factory):
    inst = instance_factory()
    t = inst.target()
    files = t.server.paths.secure_files
    assert files.is_dir() and mode(files) == 0o700
    with t.executor() as ex:
        assert ex.query("SELECT @@secure_file_priv")[0][0].rstrip("/") == str(files)
        with pytest.raises(Exception) as e:
            ex.query("SELECT 1 INTO OUTFILE '/tmp/shared-mysql-outfile-test'")
        assert "secure-file-priv" in str(e.value) or "1290" in str(e.value)
    assert not os.path.exists("/tmp/shared-mysql-outfile-test")


# -- 2. passwordless accounts -------------------------------------------------------------------------------
def test_every_passwordless_account_is_dropped_at_each_start(instance_factory):
    inst = instance_factory({"shop": {}})
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    with t.executor() as ex:
        assert ex.query(PASSWORDLESS_SQL) == []
        for stmt in (
            "CREATE USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING 'invalid'",
            "CREATE USER 'root'@'some-other-hostname'",
            "CREATE USER ''@'%'",
            "CREATE USER 'nopw'@'127.0.0.1'",
            "CREATE USER 'sock'@'localhost' IDENTIFIED VIA unix_socket",
            "CREATE USER 'either'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('Abc123456789') "
            "OR mysql_native_password USING ''",
            "CREATE USER 'it''s\\\\odd'@'%'",
            "CREATE USER 'admin'@'localhost'",
            "CREATE USER 'locked'@'%' ACCOUNT LOCK",
            "CREATE USER 'keep'@'%' IDENTIFIED BY 'Keep123456789'",
            "CREATE ROLE keep_role",
        ):
            ex.query(stmt)
        assert len(ex.query(PASSWORDLESS_SQL)) == 9
    inst.cli("local", "down", check=True)
    inst.cli("local", "up", check=True)
    with t.executor() as ex:  # the master still logs in
        assert ex.query(PASSWORDLESS_SQL) == []
        left = {(u, h) for u, h in ex.query("SELECT User, Host FROM mysql.global_priv")}
    assert {("keep", "%"), ("keep_role", ""), ("admin", "%"), ("shop_user", "%"), ("mariadb.sys", "localhost")} <= left
    assert not {u for u, _ in left} & {"root", "", "nopw", "sock", "either", "it's\\odd", "locked"}
    assert ("admin", "localhost") not in left
    assert login(tenant_secret(t, "shop")) is not None
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0


# -- 3. the Unix socket -------------------------------------------------------------------------------------
def test_socket_is_gone_after_start_and_dirs_are_private(instance_factory):
    inst = instance_factory({"shop": {}})
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    p = t.server.paths
    assert not os.path.lexists(p.socket)
    assert mode(p.root) == 0o700 and mode(p.socket_dir) == 0o700
    assert mode(inst.dir / ".shared-mysql") == 0o700  # the directory above the state dir too, whatever the umask
    for d in (p.logs, p.binlog_dir, p.datadir, p.secure_files, p.tls):
        assert mode(d) == 0o700, d
    shop = tenant_secret(t, "shop")
    for user, password in ((shop["username"], shop["password"]), ("admin", t.master_password())):
        res = subprocess.run(["mariadb", "--no-defaults", f"--socket={p.socket}", "-u", user, "-e", "SELECT 1"],
                             capture_output=True, text=True, env={"PATH": os.environ["PATH"], "MYSQL_PWD": password},
                             timeout=30)
        assert res.returncode != 0 and "Can't connect" in res.stderr, res.stderr
    # down and up again: the server recreates and we remove the socket; TCP with TLS still works
    assert inst.cli("local", "down", check=True).stdout.strip() == "stopped"
    assert "Shutdown complete" in p.error_log.read_text()
    inst.cli("local", "up", check=True)
    assert not os.path.lexists(p.socket)
    assert login(shop) is not None


def test_long_state_path_keeps_socket_private_and_tmp_clean(tmp_path, monkeypatch):
    require_server_binary()
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    deep.mkdir(parents=True)
    port = free_port()
    (deep / "shared-mysql.yaml").write_text(yaml.safe_dump({
        "environment": "test", "identifier": "itest", "target": "local", "instance": {"port": port}}))
    before = set(os.listdir("/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "SHARED_MYSQL_CONFIG"}
    cli = [sys.executable, "-m", "shared_mysql"]
    try:
        res = subprocess.run([*cli, "local", "up", "-o", "json"], cwd=deep, capture_output=True, text=True, env=env,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        st = json.loads(res.stdout)
        sock = Path(st["unix_socket"]["path"])
        assert len(str(deep / ".shared-mysql" / "itest" / "run" / "mysqld.sock")) > 100
        assert sock.parent.parent == Path("/tmp") and not sock.exists() and not st["unix_socket"]["reachable"]
        assert st["listening"] == [f"127.0.0.1:{port}"]
        # The only new entry of ours in /tmp is the 0700 socket directory, now empty; no socket file anywhere.
        for name in set(os.listdir("/tmp")) - before:
            path = Path("/tmp") / name
            s = os.lstat(path)
            assert not stat.S_ISSOCK(s.st_mode), name
            if name.startswith("shared-mysql"):
                assert path == sock.parent, name
                assert stat.S_ISDIR(s.st_mode) and mode(path) == 0o700 and s.st_uid == os.geteuid(), name
                assert os.listdir(path) == [], name
        res = subprocess.run([*cli, "local", "down"], cwd=deep, capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0 and res.stdout.strip() == "stopped"
        assert not sock.parent.exists()  # nothing of ours left in /tmp
        res = subprocess.run([*cli, "local", "up"], cwd=deep, capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 0 and mode(sock.parent) == 0o700 and not sock.exists()
    finally:
        subprocess.run([*cli, "local", "down"], cwd=deep, capture_output=True, env=env, timeout=120)


def test_hostile_socket_dir_in_tmp_is_refused(tmp_path, monkeypatch):
    require_server_binary()
    deep = tmp_path / ("z" * 110)
    s = LocalServer(deep, host="127.0.0.1", port=free_port())
    sock_dir = s.paths.socket_dir
    assert sock_dir.parent == Path("/tmp")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.symlink(elsewhere, sock_dir)
    try:
        with pytest.raises(LocalServerError, match=rf"^{sock_dir}: is a symlink; "):
            s.up("Irrelevant1password")
        os.unlink(sock_dir)
        os.mkdir(sock_dir, 0o755)
        os.chmod(sock_dir, 0o755)
        with pytest.raises(LocalServerError, match=rf"^{sock_dir}: is mode 755, not 700; "):
            s.up("Irrelevant1password")
    finally:
        if os.path.islink(sock_dir):
            os.unlink(sock_dir)
        elif sock_dir.exists():
            os.rmdir(sock_dir)
    assert s.pid() is None


# -- 4. status from /proc -----------------------------------------------------------------------------------
def test_status_reports_what_the_server_listens_on(instance_factory):
    inst = instance_factory()
    st = json.loads(inst.cli("local", "status", "-o", "json", check=True).stdout)
    assert st["listening"] == [f"127.0.0.1:{inst.port}"] == listening_tcp(st["pid"])
    # /proc still lists the unlinked socket: the server holds it, nobody can reach it
    assert st["unix_socket"] == {"path": str(inst.target().server.paths.socket), "reachable": False}
    assert st["forced"]["require_secure_transport"] == "ON"
    assert st["forced"]["log_bin_trust_function_creators"] == "ON"
    assert st["restart_needed"] is False and st["restart_reason"] is None
    text = inst.cli("local", "status", check=True).stdout
    assert f"listening: 127.0.0.1:{inst.port}\n" in text
    assert "removed: TCP with TLS only" in text and "require_secure_transport=ON" in text


# -- 5. child environment -----------------------------------------------------------------------------------
def test_server_environment_holds_no_caller_secrets(instance_factory, monkeypatch):
    from cryptography.fernet import Fernet

    inst = instance_factory(start=False)
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("SHARED_MYSQL_SECRETS_KEY", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-canary")
    monkeypatch.setenv("MYSQL_PWD", "mysql-pwd-canary")
    st = inst.target().local_up()
    environ = Path(f"/proc/{st['pid']}/environ").read_bytes()
    for needle in (b"SHARED_MYSQL_SECRETS_KEY", key.encode(), b"AWS_SECRET_ACCESS_KEY", b"aws-secret-canary",
                   b"MYSQL_PWD", b"mysql-pwd-canary"):
        assert needle not in environ
    env = dict(kv.split(b"=", 1) for kv in environ.split(b"\0") if kv)
    assert set(env) <= {b"PATH", b"LANG", b"LC_ALL", b"TZ", b"TMPDIR", b"UMASK", b"UMASK_DIR"}
    assert env[b"TMPDIR"] == os.fsencode(inst.target().server.paths.tmpdir)


def test_temporary_files_stay_in_a_private_tmpdir(instance_factory):
    """A server deletes every #sql* file in its tmpdir when it starts: with /tmp shared, starting one server
    (or installing one) broke the temporary tables of every other one; tenants' temp tables sat in /tmp."""
    inst = instance_factory()
    t = inst.target()
    tmpdir = t.server.paths.tmpdir
    assert mode(tmpdir) == 0o700
    with t.executor() as ex:
        assert ex.query("SELECT @@tmpdir")[0][0] == str(tmpdir)


# -- 6. certificates after a host change --------------------------------------------------------------------
def test_host_change_needs_a_restart_then_gets_a_new_certificate(instance_factory):
    inst = instance_factory({"shop": {}})
    t = inst.target()
    old_ca = t.server.paths.ca.read_bytes()
    set_instance(inst, host="127.0.0.2")
    expected = ("the running server was started with a different configuration (bind_address: 127.0.0.1 -> "
                "127.0.0.2; server-cert.pem does not name 127.0.0.2); run `shared-mysql local down` then "
                "`shared-mysql local up`")
    res = inst.cli("local", "up", "-o", "json", check=True)
    st = json.loads(res.stdout)
    assert st["restart_needed"] is True and st["restart_reason"] == expected
    assert res.stderr.strip() == f"warning: {expected}"
    assert t.server.paths.ca.read_bytes() == old_ca  # never while running
    assert st["listening"] == [f"127.0.0.1:{inst.port}"]
    inst.cli("local", "down", check=True)
    st = json.loads(inst.cli("local", "up", "-o", "json", check=True).stdout)
    assert st["restart_needed"] is False and st["listening"] == [f"127.0.0.2:{inst.port}"]
    assert t.server.paths.ca.read_bytes() != old_ca
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    shop = tenant_secret(t, "shop")
    assert shop["host"] == "127.0.0.2"
    conn = login(shop)  # verified TLS against 127.0.0.2
    conn.close()


# -- 7. two starts at once ----------------------------------------------------------------------------------
INIT_SCRIPT = """
import sys, time
from pathlib import Path
from shared_mysql.local import LocalServer
s = LocalServer(Path(sys.argv[1]), host="127.0.0.1", port=1)
s.paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
s._initialise()
print("ok")
"""


def test_two_initialisations_at_once_share_one_datadir(tmp_path):
    require_server_binary()
    import time

    root = tmp_path / "state"
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", INIT_SCRIPT, str(root), start], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert (root / "data" / "mysql").is_dir()
    assert not list(root.glob("data.init-*"))


def test_stale_init_dirs_only_of_dead_processes_are_removed(tmp_path):
    require_server_binary()
    s = LocalServer(tmp_path / "state", host="127.0.0.1", port=1)
    s.paths.root.mkdir(mode=0o700)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [s.paths.root / f"data.init-{dead.pid}", s.paths.root / f"data.init-{dead.pid}-k2j4x9"]
    live = s.paths.root / f"data.init-{os.getppid()}-a8b7c6"  # a concurrent init in a live process
    for d in (*stale, live):
        d.mkdir()
    s._initialise()
    assert (s.paths.datadir / "mysql").is_dir()
    assert not any(d.exists() for d in stale) and live.exists()
    assert sorted(p.name for p in s.paths.root.glob("data.init-*")) == [live.name]


def test_two_local_up_at_once_on_a_fresh_directory(instance_factory):
    inst = instance_factory(start=False)
    barrier = threading.Barrier(2)
    results = []

    def run():
        barrier.wait()
        results.append(inst.cli("local", "up", "-o", "json"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    pids = {json.loads(r.stdout)["pid"] for r in results}
    assert len(pids) == 1
    p = inst.target().server.paths
    assert not list(p.root.glob("data.init-*")) and not p.init_file.exists()
    with inst.target().executor() as ex:
        assert ex.query("SELECT 1") == [(1,)]


def test_cnf_of_a_running_server_is_what_status_reports(instance_factory):
    inst = instance_factory()
    t = inst.target()
    st = t.server.status()
    assert {k: v for k, v in parse_cnf(t.server.paths.cnf.read_text()).items() if k in st["forced"]} == st["forced"]
    assert error_code(lambda: pymysql.connect(unix_socket=str(t.server.paths.socket), user="admin",
                                              password=t.master_password(), connect_timeout=2)) in (2002, 2003)


def test_every_file_the_server_writes_is_private(instance_factory):
    """Binlogs and logs were 0660/0644 under the server's own umask (inside 0700 directories); now 0600. Only the
    CA certificate (public) and the server's version stamp may be read by others."""
    import stat

    inst = instance_factory({"orders": {"max_connections": 2}})
    inst.cli("apply", "--auto-approve", check=True)
    state = inst.dir / ".shared-mysql" / "itest"
    loose = [str(p.relative_to(state)) for p in state.rglob("*")
             if p.is_file() and not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077
             and p.name not in ("ca.pem", "mysql_upgrade_info")]
    assert loose == []
    assert all(stat.S_IMODE(d.stat().st_mode) & 0o077 == 0 for d in state.rglob("*") if d.is_dir())
