"""`refresh` on the aws target (issue 13): moto's RDS for the API flow (snapshot of the source, re-encryption with
the target's key, restore with the *target's* settings, master password reset, cut over by renames), with a real
local server standing in for the new instance. moto copies no data: the test seeds the stand-in with the source's
tenant data and the source's accounts (what a restored snapshot holds), and applies the master password reset to
it (what RDS does), nothing more."""

from __future__ import annotations

import boto3
import pytest
import yaml
from moto import mock_aws

from shared_mysql import aws as aws_mod
from shared_mysql.config.load import load_config
from shared_mysql.masking import refresh_aws as RA
from shared_mysql.masking.refresh import check_pair
from shared_mysql.secrets import CURRENT
from shared_mysql.target import open_target

from .helpers import error_code, login
from .test_masking import seed

MASTER = "rdsmaster"
RULES = {"users.email": "email", "users.name": "hash", "users.phone": "fixed('010-0000-0000')",
         "users.nick": "shuffle", "payments.card": "null", "payments.user_email": "email", "sessions.*": "truncate"}
FAST = {"poll": 0.01}


@pytest.fixture
def world(instance_factory, tmp_path, monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "ap-northeast-2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    standin = instance_factory({})  # the refreshed instance, as RDS would restore it from prod's snapshot
    with mock_aws():
        aws_mod.session.cache_clear()
        kms = boto3.client("kms")
        kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        prod_key = kms.create_key(Description="prod rds")["KeyMetadata"]["Arn"]
        stg_key = kms.create_key(Description="staging rds")["KeyMetadata"]["Arn"]
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        sgs = {env: ec2.create_security_group(GroupName=f"{env}-db", Description="db", VpcId=vpc)["GroupId"]
               for env in ("prod", "staging")}
        rds = boto3.client("rds")
        for env in ("prod", "staging"):
            rds.create_db_parameter_group(DBParameterGroupName=f"{env}-params", DBParameterGroupFamily="mysql8.0",
                                          Description="d")
            rds.create_option_group(OptionGroupName=f"{env}-audit", EngineName="mysql", MajorEngineVersion="8.0",
                                    OptionGroupDescription="d")
        base = dict(Engine="mysql", EngineVersion="8.0.35", MasterUsername=MASTER, MasterUserPassword="x" * 16,
                    AllocatedStorage=30, BackupRetentionPeriod=14, StorageEncrypted=True, DeletionProtection=True)
        rds.create_db_instance(DBInstanceIdentifier="prod-shared-mysql", KmsKeyId=prod_key,
                               DBInstanceClass="db.r6g.large",
                               DBParameterGroupName="prod-params", VpcSecurityGroupIds=[sgs["prod"]], MultiAZ=True,
                               OptionGroupName="prod-audit", Tags=[{"Key": "env", "Value": "prod"}], **base)
        rds.create_db_instance(DBInstanceIdentifier="staging-shared-mysql", KmsKeyId=stg_key,
                               DBInstanceClass="db.t4g.small", DBParameterGroupName="staging-params",
                               VpcSecurityGroupIds=[sgs["staging"]], Tags=[{"Key": "env", "Value": "staging"}],
                               OptionGroupName="staging-audit", EnableCloudwatchLogsExports=["error", "slowquery"],
                               **{**base, "BackupRetentionPeriod": 7})
        local = standin.target()
        # What prod's snapshot holds: the data, prod's master password, prod's tenant accounts and passwords.
        with local.executor() as ex:
            ex.query(f"CREATE USER '{MASTER}'@'%' IDENTIFIED BY 'prod-Master-Pw-1' REQUIRE SSL")
            ex.query(f"GRANT ALL PRIVILEGES ON *.* TO '{MASTER}'@'%' WITH GRANT OPTION")
            ex.query("CREATE DATABASE shop_db")
            seed(ex, rows=2000)
            ex.query("CREATE USER 'shop_user'@'%' IDENTIFIED BY 'prod-Shop-Pw-1' REQUIRE SSL")
            ex.query("GRANT ALL PRIVILEGES ON shop_db.* TO 'shop_user'@'%'")
        for env in ("prod", "staging"):
            doc = {"environment": env, "identifier": "shared-mysql", "target": "aws",
                   "instance": {"host": "127.0.0.1", "port": standin.port, "ca_bundle": str(local.ca),
                                "master_username": MASTER},
                   "exports": {"backend": "none"},
                   "tenants": {"shop": {"max_connections": 5, "masking": RULES}}}
            (tmp_path / f"{env}.yaml").write_text(yaml.safe_dump(doc))
        stg = open_target(load_config(tmp_path / "staging.yaml"))
        # staging's master credential as its store holds it (its old instance's password)
        stg.store.put_pending({stg.config.master_secret_name: ({"username": MASTER, "password": "staging-Old-Pw-1"},
                                                                {})})
        stg.store.promote([stg.config.master_secret_name])

        def on_reset(rds_client, ident, password):  # RDS applies ModifyDBInstance MasterUserPassword
            with local.executor() as ex:
                ex.query(f"ALTER USER '{MASTER}'@'%' IDENTIFIED BY '{password}'")

        real_reset = RA.reset_master

        def reset(rds_client, ident, password):
            real_reset(rds_client, ident, password)
            on_reset(rds_client, ident, password)

        monkeypatch.setattr(RA, "reset_master", reset)
        yield {"dir": tmp_path, "rds": rds, "standin": standin, "local": local, "keys": (prod_key, stg_key),
               "sgs": sgs}
        aws_mod.session.cache_clear()


def run(world, **kw):
    stg = open_target(load_config(world["dir"] / "staging.yaml"))
    src = load_config(world["dir"] / "prod.yaml")
    names, rules = check_pair(stg, src, None)
    say = []
    out = RA.refresh_aws(stg, src, names, rules, say=say.append,
                         resolve=lambda ident, host, port: ("127.0.0.1", world["standin"].port), **FAST, **kw)
    return out, say, stg


def tags(rds, ident):
    return {t["Key"]: t["Value"] for t in rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
            ["TagList"]}


def test_aws_refresh_end_to_end(world):
    rds = world["rds"]
    before = rds.describe_db_instances(DBInstanceIdentifier="prod-shared-mysql")["DBInstances"][0]
    out, say, stg = run(world)
    assert out["ok"], out
    assert out["steps"] == ["snapshot", "copied", "restored", "master", "masked", "cut_over", "done"]
    # the source: only described and snapshotted
    after = rds.describe_db_instances(DBInstanceIdentifier="prod-shared-mysql")["DBInstances"][0]
    for k in ("DBInstanceClass", "DBParameterGroups", "VpcSecurityGroups", "DeletionProtection", "TagList"):
        assert before[k] == after[k]
    snaps = {s["DBSnapshotIdentifier"]: s for s in rds.describe_db_snapshots()["DBSnapshots"]}
    [snap] = [s for s in snaps if s.startswith("prod-shared-mysql-refresh-to-staging-")
              and not s.endswith("-for-staging")]
    copy = snaps[f"{snap}-for-staging"]
    assert copy["KmsKeyId"] == world["keys"][1]  # re-encrypted with staging's key
    # the new instance took the staging name, with staging's settings; the old one is kept aside
    new = rds.describe_db_instances(DBInstanceIdentifier="staging-shared-mysql")["DBInstances"][0]
    assert tags(rds, "staging-shared-mysql")["shared-mysql:refresh-from"] == "prod-shared-mysql"
    assert [g["DBParameterGroupName"] for g in new["DBParameterGroups"]] == ["staging-params"]
    assert [g["VpcSecurityGroupId"] for g in new["VpcSecurityGroups"]] == [world["sgs"]["staging"]]
    assert new["DBInstanceClass"] == "db.t4g.small" and new["KmsKeyId"] == world["keys"][1]
    # review: the snapshot's (prod's) option group and retention were taken; the target's are asked for
    assert [g["OptionGroupName"] for g in new["OptionGroupMemberships"]] == ["staging-audit"]
    assert new["BackupRetentionPeriod"] == 7
    assert sorted(new.get("EnabledCloudwatchLogsExports") or []) == ["error", "slowquery"]
    assert new["DeletionProtection"] is True
    old = rds.describe_db_instances(DBInstanceIdentifier=out["old_instance"])["DBInstances"][0]
    assert old["DeletionProtection"] is False and tags(rds, out["old_instance"]).get("env") == "staging"
    # masked on the stand-in; the staging master's new password is current and logs in; prod's does not
    stg.store.reload()
    master = stg.store.get(stg.config.master_secret_name, CURRENT)
    assert master["password"] not in ("staging-Old-Pw-1", "prod-Master-Pw-1")
    with stg.executor() as ex:
        assert ex.query("SELECT COUNT(*) FROM shop_db.users WHERE email NOT LIKE '%@example.com'")[0][0] == 0
        assert ex.query("SELECT COUNT(*) FROM shared_mysql.tenant_blocks")[0][0] == 0
    ca = str(world["local"].ca)
    port = world["standin"].port
    assert error_code(lambda: login({"host": "127.0.0.1", "port": port, "username": MASTER,
                                     "password": "prod-Master-Pw-1", "ssl_ca": ca}, database=None)) == 1045
    # the tenant: staging's own secret logs in, prod's password for the same account does not
    from shared_mysql.tenants.model import account_secret

    name, _ = account_secret(stg.config, stg.loaded.path, "shop", "app")
    mine = stg.store.get(name, CURRENT)
    login({**mine, "ssl_ca": ca}).close()
    assert error_code(lambda: login({**mine, "password": "prod-Shop-Pw-1", "ssl_ca": ca})) == 1045
    assert not (stg.state_dir / RA.STATE).exists() or '"done"' in (stg.state_dir / RA.STATE).read_text()


def test_a_failed_check_never_cuts_over_and_a_kill_before_cut_over_resumes(world, monkeypatch):
    rds = world["rds"]
    with world["local"].executor() as ex:  # one row cannot be shuffled: verification fails
        ex.query("CREATE TABLE shop_db.solo (id INT PRIMARY KEY, w VARCHAR(20))")
        ex.query("INSERT INTO shop_db.solo VALUES (1, 'swordfish')")
    doc = yaml.safe_load((world["dir"] / "staging.yaml").read_text())
    doc["tenants"]["shop"]["masking"] = {**RULES, "solo.w": "shuffle"}
    (world["dir"] / "staging.yaml").write_text(yaml.safe_dump(doc))
    out, say, stg = run(world)
    assert not out["ok"] and out["steps"][-1] == "failed"
    assert any("NOT cut over" in n for n in out["notes"])
    # the staging name still belongs to the old instance; the new one waits beside it
    assert "shared-mysql:refresh-from" not in tags(rds, "staging-shared-mysql")
    new_id = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
              if "-refresh-" in d["DBInstanceIdentifier"]][0]
    # the source's account on the new instance: locked
    assert error_code(lambda: login({"host": "127.0.0.1", "port": world["standin"].port, "username": "shop_user",
                                     "password": "prod-Shop-Pw-1", "ssl_ca": str(world["local"].ca),
                                     "dbname": "shop_db"})) == 4151
    # changed rules while a refresh's masking is half done: refused (the fingerprints need the source values)
    doc["tenants"]["shop"]["masking"] = {**RULES, "solo.w": "hash"}
    (world["dir"] / "staging.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(Exception, match="re-run with --restart"):
        run(world)
    # With the same rules, once an operator masked the row by hand on the new instance, the re-run resumes (the
    # check passes); a kill in the cut over is resumed too.
    doc["tenants"]["shop"]["masking"] = {**RULES, "solo.w": "shuffle"}
    (world["dir"] / "staging.yaml").write_text(yaml.safe_dump(doc))
    with world["local"].executor() as ex:
        ex.query("UPDATE shop_db.solo SET w = 'masked-by-hand' WHERE id = 1")
    calls = {"n": 0}
    real = RA._cut_over

    def killed(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(RA, "_cut_over", killed)
    with pytest.raises(KeyboardInterrupt):
        run(world)
    out, say, stg = run(world)
    assert out["ok"], out
    assert out["steps"] == ["cut_over", "done"]
    # the kept previous target can be deleted (review: a resumed cut over left its deletion protection on)
    assert not rds.describe_db_instances(DBInstanceIdentifier=out["old_instance"])["DBInstances"][0][
        "DeletionProtection"]
    assert tags(rds, "staging-shared-mysql")["shared-mysql:refresh-from"] == "prod-shared-mysql"
    assert new_id not in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
