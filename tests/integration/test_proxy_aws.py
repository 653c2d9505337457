"""Tenants through RDS Proxy and the aws steps of `doctor` (issue 15, items 1, 2 and 4), against moto's RDS, EC2,
Secrets Manager, SSM and KMS, with a real local server standing in for the RDS instance (instance.host).

moto 5.2 lacks two APIs this needs; the README says so:
- ModifyDBProxy: added to moto here (`modify_db_proxy` below: it replaces the auth list and the default auth scheme,
  as RDS does), so apply's writes are real state that the next plan reads back;
- iam:SimulatePrincipalPolicy: botocore's Stubber answers it, with the request it must receive asserted.
The instance's status (`rebooting`) and RDS events (failover) are set on moto's backend, which has no API for them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from shared_mysql import aws as aws_mod
from shared_mysql.config.load import load_config
from shared_mysql.doctor import Options, diagnose
from shared_mysql.errors import DestructiveChangeError
from shared_mysql.target import open_target

MASTER = "rdsmaster"
REGION = "ap-northeast-2"


def modify_db_proxy(self):  # what moto lacks: RDS ModifyDBProxy (auth list and default scheme)
    from moto.core.responses import ActionResult

    p = self.backend.db_proxies[self.params["DBProxyName"]]
    if "Auth" in self.params:
        p.auth = [dict(e) for e in self.params["Auth"]]
    if "DefaultAuthScheme" in self.params:
        p.default_auth_scheme = self.params["DefaultAuthScheme"]
    return ActionResult({"DBProxy": p})


@pytest.fixture
def world(instance_factory, tmp_path, monkeypatch):
    from moto.rds.responses import RDSResponse

    monkeypatch.setattr(RDSResponse, "modify_db_proxy", modify_db_proxy, raising=False)
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    local = instance_factory({}).target()
    with local.executor() as ex:
        ex.query(f"CREATE USER '{MASTER}'@'%' IDENTIFIED BY 'first-Password-1' REQUIRE SSL")
        ex.query(f"GRANT ALL PRIVILEGES ON *.* TO '{MASTER}'@'%' WITH GRANT OPTION")
    with mock_aws():
        aws_mod.session.cache_clear()
        kms = boto3.client("kms")
        kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        app_sg = ec2.create_security_group(GroupName="orders-app", Description="app", VpcId=vpc)["GroupId"]
        other_sg = ec2.create_security_group(GroupName="other-app", Description="other", VpcId=vpc)["GroupId"]
        db_sg = ec2.create_security_group(GroupName="test-remote-sg", Description="db", VpcId=vpc)["GroupId"]
        proxy_sg = ec2.create_security_group(GroupName="test-remote-proxy-sg", Description="proxy",
                                             VpcId=vpc)["GroupId"]
        for gid in (db_sg, proxy_sg):
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": local.port, "ToPort": local.port,  # the stand-in's port
                 "UserIdGroupPairs": [{"GroupId": app_sg}],
                 "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}])
        rds = boto3.client("rds")
        rds.create_db_instance(DBInstanceIdentifier="test-remote", Engine="mysql", DBInstanceClass="db.t4g.small",
                               MasterUsername=MASTER, MasterUserPassword="x" * 16, AllocatedStorage=30,
                               VpcSecurityGroupIds=[db_sg], MultiAZ=True)
        doc = {"environment": "test", "identifier": "remote", "target": "aws",
               "instance": {"host": "127.0.0.1", "port": local.port, "ca_bundle": str(local.ca),
                            "master_username": MASTER, "enable_rds_proxy": True},
               "tenants": {"orders": {"readonly": True}, "billing": {}}}
        path = tmp_path / "shared-mysql.yaml"
        path.write_text(yaml.safe_dump(doc))
        t = open_target(load_config(path))
        assert t.import_master({"username": MASTER, "password": "first-Password-1"}) is None
        master_arn = t.store.reference("test-remote-master-password")
        rds.create_db_proxy(DBProxyName="test-remote-proxy", EngineFamily="MYSQL", RoleArn="arn:aws:iam::"
                            "123456789012:role/proxy", VpcSubnetIds=[subnet], VpcSecurityGroupIds=[proxy_sg],
                            RequireTLS=True, Auth=[{"AuthScheme": "SECRETS", "SecretArn": master_arn,
                                                    "IAMAuth": "REQUIRED"}])
        rds.register_db_proxy_targets(DBProxyName="test-remote-proxy", DBInstanceIdentifiers=["test-remote"])
        rds.describe_db_proxy_targets(DBProxyName="test-remote-proxy")  # moto: REGISTERING once, then AVAILABLE
        yield {"path": path, "doc": doc, "rds": rds, "ec2": ec2, "app_sg": app_sg, "other_sg": other_sg,
               "master_arn": master_arn, "local": local}
        aws_mod.session.cache_clear()


def fresh(world):
    return open_target(load_config(world["path"]))


def plan_apply(t, **kw):
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        t.apply(ex, plan, desired, **kw)
    return plan


def proxy_auth(world):
    p = world["rds"].describe_db_proxies(DBProxyName="test-remote-proxy")["DBProxies"][0]
    return p.get("Auth") or [], p


def names(auth):
    return sorted(e["SecretArn"].split(":secret:")[1][:-7] for e in auth)


def test_apply_keeps_the_proxy_auth_list_equal_to_the_tenant_secrets(world, capsys):
    t = fresh(world)
    with t.executor() as ex:
        plan, _ = t.plan(ex)
    adds = [a for a in plan.actions if a.kind == "proxy_auth_add"]
    assert sorted(a.detail["secret"] for a in adds) == ["test-billing-db-credentials", "test-orders-db-credentials",
                                                        "test-orders-db-readonly-credentials"]
    assert all(a.detail["arn"] is None for a in adds)  # the secrets do not exist yet: known after apply
    plan_apply(t)
    auth, p = proxy_auth(world)
    assert names(auth) == ["test-billing-db-credentials", "test-orders-db-credentials",
                           "test-orders-db-readonly-credentials", "test-remote-master-password"]
    tenant = [e for e in auth if e["SecretArn"] != world["master_arn"]]
    assert all(e["IAMAuth"] == "DISABLED" and e["ClientPasswordAuthType"] == "MYSQL_NATIVE_PASSWORD" for e in tenant)
    assert [e["IAMAuth"] for e in auth if e["SecretArn"] == world["master_arn"]] == ["REQUIRED"]  # kept as it was
    # Converged: the next plan has nothing for the proxy (nor anything else).
    t = fresh(world)
    with t.executor() as ex:
        plan, _ = t.plan(ex)
    assert plan.empty, [a.object for a in plan.actions]
    # The secrets carry the proxy's endpoint: connect(via="proxy") and `credentials --via proxy` use it.
    t.store.reload()
    s = t.store.get("test-orders-db-credentials")
    assert s["proxy_host"] == p["Endpoint"] and s["host"] == "127.0.0.1"
    from shared_mysql.cli import main

    with pytest.raises(SystemExit) as e:
        main(["-c", str(world["path"]), "credentials", "orders", "--via", "proxy"])
    out = capsys.readouterr().out
    assert e.value.code in (0, None) and f"DB_HOST={p['Endpoint']}" in out
    # A secret someone else put in the auth list: a destructive change, refused without --allow-destructive.
    foreign = boto3.client("secretsmanager").create_secret(Name="someone-else", SecretString="{}")["ARN"]
    world["rds"].modify_db_proxy(DBProxyName="test-remote-proxy", Auth=auth + [
        {"AuthScheme": "SECRETS", "SecretArn": foreign, "IAMAuth": "DISABLED"}])
    t = fresh(world)
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        [rm] = [a for a in plan.actions if a.kind == "proxy_auth_remove"]
        assert rm.destructive and rm.detail["secret"] == "someone-else"
        with pytest.raises(DestructiveChangeError):
            t.apply(ex, plan, desired)
        assert foreign in [e["SecretArn"] for e in proxy_auth(world)[0]]
        t.apply(ex, plan, desired, allow_destructive=True)
    assert foreign not in [e["SecretArn"] for e in proxy_auth(world)[0]]
    # A tenant's read-only account removed from the config: its entry goes with its secret.
    world["doc"]["tenants"]["orders"] = {}
    world["path"].write_text(yaml.safe_dump(world["doc"]))
    plan_apply(fresh(world), allow_destructive=True)
    assert names(proxy_auth(world)[0]) == ["test-billing-db-credentials", "test-orders-db-credentials",
                                           "test-remote-master-password"]
    # The proxy gone (stack not deployed): plan says what to do in one line, and nothing changes.
    world["rds"].delete_db_proxy(DBProxyName="test-remote-proxy")
    t = fresh(world)
    with t.executor() as ex:
        with pytest.raises(Exception) as e:
            t.plan(ex)
    assert "RDS Proxy test-remote-proxy does not exist" in str(e.value) and "infra deploy" in str(e.value)


# -- doctor on aws ------------------------------------------------------------------------------------------------
def stubbed_iam(decisions):
    """iam:SimulatePrincipalPolicy, which moto lacks: each call answered in order, its request asserted."""
    iam = boto3.client("iam", region_name=REGION)
    stub = Stubber(iam)
    for action, resource_part, decision in decisions:
        stub.add_response("simulate_principal_policy", {"EvaluationResults": [
            {"EvalActionName": action, "EvalResourceName": "x", "EvalDecision": decision}]},
            {"PolicySourceArn": "arn:aws:iam::123456789012:role/orders-task", "ActionNames": [action],
             "ResourceArns": [resource_part],
             **({"ContextEntries": [{"ContextKeyName": "kms:ViaService", "ContextKeyType": "string",
                                     "ContextKeyValues": [f"secretsmanager.{REGION}.amazonaws.com"]}]}
                if action == "kms:Decrypt" else {})})
    stub.activate()
    return iam, stub


def failed(r):
    return next(s for s in r.steps if not s.ok)


def test_doctor_aws_healthy_then_each_fault(world):
    plan_apply(fresh(world))
    t = fresh(world)
    role = "arn:aws:iam::123456789012:role/orders-task"
    key = boto3.client("kms").describe_key(KeyId="alias/secrets-manager")["KeyMetadata"]["Arn"]
    secret_arn = t.store.reference("test-orders-db-credentials")
    iam, stub = stubbed_iam([("secretsmanager:GetSecretValue", secret_arn, "allowed"),
                             ("kms:Decrypt", key, "allowed")])
    r = diagnose(t, "orders", opts=Options(from_sg=world["app_sg"], role_arn=role, clients={"iam": iam}))
    assert r.ok, [(s.name, s.detail) for s in r.steps if not s.ok]
    stub.assert_no_pending_responses()
    assert [s.name for s in r.steps] == ["config", "secret", "exports", "access", "instance", "dns", "network", "tcp",
                                         "tls", "login", "privileges", "headroom", "proxy"]
    step = {s.name: s for s in r.steps}
    assert "Multi-AZ" in step["instance"].detail and "no failover" in step["instance"].detail
    assert world["app_sg"] in step["network"].detail
    assert "test-orders-db-credentials in its auth list" in step["proxy"].detail
    # The role cannot read the secret (implicit deny): the access step, with the policy to attach.
    iam, stub = stubbed_iam([("secretsmanager:GetSecretValue", secret_arn, "implicitDeny")])
    r = diagnose(fresh(world), "orders", opts=Options(role_arn=role, clients={"iam": iam}))
    assert failed(r).name == "access" and "implicitDeny" in failed(r).detail
    assert "iam-policy orders" in failed(r).fix and r.not_checked()[0] == "instance"
    # ... or may read it but not decrypt it with its key.
    iam, stub = stubbed_iam([("secretsmanager:GetSecretValue", secret_arn, "allowed"),
                             ("kms:Decrypt", key, "explicitDeny")])
    r = diagnose(fresh(world), "orders", opts=Options(role_arn=role, clients={"iam": iam}))
    assert failed(r).name == "access" and "kms:Decrypt" in failed(r).detail and key in failed(r).detail
    # A security group without the source; a CIDR inside an allowed one passes, one outside fails.
    r = diagnose(fresh(world), "orders", opts=Options(from_sg=world["other_sg"]))
    assert failed(r).name == "network" and world["other_sg"] in failed(r).detail
    assert "authorize-security-group-ingress" in failed(r).fix
    assert diagnose(fresh(world), "orders", opts=Options(from_cidr="10.20.3.0/24")).ok
    r = diagnose(fresh(world), "orders", opts=Options(from_cidr="10.30.0.0/16"))
    assert failed(r).name == "network"
    # A missing SSM parameter (the tenant's username export).
    boto3.client("ssm").delete_parameter(Name="/shared/rds/test/tenants/orders/username")
    r = diagnose(fresh(world), "orders")
    assert failed(r).name == "exports" and "apply" in failed(r).fix and "missing" in failed(r).detail
    plan_apply(fresh(world))
    # Exports that disagree with reality: the secret's ARN, and the stack's endpoint export.
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/shared/rds/test/tenants/orders/secret-arn", Value="arn:aws:secretsmanager:x",
                      Type="String", Overwrite=True)
    r = diagnose(fresh(world), "orders")
    assert failed(r).name == "exports" and "secret-arn is 'arn:aws:secretsmanager:x'" in failed(r).detail
    plan_apply(fresh(world))
    ssm.put_parameter(Name="/shared/rds/test/endpoint", Value="old-instance.example", Type="String")
    r = diagnose(fresh(world), "orders")
    assert failed(r).name == "exports" and "the instance is 127.0.0.1" in failed(r).detail
    assert "infra stack" in failed(r).fix
    ssm.put_parameter(Name="/shared/rds/test/endpoint", Value="127.0.0.1", Type="String", Overwrite=True)
    assert next(x for x in diagnose(fresh(world), "orders").steps if x.name == "exports").detail.endswith(
        "username, database, secret ARN, endpoint agree with reality")  # no port export here: not claimed
    # A failover in the last 24 h is shown, and an instance in `rebooting` is the broken link.
    from moto.rds.models import rds_backends

    backend = rds_backends["123456789012"][REGION]
    db = backend.databases["test-remote"]
    backend.add_event("DB_INSTANCE_CREATE", db)
    backend.events[-1].message = "Multi-AZ instance failover completed"
    backend.events[-1].date = datetime.now(timezone.utc)
    db.status = "rebooting"
    r = diagnose(fresh(world), "orders")
    assert failed(r).name == "instance" and "is rebooting" in failed(r).detail
    assert "failover completed" in failed(r).detail and "db-instance-available" in failed(r).fix
    assert r.not_checked()[:2] == ["dns", "tcp"]
    db.status = "available"
    # A proxy without the tenant's secret: --via proxy stops at the proxy, before DNS.
    auth, _ = proxy_auth(world)
    world["rds"].modify_db_proxy(DBProxyName="test-remote-proxy",
                                 Auth=[e for e in auth if "orders-db-credentials" not in e["SecretArn"]])
    r = diagnose(fresh(world), "orders", opts=Options(via="proxy"))
    assert failed(r).name == "proxy" and "lacks test-orders-db-credentials" in failed(r).detail
    assert "shared-mysql apply" in failed(r).fix
    assert [s.name for s in r.steps][-2:] == ["instance", "proxy"]
    # Direct, the same gap is still found (the config has a proxy), after the direct path passed.
    r = diagnose(fresh(world), "orders")
    assert failed(r).name == "proxy" and [s.ok for s in r.steps][:-1] == [True] * (len(r.steps) - 1)
    plan_apply(fresh(world))
    assert diagnose(fresh(world), "orders").ok
    # The JSON the CLI prints: not_applicable says what was not asked for.
    j = diagnose(fresh(world), "orders").to_json()
    assert set(j["not_applicable"]) == {"access", "network"} and json.dumps(j)
