"""shared_mysql.client against the real local server: cached secrets, re-fetch after a password change,
failover retries within a deadline, one clear error beyond it, SQLAlchemy pool settings, secret-name-only mode."""

import json
import threading
import time

import boto3
import pytest
from moto import mock_aws

from shared_mysql.client import Client, ClientError
from shared_mysql.secrets import PENDING
from shared_mysql.sql import statements as st


@pytest.fixture
def app(instance_factory):
    inst = instance_factory({"orders": {"max_connections": 30, "readonly": True}})
    inst.cli("apply", "--auto-approve", check=True)
    return inst


def rotate(target, name, user):
    """Change an account's password the way a rotation does: pending in the store, the server, then promote."""
    cur = target.store.get(name)
    target.store.put_pending({name: ({**cur, "password": "Rotated" + "x" * 25}, {})})
    with target.executor() as ex:
        ex.execute(st.set_password(ex.flavor, user, "%", target.store.get(name, PENDING)["password"]))
    target.store.promote([name])


def test_connect_from_config_with_warm_cache(app):
    c = Client(config=app.config_path)
    for _ in range(3):
        conn = c.connect("orders")
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE(), CURRENT_USER()")
            assert cur.fetchone() == ("orders_db", "orders_user@%")
            cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
            assert cur.fetchone()[1]
        conn.close()
    assert c.fetches == 1  # cached after the first read
    ro = c.connect("orders", user="readonly")
    ro.close()
    with pytest.raises(ClientError, match="tenant 'nope' is not in"):
        c.connect("nope")


def test_stale_cached_password_recovers_by_refetching(app):
    c = Client(config=app.config_path)
    c.connect("orders").close()
    rotate(app.target(), "test-orders-db-credentials", "orders_user")
    conn = c.connect("orders")  # 1045 with the cached password -> re-read -> success
    conn.close()
    assert c.fetches == 2 and c.attempts == 3


def test_wrong_password_even_after_refetch_is_one_clear_error(app):
    c = Client(config=app.config_path)
    with app.target().executor() as ex:
        ex.query("ALTER USER 'orders_user'@'%' IDENTIFIED BY 'not-the-stored-one'")
    with pytest.raises(ClientError) as e:
        c.connect("orders")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("tenant orders (app): cannot connect as orders_user to 127.0.0.1:")
    assert "error 1045" in msg and "re-read" in msg
    assert c.fetches == 2


def test_server_restarted_within_the_deadline_is_survived(app):
    c = Client(config=app.config_path)
    c.connect("orders").close()
    t = app.target()
    t.server.down()
    restarter = threading.Timer(2.0, lambda: app.target().local_up())
    restarter.start()
    try:
        conn = c.connect("orders", deadline=60)
    finally:
        restarter.join()
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()
    assert c.attempts >= 3  # it did retry while the server was down


def test_beyond_the_deadline_one_line_names_tenant_and_endpoint(app):
    c = Client(config=app.config_path)
    app.target().server.down()
    start = time.monotonic()
    with pytest.raises(ClientError) as e:
        c.connect("orders", deadline=2)
    assert time.monotonic() - start < 30
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"tenant orders (app): cannot connect as orders_user to 127.0.0.1:{app.port}: error 2003")
    assert "deadline 2s" in msg and c.attempts >= 2


def test_engine_uses_the_seed_pool_settings_and_recovers_after_rotation(app):
    from sqlalchemy import text

    c = Client(config=app.config_path)
    eng = c.engine("orders")
    assert (eng.pool.size(), eng.pool._max_overflow, eng.pool._timeout, eng.pool._recycle, eng.pool._pre_ping) == \
        (10, 20, 30, 3600, True)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT CURRENT_USER()")).scalar() == "orders_user@%"
    rotate(app.target(), "test-orders-db-credentials", "orders_user")
    eng.dispose()  # new connections must use the new password
    with eng.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert c.fetches == 2


def test_secret_name_only_as_on_ecs(app, tmp_path, monkeypatch):
    """No config file: the secret comes from Secrets Manager by name (moto), the server is the local one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHARED_MYSQL_CONFIG", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    local = app.target().store.get("test-orders-db-credentials")
    with mock_aws():
        from shared_mysql import aws

        aws.session.cache_clear()
        sm = boto3.client("secretsmanager")
        sm.create_secret(Name="test-orders-db-credentials", SecretString=json.dumps(local))
        c = Client()
        conn = c.connect(secret="test-orders-db-credentials")
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0] == "orders_user@%"
        conn.close()
        no_ca = {k: v for k, v in local.items() if k != "ssl_ca"}
        sm.create_secret(Name="no-ca", SecretString=json.dumps(no_ca))
        with pytest.raises(ClientError, match="TLS is always verified"):
            c.connect(secret="no-ca")
        Client(ca=local["ssl_ca"]).connect(secret="no-ca").close()
        c.connect(secret="no-ca", ca=local["ssl_ca"]).close()  # per call, too
        with pytest.raises(ClientError, match="no credential stored under missing"):
            c.connect(secret="missing")
