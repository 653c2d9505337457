"""The embedded server: status fields, idempotent up, stale pid / crash recovery, port conflicts, clean down."""

import json
import os
import socket

import pytest

from .helpers import error_code, login


def test_status_json_and_idempotent_up(instance_factory):
    inst = instance_factory()
    st = json.loads(inst.cli("local", "status", "-o", "json", check=True).stdout)
    for key in ("running", "version", "port", "pid", "datadir", "ca", "logs", "listening", "unix_socket", "forced",
                "restart_needed", "restart_reason"):
        assert key in st
    assert st["running"] and st["port"] == inst.port
    assert set(st["logs"]) >= {"error", "slow", "audit"}
    assert os.path.exists(st["logs"]["error"]) and os.path.exists(st["ca"])
    again = json.loads(inst.cli("local", "up", "-o", "json", check=True).stdout)
    assert again["pid"] == st["pid"]


def test_server_configured_like_the_parameter_group(instance_factory):
    inst = instance_factory()
    with inst.target().executor() as ex:
        row = ex.query("SELECT @@character_set_server, @@collation_server, @@max_connections, @@slow_query_log, "
                       "@@long_query_time, @@log_queries_not_using_indexes, @@require_secure_transport, "
                       "@@log_bin, @@binlog_format, @@bind_address")[0]
        assert row[:2] == ("utf8mb4", "utf8mb4_unicode_ci")
        assert row[2] == 200 and row[3] == 1 and float(row[4]) == 2.0 and row[5] == 1 and row[6] == 1
        assert row[7] == 1 and row[8] == "ROW" and row[9] == "127.0.0.1"
        if ex.flavor.is_mariadb:
            plugins = dict(ex.query("SELECT PLUGIN_NAME, PLUGIN_STATUS FROM information_schema.PLUGINS "
                                    "WHERE PLUGIN_NAME = 'SERVER_AUDIT'"))
            assert plugins == {"SERVER_AUDIT": "ACTIVE"}
            events = ex.query("SELECT @@server_audit_events")[0][0]
            assert set(events.split(",")) == {"CONNECT", "QUERY_DDL", "QUERY_DCL"}


def test_no_passwordless_root_over_tcp(instance_factory):
    inst = instance_factory()
    ca = str(inst.target().server.paths.ca)
    for user in ("root", "", "mysql"):
        code = error_code(lambda: login({"host": "127.0.0.1", "port": inst.port, "username": user, "password": "",
                                         "ssl_ca": ca}, database=None))
        assert code == 1045, user
    with inst.target().executor() as ex:
        users = {r[0] for r in ex.query("SELECT User FROM mysql.user")}
    assert "root" not in users and "" not in users


def test_stale_pid_file_and_crash_recovery(instance_factory):
    inst = instance_factory({"a": {}})
    inst.cli("apply", "--auto-approve", check=True)
    t = inst.target()
    old = t.server.pid()
    t.server.kill()  # kill -9: pid file stays behind
    assert t.server.paths.pidfile.exists()
    st = json.loads(inst.cli("local", "status", "-o", "json", check=True).stdout)
    assert st["running"] is False
    st = json.loads(inst.cli("local", "up", "-o", "json", check=True).stdout)
    assert st["running"] and st["pid"] != old
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0


def test_port_taken_is_a_clear_error(instance_factory):
    inst = instance_factory(start=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", inst.port))
        s.listen()
        res = inst.cli("local", "up")
    assert res.returncode == 1
    assert res.stderr.strip() == (f"error: port {inst.port} on 127.0.0.1 is already in use by another process; "
                                  "set instance.port in shared-mysql.yaml to a free port (or stop that process)")


def test_bad_parameter_names_the_setting(instance_factory):
    inst = instance_factory(parameters={"no_such_variable": 1}, start=False)
    res = inst.cli("local", "up")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "no_such_variable" in res.stderr and "instance.parameters" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_down_is_clean_and_repeatable(instance_factory):
    inst = instance_factory()
    res = inst.cli("local", "down", check=True)
    assert res.stdout.strip() == "stopped"
    err = inst.target().server.paths.error_log.read_text()
    assert "Shutdown complete" in err
    assert inst.cli("local", "down", check=True).stdout.strip() == "not running"
    res = inst.cli("plan")
    assert res.returncode == 1 and "local up" in res.stderr


def test_missing_server_binary_names_the_install_command(instance_factory, monkeypatch):
    from shared_mysql.errors import LocalServerError
    from shared_mysql.local import server as srv

    inst = instance_factory(start=False)
    monkeypatch.setattr(srv, "find_server_binary", lambda: None)
    with pytest.raises(LocalServerError, match="apt-get install mariadb-server"):
        inst.target().local_up()
    assert not (inst.dir / ".shared-mysql" / "itest" / "secrets.enc").exists()
