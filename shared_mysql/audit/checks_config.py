"""Config checks: the seed's pre-deploy checklist over the loaded model (what `shared-mysql infra` will deploy).
Most apply to target aws only: the embedded server and `server` targets have no RDS settings."""

from __future__ import annotations

import ipaddress

from ..config.model import NO_PERFORMANCE_INSIGHTS
from . import Fail, check

AWS = ("aws",)


@check("CFG-KMS-KEY", "config", "high", "Storage is encrypted with the platform's KMS key",
       "set instance.kms_key_id to the customer managed key ARN (or instance.rds_kms_key_parameter to its SSM name)",
       checkov="CKV_AWS_16", prowler="rds_instance_storage_encrypted", targets=AWS)
def kms_key(c):
    inst = c.instance
    if not inst.kms_key_id and not inst.rds_kms_key_parameter:
        yield Fail("instance.kms_key_id", "no KMS key: neither instance.kms_key_id nor rds_kms_key_parameter is set")
    elif inst.kms_key_id and inst.kms_key_id.endswith(("alias/aws/rds",)):
        yield Fail("instance.kms_key_id", "instance.kms_key_id is the AWS managed key alias/aws/rds: its policy cannot "
                                          "be restricted and snapshots encrypted with it cannot be shared safely")


@check("CFG-OPEN-CIDR", "config", "critical", "MySQL is not open to the internet",
       "remove 0.0.0.0/0 and ::/0 from instance.allowed_cidr_blocks; allow the services' security groups instead",
       checkov="CKV_AWS_17", prowler="ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_mysql_3306",
       targets=AWS)
def open_cidr(c):
    for cidr in c.instance.allowed_cidr_blocks:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0:
            yield Fail(f"instance.allowed_cidr_blocks {cidr}", f"{cidr} opens MySQL to the whole internet")


@check("CFG-PUBLIC-CIDR", "config", "medium", "Allowed CIDRs are private networks",
       "replace public ranges in instance.allowed_cidr_blocks with private ones (VPN, peering) or security groups",
       checkov="CKV_AWS_17", prowler="rds_instance_no_public_access", targets=AWS)
def public_cidr(c):
    for cidr in c.instance.allowed_cidr_blocks:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.prefixlen and not net.is_private:
            yield Fail(f"instance.allowed_cidr_blocks {cidr}", f"{cidr} is a public range: MySQL is reachable from "
                                                                "addresses outside the private network")


@check("CFG-SECURE-TRANSPORT", "config", "critical", "require_secure_transport stays on",
       "remove require_secure_transport from instance.parameters (shared-mysql forces it ON)",
       cis="CIS MySQL 8.0 8.1", checkov="CKV_AWS_382", prowler="rds_instance_transport_encrypted")
def config_tls(c):
    v = c.instance.parameters.get("require_secure_transport")
    if v is not None and str(v).lower() in ("0", "off", "false"):
        yield Fail("instance.parameters.require_secure_transport", "instance.parameters turns require_secure_transport "
                                                                   "off")


@check("CFG-DELETION-PROTECTION", "config", "high", "Deletion protection is on",
       "instance.deletion_protection: true", checkov="CKV_AWS_293", prowler="rds_instance_deletion_protection",
       targets=AWS)
def deletion_protection(c):
    if not c.instance.deletion_protection:
        yield Fail("instance.deletion_protection", "deletion_protection is false: one API call deletes the instance "
                                                   "and every tenant", None if c.environment == "prod" else "medium")


@check("CFG-MULTI-AZ", "config", "high", "Production runs Multi-AZ",
       "instance.multi_az: true", checkov="CKV_AWS_157", prowler="rds_instance_multi_az", targets=AWS)
def multi_az(c):
    if c.environment == "prod" and not c.instance.multi_az:
        yield Fail("instance.multi_az", "multi_az is false in prod: an AZ failure stops every tenant")


@check("CFG-BACKUP-RETENTION", "config", "high", "Backups are kept 14 days (30 in production)",
       "instance.backup_retention_period: 30  (the seed's checklist for production; 14 at least elsewhere)",
       checkov="CKV_AWS_133", prowler="rds_instance_backup_enabled", targets=AWS)
def backup_retention(c):
    days = c.instance.backup_retention_period
    if days == 0:
        yield Fail("instance.backup_retention_period", "backup_retention_period is 0: automated backups and "
                                                       "point-in-time recovery are off", "critical")
    elif days < 14:
        yield Fail("instance.backup_retention_period", f"backup_retention_period is {days} days, under the seed's 14")
    elif c.environment == "prod" and days < 30:
        yield Fail("instance.backup_retention_period", f"backup_retention_period is {days} days; the seed's checklist "
                                                       "asks 30 for production", "medium")


@check("CFG-FINAL-SNAPSHOT", "config", "high", "A final snapshot is kept on deletion",
       "instance.skip_final_snapshot: false", checkov="CKV_AWS_293", prowler="rds_instance_deletion_protection",
       targets=AWS)
def final_snapshot(c):
    if c.instance.skip_final_snapshot:
        yield Fail("instance.skip_final_snapshot", "skip_final_snapshot is true: deleting the stack loses the data")


@check("CFG-LOG-EXPORTS", "config", "medium", "Audit, error and slow query logs are exported",
       "instance.enabled_cloudwatch_logs_exports: [error, general, slowquery, audit]  (audit with the stack's "
       "MARIADB_AUDIT_PLUGIN option group)", checkov="CKV_AWS_129",
       prowler="rds_instance_integration_cloudwatch_logs", targets=AWS)
def log_exports(c):
    have = set(c.instance.enabled_cloudwatch_logs_exports)
    missing = [t for t in ("audit", "error", "slowquery") if t not in have]
    if missing:
        yield Fail("instance.enabled_cloudwatch_logs_exports", f"not exported to CloudWatch: {', '.join(missing)}",
                   "high" if "audit" in missing else None)


@check("CFG-PERFORMANCE-INSIGHTS", "config", "low", "Performance Insights is on where the class has it",
       "instance.performance_insights_enabled: true  (or leave it unset: on where the class supports it)",
       checkov="CKV_AWS_353", prowler="rds_instance_enhanced_monitoring_enabled", targets=AWS)
def performance_insights(c):
    inst = c.instance
    if inst.performance_insights_enabled is False and inst.instance_class not in NO_PERFORMANCE_INSIGHTS:
        yield Fail("instance.performance_insights_enabled", f"Performance Insights is off on {inst.instance_class}, "
                                                            "which has it")
    if inst.performance_insights_enabled and inst.instance_class in NO_PERFORMANCE_INSIGHTS:
        yield Fail("instance.performance_insights_enabled", f"{inst.instance_class} has no Performance Insights; the "
                                                            "deploy would fail", "medium")


@check("CFG-MONITORING", "config", "low", "Enhanced Monitoring is on",
       "instance.monitoring_interval: 60", checkov="CKV_AWS_118", prowler="rds_instance_enhanced_monitoring_enabled",
       targets=AWS)
def monitoring(c):
    if not c.instance.monitoring_interval:
        yield Fail("instance.monitoring_interval", "monitoring_interval is 0: no OS metrics (CPU steal, memory, "
                                                   "I/O) when a tenant misbehaves")


@check("CFG-ALARMS", "config", "medium", "Alarm thresholds are sane and reachable",
       "instance.alarms: thresholds as the seed's (CPU 80, storage 5 GiB, memory 256 MiB, connections 180 of 200, "
       "latency 0.1 s, failed logins 10)", prowler="cloudwatch_alarm_actions_enabled")
def alarms(c):
    a, inst = c.instance.alarms, c.instance
    if not 0 < a.cpu_utilization_threshold <= 100:
        yield Fail("instance.alarms.cpu_utilization_threshold", f"CPU threshold {a.cpu_utilization_threshold}% can "
                                                                 "never fire (or always does)")
    if a.database_connections_threshold >= inst.max_connections:
        yield Fail("instance.alarms.database_connections_threshold",
                   f"connections threshold {a.database_connections_threshold} is not below max_connections "
                   f"{inst.max_connections}: it fires only when the server already refuses connections")
    if a.free_storage_space_threshold <= 0 or a.freeable_memory_threshold <= 0:
        yield Fail("instance.alarms", "a storage or memory threshold of 0 never fires")
    if a.read_latency_threshold <= 0 or a.write_latency_threshold <= 0:
        yield Fail("instance.alarms", "a latency threshold of 0 always fires")


@check("CFG-ROTATION-PERIOD", "config", "medium", "Credentials rotate at least quarterly",
       "instance.secret_rotation_days / tenants.<name>.rotation_days: 90 or less (the seed: 30 for the master)",
       checkov="CKV2_AWS_57", prowler="secretsmanager_automatic_rotation_enabled")
def rotation_period(c):
    if c.instance.secret_rotation_days > 90:
        yield Fail("instance.secret_rotation_days", f"the master rotates every {c.instance.secret_rotation_days} days")
    for name, t in sorted(c.tenants.items()):
        if t.rotation_days and t.rotation_days > 90:
            yield Fail(f"tenants.{name}.rotation_days", f"tenant {name} rotates every {t.rotation_days} days")
