"""`rotate --master` on target aws (issue 8, item 4), against moto's RDS and Secrets Manager with the real local
server standing in for the RDS instance. RDS applying a ModifyDBInstance password, and Secrets Manager running
the master's hosted rotation function, are stood in by the test (moto runs neither): each does to the local
server what the real service does to the instance (an ALTER USER of the master), nothing more."""

import json
import threading
import time
import uuid

import boto3
import pytest
import yaml
from moto import mock_aws

from shared_mysql import aws as aws_mod
from shared_mysql.config.load import load_config
from shared_mysql.target import open_target

from .helpers import error_code, login

MASTER = "rdsmaster"


@pytest.fixture
def rds(instance_factory):
    return instance_factory({})


@pytest.fixture
def world(rds, tmp_path, monkeypatch):
    """moto (RDS instance test-remote, the KMS alias) + a master account `rdsmaster` on the local server + an aws
    config whose master credential is imported and verified."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "ap-northeast-2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        aws_mod.session.cache_clear()
        kms = boto3.client("kms")
        kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        boto3.client("rds").create_db_instance(
            DBInstanceIdentifier="test-remote", Engine="mysql", DBInstanceClass="db.t4g.small",
            MasterUsername=MASTER, MasterUserPassword="x" * 16, AllocatedStorage=30)
        local = rds.target()
        with local.executor() as ex:
            ex.query(f"CREATE USER '{MASTER}'@'%' IDENTIFIED BY 'first-Password-1' REQUIRE SSL")
            ex.query(f"GRANT ALL PRIVILEGES ON *.* TO '{MASTER}'@'%' WITH GRANT OPTION")
        doc = {"environment": "test", "identifier": "remote", "target": "aws",
               "instance": {"host": "127.0.0.1", "port": rds.port, "ca_bundle": str(local.ca),
                            "master_username": MASTER}, "tenants": {"orders": {"max_connections": 2}}}
        (tmp_path / "shared-mysql.yaml").write_text(yaml.safe_dump(doc))
        t = open_target(load_config(tmp_path / "shared-mysql.yaml"))
        assert t.import_master({"username": MASTER, "password": "first-Password-1"}) is None

        def set_on_server(password):  # what RDS (or the hosted rotation function) does to the instance
            with local.executor() as ex:
                ex.query(f"ALTER USER '{MASTER}'@'%' IDENTIFIED BY '{password}'")

        yield tmp_path, set_on_server
        aws_mod.session.cache_clear()


def fresh(tmp_path):
    return open_target(load_config(tmp_path / "shared-mysql.yaml"))


def master(t, stage="AWSCURRENT"):
    t.store.reload()
    return t.store.get("test-remote-master-password", stage)


def creds(t, value):
    return {**value, "host": "127.0.0.1", "port": t.port, "ssl_ca": t.ca}


class Rds:
    """moto's RDS client, with ModifyDBInstance's password applied to the stand-in instance."""

    def __init__(self, real, set_on_server, after=None):
        self.real, self.set_on_server, self.after, self.calls = real, set_on_server, after, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def modify_db_instance(self, **kw):
        self.calls.append(kw)
        out = self.real.modify_db_instance(**kw)
        self.set_on_server(kw["MasterUserPassword"])
        if self.after:
            self.after()
        return out


ORIGINAL_CLIENT_FOR = aws_mod.client_for


def patch_client(monkeypatch, service, factory):
    real = ORIGINAL_CLIENT_FOR

    def client_for(config, name):
        c = real(config, name)
        return factory(c) if name == service else c

    monkeypatch.setattr(aws_mod, "client_for", client_for)


def test_without_a_rotation_function_the_master_rotates_through_modify_db_instance(world, monkeypatch):
    tmp_path, set_on_server = world
    t = fresh(tmp_path)
    old = master(t)
    holder = {}
    patch_client(monkeypatch, "rds", lambda c: holder.setdefault("rds", Rds(c, set_on_server)))
    (res,) = t.rotate([], master=True)
    assert res.steps == ["createSecret", "setSecret", "testSecret", "finishSecret"] and not res.resumed
    new = master(t)
    assert new["password"] != old["password"] and new["username"] == MASTER
    assert [c["MasterUserPassword"] for c in holder["rds"].calls] == [new["password"]]
    assert holder["rds"].calls[0]["DBInstanceIdentifier"] == "test-remote" and holder["rds"].calls[0]["ApplyImmediately"]
    login(creds(t, new), database=None).close()
    assert error_code(lambda: login(creds(t, old), database=None)) == 1045
    assert master(t, "AWSPREVIOUS")["password"] == old["password"]


def test_a_master_rotation_killed_after_modify_finishes_without_a_second_modify(world, monkeypatch):
    tmp_path, set_on_server = world
    t = fresh(tmp_path)
    old = master(t)

    class Killed(BaseException):  # the process dying right after RDS took the new password
        pass

    def die():
        raise Killed

    patch_client(monkeypatch, "rds", lambda c: Rds(c, set_on_server, after=die))
    with pytest.raises(Killed):
        t.rotate([], master=True)
    pending = master(t, "AWSPENDING")
    assert pending and master(t)["password"] == old["password"]
    calls = []
    patch_client(monkeypatch, "rds", lambda c: calls.append(1) or Rds(c, set_on_server))
    (res,) = fresh(tmp_path).rotate([], master=True)
    assert res.resumed and res.steps == ["testSecret", "finishSecret"] and not calls  # that rotation, not a new one
    t = fresh(tmp_path)
    assert master(t)["password"] == pending["password"] and master(t, "AWSPENDING") is None
    login(creds(t, master(t)), database=None).close()


class Sm:
    """moto's Secrets Manager, with RotateSecret run the way Secrets Manager runs the master's hosted single-user
    function: a new AWSPENDING version, the ALTER USER, then AWSCURRENT moved; on a thread, after a delay, so
    `rotate --master` has to wait for it."""

    def __init__(self, real, set_on_server):
        self.real, self.set_on_server, self.started = real, set_on_server, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def rotate_secret(self, SecretId, RotateImmediately=True, **kw):
        token = str(uuid.uuid4())
        cur = json.loads(self.real.get_secret_value(SecretId=SecretId)["SecretString"])
        new = {**cur, "password": "rotated-By-SM-" + uuid.uuid4().hex}

        def run():
            time.sleep(0.5)
            self.real.put_secret_value(SecretId=SecretId, ClientRequestToken=token, SecretString=json.dumps(new),
                                       VersionStages=["AWSPENDING"])
            self.set_on_server(new["password"])
            stages = self.real.describe_secret(SecretId=SecretId)["VersionIdsToStages"]
            current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
            self.real.update_secret_version_stage(SecretId=SecretId, VersionStage="AWSCURRENT",
                                                  MoveToVersionId=token, RemoveFromVersionId=current)
            self.real.update_secret_version_stage(SecretId=SecretId, VersionStage="AWSPENDING",
                                                  RemoveFromVersionId=token)

        th = threading.Thread(target=run)
        th.start()
        self.started.append(th)
        return {"ARN": self.real.describe_secret(SecretId=SecretId)["ARN"], "VersionId": token}


def test_with_a_rotation_function_the_master_rotates_through_secrets_manager(world, monkeypatch):
    tmp_path, set_on_server = world
    sm = boto3.client("secretsmanager")
    sm.tag_resource(SecretId="test-remote-master-password", Tags=[{"Key": "x", "Value": "y"}])
    # The infra stack's set-up: rotation on, with the hosted function (a moto stub here).
    import io
    import zipfile

    role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(e, c): pass\n")
    fn = boto3.client("lambda").create_function(FunctionName="master-rotation", Runtime="python3.12", Role=role,
                                                Handler="index.handler", Code={"ZipFile": buf.getvalue()})
    sm.rotate_secret(SecretId="test-remote-master-password", RotationLambdaARN=fn["FunctionArn"],
                     RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    for vid, st in sm.describe_secret(SecretId="test-remote-master-password")["VersionIdsToStages"].items():
        if "AWSPENDING" in st:  # moto keeps the set-up test's pending version; Secrets Manager removes it
            sm.update_secret_version_stage(SecretId="test-remote-master-password", VersionStage="AWSPENDING",
                                           RemoveFromVersionId=vid)
    t = fresh(tmp_path)
    old = master(t)
    holder = {}
    patch_client(monkeypatch, "secretsmanager", lambda c: holder.setdefault("sm", Sm(c, set_on_server)))
    rds_calls = []
    patch_rds = aws_mod.client_for

    def no_rds(config, name):
        assert name != "rds" or rds_calls.append(1) is None
        return patch_rds(config, name)

    monkeypatch.setattr(aws_mod, "client_for", no_rds)
    (res,) = t.rotate([], master=True)
    assert res.steps == ["rotate_secret", "wait", "testSecret"] and len(holder["sm"].started) == 1
    new = master(fresh(tmp_path))
    assert new["password"] != old["password"] and res.new_version
    login(creds(t, new), database=None).close()
    assert error_code(lambda: login(creds(t, old), database=None)) == 1045
    assert not rds_calls  # Secrets Manager's function did it; no ModifyDBInstance behind its back
