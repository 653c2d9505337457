"""The RDS Proxy auth-list diff (shared_mysql/proxy.py), pure: which entries a config wants, which it keeps, and how
IAM tenants go through the proxy (end-to-end IAM, no secret entry)."""

from __future__ import annotations

from types import SimpleNamespace

from shared_mysql import proxy
from shared_mysql.config import parse_config
from shared_mysql.sql import MYSQL_8_0
from shared_mysql.tenants import build_desired

CFG = """
environment: prod
identifier: shared-mysql
target: aws
instance: {host: db.example, enable_rds_proxy: true, ca_bundle: ca.pem}
tenants:
  orders: {readonly: true}
  reports: {auth: iam}
"""
ARN = "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:{}-AbCdEf"


class Store:
    def __init__(self, names):
        self.names = names

    def reference(self, name):
        return ARN.format(name) if name in self.names else None


def target(existing=()):
    cfg = parse_config(CFG)
    return SimpleNamespace(config=cfg, store=Store({"prod-shared-mysql-master-password", *existing}))


def desired():
    return build_desired(parse_config(CFG), MYSQL_8_0, host="db.example", port=3306, ca=None)


def entry(name, **kw):
    return {"AuthScheme": "SECRETS", "SecretArn": ARN.format(name), "IAMAuth": "DISABLED", **kw}


def test_password_accounts_get_entries_iam_tenants_get_end_to_end_iam_and_the_master_is_kept():
    t = target()
    acts = proxy.plan_actions(t, desired(), {"Auth": [entry("prod-shared-mysql-master-password",
                                                            IAMAuth="REQUIRED")]})
    kinds = sorted((a.kind, a.detail.get("secret") or a.detail.get("to")) for a in acts)
    assert kinds == [("proxy_auth_add", "prod-orders-db-credentials"),
                     ("proxy_auth_add", "prod-orders-db-readonly-credentials"),
                     ("proxy_default_auth", "IAM_AUTH")]  # reports (IAM) has no secret entry; the master stays
    assert proxy.proxy_name(t.config) == "prod-shared-mysql-proxy"


def test_converged_list_plans_nothing_and_drift_in_an_entry_is_an_update():
    t = target(["prod-orders-db-credentials", "prod-orders-db-readonly-credentials"])
    good = [entry("prod-shared-mysql-master-password", IAMAuth="REQUIRED"),
            entry("prod-orders-db-credentials", ClientPasswordAuthType="MYSQL_NATIVE_PASSWORD"),
            entry("prod-orders-db-readonly-credentials", ClientPasswordAuthType="MYSQL_NATIVE_PASSWORD")]
    assert proxy.plan_actions(t, desired(), {"Auth": good, "DefaultAuthScheme": "IAM_AUTH"}) == []
    drifted = [good[0], {**good[1], "IAMAuth": "REQUIRED"}, good[2]]
    [a] = proxy.plan_actions(t, desired(), {"Auth": drifted, "DefaultAuthScheme": "IAM_AUTH"})
    assert (a.kind, a.op, a.reason) == ("proxy_auth_add", "update", "IAMAuth REQUIRED -> DISABLED")


def test_foreign_and_stale_entries_are_destructive_removals_named_by_tenant():
    t = target(["prod-orders-db-credentials", "prod-orders-db-readonly-credentials"])
    have = [entry("prod-orders-db-credentials", ClientPasswordAuthType="MYSQL_NATIVE_PASSWORD"),
            entry("prod-orders-db-readonly-credentials", ClientPasswordAuthType="MYSQL_NATIVE_PASSWORD"),
            entry("prod-gone-db-credentials"), entry("not-ours")]
    acts = proxy.plan_actions(t, desired(), {"Auth": have, "DefaultAuthScheme": "IAM_AUTH"})
    assert sorted((a.detail["secret"], a.tenant, a.destructive) for a in acts) == [
        ("not-ours", None, True), ("prod-gone-db-credentials", "gone", True)]


def test_secret_names_from_arns_and_tenants_from_names():
    assert proxy._name_of(ARN.format("prod-a-b-db-credentials")) == "prod-a-b-db-credentials"
    assert proxy._tenant_of("prod-a-b-db-readonly-credentials", "prod") == "a-b"
    assert proxy._tenant_of("staging-a-db-credentials", "prod") is None


def test_entries_match_on_the_exact_arn_not_the_name():
    """Review: a tenant's entry whose ARN is stale (the secret re-created: a new suffix; another account) counted
    as present by name, so plan was empty, apply never fixed it, and doctor's fix (`apply`) did nothing."""
    t = target(["prod-orders-db-credentials", "prod-orders-db-readonly-credentials"])
    stale = "arn:aws:secretsmanager:ap-northeast-2:999999999999:secret:prod-orders-db-credentials-ZZZZZZ"
    have = [{**entry("prod-orders-db-credentials"), "SecretArn": stale,
             "ClientPasswordAuthType": "MYSQL_NATIVE_PASSWORD"},
            entry("prod-orders-db-readonly-credentials", ClientPasswordAuthType="MYSQL_NATIVE_PASSWORD"),
            {**entry("prod-shared-mysql-master-password"), "SecretArn": stale.replace(
                "prod-orders-db-credentials", "prod-shared-mysql-master-password")},  # the master's name, not its ARN
            {"AuthScheme": "SECRETS", "UserName": "someone", "IAMAuth": "DISABLED"}]  # no SecretArn at all
    acts = proxy.plan_actions(t, desired(), {"Auth": have, "DefaultAuthScheme": "IAM_AUTH"})
    got = sorted((a.kind, a.op, a.detail["secret"]) for a in acts)
    assert got == [("proxy_auth_add", "update", "prod-orders-db-credentials"),
                   ("proxy_auth_remove", "delete", "prod-shared-mysql-master-password"),
                   ("proxy_auth_remove", "delete", "user someone")]
    [upd] = [a for a in acts if a.op == "update"]
    assert "ZZZZZZ" in upd.reason and upd.detail["arn"] == ARN.format("prod-orders-db-credentials")

    class Rds:
        def __init__(self):
            self.calls = []

        def describe_db_proxies(self, DBProxyName):
            return {"DBProxies": [{"Auth": have, "DefaultAuthScheme": "IAM_AUTH"}]}

        def modify_db_proxy(self, **kw):
            self.calls.append(kw)

    t.store.reload = lambda: None
    rds = Rds()
    proxy.apply(t, desired(), rds=rds)  # without --allow-destructive: the stale ARN is fixed, the rest stays
    arns = [e.get("SecretArn") or e.get("UserName") for e in rds.calls[0]["Auth"]]
    assert stale not in arns and ARN.format("prod-orders-db-credentials") in arns and "someone" in arns
    rds = Rds()
    proxy.apply(t, desired(), rds=rds, allow_destructive=True)
    arns = [e.get("SecretArn") or e.get("UserName") for e in rds.calls[0]["Auth"]]
    assert sorted(arns) == sorted([ARN.format("prod-orders-db-credentials"),
                                   ARN.format("prod-orders-db-readonly-credentials")])
