"""The CDK app: every seed variable maps to the template, every seed output exists, cfn-lint and cdk-nag pass."""

import json
import os
import subprocess
import sys

import pytest

from shared_mysql.config import LoadedConfig, parse_config
from shared_mysql.config.example import EXAMPLE_AWS
from shared_mysql.infra.app import ACKNOWLEDGED, cfn_lint, synth
from shared_mysql.infra.stack import OUTPUTS

CUSTOM = """
environment: staging
identifier: core-db
target: aws
instance:
  aws_region: us-west-2
  mysql_version: "8.0.42"
  instance_class: db.r6g.large
  allocated_storage: 50
  max_allocated_storage: 500
  storage_type: gp3
  database_name: core_db
  master_username: dbadmin
  vpc_id: vpc-0aaaaaaaaaaaaaaaa
  private_subnet_ids: [subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb, subnet-0cccccccccccccccc]
  allowed_security_group_ids: [sg-0aaaaaaaaaaaaaaaa, sg-0bbbbbbbbbbbbbbbb]
  allowed_cidr_blocks: [10.20.0.0/16]
  multi_az: true
  backup_retention_period: 30
  backup_window: "18:00-19:00"
  maintenance_window: "Sun:19:00-Sun:20:00"
  parameters: {max_connections: 500, long_query_time: 1}
  kms_key_id: arn:aws:kms:us-west-2:111122223333:key/11111111-2222-3333-4444-555555555555
  alarm_sns_topic_arn: arn:aws:sns:us-west-2:111122223333:db-alarms
  performance_insights_enabled: true
  monitoring_interval: 30
  cloudwatch_log_retention_days: 90
  secret_rotation_days: 14
  enable_rds_proxy: true
  create_read_replica: true
  replica_instance_class: db.r6g.xlarge
  tags: {CostCenter: platform}
  ca_bundle: us-west-2-bundle.pem
tenants:
  orders: {}
  billing: {auth: iam, readonly: true}
"""


def build(tmp_path_factory, text):
    d = tmp_path_factory.mktemp("infra")
    (d / "us-west-2-bundle.pem").write_text("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n")
    cfg = parse_config(text)
    r = synth(LoadedConfig(cfg, d / "shared-mysql.yaml"))
    assert len(r.templates) == 1
    return cfg, r, json.loads(r.templates[0].read_text())


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return build(tmp_path_factory, EXAMPLE_AWS)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    return build(tmp_path_factory, CUSTOM)


@pytest.fixture(scope="module")
def rotating(tmp_path_factory):
    return build(tmp_path_factory, CUSTOM + "secrets: {rotation_schedule: true}\n")


def res(tpl, typ):
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == typ}


def one(tpl, typ):
    r = res(tpl, typ)
    assert len(r) == 1, (typ, list(r))
    return next(iter(r.values()))


def test_every_seed_variable_with_its_default(default):
    cfg, _, tpl = default
    db = one(tpl, "AWS::RDS::DBInstance")["Properties"]
    assert db["DBInstanceIdentifier"] == "prod-shared-mysql"  # environment + identifier
    assert db["Engine"] == "mysql" and db["EngineVersion"] == "8.0.42"
    assert db["DBInstanceClass"] == "db.t4g.small"
    assert (db["AllocatedStorage"], db["MaxAllocatedStorage"], db["StorageType"]) == ("30", 200, "gp3")
    assert db["DBName"] == "shared_db"
    assert db["MultiAZ"] is True and db["BackupRetentionPeriod"] == 14
    assert db["PreferredBackupWindow"] == "03:00-04:00"
    assert db["PreferredMaintenanceWindow"] == "Mon:04:00-Mon:05:00"
    assert db["Port"] == "3306" and db["PubliclyAccessible"] is False
    gen = [s for s in res(tpl, "AWS::SecretsManager::Secret").values() if "GenerateSecretString" in s["Properties"]]
    assert json.loads(gen[0]["Properties"]["GenerateSecretString"]["SecretStringTemplate"]) == {"username": "admin"}
    sgs = {v["Properties"].get("GroupName"): v["Properties"] for v in res(tpl, "AWS::EC2::SecurityGroup").values()}
    sg = sgs["prod-shared-mysql-sg"]  # (the other one is the rotation function's)
    assert sg["VpcId"] == "vpc-0f162b9e588276e09"
    assert [r["SourceSecurityGroupId"] for r in sg["SecurityGroupIngress"]] == ["sg-0a1b2c3d4e5f60718"]
    assert all(r["FromPort"] == 3306 == r["ToPort"] for r in sg["SecurityGroupIngress"])
    assert sg["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32"  # no outbound
    sn = one(tpl, "AWS::RDS::DBSubnetGroup")["Properties"]
    assert sn["SubnetIds"] == ["subnet-09692620519f86cf0", "subnet-0d99080cbe134b6e9"]
    assert "ap-northeast-2" in json.dumps(tpl)  # aws_region


def test_secure_defaults(default):
    _, _, tpl = default
    dbr = one(tpl, "AWS::RDS::DBInstance")
    db = dbr["Properties"]
    assert db["StorageEncrypted"] is True and "KmsKeyId" in db
    assert db["DeletionProtection"] is True and dbr["DeletionPolicy"] == "Snapshot"  # final snapshot
    assert db["CopyTagsToSnapshot"] is True and db["EnableIAMDatabaseAuthentication"] is True
    assert db["EnableCloudwatchLogsExports"] == ["error", "general", "slowquery", "audit"]
    assert db["MonitoringInterval"] == 60 and "MonitoringRoleArn" in db
    assert db.get("EnablePerformanceInsights") in (None, False)  # not on db.t4g.small
    assert db["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    params = one(tpl, "AWS::RDS::DBParameterGroup")["Properties"]
    assert params["Family"] == "mysql8.0"
    assert params["Parameters"]["require_secure_transport"] == "1"
    assert {k: params["Parameters"][k] for k in ("max_connections", "slow_query_log", "long_query_time",
                                                 "character_set_server")} == \
        {"max_connections": "200", "slow_query_log": "1", "long_query_time": "2", "character_set_server": "utf8mb4"}
    opt = one(tpl, "AWS::RDS::OptionGroup")["Properties"]
    assert opt["OptionConfigurations"][0]["OptionName"] == "MARIADB_AUDIT_PLUGIN"
    groups = res(tpl, "AWS::Logs::LogGroup")
    assert sorted(g["Properties"]["LogGroupName"] for g in groups.values()) == [
        f"/aws/rds/instance/prod-shared-mysql/{t}" for t in ("audit", "error", "general", "slowquery")]
    for g in groups.values():
        assert g["Properties"]["RetentionInDays"] == 30 and "KmsKeyId" in g["Properties"]
        assert g["DeletionPolicy"] == "Retain"
    assert set(dbr["DependsOn"]) >= set(groups)  # the groups exist before RDS writes to them
    master = one(tpl, "AWS::SecretsManager::Secret")  # no stale-prone copy as a "connection" secret
    assert master["Properties"]["Name"] == "prod-shared-mysql-master-password"
    assert "KmsKeyId" in master["Properties"] and master["DeletionPolicy"] == "Retain"
    rot = one(tpl, "AWS::SecretsManager::RotationSchedule")["Properties"]
    assert rot["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    key = one(tpl, "AWS::KMS::Key")["Properties"]
    assert key["EnableKeyRotation"] is True
    topic = one(tpl, "AWS::SNS::Topic")["Properties"]
    assert "KmsMasterKeyId" in topic


def test_six_alarms_with_the_seed_thresholds_and_ok_actions(default):
    _, _, tpl = default
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in res(tpl, "AWS::CloudWatch::Alarm").values()}
    want = {"cpu-utilization": ("CPUUtilization", 80, "GreaterThanThreshold"),
            "free-storage-space": ("FreeStorageSpace", 5 * 1024**3, "LessThanThreshold"),
            "freeable-memory": ("FreeableMemory", 256 * 1024**2, "LessThanThreshold"),
            "database-connections": ("DatabaseConnections", 180, "GreaterThanThreshold"),
            "read-latency": ("ReadLatency", 0.1, "GreaterThanThreshold"),
            "write-latency": ("WriteLatency", 0.1, "GreaterThanThreshold")}
    assert set(alarms) == {f"prod-shared-mysql-{k}" for k in want} | {"prod-shared-mysql-failed-login-attempts"}
    failed = alarms.pop("prod-shared-mysql-failed-login-attempts")  # the seed's security alarm, from the audit log
    assert (failed["MetricName"], failed["Threshold"], failed["Statistic"], failed["Period"],
            failed["EvaluationPeriods"]) == ("FailedLoginAttempts", 10, "Sum", 300, 1)
    mf = one(tpl, "AWS::Logs::MetricFilter")["Properties"]
    assert mf["FilterPattern"] == '"FAILED_CONNECT"'
    assert mf["MetricTransformations"][0]["MetricNamespace"] == failed["Namespace"] == "SharedMySQL/prod-shared-mysql"
    for k, (metric, threshold, op) in want.items():
        a = alarms[f"prod-shared-mysql-{k}"]
        assert (a["MetricName"], a["Threshold"], a["ComparisonOperator"], a["Namespace"]) == \
            (metric, threshold, op, "AWS/RDS")
        assert a["AlarmActions"] and a["OKActions"] and a["Period"] == 300


def test_seed_ssm_exports_and_every_output(default):
    cfg, _, tpl = default
    names = sorted(p["Properties"]["Name"] for p in res(tpl, "AWS::SSM::Parameter").values())
    assert names == [f"/shared/rds/prod/{n}" for n in ("connection-secret-arn", "database-name", "endpoint",
                                                       "master-password-secret-arn", "port")]
    params = {p["Properties"]["Name"]: p["Properties"]["Value"] for p in res(tpl, "AWS::SSM::Parameter").values()}
    assert params["/shared/rds/prod/connection-secret-arn"] == params["/shared/rds/prod/master-password-secret-arn"]
    outs = tpl["Outputs"]
    assert outs["ConnectionSecretArn"]["Value"] == outs["MasterPasswordSecretArn"]["Value"]
    for seed_name, out_id in OUTPUTS.items():
        assert out_id in outs and outs[out_id]["Description"] == seed_name
    assert outs["MasterPasswordSecretName"]["Value"] == "prod-shared-mysql-master-password"
    assert outs["DbInstanceName"]["Value"] == "shared_db"


def test_custom_values_reach_the_template(custom):
    cfg, _, tpl = custom
    db = res(tpl, "AWS::RDS::DBInstance")
    primary = next(v["Properties"] for v in db.values() if "SourceDBInstanceIdentifier" not in v["Properties"])
    assert primary["DBInstanceIdentifier"] == "staging-core-db" and primary["DBInstanceClass"] == "db.r6g.large"
    assert (primary["AllocatedStorage"], primary["MaxAllocatedStorage"]) == ("50", 500)
    assert primary["DBName"] == "core_db" and primary["BackupRetentionPeriod"] == 30
    assert primary["PreferredBackupWindow"] == "18:00-19:00"
    assert primary["PreferredMaintenanceWindow"] == "Sun:19:00-Sun:20:00"
    assert primary["KmsKeyId"] == "arn:aws:kms:us-west-2:111122223333:key/11111111-2222-3333-4444-555555555555"
    assert primary["EnablePerformanceInsights"] is True
    assert primary["PerformanceInsightsKMSKeyId"] == primary["KmsKeyId"]
    assert primary["MonitoringInterval"] == 30
    params = one(tpl, "AWS::RDS::DBParameterGroup")["Properties"]["Parameters"]
    assert (params["max_connections"], params["long_query_time"], params["require_secure_transport"]) == \
        ("500", "1", "1")
    gen = [s for s in res(tpl, "AWS::SecretsManager::Secret").values() if "GenerateSecretString" in s["Properties"]]
    assert json.loads(gen[0]["Properties"]["GenerateSecretString"]["SecretStringTemplate"]) == {"username": "dbadmin"}
    sgs = {v["Properties"].get("GroupName"): v["Properties"] for v in res(tpl, "AWS::EC2::SecurityGroup").values()}
    ingress = sgs["staging-core-db-sg"]["SecurityGroupIngress"]
    assert {r.get("SourceSecurityGroupId") for r in ingress} >= {"sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"}
    assert {r.get("CidrIp") for r in ingress} >= {"10.20.0.0/16"}
    sn = one(tpl, "AWS::RDS::DBSubnetGroup")["Properties"]
    assert len(sn["SubnetIds"]) == 3
    for g in res(tpl, "AWS::Logs::LogGroup").values():
        assert g["Properties"]["RetentionInDays"] == 90
    assert one(tpl, "AWS::SecretsManager::RotationSchedule")["Properties"]["RotationRules"]["ScheduleExpression"] \
        == "rate(14 days)"
    assert not res(tpl, "AWS::SNS::Topic")  # the given topic is used
    for a in res(tpl, "AWS::CloudWatch::Alarm").values():
        assert a["Properties"]["AlarmActions"] == ["arn:aws:sns:us-west-2:111122223333:db-alarms"]
    assert {"Key": "CostCenter", "Value": "platform"} in primary["Tags"]


def test_proxy_and_replica(custom):
    _, _, tpl = custom
    proxy = one(tpl, "AWS::RDS::DBProxy")["Properties"]
    assert proxy["RequireTLS"] is True and proxy["DBProxyName"] == "staging-core-db-proxy"
    assert proxy["EngineFamily"] == "MYSQL"
    tg = one(tpl, "AWS::RDS::DBProxyTargetGroup")["Properties"]["ConnectionPoolConfigurationInfo"]
    assert (tg["MaxConnectionsPercent"], tg["MaxIdleConnectionsPercent"], tg["ConnectionBorrowTimeout"]) == \
        (100, 50, 120)
    sgs = {v["Properties"].get("GroupName") for v in res(tpl, "AWS::EC2::SecurityGroup").values()}
    assert "staging-core-db-proxy-sg" in sgs
    assert any(p["Properties"]["Name"] == "/shared/rds/staging/proxy-endpoint"
               for p in res(tpl, "AWS::SSM::Parameter").values())
    assert "ProxyEndpoint" in tpl["Outputs"]
    # Tenants log in through the proxy (issue 15): its role reads the tenant secrets by name pattern + tags, never
    # `*`; IAM tenants go end to end with IAM, rds-db:connect for exactly their accounts.
    assert proxy["DefaultAuthScheme"] == "IAM_AUTH"
    role_id = proxy["RoleArn"]["Fn::GetAtt"][0]
    stmts = [st for p in res(tpl, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
             for st in p["Properties"]["PolicyDocument"]["Statement"]]
    tenant = next(st for st in stmts if st.get("Sid") == "TenantSecrets")
    assert tenant["Action"] == "secretsmanager:GetSecretValue"
    assert tenant["Condition"] == {"StringEquals": {"secretsmanager:ResourceTag/managed-by": "shared-mysql",
                                                    "secretsmanager:ResourceTag/instance": "core-db"}}
    assert "staging-*-db-*credentials-??????" in json.dumps(tenant["Resource"])
    for st in stmts:
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if any(a.startswith("secretsmanager:") for a in acts):
            assert st["Resource"] != "*"
    connect = next(st for st in stmts if st.get("Sid") == "IamTenantsConnect")
    assert [json.dumps(r).split("/")[-1].strip('"]}') for r in connect["Resource"]] == \
        ["billing_readonly", "billing_user"]
    replica = next(v["Properties"] for v in res(tpl, "AWS::RDS::DBInstance").values()
                   if "SourceDBInstanceIdentifier" in v["Properties"])
    assert replica["DBInstanceClass"] == "db.r6g.xlarge" and replica["PubliclyAccessible"] is False
    assert replica["StorageType"] == "gp3" and replica["DBInstanceIdentifier"] == "staging-core-db-replica"


def test_tenant_rotation_function_in_the_vpc_with_least_iam(rotating, default):
    cfg, r, tpl = rotating
    assert not res(default[2], "AWS::Lambda::Function") or all(  # off by default: only the master's hosted one
        "tenant-rotation" not in json.dumps(f) for f in res(default[2], "AWS::Lambda::Function").values())
    fn = next(v["Properties"] for v in res(tpl, "AWS::Lambda::Function").values()
              if v["Properties"].get("FunctionName") == "staging-core-db-tenant-rotation")
    assert fn["Handler"] == "shared_mysql.rotation.lambda_handler" and fn["Runtime"] == "python3.14"
    assert fn["Environment"]["Variables"] == {"SHARED_MYSQL_CA_BUNDLE": "/var/task/rds-ca.pem"}
    assert sorted(fn["VpcConfig"]["SubnetIds"]) == sorted(cfg.instance.private_subnet_ids)
    sgs = {v["Properties"].get("GroupName"): (k, v["Properties"]) for k, v in res(tpl, "AWS::EC2::SecurityGroup").items()}
    rot_id, rot = sgs["staging-core-db-rotation-sg"]
    db_id, _ = sgs["staging-core-db-sg"]
    egress = res(tpl, "AWS::EC2::SecurityGroupEgress")
    assert [(e["Properties"]["FromPort"], e["Properties"]["DestinationSecurityGroupId"]) for e in egress.values()
            if e["Properties"]["GroupId"] == {"Fn::GetAtt": [rot_id, "GroupId"]}] == \
        [(3306, {"Fn::GetAtt": [db_id, "GroupId"]})]
    assert [(e["CidrIp"], e["FromPort"]) for e in rot["SecurityGroupEgress"]] == [("0.0.0.0/0", 443)]
    ingress = res(tpl, "AWS::EC2::SecurityGroupIngress")
    assert any(i["Properties"]["SourceSecurityGroupId"] == {"Fn::GetAtt": [rot_id, "GroupId"]} and
               i["Properties"]["FromPort"] == 3306 for i in ingress.values())
    # IAM: the four steps on this instance's tenant secrets (by tag), the master's value, the key via SM only
    role_id = fn["Role"]["Fn::GetAtt"][0]
    stmts = [st for p in res(tpl, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
             for st in p["Properties"]["PolicyDocument"]["Statement"]]
    by_sid = {st.get("Sid"): st for st in stmts}
    four = by_sid["TenantSecretsFourSteps"]
    assert sorted(four["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                      "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]
    assert four["Condition"]["StringEquals"] == {"secretsmanager:ResourceTag/managed-by": "shared-mysql",
                                                 "secretsmanager:ResourceTag/instance": "core-db"}
    assert by_sid["TagRotatedAt"]["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["rotated-at"]}
    assert by_sid["MasterLogin"]["Action"] == "secretsmanager:GetSecretValue"
    assert by_sid["SecretsKey"]["Condition"]["StringEquals"]["kms:ViaService"] == "secretsmanager.us-west-2.amazonaws.com"
    actions = {a for st in stmts for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert not any(a.endswith("*") for a in actions) and "secretsmanager:DeleteSecret" not in actions
    perm = one(tpl, "AWS::Lambda::Permission")["Properties"]
    assert perm["Principal"] == "secretsmanager.amazonaws.com" and "SourceAccount" in perm
    ssm_names = {v["Properties"]["Name"] for v in res(tpl, "AWS::SSM::Parameter").values()}
    assert "/shared/rds/staging/rotation-function-arn" in ssm_names
    assert "TenantRotationFunctionArn" in tpl["Outputs"]
    logs = [v for v in res(tpl, "AWS::Logs::LogGroup").values()
            if v["Properties"]["LogGroupName"] == "/aws/lambda/staging-core-db-tenant-rotation"]
    assert logs and "KmsKeyId" in logs[0]["Properties"] and logs[0]["Properties"]["RetentionInDays"] == 90


def test_rotation_code_runs_from_the_asset_alone(rotating):
    """The function's code directory holds everything it imports: a Python with no site-packages imports the
    handler from it (no pydantic, no boto3 at import), and the CA bundle sits where the environment says."""
    _, r, tpl = rotating
    fn = next(v for v in res(tpl, "AWS::Lambda::Function").values()
              if v["Properties"].get("FunctionName") == "staging-core-db-tenant-rotation")
    asset = r.outdir / f"asset.{fn['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert (asset / "rds-ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    code = ("import sys; sys.path.insert(0, '.'); import shared_mysql.rotation as r, pymysql; "
            "assert callable(r.lambda_handler); assert 'pydantic' not in sys.modules and 'boto3' not in sys.modules")
    out = subprocess.run([sys.executable, "-S", "-I", "-B", "-c", code.replace("'.'", repr(str(asset)))],
                         capture_output=True, text=True, cwd=asset)
    assert out.returncode == 0, out.stderr


def test_rotation_schedule_without_a_ca_bundle_file_is_one_line(tmp_path):
    (tmp_path / "shared-mysql.yaml").write_text(EXAMPLE_AWS + "secrets: {rotation_schedule: true}\n")
    res_ = cli(["infra", "synth"], tmp_path)
    assert res_.returncode == 1 and len(res_.stderr.strip().splitlines()) == 1
    assert "instance.ca_bundle:" in res_.stderr and "rotation function verifies" in res_.stderr


@pytest.mark.parametrize("which", ["default", "custom", "rotating"])
def test_cfn_lint_and_cdk_nag_pass(which, request):
    _, r, _ = request.getfixturevalue(which)
    assert r.failures == [] and r.findings == [], r.findings  # only acknowledged rules, each with a reason
    assert set(ACKNOWLEDGED) <= set(r.acknowledged) and all(len(reason) > 40 for reason in r.acknowledged.values())
    if which == "rotating":  # the construct-level ones are listed too
        assert any("AwsSolutions-IAM5" in rule for rule in r.acknowledged)
    errors = [m for m in cfn_lint(r.templates) if m["level"] == "Error"]
    assert errors == []


def cli(args, cwd, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "SHARED_MYSQL_CONFIG"}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "shared_mysql", *args], cwd=cwd, capture_output=True, text=True,
                          env=e, timeout=300)


def test_init_aws_example_synthesises_and_passes_check(tmp_path):
    assert cli(["init", "--target", "aws"], tmp_path).returncode == 0
    res = cli(["infra", "check"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cdk-nag AwsSolutions: 0 failing" in res.stdout and "cfn-lint: 0 errors" in res.stdout
    assert "Node" not in res.stderr  # no jsii banner
    assert list((tmp_path / "cdk.out").glob("*.template.json"))


@pytest.mark.parametrize("edit,needle", [
    ("  instance_class: db.t4g.small", "performance_insights_enabled: RDS MySQL has no Performance Insights"),
    ("  allowed_cidr_blocks: [0.0.0.0/0]", "opens MySQL to the whole internet"),
])
def test_refused_before_synth(tmp_path, edit, needle):
    text = EXAMPLE_AWS.replace("  allowed_cidr_blocks: []\n", "").replace("  instance_class: db.t4g.small         "
                                                                          "# Performance Insights is off on this "
                                                                          "class (RDS does not offer it)\n", "")
    text = text.replace("instance:\n", "instance:\n" + edit + "\n" +
                        ("  performance_insights_enabled: true\n" if "t4g" in edit else ""))
    (tmp_path / "shared-mysql.yaml").write_text(text)
    res = cli(["infra", "synth"], tmp_path)
    assert res.returncode == 1 and needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not (tmp_path / "cdk.out").exists()


def test_missing_vpc_is_one_line(tmp_path):
    (tmp_path / "shared-mysql.yaml").write_text("target: aws\ninstance: {ca_bundle: ca.pem}\n")
    res = cli(["infra", "synth"], tmp_path)
    assert res.returncode == 1 and "instance.vpc_id: required by `infra`" in res.stderr


def test_diff_and_deploy_without_credentials(tmp_path):
    cli(["init", "--target", "aws"], tmp_path)
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    for cmd in (["infra", "diff"], ["infra", "deploy"]):
        res = cli(cmd, tmp_path, env)
        assert res.returncode == 1
        assert res.stderr.strip().splitlines() == [
            "error: no AWS credentials found; set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) to "
            "diff or deploy; `infra synth` and `infra check` work offline"]
