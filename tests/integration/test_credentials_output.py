"""What `credentials --format env|dsn` prints is enough to log in with verified TLS, for `target: server` (whose
secrets carry no ssl_ca) as for `local`: the CA and VERIFY_IDENTITY are always there."""

import json
import shlex
from urllib.parse import parse_qs, unquote, urlparse

import pymysql
import pytest

from shared_mysql.db import tls_context

from ..conftest import Instance
from .test_targets import TENANTS, master_json, remote_config


@pytest.fixture
def rds(instance_factory):
    return instance_factory({})


def login_from_env(text: str):
    env = dict(shlex.split(line)[0].split("=", 1) for line in text.splitlines())
    assert env["DB_SSL_MODE"] == "VERIFY_IDENTITY"
    return pymysql.connect(host=env["DB_HOST"], port=int(env["DB_PORT"]), user=env["DB_USERNAME"],
                           password=env["DB_PASSWORD"], database=env["DB_NAME"], ssl=tls_context(env["DB_SSL_CA"]),
                           connect_timeout=5)


def login_from_dsn(dsn: str):
    u = urlparse(dsn)
    q = parse_qs(u.query)
    assert q["ssl-mode"] == ["VERIFY_IDENTITY"]
    return pymysql.connect(host=u.hostname, port=u.port, user=unquote(u.username), password=unquote(u.password),
                           database=unquote(u.path[1:]) or None, ssl=tls_context(q["ssl-ca"][0]), connect_timeout=5)


def assert_verified(conn, user: str) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0] == user
        cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone()[1]
    conn.close()


def test_server_target_output_logs_in_with_verified_tls(rds, tmp_path):
    remote_config(tmp_path, rds, "server", TENANTS)
    inst = Instance(tmp_path, rds.port)
    inst.cli("credentials", "--admin", "--import", input=master_json(rds), check=True)
    inst.cli("up", check=True)
    t = inst.target()
    stored = t.store.get("test-orders-db-credentials")
    assert "ssl_ca" not in stored  # the case that used to print no CA at all
    assert json.loads(inst.cli("credentials", "orders", "--format", "json", check=True).stdout) == stored
    env = inst.cli("credentials", "orders", "--format", "env", check=True).stdout
    assert f"DB_SSL_CA={shlex.quote(t.ca)}\n" in env and "DB_SSL_MODE=VERIFY_IDENTITY\n" in env
    assert_verified(login_from_env(env), "orders_user@%")
    dsn = inst.cli("credentials", "billing", "--format", "dsn", check=True).stdout.strip()
    assert dsn.endswith(f"?ssl-mode=VERIFY_IDENTITY&ssl-ca={t.ca}")
    assert_verified(login_from_dsn(dsn), "billing_user@%")
    admin = inst.cli("credentials", "--admin", "--format", "dsn", check=True).stdout.strip()
    assert_verified(login_from_dsn(admin), "admin@%")


def test_local_target_output_carries_the_mode_too(rds):
    rds.write({"orders": {"max_connections": 3}})
    rds.cli("apply", "--auto-approve", check=True)
    env = rds.cli("credentials", "orders", check=True).stdout
    assert "DB_SSL_MODE=VERIFY_IDENTITY\n" in env
    assert_verified(login_from_env(env), "orders_user@%")
    dsn = rds.cli("credentials", "orders", "--format", "dsn", check=True).stdout.strip()
    assert_verified(login_from_dsn(dsn), "orders_user@%")
