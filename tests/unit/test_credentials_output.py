"""`credentials --format env|dsn` always carry the CA and VERIFY_IDENTITY, also for `target: server`, whose
secrets hold no ssl_ca (the CA is the config's instance.ca_bundle); `--format json` is exactly the stored secret.
The real command as a subprocess; the file store needs no server."""

import json
import shlex
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml

from shared_mysql.config import load_config
from shared_mysql.target import open_target

from ..throwaway_ca import write_ca
from .test_cli import assert_one_line_error, run

SECRET = {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": "orders_user",
          "password": "p@ss word/&?#'\"", "dbname": "orders_db"}


@pytest.fixture
def server_dir(tmp_path):
    """A `target: server` config with a relative ca_bundle, a master credential and one tenant secret stored."""
    write_ca(tmp_path / "bundle.pem")
    doc = {"environment": "test", "identifier": "remote", "target": "server",
           "instance": {"host": "db.internal", "port": 3306, "ca_bundle": "bundle.pem"},
           "tenants": {"orders": {"max_connections": 3}}}
    (tmp_path / "shared-mysql.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    t = open_target(load_config(tmp_path / "shared-mysql.yaml"))
    t.import_master({"username": "admin", "password": "Master-pw"})
    t.store.put_pending({"test-orders-db-credentials": (SECRET, {"tenant": "orders"})})
    t.store.promote(["test-orders-db-credentials"])
    return tmp_path


def env_of(text: str) -> dict:
    return dict(shlex.split(line)[0].split("=", 1) for line in text.splitlines())


def test_server_target_env_and_dsn_carry_the_configs_ca(server_dir):
    ca = str(server_dir / "bundle.pem")  # absolute, though the config names it relative to itself
    env = env_of(run(["credentials", "orders", "--format", "env"], server_dir).stdout)
    assert env == {"DB_HOST": "db.internal", "DB_PORT": "3306", "DB_NAME": "orders_db", "DB_USERNAME": "orders_user",
                   "DB_PASSWORD": SECRET["password"], "DB_SSL_CA": ca, "DB_SSL_MODE": "VERIFY_IDENTITY"}
    dsn = run(["credentials", "orders", "--format", "dsn"], server_dir).stdout.strip()
    u = urlparse(dsn)
    assert (u.scheme, u.hostname, u.port, unquote(u.username), unquote(u.password), u.path) == \
        ("mysql", "db.internal", 3306, "orders_user", SECRET["password"], "/orders_db")
    assert parse_qs(u.query) == {"ssl-mode": ["VERIFY_IDENTITY"], "ssl-ca": [ca]}
    admin = run(["credentials", "--admin", "--format", "dsn"], server_dir).stdout.strip()
    assert parse_qs(urlparse(admin).query) == {"ssl-mode": ["VERIFY_IDENTITY"], "ssl-ca": [ca]}
    assert env_of(run(["credentials", "--admin"], server_dir).stdout)["DB_SSL_CA"] == ca


def test_json_stays_exactly_the_stored_secret(server_dir):
    assert json.loads(run(["credentials", "orders", "--format", "json"], server_dir).stdout) == SECRET
    assert json.loads(run(["credentials", "orders", "-o", "json"], server_dir).stdout) == SECRET


def test_a_secret_that_carries_its_own_ca_keeps_it(server_dir):
    t = open_target(load_config(server_dir / "shared-mysql.yaml"))
    own = str(write_ca(server_dir / "own.pem"))
    t.store.put_pending({"test-orders-db-credentials": ({**SECRET, "ssl_ca": own}, {"tenant": "orders"})})
    t.store.promote(["test-orders-db-credentials"])
    assert env_of(run(["credentials", "orders"], server_dir).stdout)["DB_SSL_CA"] == own
    dsn = run(["credentials", "orders", "--format", "dsn"], server_dir).stdout.strip()
    assert parse_qs(urlparse(dsn).query)["ssl-ca"] == [own]


def test_an_ipv6_host_is_bracketed_in_the_dsn(server_dir):
    t = open_target(load_config(server_dir / "shared-mysql.yaml"))
    t.store.put_pending({"test-orders-db-credentials": ({**SECRET, "host": "::1"}, {"tenant": "orders"})})
    t.store.promote(["test-orders-db-credentials"])
    u = urlparse(run(["credentials", "orders", "--format", "dsn"], server_dir).stdout.strip())
    assert (u.hostname, u.port) == ("::1", 3306)


def test_a_missing_ca_bundle_is_one_line_not_an_unverified_dsn(server_dir):
    (server_dir / "bundle.pem").unlink()
    for fmt in ("env", "dsn"):
        assert_one_line_error(run(["credentials", "orders", "--format", fmt], server_dir), 1,
                              "instance.ca_bundle")
    assert run(["credentials", "orders", "--format", "json"], server_dir).returncode == 0
