"""The real command, as a subprocess: stdout, the one stderr line, the exit code."""

import json
import os
import subprocess
import sys

import pytest

from shared_mysql.cli import hoist_globals


def run(args, cwd, env=None):
    e = {k: v for k, v in os.environ.items() if k != "SHARED_MYSQL_CONFIG"}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "shared_mysql", *args], cwd=cwd, capture_output=True, text=True,
                          env=e, timeout=60)


def assert_one_line_error(res, code, needle):
    assert res.returncode == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in res.stderr


def test_hoist_globals_after_command():
    assert hoist_globals(["tenants", "-o", "json"]) == ["--output", "json", "tenants"]
    assert hoist_globals(["plan", "--detailed-exitcode", "-c", "x.yaml", "--debug"]) == \
        ["--config", "x.yaml", "--debug", "plan", "--detailed-exitcode"]
    assert hoist_globals(["credentials", "orders", "--output=json", "-ojson"]) == \
        ["--output", "json", "--output", "json", "credentials", "orders"]
    assert hoist_globals(["local", "status", "--", "-o"]) == ["local", "status", "--", "-o"]


def test_init_then_tenants_json(tmp_path):
    res = run(["init"], tmp_path)
    assert res.returncode == 0 and (tmp_path / "shared-mysql.yaml").exists()
    res = run(["tenants", "-o", "json"], tmp_path)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == ["billing", "orders"]
    orders = rows[1]
    assert orders["database"] == "orders_db"
    assert [u["user"] for u in orders["users"]] == ["orders_user", "orders_readonly"]
    assert_one_line_error(run(["init"], tmp_path), 2, "already exists")


def test_config_flag_and_env(tmp_path):
    (tmp_path / "other.yaml").write_text("tenants: {x: {}}\n")
    res = run(["-c", "other.yaml", "tenants", "-o", "json"], tmp_path)
    assert [r["name"] for r in json.loads(res.stdout)] == ["x"]
    res = run(["tenants", "-o", "json"], tmp_path, env={"SHARED_MYSQL_CONFIG": str(tmp_path / "other.yaml")})
    assert [r["name"] for r in json.loads(res.stdout)] == ["x"]


@pytest.mark.parametrize("yaml_text,needle", [
    ("tenants: {Orders: {}}", "tenant name 'Orders' is invalid"),
    ("tenants: {mysql: {}}", "reserved"),
    ("tenants: {a: {max_connections: 500}}", "exceed instance.parameters.max_connections 200"),
    ("tenants: {'or ders': {}}", "invalid"),
])
def test_bad_config_is_one_line_and_nothing_done(tmp_path, yaml_text, needle):
    (tmp_path / "shared-mysql.yaml").write_text(yaml_text)
    for cmd in (["up"], ["plan"], ["apply", "--auto-approve"], ["tenants"]):
        assert_one_line_error(run(cmd, tmp_path), 1, needle)
    assert not (tmp_path / ".shared-mysql").exists()


def test_missing_config(tmp_path):
    assert_one_line_error(run(["plan"], tmp_path), 1, "run `shared-mysql init`")


def test_usage_errors_exit_2(tmp_path):
    run(["init"], tmp_path)
    assert run(["plan", "--no-such-flag"], tmp_path).returncode == 2
    assert run(["credentials", "orders", "--format", "xml"], tmp_path).returncode == 2
    assert_one_line_error(run(["credentials", "nope"], tmp_path), 2, "tenant 'nope' is not in")
    assert_one_line_error(run(["credentials", "billing", "--user", "readonly"], tmp_path), 2, "no read-only account")
    assert_one_line_error(run(["credentials"], tmp_path), 2, "either a TENANT or --admin")
    assert_one_line_error(run(["credentials", "orders"], tmp_path), 1, "no stored credential dev-orders-db-credentials")


def test_an_error_line_cannot_be_forged_by_data_in_it():
    from shared_mysql.errors import SharedMySQLError

    e = SharedMySQLError("statement failed on 'x\r\nerror: fake'@'%': \x1b[2J\u2028\u202e done")
    line = str(e)
    assert line.isprintable() and "\n" not in line and "\x1b" not in line
    assert line == "statement failed on 'x\\r error: fake'@'%': \\x1b[2J\\u2028\\u202e done"


@pytest.mark.parametrize("value, needle", [
    ({"username": "admin", "password": 12345678}, "password must be a string"),
    ({"username": ["admin"], "password": "x"}, "username must be a string"),
    ({"username": "admin", "password": "a\nb"}, "password must be a string of printable characters"),
    ({"username": "admin", "password": "x", "port": "3306"}, "port must be a number"),
    ({"username": "admin", "password": "x", "port": True}, "port must be a number"),
    ({"username": "admin"}, "missing password"),
    (["admin", "x"], "expected a JSON object"),
])
def test_import_refuses_a_master_credential_of_the_wrong_shape(tmp_path, value, needle):
    (tmp_path / "shared-mysql.yaml").write_text(
        "target: server\ninstance: {host: db.example, ca_bundle: ca.pem}\n")
    res = subprocess.run([sys.executable, "-m", "shared_mysql", "credentials", "--admin", "--import"], cwd=tmp_path,
                         input=json.dumps(value), capture_output=True, text=True, timeout=60)
    assert_one_line_error(res, 1 if isinstance(value, dict) else 2, needle)
    assert not (tmp_path / ".shared-mysql" / "shared-mysql" / "secrets.enc").exists()  # nothing half-done


def test_connect_errors_say_what_failed():
    from shared_mysql.db import connect_hint

    def err(msg):
        return OSError(2003, msg)

    tls = connect_hint(2003, err("Can't connect to MySQL server on '127.0.0.2' ([SSL: CERTIFICATE_VERIFY_FAILED] "
                                 "certificate verify failed: IP address mismatch, certificate is not valid for "
                                 "'127.0.0.2'. (_ssl.c:1006))"), "/s/tls/ca.pem")
    assert tls.startswith("error 2003: TLS verification failed (IP address mismatch") and "/s/tls/ca.pem" in tls
    assert "local down" in tls and "not reachable" not in tls
    refused = connect_hint(2003, err("Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)"),
                           None)
    assert "connection refused" in refused and "local up" in refused
    assert "timed out" in connect_hint(2003, err("Can't connect to MySQL server on 'x' (timed out)"), None)
    assert "MAX_USER_CONNECTIONS" in connect_hint(1226, err("User has exceeded"), None)


@pytest.mark.parametrize("args, needle", [
    (["up", "--auto-approve"], "No such option: --auto-approve; see `shared-mysql up --help`"),
    (["credentials", "orders", "--format", "xml"], "'xml' is not one of 'env', 'json', 'dsn'"),
    (["nosuch"], "No such command 'nosuch'"),
])
def test_usage_errors_are_one_line_with_exit_2(tmp_path, args, needle):
    (tmp_path / "shared-mysql.yaml").write_text("tenants: {orders: {}}\n")
    assert_one_line_error(run(args, tmp_path), 2, needle)


def test_bad_inputs_that_used_to_hang_or_trace(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert_one_line_error(run(["-c", str(fifo), "tenants"], tmp_path), 1, "not a regular file")
    (tmp_path / "shared-mysql.yaml").write_text("target: server\ninstance: {host: db.example, ca_bundle: ca.pem}\n")
    res = subprocess.run([sys.executable, "-m", "shared_mysql", "credentials", "--admin", "--import"], cwd=tmp_path,
                         input="[" * 100000, capture_output=True, text=True, timeout=60)
    assert_one_line_error(res, 2, "nested too deeply")
    spaced = tmp_path / "a b"
    spaced.mkdir()
    (spaced / "shared-mysql.yaml").write_text("instance: {port: 23997}\n")
    assert_one_line_error(run(["local", "up"], spaced), 1, "its path has a space")
    assert not (spaced / ".shared-mysql").exists()  # refused before anything was created


def test_an_interrupted_command_says_so_in_one_line(monkeypatch, capsys):
    """Typer turns Ctrl-C (and SIGTERM where `backup test` maps it) into a silent exit 130."""
    import shared_mysql.cli.app as app_mod
    from shared_mysql.cli import main

    monkeypatch.setattr(app_mod, "build_app", lambda: (lambda **kw: 130))
    with pytest.raises(SystemExit) as e:
        main(["tenants"])
    assert e.value.code == 130
    err = capsys.readouterr().err
    assert err.startswith("error: interrupted;") and err.count("\n") == 1


def test_debug_never_lets_botocore_log_request_bodies(tmp_path, monkeypatch):
    """Review: --debug printed the master password (GetSecretValue's SecretString, ModifyDBInstance's
    MasterUserPassword) through botocore's DEBUG request/response logging."""
    import logging

    from shared_mysql.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        main(["--debug", "init"])
    except SystemExit:
        pass
    for name in ("botocore", "boto3", "urllib3"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


@pytest.mark.parametrize("args,needle", [
    (["doctor", "orders", "--via", "elsewhere"], "--via 'elsewhere': instance or proxy"),
    (["doctor", "orders", "--user", "root"], "--user 'root': app or readonly"),
    (["doctor", "orders", "--from-sg", "sg-1; rm -rf /"], "--from-sg"),
    (["doctor", "orders", "--from-sg", "10.0.0.0/8"], "--from-sg '10.0.0.0/8': a security group id"),
    (["doctor", "orders", "--from-cidr", "10.0.0.0/33"], "--from-cidr"),
    (["doctor", "orders", "--from-sg", "sg-0123abcd", "--from-cidr", "10.0.0.0/8"], "not both"),
    (["doctor", "orders", "--role-arn", "arn:aws:iam::1:user/x"], "--role-arn"),
    (["doctor", "orders", "--from-cidr", "10.0.0.0/8"], "the aws target's"),  # a local config
    (["credentials", "orders", "--via", "$(id)"], "--via '$(id)': instance or proxy"),
])
def test_doctor_and_credentials_refuse_hostile_options_in_one_line(tmp_path, args, needle):
    (tmp_path / "shared-mysql.yaml").write_text("instance: {port: 23998}\ntenants: {orders: {}}\n")
    assert_one_line_error(run(args, tmp_path), 2, needle)
