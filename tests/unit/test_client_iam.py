from urllib.parse import parse_qs, urlparse

import pymysql
import pytest

from shared_mysql.client import Client
from shared_mysql.client.iam import RateLimiter, TokenCache, _boto3_generate, region_of


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def sleep(self, d):
        self.t += d


def test_region_of_rds_hosts():
    assert region_of("prod-shared-mysql.abc123.ap-northeast-2.rds.amazonaws.com") == "ap-northeast-2"
    assert region_of("127.0.0.1") is None


def test_real_token_from_botocore(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    token = _boto3_generate("db.abc.ap-northeast-2.rds.amazonaws.com", 3306, "orders_user", "ap-northeast-2")
    q = parse_qs(urlparse("https://" + token).query)
    assert q["Action"] == ["connect"] and q["DBUser"] == ["orders_user"] and q["X-Amz-Expires"] == ["900"]
    assert "ap-northeast-2/rds-db/aws4_request" in q["X-Amz-Credential"][0]


def test_tokens_are_cached_and_refreshed_before_they_expire():
    clock = FakeClock()
    made = []
    cache = TokenCache(lambda h, p, u, r: made.append(clock.t) or f"tok{len(made)}", clock=clock)
    assert cache.get("h", 3306, "u") == "tok1"
    clock.t += 9 * 60
    assert cache.get("h", 3306, "u") == "tok1"
    clock.t += 2 * 60  # 11 minutes old: within 5 minutes of the 15-minute expiry
    assert cache.get("h", 3306, "u") == "tok2"
    cache.invalidate("h", 3306, "u")
    assert cache.get("h", 3306, "u") == "tok3"
    assert cache.get("h", 3306, "other") == "tok4"


def test_rate_limiter_caps_new_connections_at_200_per_second():
    clock = FakeClock()
    lim = RateLimiter(clock=clock, sleep=clock.sleep)
    start = clock.t
    waits = [lim.acquire(("h", 3306)) for _ in range(1000)]
    assert waits[:200] == [0.0] * 200 and waits[200] > 0
    assert clock.t - start == pytest.approx(800 / 200, rel=0.01)  # the burst, then 200 per second
    assert lim.acquire(("other", 3306)) == 0.0  # per endpoint


def test_iam_secret_logs_in_with_a_token(monkeypatch, tmp_path):
    seen = {}

    def fake_connect(**kw):
        seen.update(kw)
        return "conn"

    monkeypatch.setattr(pymysql, "connect", fake_connect)
    (tmp_path / "ca.pem").write_text("")
    monkeypatch.setattr("shared_mysql.client.core._tls", lambda ca: f"ctx:{ca}")
    clock = FakeClock()
    tokens = TokenCache(lambda h, p, u, r: f"token-for-{u}@{h}:{p}", clock=clock)
    c = Client(tokens=tokens, limiter=RateLimiter(clock=clock, sleep=clock.sleep), clock=clock, sleep=clock.sleep)
    secret = {"engine": "mysql", "host": "db.abc.ap-northeast-2.rds.amazonaws.com", "port": 3306,
              "username": "orders_user", "dbname": "orders_db", "auth": "iam", "ssl_ca": str(tmp_path / "ca.pem")}
    monkeypatch.setattr(c, "_from_secrets_manager", lambda sid: secret)
    assert c.connect(secret="prod-orders-db-credentials") == "conn"
    assert seen["password"] == "token-for-orders_user@db.abc.ap-northeast-2.rds.amazonaws.com:3306"
    assert seen["ssl"] == f"ctx:{tmp_path / 'ca.pem'}" and seen["database"] == "orders_db"
    # Through RDS Proxy: the proxy's endpoint from the secret, and the token signed for it (RDS Proxy checks it).
    proxy = "prod-proxy.proxy-abc.ap-northeast-2.rds.amazonaws.com"
    secret["proxy_host"] = proxy
    assert c.connect(secret="prod-orders-db-credentials", via="proxy") == "conn"
    assert seen["host"] == proxy and seen["password"] == f"token-for-orders_user@{proxy}:3306"


def test_rate_limiter_terminates_when_float_rounding_leaves_just_under_one_token():
    # Regression: sleeping exactly the computed delay could leave 0.99999... tokens and spin forever.
    clock = FakeClock()
    clock.t = 1.7e9  # a large clock value, where float steps are coarse
    lim = RateLimiter(rate=7, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        lim.acquire("k")
    assert clock.t - 1.7e9 == pytest.approx(93 / 7, rel=0.01)
