"""shared_mysql.client against the real local server: cached secrets, re-fetch after a password change,
failover retries within a deadline, one clear error beyond it, SQLAlchemy pool settings, secret-name-only mode;
TLS that options cannot loosen, and CA problems as one line without retries."""

import json
import ssl
import threading
import time

import boto3
import pytest
from moto import mock_aws

from shared_mysql.client import Client, ClientError
from shared_mysql.secrets import PENDING
from shared_mysql.sql import statements as st

from ..throwaway_ca import write_ca


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


# -- TLS cannot be loosened through options; bad CAs and certificate failures are one line ---------------------
def test_ssl_ca_is_verified_against_the_server(app, tmp_path):
    """Regression: ssl_ca= (and ssl_verify_cert=False) used to replace the client's verified context."""
    right = app.target().ca
    wrong = str(write_ca(tmp_path / "throwaway.pem"))
    c = Client(config=app.config_path)
    for kwargs in ({"ssl_ca": right}, {"ssl": {"ca": right}}, {"ca": right, "ssl_verify_cert": True,
                                                               "ssl_verify_identity": True}):
        conn = c.connect("orders", **kwargs)
        with conn.cursor() as cur:
            cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
            assert cur.fetchone()[1], kwargs
        conn.close()
    before = c.attempts
    start = time.monotonic()
    for kwargs in ({"ssl_ca": wrong}, {"ssl": {"ca": wrong}}, {"ca": wrong}):
        with pytest.raises(ClientError) as e:
            c.connect("orders", deadline=130, **kwargs)
        msg = str(e.value)
        origin = next(iter(kwargs)) + "=" if "ssl" not in kwargs else "ssl['ca']"
        # OpenSSL's own reason in the middle: the server sends its CA too, so "self-signed ... in chain"
        assert msg.startswith(f"tenant orders (app): cannot connect as orders_user to 127.0.0.1:{app.port}: TLS "
                              f"verification failed against CA bundle {wrong} (from {origin}): "), msg
        assert msg.endswith("; check that this bundle signed the server's certificate (for RDS, the "
                            "regional bundle), or pass ca= another; not retried") and "\n" not in msg
    assert c.attempts - before == 3  # one attempt each: a certificate failure is not retried for 130 s
    assert time.monotonic() - start < 10
    with pytest.raises(ClientError, match=r"^connect\(\): ssl_verify_cert=False would turn TLS verification off; "):
        c.connect("orders", ssl_ca=wrong, ssl_verify_cert=False)


def test_engine_with_a_wrong_ca_fails_the_checkout_with_one_line_and_no_retry(app, tmp_path):
    from sqlalchemy import text

    c = Client(config=app.config_path)
    wrong = str(write_ca(tmp_path / "throwaway.pem"))
    eng = c.engine("orders", connect_args={"ssl_ca": wrong, "deadline": 130})
    with pytest.raises(ClientError, match=r"TLS verification failed against CA bundle .* not retried$"):
        eng.connect()
    assert c.attempts == 1
    ok = c.engine("orders", connect_args={"ssl": {"ca": app.target().ca}})
    with ok.connect() as conn:
        assert conn.execute(text("SELECT CURRENT_USER()")).scalar() == "orders_user@%"


def test_bad_ca_paths_are_one_line(app, tmp_path):
    c = Client(config=app.config_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for path, problem in ((tmp_path / "missing.pem", "does not exist"), (tmp_path, "is a directory, not a PEM file"),
                          (garbage, "holds no usable PEM certificate")):
        with pytest.raises(ClientError) as e:
            c.connect("orders", ca=str(path))
        msg = str(e.value)
        assert msg.startswith(f"connect(): CA bundle {path} (from ca=) {problem}") and "\n" not in msg
        assert msg.endswith("point ca= at the PEM bundle that signed the server's certificate (for RDS, the "
                            "regional bundle)")
    assert c.attempts == 0 and c.fetches == 0


def test_hostile_options_are_refused_before_anything_is_read_or_opened(app, tmp_path):
    c = Client(config=app.config_path)
    wrong = str(write_ca(tmp_path / "throwaway.pem"))
    off = ssl.create_default_context()
    off.check_hostname = False
    off.verify_mode = ssl.CERT_NONE
    cnf = tmp_path / "my.cnf"
    cnf.write_text(f"[client]\nhost = 127.0.0.1\nport = {app.port}\nssl-ca = {wrong}\nuser = root\n")
    sock = str(app.target().server.paths.socket)
    cases = [
        (lambda: c.engine("orders", connect_args={"ssl": {"verify_mode": ssl.CERT_NONE}}),
         "engine(): connect_args ssl['verify_mode']=CERT_NONE would turn TLS verification off; "),
        (lambda: c.engine("orders", connect_args={"ssl": off}),
         "engine(): connect_args ssl=<SSLContext> would replace the client's verified TLS context; "),
        (lambda: c.connect("orders", ssl=off), "connect(): ssl=<SSLContext> would replace "),
        (lambda: c.connect("orders", unix_socket=sock), "connect(): unix_socket= would connect through a socket, "),
        (lambda: c.engine("orders", connect_args={"unix_socket": sock}), "engine(): connect_args unix_socket= "),
        (lambda: c.connect("orders", read_default_file=str(cnf)), "connect(): read_default_file= would read host, "),
        (lambda: c.engine("orders", connect_args={"read_default_file": str(cnf)}),
         "engine(): connect_args read_default_file= "),
    ]
    for call, start in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert str(e.value).startswith(start) and "\n" not in str(e.value)
    assert c.attempts == 0 and c.fetches == 0


def test_module_level_connect_and_engine_take_config_as_documented(app):
    from sqlalchemy import text

    from shared_mysql.client import connect, engine

    conn = connect("orders", config=app.config_path)
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone()[0] == "orders_db"
    conn.close()
    eng = engine("orders", user="readonly", config=str(app.config_path), pool_size=1)
    with eng.connect() as c:
        assert c.execute(text("SELECT CURRENT_USER()")).scalar().startswith("orders_readonly@")
    eng.dispose()


def test_connect_via_the_proxy_endpoint_the_secret_carries(app):
    """instance.proxy_endpoint (here `localhost`, a stand-in for the proxy: the same server under another name the
    certificate holds): apply writes it into the secrets as proxy_host; connect(via="proxy") goes there with the
    same verified TLS; without one it is one line."""
    import yaml

    c = Client(config=app.config_path)
    with pytest.raises(ClientError) as e:
        c.connect("orders", via="proxy")
    assert "names no proxy endpoint" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ClientError):
        c.connect("orders", via="elsewhere")
    doc = yaml.safe_load(app.config_path.read_text())
    doc.setdefault("instance", {})["proxy_endpoint"] = "localhost"
    app.config_path.write_text(yaml.safe_dump(doc))
    plan = app.cli("plan", "-o", "json", check=True)
    assert "test-orders-db-credentials" in plan.stdout  # the secrets' proxy_host is part of the plan
    app.cli("apply", "--auto-approve", check=True)
    c = Client(config=app.config_path)
    direct, proxied = c.connect("orders"), c.connect("orders", via="proxy")
    try:
        assert (direct.host, proxied.host) == ("127.0.0.1", "localhost")
        with proxied.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), @@ssl_cipher IS NOT NULL")
            assert cur.fetchone()[0] == "orders_user@%"
    finally:
        direct.close()
        proxied.close()
    eng = c.engine("orders", via="proxy")
    with eng.connect() as conn:
        assert conn.connection.dbapi_connection.host == "localhost"
    eng.dispose()
    out = app.cli("credentials", "orders", "--via", "proxy", check=True).stdout
    assert "DB_HOST=localhost" in out
