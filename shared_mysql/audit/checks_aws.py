"""AWS checks: one snapshot of boto3 reads (the instance, its parameter group, security groups, snapshots, KMS key,
secrets, alarms, SSM exports, CA certificate), then pure functions comparing it with the config. A read that fails
is kept as its error: the checks that need it become ERROR findings; the others still run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from ..infra.names import ALARM_KEYS, SEED_PARAMETERS, stack_security_group_names
from . import Fail, check

MYSQL_PORT = 3306


@dataclass
class AwsSnapshot:
    config: object
    data: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    now: float = 0.0

    def get(self, key: str):
        if key in self.errors:
            raise RuntimeError(f"reading {key} failed: {self.errors[key]}")
        return self.data.get(key)

    @property
    def instance(self) -> dict | None:
        return self.get("instance")


def aws_snapshot(config, now: float | None = None) -> AwsSnapshot:
    from ..aws import client_for, describe_error, error_code

    snap = AwsSnapshot(config, now=time.time() if now is None else now)
    name = config.db_instance_identifier

    def read(key, fn):
        try:
            snap.data[key] = fn()
        except Exception as exc:  # noqa: BLE001 - kept: the checks that need it report it
            snap.errors[key] = describe_error(exc)
            snap.data[key + ":code"] = error_code(exc)

    rds = client_for(config, "rds")

    def instance():
        try:
            return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "DBInstanceNotFound":
                return None
            raise

    read("instance", instance)
    db = snap.data.get("instance")
    if not db:
        return snap

    def pages(client, op, key, **kw):
        out = []
        for page in client.get_paginator(op).paginate(**kw):
            out += page.get(key, [])
        return out

    groups = [g["DBParameterGroupName"] for g in db.get("DBParameterGroups", [])]
    read("parameters", lambda: {p["ParameterName"]: p.get("ParameterValue") for g in groups
                                for p in pages(rds, "describe_db_parameters", "Parameters", DBParameterGroupName=g)})
    ec2 = client_for(config, "ec2")
    sg_ids = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])]
    read("security_groups", lambda: ec2.describe_security_groups(GroupIds=sg_ids)["SecurityGroups"] if sg_ids else [])

    def snapshots():
        out = []
        for s in pages(rds, "describe_db_snapshots", "DBSnapshots", DBInstanceIdentifier=name):
            s = dict(s)
            if s.get("SnapshotType") == "manual":
                attrs = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=s["DBSnapshotIdentifier"])
                s["restore"] = [v for a in attrs["DBSnapshotAttributesResult"].get("DBSnapshotAttributes", [])
                                if a.get("AttributeName") == "restore" for v in a.get("AttributeValues", [])]
            out.append(s)
        return out

    read("snapshots", snapshots)
    if db.get("KmsKeyId"):
        kms = client_for(config, "kms")
        read("kms_key", lambda: {**kms.describe_key(KeyId=db["KmsKeyId"])["KeyMetadata"],
                                 "RotationEnabled": kms.get_key_rotation_status(KeyId=db["KmsKeyId"])
                                 ["KeyRotationEnabled"]})
    sm = client_for(config, "secretsmanager")
    read("secrets", lambda: pages(sm, "list_secrets", "SecretList",
                                  Filters=[{"Key": "name", "Values": [f"{config.environment}-"]}]))
    cw = client_for(config, "cloudwatch")
    read("alarms", lambda: pages(cw, "describe_alarms", "MetricAlarms", AlarmNamePrefix=f"{name}-"))
    ssm = client_for(config, "ssm")
    read("exports", lambda: {p["Name"]: p["Value"] for p in pages(ssm, "get_parameters_by_path", "Parameters",
                                                                  Path=config.exports_prefix, Recursive=True)})
    if db.get("CACertificateIdentifier"):
        read("ca", lambda: rds.describe_certificates(
            CertificateIdentifier=db["CACertificateIdentifier"])["Certificates"][0])
    return snap


def _db(s: AwsSnapshot):
    return s.instance or {}


@check("AWS-INSTANCE-EXISTS", "aws", "critical", "The RDS instance exists",
       "shared-mysql infra deploy", prowler="rds_instance_deletion_protection", targets=("aws",))
def instance_exists(s: AwsSnapshot):
    if s.instance is None:
        yield Fail(f"rds {s.config.db_instance_identifier}", f"RDS instance {s.config.db_instance_identifier} not "
                                                              "found")


@check("AWS-STORAGE-ENCRYPTED", "aws", "critical", "The instance's storage is encrypted with the configured key",
       "restore an encrypted copy: snapshot, copy-db-snapshot --kms-key-id <key>, restore (RDS cannot encrypt in "
       "place)", checkov="CKV_AWS_16", prowler="rds_instance_storage_encrypted", targets=("aws",))
def storage_encrypted(s: AwsSnapshot):
    db = _db(s)
    if not db:
        return
    if not db.get("StorageEncrypted"):
        yield Fail(f"rds {db['DBInstanceIdentifier']}", "storage is not encrypted")
    want = s.config.instance.kms_key_id
    if want and db.get("StorageEncrypted") and db.get("KmsKeyId") != want:
        yield Fail(f"rds {db['DBInstanceIdentifier']}", f"storage is encrypted with {db.get('KmsKeyId')}, not "
                                                         f"instance.kms_key_id {want}", "high")


@check("AWS-PUBLIC-ACCESS", "aws", "critical", "The instance is not publicly accessible",
       "aws rds modify-db-instance --db-instance-identifier <id> --no-publicly-accessible --apply-immediately",
       checkov="CKV_AWS_17", prowler="rds_instance_no_public_access", targets=("aws",))
def public_access(s: AwsSnapshot):
    db = _db(s)
    if db and db.get("PubliclyAccessible"):
        yield Fail(f"rds {db['DBInstanceIdentifier']}", "PubliclyAccessible is true: the endpoint resolves to a "
                                                         "public address")


@check("AWS-INSTANCE-DRIFT", "aws", "medium", "The live instance matches the config",
       "shared-mysql infra diff, then shared-mysql infra deploy", prowler="rds_instance_multi_az",
       checkov="CKV_AWS_157", targets=("aws",))
def instance_drift(s: AwsSnapshot):
    db = _db(s)
    if not db:
        return
    inst = s.config.instance
    want = {"DBInstanceClass": inst.instance_class, "AllocatedStorage": inst.allocated_storage,
            "MultiAZ": inst.multi_az, "EngineVersion": inst.mysql_version, "Engine": "mysql",
            "BackupRetentionPeriod": inst.backup_retention_period, "DeletionProtection": inst.deletion_protection,
            "EnabledCloudwatchLogsExports": sorted(inst.enabled_cloudwatch_logs_exports)}
    severe = {"MultiAZ": "high", "BackupRetentionPeriod": "high", "DeletionProtection": "high",
              "EnabledCloudwatchLogsExports": "high"}
    for key, value in want.items():
        have = db.get(key)
        if key == "EnabledCloudwatchLogsExports":
            have = sorted(have or [])
        if key == "AllocatedStorage" and isinstance(have, int) and have >= value:
            continue  # storage autoscaling grows it past the config's starting size
        if have != value:
            yield Fail(f"rds {db['DBInstanceIdentifier']} {key}", f"{key} is {have}, the config says {value}",
                       severe.get(key))


@check("AWS-IAM-AUTH", "aws", "medium", "IAM database authentication is on",
       "aws rds modify-db-instance --db-instance-identifier <id> --enable-iam-database-authentication",
       checkov="CKV_AWS_161", prowler="rds_instance_iam_authentication_enabled", targets=("aws",))
def iam_auth(s: AwsSnapshot):
    db = _db(s)
    if db and not db.get("IAMDatabaseAuthenticationEnabled"):
        yield Fail(f"rds {db['DBInstanceIdentifier']}", "IAM database authentication is off")


@check("AWS-COPY-TAGS", "aws", "low", "Tags are copied to snapshots",
       "aws rds modify-db-instance --db-instance-identifier <id> --copy-tags-to-snapshot",
       checkov="CKV2_AWS_60", prowler="rds_instance_copy_tags_to_snapshots", targets=("aws",))
def copy_tags(s: AwsSnapshot):
    db = _db(s)
    if db and not db.get("CopyTagsToSnapshot"):
        yield Fail(f"rds {db['DBInstanceIdentifier']}", "CopyTagsToSnapshot is false: snapshots lose the owner tags")


@check("AWS-PARAMETERS", "aws", "high", "The parameter group holds the seed's values and requires TLS",
       "shared-mysql infra deploy  (the stack's parameter group; require_secure_transport = 1)",
       cis="CIS MySQL 8.0 8.1", prowler="rds_instance_transport_encrypted", checkov="CKV_AWS_382",
       targets=("aws",))
def parameters(s: AwsSnapshot):
    if not _db(s):
        return
    have = s.get("parameters") or {}
    if str(have.get("require_secure_transport")) not in ("1", "ON", "on"):
        yield Fail("parameter require_secure_transport", f"require_secure_transport is "
                                                         f"{have.get('require_secure_transport')!r}, not 1", "critical")
    from ..infra.names import param_value

    want = {**SEED_PARAMETERS, **{k: param_value(v) for k, v in s.config.instance.parameters.items()}}
    for k, v in sorted(want.items()):
        if k in have and str(have[k]) != v:
            yield Fail(f"parameter {k}", f"{k} is {have[k]!r}, the config says {v!r}", "medium")


def _port_open(rule: dict, port: int) -> bool:
    if rule.get("IpProtocol") == "-1":
        return True
    lo, hi = rule.get("FromPort"), rule.get("ToPort")
    return lo is not None and hi is not None and lo <= port <= hi


@check("AWS-SG-OPEN", "aws", "critical", "Security groups never open MySQL to 0.0.0.0/0 or ::/0",
       "aws ec2 revoke-security-group-ingress --group-id <sg> --protocol tcp --port 3306 --cidr 0.0.0.0/0",
       checkov="CKV_AWS_277", prowler="ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mysql_3306",
       targets=("aws",))
def sg_open(s: AwsSnapshot):
    if not _db(s):
        return
    port = _db(s).get("Endpoint", {}).get("Port") or s.config.instance.port or MYSQL_PORT
    for g in s.get("security_groups") or []:
        for rule in g.get("IpPermissions", []):
            if not _port_open(rule, port):
                continue
            for r in rule.get("IpRanges", []) + rule.get("Ipv6Ranges", []):
                cidr = r.get("CidrIp") or r.get("CidrIpv6")
                if cidr in ("0.0.0.0/0", "::/0"):
                    yield Fail(f"sg {g['GroupId']}", f"{g['GroupId']} allows port {port} from {cidr}")


@check("AWS-SG-SOURCES", "aws", "high", "MySQL is reachable only from the allowed groups and CIDRs",
       "revoke the extra ingress rule, or add the source to instance.allowed_security_group_ids / "
       "allowed_cidr_blocks and deploy", prowler="ec2_securitygroup_allow_ingress_from_internet_to_any_port",
       checkov="CKV_AWS_260", targets=("aws",))
def sg_sources(s: AwsSnapshot):
    if not _db(s):
        return
    inst = s.config.instance
    port = _db(s).get("Endpoint", {}).get("Port") or inst.port or MYSQL_PORT
    groups = s.get("security_groups") or []
    own = {g["GroupId"] for g in groups}
    stack_names = stack_security_group_names(s.config.db_instance_identifier)
    allowed_groups = set(inst.allowed_security_group_ids) | own
    allowed_cidrs = set(inst.allowed_cidr_blocks) | {"0.0.0.0/0", "::/0"}  # the open ones: AWS-SG-OPEN's
    for g in groups:
        for rule in g.get("IpPermissions", []):
            if not _port_open(rule, port):
                continue
            for pair in rule.get("UserIdGroupPairs", []):
                src = pair.get("GroupId")
                if src not in allowed_groups and pair.get("GroupName") not in stack_names \
                        and not (pair.get("Description") or "").startswith(("from the RDS Proxy",
                                                                             "from the tenant rotation")):
                    yield Fail(f"sg {g['GroupId']} <- {src}", f"{g['GroupId']} allows port {port} from {src}, which "
                                                               "is not in instance.allowed_security_group_ids")
            for r in rule.get("IpRanges", []) + rule.get("Ipv6Ranges", []):
                cidr = r.get("CidrIp") or r.get("CidrIpv6")
                if cidr not in allowed_cidrs:
                    yield Fail(f"sg {g['GroupId']} <- {cidr}", f"{g['GroupId']} allows port {port} from {cidr}, "
                                                                "which is not in instance.allowed_cidr_blocks")


@check("AWS-SNAPSHOT-ENCRYPTED", "aws", "critical", "Snapshots are encrypted",
       "copy the snapshot with --kms-key-id <key>, then delete the unencrypted one",
       checkov="CKV_AWS_266", prowler="rds_snapshots_encrypted", targets=("aws",))
def snapshot_encrypted(s: AwsSnapshot):
    if not _db(s):
        return
    for snap in s.get("snapshots") or []:
        if not snap.get("Encrypted"):
            yield Fail(f"snapshot {snap['DBSnapshotIdentifier']}", f"snapshot {snap['DBSnapshotIdentifier']} is "
                                                                   "not encrypted")


@check("AWS-SNAPSHOT-PUBLIC", "aws", "critical", "Snapshots are not shared publicly",
       "aws rds modify-db-snapshot-attribute --db-snapshot-identifier <id> --attribute-name restore "
       "--values-to-remove all", prowler="rds_snapshots_public_access", checkov="CKV_AWS_266", targets=("aws",))
def snapshot_public(s: AwsSnapshot):
    if not _db(s):
        return
    for snap in s.get("snapshots") or []:
        if "all" in snap.get("restore", []):
            yield Fail(f"snapshot {snap['DBSnapshotIdentifier']}", f"snapshot {snap['DBSnapshotIdentifier']} can be "
                                                                   "restored by any AWS account")


@check("AWS-KMS-ROTATION", "aws", "medium", "The instance's KMS key rotates",
       "aws kms enable-key-rotation --key-id <key>", checkov="CKV_AWS_7", prowler="kms_cmk_rotation_enabled",
       targets=("aws",))
def kms_rotation(s: AwsSnapshot):
    db = _db(s)
    if not db or not db.get("KmsKeyId"):
        return
    key = s.get("kms_key") or {}
    if key.get("KeyManager") == "CUSTOMER" and not key.get("RotationEnabled"):
        yield Fail(f"kms {key.get('KeyId')}", f"automatic rotation is off for key {key.get('KeyId')}")


def _secret_rotated(secret: dict) -> float | None:
    tags = {t["Key"]: t["Value"] for t in secret.get("Tags") or []}
    try:
        return float(tags["rotated-at"])
    except (KeyError, ValueError):
        pass
    for k in ("LastRotatedDate", "CreatedDate"):
        v = secret.get(k)
        if isinstance(v, datetime):
            return v.timestamp()
    return None


def _managed_secrets(s: AwsSnapshot) -> dict[str, dict]:
    c = s.config
    names = {c.master_secret_name}
    for t, tenant in c.tenants.items():
        names.add(f"{c.environment}-{t}-db-credentials")
        if tenant.readonly:
            names.add(f"{c.environment}-{t}-db-readonly-credentials")
    return {x["Name"]: x for x in s.get("secrets") or [] if x["Name"] in names and not x.get("DeletedDate")}


@check("AWS-SECRET-ROTATION", "aws", "high", "The master secret (and, when scheduled, tenant secrets) rotate",
       "shared-mysql infra deploy  (the master's rotation schedule); tenants: secrets.rotation_schedule + apply",
       checkov="CKV2_AWS_57", prowler="secretsmanager_automatic_rotation_enabled", targets=("aws",))
def secret_rotation(s: AwsSnapshot):
    if not _db(s):
        return
    secrets = _managed_secrets(s)
    master = secrets.get(s.config.master_secret_name)
    if master is None:
        yield Fail(f"secret {s.config.master_secret_name}", "the master secret does not exist")
    elif not master.get("RotationEnabled"):
        yield Fail(f"secret {s.config.master_secret_name}", "the master secret has no rotation schedule")
    if s.config.secrets.rotation_schedule:
        for name, x in sorted(secrets.items()):
            if name != s.config.master_secret_name and not x.get("RotationEnabled"):
                yield Fail(f"secret {name}", f"{name} has no rotation schedule (secrets.rotation_schedule is on: "
                                             "run apply)", "medium")


@check("AWS-SECRET-AGE", "aws", "medium", "Secrets were rotated within their period",
       "shared-mysql rotate --due  (--master for the master)", checkov="CKV2_AWS_57",
       prowler="secretsmanager_secret_rotated_periodically", targets=("aws",))
def secret_age(s: AwsSnapshot):
    c = s.config
    periods = {c.master_secret_name: c.instance.secret_rotation_days}
    for t, tenant in c.tenants.items():
        days = tenant.rotation_days or c.instance.secret_rotation_days
        periods[f"{c.environment}-{t}-db-credentials"] = days
        periods[f"{c.environment}-{t}-db-readonly-credentials"] = days
    for name, x in sorted(_managed_secrets(s).items()):
        when = _secret_rotated(x)
        if when is not None and (s.now - when) / 86400 > periods[name]:
            yield Fail(f"secret {name}", f"{name} was last rotated {(s.now - when) / 86400:.0f} days ago (period "
                                         f"{periods[name]} days)")


@check("AWS-ALARMS", "aws", "medium", "The six alarms exist with the configured thresholds and an action",
       "shared-mysql infra deploy", prowler="cloudwatch_alarm_actions_enabled", targets=("aws",))
def alarms(s: AwsSnapshot):
    if not _db(s):
        return
    name = s.config.db_instance_identifier
    a = s.config.instance.alarms
    have = {x["AlarmName"]: x for x in s.get("alarms") or []}
    for key, attr in ALARM_KEYS.items():
        alarm = have.get(f"{name}-{key}")
        if alarm is None:
            yield Fail(f"alarm {name}-{key}", f"alarm {name}-{key} does not exist")
            continue
        want = float(getattr(a, attr))
        if float(alarm.get("Threshold", -1)) != want:
            yield Fail(f"alarm {name}-{key}", f"alarm {name}-{key} threshold is {alarm.get('Threshold')}, the config "
                                              f"says {want:g}")
        if not alarm.get("AlarmActions") or not alarm.get("ActionsEnabled", True):
            yield Fail(f"alarm {name}-{key}", f"alarm {name}-{key} has no enabled action: nobody is told")


@check("AWS-SSM-EXPORTS", "aws", "low", "The SSM exports exist and point at what exists",
       "shared-mysql infra deploy (instance-level names) and shared-mysql apply (tenants)",
       prowler="ssm_documents_set_as_public", targets=("aws",))
def ssm_exports(s: AwsSnapshot):
    db = _db(s)
    if not db:
        return
    p = s.config.exports_prefix
    have = s.get("exports") or {}
    address = (db.get("Endpoint") or {}).get("Address")
    for key in ("endpoint", "port", "master-password-secret-arn"):
        if f"{p}/{key}" not in have:
            yield Fail(f"ssm {p}/{key}", f"{p}/{key} is missing")
    if address and have.get(f"{p}/endpoint") not in (None, address):
        yield Fail(f"ssm {p}/endpoint", f"{p}/endpoint is {have[f'{p}/endpoint']}, the instance is at {address}")
    arns = {x["ARN"] for x in s.get("secrets") or [] if not x.get("DeletedDate")}
    for name, value in sorted(have.items()):
        if name.endswith("secret-arn") and value not in arns:
            yield Fail(f"ssm {name}", f"{name} points at {value}, which is not an existing secret")


@check("AWS-CA-EXPIRY", "aws", "high", "The instance's CA certificate is valid for 90 more days",
       "aws rds modify-db-instance --db-instance-identifier <id> --ca-certificate-identifier rds-ca-rsa2048-g1",
       checkov="CKV_AWS_211", prowler="rds_instance_certificate_expiration", targets=("aws",))
def ca_expiry(s: AwsSnapshot):
    db = _db(s)
    if not db or not db.get("CACertificateIdentifier"):
        return
    ca = s.get("ca") or {}
    until = ca.get("ValidTill")
    if isinstance(until, datetime):
        days = (until.timestamp() - s.now) / 86400
        if days < 90:
            yield Fail(f"ca {db['CACertificateIdentifier']}", f"CA {db['CACertificateIdentifier']} expires in "
                                                               f"{days:.0f} days", "critical" if days < 0 else None)
