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
