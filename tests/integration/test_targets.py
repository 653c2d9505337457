"""`target: server` against a local server started from another directory behaves like `local`; `target: aws`
runs end-to-end with Secrets Manager, SSM and KMS from a moto server and the real local server standing in for RDS."""

import json

import boto3
import pytest
import yaml

from ..conftest import free_port
from .helpers import assert_all_stored_credentials_log_in, error_code, login

TENANTS = {"orders": {"max_connections": 3, "readonly": True}, "billing": {"max_connections": 2}}


def remote_config(dir_, rds, target, tenants, **extra):
    doc = {"environment": "test", "identifier": "remote", "target": target,
           "instance": {"host": "127.0.0.1", "port": rds.port, "ca_bundle": str(rds.target().ca)},
           "tenants": tenants, **extra}
    (dir_ / "shared-mysql.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def rds(instance_factory):
    """A running local server in its own directory, playing the remote server / RDS instance."""
    return instance_factory({})


def master_json(rds) -> str:
    m = rds.target().store.get("test-itest-master-password")
    assert "ssl_ca" in m
    return json.dumps({"username": m["username"], "password": m["password"], "engine": "mariadb"})


def test_server_target_behaves_like_local(rds, tmp_path):
    from ..conftest import Instance

    remote_config(tmp_path, rds, "server", TENANTS)
    inst = Instance(tmp_path, rds.port)
    res = inst.cli("plan")
    assert res.returncode == 1 and "credentials --admin --import" in res.stderr
    inst.cli("credentials", "--admin", "--import", input=master_json(rds), check=True)
    res = inst.cli("up", check=True)  # nothing to start: applies
    from shared_mysql.client import Client

    conn = Client(config=inst.config_path).connect("orders")  # CA from the config's ca_bundle
    conn.close()
    assert "Converged." in res.stdout and "server:" not in res.stdout
    t = inst.target()
    assert t.kind == "server"
    assert assert_all_stored_credentials_log_in(t) == 3
    creds = {n: {**t.store.get(n), "ssl_ca": t.ca} for n in ("test-orders-db-credentials", "test-billing-db-credentials")}
    assert error_code(lambda: login(creds["test-orders-db-credentials"], database="billing_db")) == 1044
    assert error_code(lambda: login(creds["test-orders-db-credentials"], tls=False, database=None)) in (1045, 3159)
    with t.executor() as ex:
        ex.query("ALTER USER 'billing_user'@'%' WITH MAX_USER_CONNECTIONS 40")
    assert inst.cli("plan", "--detailed-exitcode").returncode == 2
    inst.cli("apply", "--auto-approve", check=True)
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0
    params = json.loads((tmp_path / ".shared-mysql" / "remote" / "exports" / "parameters.json").read_text())
    assert params["/shared/rds/test/tenants/orders/username"] == "orders_user"
    assert params["/shared/rds/test/port"] == str(rds.port)
    dumped = json.dumps(params) + "".join(p.read_text() for p in (tmp_path / ".shared-mysql" / "remote" / "exports").glob("*.env"))
    assert all(c["password"] not in dumped for c in creds.values())
    res = inst.cli("local", "status")
    assert res.returncode == 2 and "target: server" in res.stderr


@pytest.fixture
def moto_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    import urllib.request

    # moto's backends live in this process and outlive a server: start each test from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")).read()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "ap-northeast-2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from shared_mysql import aws

    aws.session.cache_clear()
    yield env
    server.stop()


def test_aws_target_end_to_end(rds, tmp_path, moto_server):
    from ..conftest import Instance

    kms = boto3.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=key)
    sm, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
    ssm.put_parameter(Name="/shared/rds/test/not-ours", Value="x", Type="String")
    ssm.put_parameter(Name="/shared/rds/test/endpoint", Value="db.from-the-stack", Type="String")

    remote_config(tmp_path, rds, "aws", TENANTS)
    inst = Instance(tmp_path, rds.port)
    inst.cli("credentials", "--admin", "--import", input=master_json(rds), check=True)
    assert sm.describe_secret(SecretId="test-remote-master-password")["KmsKeyId"] == "alias/secrets-manager"

    plan = json.loads(inst.cli("plan", "-o", "json", check=True).stdout)
    exports = {a["detail"]["name"]: a["detail"]["value"] for a in plan["actions"] if a["kind"] == "put_export"}
    assert exports["/shared/rds/test/tenants/orders/secret-arn"] is None  # known after apply
    # on AWS the instance-level names belong to the infrastructure layer: the CLI writes tenants only
    assert all(n.startswith("/shared/rds/test/tenants/") for n in exports)
    assert plan["unmanaged"]["exports"] == ["/shared/rds/test/not-ours"]
    text = inst.cli("plan", check=True).stdout
    assert "+ export /shared/rds/test/tenants/orders/secret-arn = (known after apply)" in text

    res = inst.cli("apply", "--auto-approve", check=True)
    assert "Converged." in res.stdout
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0

    # Secrets Manager: one secret per account, RDS JSON, KMS key, tags
    s = json.loads(sm.get_secret_value(SecretId="test-orders-db-credentials", VersionStage="AWSCURRENT")["SecretString"])
    assert {"engine", "host", "port", "username", "password", "dbname"} <= set(s)
    assert s["masterarn"] == sm.describe_secret(SecretId="test-remote-master-password")["ARN"]
    assert "ssl_ca" not in s  # the operator's CA path means nothing to a service on ECS
    d = sm.describe_secret(SecretId="test-orders-db-readonly-credentials")
    assert d["KmsKeyId"] == "alias/secrets-manager"
    assert {"Key": "tenant", "Value": "orders"} in d["Tags"] and {"Key": "role", "Value": "readonly"} in d["Tags"]
    # SSM: the seed's names, ARNs filled in, never a password
    params = {p["Name"]: p["Value"] for p in ssm.get_parameters_by_path(Path="/shared/rds/test", Recursive=True,
                                                                         MaxResults=10)["Parameters"]}
    token = None
    while True:
        page = ssm.get_parameters_by_path(Path="/shared/rds/test", Recursive=True, MaxResults=10,
                                          **({"NextToken": token} if token else {}))
        params.update({p["Name"]: p["Value"] for p in page["Parameters"]})
        token = page.get("NextToken")
        if not token:
            break
    arn = sm.describe_secret(SecretId="test-orders-db-credentials")["ARN"]
    assert params["/shared/rds/test/tenants/orders/secret-arn"] == arn
    assert params["/shared/rds/test/tenants/orders/readonly-username"] == "orders_readonly"
    assert params["/shared/rds/test/endpoint"] == "db.from-the-stack"  # the stack's, left alone
    for v in params.values():
        assert v != s["password"]
    # the stored credentials log in against the server
    t = inst.target()
    assert t.kind == "aws"
    assert assert_all_stored_credentials_log_in(t) == 3

    # removing a tenant: refused without --allow-destructive; then SM recovery window and SSM deletes
    remote_config(tmp_path, rds, "aws", {"orders": TENANTS["orders"]})
    res = inst.cli("apply", "--auto-approve")
    assert res.returncode == 1 and "--allow-destructive" in res.stderr
    plan = json.loads(inst.cli("plan", "-o", "json", check=True).stdout)
    assert {a["object"] for a in plan["actions"] if a["destructive"]} >= {
        "export /shared/rds/test/tenants/billing/username", "secret test-billing-db-credentials",
        "database billing_db", "user billing_user@%"}
    inst.cli("apply", "--auto-approve", "--allow-destructive", check=True)
    assert sm.describe_secret(SecretId="test-billing-db-credentials").get("DeletedDate")
    names = {p["Name"] for p in ssm.describe_parameters(MaxResults=50)["Parameters"]}
    assert "/shared/rds/test/tenants/billing/username" not in names and "/shared/rds/test/not-ours" in names
    assert "/shared/rds/test/endpoint" in names
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0


def test_aws_target_finds_the_endpoint_in_rds(tmp_path, moto_server):
    from shared_mysql.config import load_config
    from shared_mysql.target import open_target

    rds_api = boto3.client("rds")
    rds_api.create_db_instance(DBInstanceIdentifier="prod-shared-mysql", Engine="mysql", DBInstanceClass="db.t4g.small",
                               MasterUsername="admin", MasterUserPassword="x" * 16, AllocatedStorage=30)
    (tmp_path / "ca.pem").write_text("")
    (tmp_path / "shared-mysql.yaml").write_text("target: aws\ninstance: {ca_bundle: ca.pem}\n")
    t = open_target(load_config(tmp_path / "shared-mysql.yaml"))
    assert t.host.startswith("prod-shared-mysql.") and t.port == 3306  # the seed's {environment}-{identifier}
    (tmp_path / "shared-mysql.yaml").write_text("target: aws\nidentifier: missing\ninstance: {ca_bundle: ca.pem}\n")
    t = open_target(load_config(tmp_path / "shared-mysql.yaml"))
    with pytest.raises(Exception) as e:
        _ = t.host
    assert "cannot look up RDS instance prod-missing" in str(e.value) and "\n" not in str(e.value)


def _aws_ready(rds, tmp_path, tenants, **extra):
    from ..conftest import Instance

    kms = boto3.client("kms")
    kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    remote_config(tmp_path, rds, "aws", tenants, **extra)
    inst = Instance(tmp_path, rds.port)
    inst.cli("credentials", "--admin", "--import", input=master_json(rds), check=True)
    return inst


def _rotation_function(moto_server) -> str:
    """A function in moto's Lambda; moto runs no code without Docker, so it answers testSecret with a stub."""
    import io
    import urllib.request
    import zipfile

    req = urllib.request.Request(f"{moto_server['AWS_ENDPOINT_URL']}/moto-api/config", method="POST",
                                 data=json.dumps({"lambda": {"use_docker": False}}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    role = boto3.client("iam").create_role(RoleName="rotation", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return None\n")
    return boto3.client("lambda").create_function(
        FunctionName="test-remote-rotation", Runtime="python3.11", Role=role, Handler="index.handler",
        Code={"ZipFile": buf.getvalue()})["FunctionArn"]


def _schedules(sm, names):
    out = {}
    for n in names:
        d = sm.describe_secret(SecretId=n)
        stages = {st for sts in d["VersionIdsToStages"].values() for st in sts}
        assert "AWSPENDING" not in stages, n  # the set-up test's throwaway pending version is gone
        out[n] = (d.get("RotationLambdaARN"), d["RotationRules"]["AutomaticallyAfterDays"]) \
            if d.get("RotationEnabled") else None
    return out


def test_apply_attaches_tenant_secrets_to_the_rotation_schedule(rds, tmp_path, moto_server):
    tenants = {"orders": {"max_connections": 3, "readonly": True, "rotation_days": 14},
               "billing": {"max_connections": 2}}
    names = ["test-orders-db-credentials", "test-orders-db-readonly-credentials", "test-billing-db-credentials"]
    inst = _aws_ready(rds, tmp_path, tenants, secrets={"rotation_schedule": True})
    res = inst.cli("plan")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "SSM /shared/rds/test/rotation-function-arn (not found)" in res.stderr
    assert "secrets.rotation_function_arn" in res.stderr

    fn = _rotation_function(moto_server)
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/shared/rds/test/rotation-function-arn", Value=fn, Type="String")
    text = inst.cli("plan", check=True).stdout
    assert "secret test-orders-db-credentials" in text and "every 14 days by test-remote-rotation" in text
    assert "every 30 days by test-remote-rotation" in text  # billing: instance.secret_rotation_days
    plan = json.loads(inst.cli("plan", "-o", "json", check=True).stdout)
    assert plan["unmanaged"]["exports"] == []  # the stack's parameter is the infrastructure layer's
    r = inst.cli("apply", "--auto-approve")
    assert r.returncode == 0, r.stdout + inst.cli("plan").stdout
    sm = boto3.client("secretsmanager")
    assert _schedules(sm, names) == {names[0]: (fn, 14), names[1]: (fn, 14), names[2]: (fn, 30)}
    t = inst.target()
    before = {n: t.store.get(n)["password"] for n in names}
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0
    assert assert_all_stored_credentials_log_in(t) == 3
    # the schedule set-up changed no password and left nothing `rotate` would take for an interrupted rotation
    t = inst.target()
    assert {n: t.store.get(n)["password"] for n in names} == before

    # drift: someone changed a schedule by hand -> reverted
    sm.rotate_secret(SecretId=names[2], RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 90},
                     RotateImmediately=False)
    sm.update_secret_version_stage(SecretId=names[2], VersionStage="AWSPENDING", RemoveFromVersionId=next(
        v for v, st in sm.describe_secret(SecretId=names[2])["VersionIdsToStages"].items() if "AWSPENDING" in st))
    res = inst.cli("plan", "--detailed-exitcode")
    assert res.returncode == 2 and "(was every 90 days by test-remote-rotation)" in res.stdout
    inst.cli("apply", "--auto-approve", check=True)
    assert _schedules(sm, [names[2]]) == {names[2]: (fn, 30)}

    # turned off: the schedules apply attached come off; one a user set up on their own stays theirs
    sm.untag_resource(SecretId=names[2], TagKeys=["rotation-schedule"])
    remote_config(tmp_path, rds, "aws", tenants)
    res = inst.cli("plan", "--detailed-exitcode")
    assert res.returncode == 2 and res.stdout.count("rotation schedule off") == 2
    inst.cli("apply", "--auto-approve", check=True)
    assert _schedules(sm, names) == {names[0]: None, names[1]: None, names[2]: (fn, 30)}
    assert inst.cli("plan", "--detailed-exitcode").returncode == 0


def test_rotation_schedule_needs_secrets_manager_and_no_dual_password(tmp_path):
    from ..conftest import Instance

    (tmp_path / "shared-mysql.yaml").write_text("secrets: {rotation_schedule: true}\n")
    res = Instance(tmp_path, 1).cli("plan")
    assert res.returncode == 1 and "secrets.rotation_schedule: the rotation function runs in the instance's VPC" \
        in res.stderr and "rotate --due" in res.stderr
    (tmp_path / "ca.pem").write_text("")
    for bad, needle in [
        ("secrets: {rotation_schedule: true, backend: file}", "Secrets Manager runs the schedule"),
        ("secrets: {rotation_schedule: 1}", "secrets.rotation_schedule: Input should be a valid boolean; write true"),
        ("secrets: {rotation_function_arn: 42}", "write text"),
        ("secrets: {rotation_function_arn: 'arn:awsfoo:lambda:zz:123456789012:function:x', rotation_schedule: true}",
         "must be a Lambda function ARN"),
        ("secrets: {rotation_function_arn: 'arn:aws:lambda:us-east-1:123456789012:function:x', "
         "rotation_schedule: true}", "the function is in us-east-1, the secrets in ap-northeast-2"),
        ("secrets: {rotation_function_arn: 'arn:aws:lambda:ap-northeast-2:123456789012:function:x'}",
         "secrets.rotation_schedule is false, so nothing uses it"),
    ]:
        (tmp_path / "shared-mysql.yaml").write_text(f"target: aws\ninstance: {{ca_bundle: ca.pem}}\n{bad}\n")
        res = Instance(tmp_path, 1).cli("plan")
        assert res.returncode == 1 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, \
            (bad, res.stderr)
    (tmp_path / "shared-mysql.yaml").write_text(
        "target: aws\ninstance: {ca_bundle: ca.pem}\nsecrets: {rotation_schedule: true}\n"
        "tenants: {orders: {rotation: dual-password}}\n")
    res = Instance(tmp_path, 1).cli("plan")
    assert res.returncode == 1 and "tenants.orders.rotation: dual-password is rotated by" in res.stderr
    (tmp_path / "shared-mysql.yaml").write_text(
        "target: aws\ninstance: {ca_bundle: ca.pem}\nsecrets: {rotation_function_arn: 'arn:aws:s3:::x'}\n")
    res = Instance(tmp_path, 1).cli("plan")
    assert res.returncode == 1 and "secrets.rotation_function_arn: must be a Lambda function ARN" in res.stderr
