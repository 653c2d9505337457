"""`shared-mysql audit` on the real server (issue 9): our own setup is the reference (nothing fails), eight realistic
mistakes each exit 3 naming their check and pass again once fixed, SARIF from the CLI validates, suppressions, and
the AWS checks against moto."""

import json

import pytest

TENANTS = {"orders": {"max_connections": 3, "readonly": True}, "billing": {"max_connections": 3}}


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    from ..conftest import Instance, free_port

    i = Instance(tmp_path_factory.mktemp("audit"), free_port(), None)
    i.write(TENANTS)
    i.cli("up", check=True)
    yield i
    i.cli("local", "down")


def sql(inst, *stmts):
    t = inst.target()
    with t.executor() as ex:
        for s in stmts:
            ex.query(s)


def audit(inst, *args):
    res = inst.cli("audit", "--only", "server", "--fail-on", "low", "-o", "json", *args)
    assert res.returncode in (0, 3), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_a_server_up_just_set_up_passes_every_check(inst):
    code, data = audit(inst)
    assert code == 0, [f for f in data["findings"] if f["status"] != "pass"]
    assert data["summary"]["failed"] == data["summary"]["errors"] == 0 and data["summary"]["passed"] >= 19
    res = inst.cli("audit")
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1].startswith("Audit (server, config): 0 failed")


MISTAKES = [
    # (check id, the mistake, the fix: apply where it is drift on a managed account)
    ("SRV-UNMANAGED-ACCOUNT", ["CREATE USER 'sneaky'@'%' IDENTIFIED BY 'Sneaky-pass-1'",
                               "GRANT ALL PRIVILEGES ON *.* TO 'sneaky'@'%'"], ["DROP USER 'sneaky'@'%'"]),
    ("SRV-TENANT-SCOPE", ["GRANT FILE ON *.* TO 'billing_user'@'%'"], "apply"),
    ("SRV-TENANT-SCOPE", ["GRANT SELECT ON `orders_db`.* TO 'orders_readonly'@'%'"], "apply"),
    ("SRV-LOCAL-INFILE", ["SET GLOBAL local_infile = 1"], ["SET GLOBAL local_infile = 0"]),
    ("SRV-ACCOUNT-TLS", ["ALTER USER 'orders_user'@'%' REQUIRE NONE"], "apply"),
    ("SRV-ANONYMOUS", ["CREATE USER ''@'localhost'"], ["DROP USER ''@'localhost'"]),
    ("SRV-TEST-DATABASE", ["CREATE DATABASE test"], ["DROP DATABASE test"]),
    ("SRV-AUDIT-LOG", ["SET GLOBAL server_audit_events = 'CONNECT'"],
     ["SET GLOBAL server_audit_events = 'CONNECT,QUERY_DDL,QUERY_DCL'"]),
    ("SRV-GLOBAL-PRIVILEGES", ["CREATE USER 'monitor'@'10.0.0.5' IDENTIFIED BY 'Monitor-pass-1' REQUIRE SSL",
                               "GRANT PROCESS ON *.* TO 'monitor'@'10.0.0.5'"], ["DROP USER 'monitor'@'10.0.0.5'"]),
]


@pytest.mark.parametrize("check_id,mistake,fix", MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_each_mistake_exits_3_naming_its_check_and_the_fix_passes(inst, check_id, mistake, fix):
    sql(inst, *mistake)
    try:
        code, data = audit(inst)
        failed = {f["check"] for f in data["findings"] if f["status"] == "fail"}
        assert code == 3 and check_id in failed, failed
        text = inst.cli("audit", "--only", "server", "--fail-on", "low")
        assert text.returncode == 3 and check_id in text.stdout
        assert len(text.stderr.strip().splitlines()) == 1 and text.stderr.startswith("error: audit: ")
    finally:
        if fix == "apply":
            inst.cli("apply", "--auto-approve", check=True)
        else:
            sql(inst, *fix)
    code, data = audit(inst)
    assert code == 0, [f for f in data["findings"] if f["status"] != "pass"]


def test_sarif_from_the_cli_validates(inst):
    import jsonschema

    from ..unit.test_audit import sarif_schema

    sql(inst, "CREATE DATABASE legacy_reports")
    try:
        res = inst.cli("audit", "-o", "sarif", "--fail-on", "critical")
        assert res.returncode == 0, res.stderr  # low: under the threshold
        doc = json.loads(res.stdout)
        jsonschema.validate(doc, sarif_schema())
        (result,) = doc["runs"][0]["results"]
        assert result["ruleId"] == "SRV-UNMANAGED-DATABASE" and result["level"] == "note"
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "shared-mysql.yaml"
        res = inst.cli("plan", "-o", "sarif")
        assert res.returncode == 2 and "only `audit` writes SARIF" in res.stderr
    finally:
        sql(inst, "DROP DATABASE legacy_reports")


def test_a_suppression_is_reported_and_does_not_fail_the_run(inst):
    import yaml

    doc = yaml.safe_load(inst.config_path.read_text())
    doc["audit"] = {"ignore": [{"id": "SRV-UNMANAGED-ACCOUNT", "resource": "'bi_*'@*",
                                "reason": "BI tool, owned by the data team (DATA-123)"}]}
    inst.config_path.write_text(yaml.safe_dump(doc))
    sql(inst, "CREATE USER 'bi_reader'@'%' IDENTIFIED BY 'Bi-pass-1' REQUIRE SSL")
    try:
        code, data = audit(inst)
        sup = [f for f in data["findings"] if f["status"] == "suppressed"]
        assert code == 0 and [(f["check"], f["reason"]) for f in sup] == [
            ("SRV-UNMANAGED-ACCOUNT", "BI tool, owned by the data team (DATA-123)")]
        doc["audit"]["ignore"][0]["id"] = "SRV-NOT-A-CHECK"
        inst.config_path.write_text(yaml.safe_dump(doc))
        res = inst.cli("audit")
        assert res.returncode == 1 and "audit.ignore.0.id: no check SRV-NOT-A-CHECK" in res.stderr
    finally:
        sql(inst, "DROP USER 'bi_reader'@'%'")
        del doc["audit"]
        inst.config_path.write_text(yaml.safe_dump(doc))


def test_list_names_every_check(inst):
    from shared_mysql.audit import load_checks

    res = inst.cli("audit", "--list", "-o", "json")
    assert {c["id"] for c in json.loads(res.stdout)} == set(load_checks())


AWS_CONFIG = """
environment: prod
identifier: shared-mysql
target: aws
instance:
  host: db.internal
  ca_bundle: ca.pem
  instance_class: db.r6g.large
  mysql_version: "8.0.42"
  vpc_id: {vpc}
  private_subnet_ids: [subnet-1, subnet-2]
  allowed_security_group_ids: [{app_sg}]
  kms_key_id: {key}
  backup_retention_period: 30
tenants:
  orders: {{max_connections: 20}}
"""


def test_aws_checks_against_moto(tmp_path, monkeypatch):
    """A deployment as the stack makes it passes; then the classic mistakes (MySQL open to the internet, a public
    snapshot, key rotation off, a missing alarm, drift) each fail their check."""
    import boto3
    from moto import mock_aws

    from shared_mysql import aws as aws_mod
    from shared_mysql.audit import run_checks
    from shared_mysql.audit.checks_aws import aws_snapshot
    from shared_mysql.config import parse_config
    from shared_mysql.infra.names import ALARM_KEYS, SEED_PARAMETERS

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "ap-northeast-2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws_mod.session.cache_clear()
        ec2, rds, kms = boto3.client("ec2"), boto3.client("rds"), boto3.client("kms")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        app_sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        db_sg = ec2.create_security_group(GroupName="prod-shared-mysql-sg", Description="db", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": app_sg}]}])
        key = kms.create_key()["KeyMetadata"]["Arn"]
        kms.enable_key_rotation(KeyId=key)
        config = parse_config(AWS_CONFIG.format(vpc=vpc, app_sg=app_sg, key=key))
        rds.create_db_parameter_group(DBParameterGroupName="pg", DBParameterGroupFamily="mysql8.0", Description="x")
        rds.modify_db_parameter_group(DBParameterGroupName="pg", Parameters=[
            {"ParameterName": k, "ParameterValue": v, "ApplyMethod": "pending-reboot"}
            for k, v in {**SEED_PARAMETERS, "require_secure_transport": "1"}.items()])
        rds.create_db_instance(
            DBInstanceIdentifier="prod-shared-mysql", Engine="mysql", EngineVersion="8.0.42",
            DBInstanceClass="db.r6g.large", AllocatedStorage=30, MasterUsername="admin",
            MasterUserPassword="x" * 16, MultiAZ=True, StorageEncrypted=True, KmsKeyId=key,
            PubliclyAccessible=False, BackupRetentionPeriod=30, DeletionProtection=True,
            EnableCloudwatchLogsExports=["error", "general", "slowquery", "audit"],
            EnableIAMDatabaseAuthentication=True, CopyTagsToSnapshot=True, VpcSecurityGroupIds=[db_sg],
            DBParameterGroupName="pg")
        rds.create_db_snapshot(DBSnapshotIdentifier="prod-shared-mysql-before-migration",
                               DBInstanceIdentifier="prod-shared-mysql")
        sm = boto3.client("secretsmanager")
        master = sm.create_secret(Name="prod-shared-mysql-master-password", SecretString="{}")["ARN"]
        orders = sm.create_secret(Name="prod-orders-db-credentials", SecretString="{}")["ARN"]
        # rotation on (moto turns RotationEnabled on from the rules; it runs no function)
        sm.rotate_secret(SecretId=master, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
        topic = boto3.client("sns").create_topic(Name="alarms")["TopicArn"]
        cw = boto3.client("cloudwatch")
        for k, attr in ALARM_KEYS.items():
            cw.put_metric_alarm(AlarmName=f"prod-shared-mysql-{k}", MetricName="M", Namespace="AWS/RDS",
                                Statistic="Average", Period=300, EvaluationPeriods=2,
                                Threshold=float(getattr(config.instance.alarms, attr)),
                                ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
        ssm = boto3.client("ssm")
        address = rds.describe_db_instances()["DBInstances"][0]["Endpoint"]["Address"]
        for k, v in {"endpoint": address, "port": "3306", "master-password-secret-arn": master,
                     "tenants/orders/secret-arn": orders}.items():
            ssm.put_parameter(Name=f"/shared/rds/prod/{k}", Value=v, Type="String")

        def run():
            snap = aws_snapshot(config)
            return {(f.check, f.status) for f in run_checks("aws", snap, target="aws")}, snap

        results, snap = run()
        bad = {r for r in results if r[1] != "pass"}
        # moto has no RDS certificates API: that one check is an ERROR finding, and only it
        assert bad <= {("AWS-CA-EXPIRY", "error")}, (bad, snap.errors)

        ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="prod-shared-mysql-before-migration",
                                         AttributeName="restore", ValuesToAdd=["all"])
        kms.disable_key_rotation(KeyId=key)
        cw.delete_alarms(AlarmNames=["prod-shared-mysql-cpu-utilization"])
        rds.modify_db_instance(DBInstanceIdentifier="prod-shared-mysql", DBInstanceClass="db.t3.micro",
                               ApplyImmediately=True)
        results, _ = run()
        failed = {c for c, st in results if st == "fail"}
        assert {"AWS-SG-OPEN", "AWS-SNAPSHOT-PUBLIC", "AWS-KMS-ROTATION", "AWS-ALARMS",
                "AWS-INSTANCE-DRIFT"} <= failed, results
        aws_mod.session.cache_clear()


def test_usage_errors_and_unused_suppressions(inst):
    import yaml

    res = inst.cli("audit", "--only", "aws")
    assert res.returncode == 2 and "target is local, not aws" in res.stderr
    res = inst.cli("audit", "--list", "-o", "sarif")
    assert res.returncode == 2 and "--list" in res.stderr
    doc = yaml.safe_load(inst.config_path.read_text())
    doc["audit"] = {"ignore": [{"id": "SRV-UNMANAGED-ACCOUNT", "resource": "'gone'@'%'",
                                "reason": "the old reporting account, dropped in Q2"}]}
    inst.config_path.write_text(yaml.safe_dump(doc))
    try:
        code, data = audit(inst)
        assert code == 0 and data["unused_suppressions"] == ["SRV-UNMANAGED-ACCOUNT 'gone'@'%'"]
        text = inst.cli("audit", "--only", "server").stdout
        assert "Suppressions that matched nothing" in text
    finally:
        del doc["audit"]
        inst.config_path.write_text(yaml.safe_dump(doc))
