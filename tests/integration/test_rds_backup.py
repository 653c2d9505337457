"""Issue 13 (AWS part): RDS snapshots, PITR restore into a new instance, and `backup test` on aws, against moto's
RDS with real local servers: one stands in for the source instance, a second for the restored instance. moto
restores instantly and copies no data, so the test does what RDS does at restore time: it copies the source's
tenant databases and the tool's marker table (plain SQL) into the stand-in, and creates the master account there
with the same password, nothing more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import yaml
from moto import mock_aws

from shared_mysql import aws as aws_mod
from shared_mysql.backup import rds as R
from shared_mysql.backup import rds_drill as D
from shared_mysql.config.load import load_config
from shared_mysql.db import ConnectionInfo, PyMySQLExecutor, connect
from shared_mysql.errors import SharedMySQLError, UsageError
from shared_mysql.target import open_target

MASTER = "rdsmaster"
SOURCE = "test-remote"
FAST = {"poll": 0.01, "sleep": time.sleep}


def sql(conn, *stmts, args=None):
    with conn.cursor() as cur:
        for s in stmts:
            cur.execute(s, args)
        return cur.fetchall()


@pytest.fixture
def world(instance_factory, tmp_path, monkeypatch):
    """moto: KMS key, VPC + subnets + security group, subnet/parameter/option groups, the encrypted source instance
    `test-remote` (tagged, deletion protection, 14-day retention). Local: the source server with `rdsmaster` and
    two tenants' data, and an aws config for it with the master credential imported."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "ap-northeast-2"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    src = instance_factory({})
    with mock_aws():
        aws_mod.session.cache_clear()
        kms = boto3.client("kms")
        kms.create_alias(AliasName="alias/secrets-manager", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        key = kms.create_key(Description="rds")["KeyMetadata"]["Arn"]
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        sg = ec2.create_security_group(GroupName="shared-mysql-sg", Description="db", VpcId=vpc)["GroupId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"ap-northeast-2{z}")
                   ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        rds = boto3.client("rds")
        rds.create_db_subnet_group(DBSubnetGroupName="shared-mysql-subnets", DBSubnetGroupDescription="d",
                                   SubnetIds=subnets)
        rds.create_db_parameter_group(DBParameterGroupName="mysql80-ssl-required", DBParameterGroupFamily="mysql8.0",
                                      Description="d")
        rds.create_option_group(OptionGroupName="shared-mysql-audit", EngineName="mysql", MajorEngineVersion="8.0",
                                OptionGroupDescription="d")
        base = dict(Engine="mysql", EngineVersion="8.0.35", DBInstanceClass="db.t4g.small", MasterUsername=MASTER,
                    MasterUserPassword="x" * 16, AllocatedStorage=30, BackupRetentionPeriod=14)
        rds.create_db_instance(DBInstanceIdentifier=SOURCE, StorageEncrypted=True, KmsKeyId=key,
                               DBParameterGroupName="mysql80-ssl-required", OptionGroupName="shared-mysql-audit",
                               DBSubnetGroupName="shared-mysql-subnets", VpcSecurityGroupIds=[sg], MultiAZ=True,
                               EnableIAMDatabaseAuthentication=True, CopyTagsToSnapshot=True, DeletionProtection=True,
                               Port=3306, Tags=[{"Key": "team", "Value": "platform"},
                                                {"Key": "cost-center", "Value": "db"}], **base)
        rds.create_db_instance(DBInstanceIdentifier="test-other", StorageEncrypted=True, KmsKeyId=key, **base)
        rds.create_db_instance(DBInstanceIdentifier="test-plain", **base)  # unencrypted
        local = src.target()
        with local.executor() as ex:
            ex.query(f"CREATE USER '{MASTER}'@'%' IDENTIFIED BY 'first-Password-1' REQUIRE SSL")
            ex.query(f"GRANT ALL PRIVILEGES ON *.* TO '{MASTER}'@'%' WITH GRANT OPTION")
            for db in ("orders_db", "billing_db"):
                ex.query(f"CREATE DATABASE {db}")
                ex.query(f"CREATE TABLE {db}.items (id INT PRIMARY KEY, v VARCHAR(40), t TIMESTAMP NULL)")
                ex.query(f"INSERT INTO {db}.items VALUES " + ",".join(
                    f"({i}, 'v{i}', '2026-01-0{1 + i % 9} 10:00:00')" for i in range(1, 201)))
            ex.query("CREATE TABLE orders_db.empty (id INT PRIMARY KEY)")
        for ident in ("remote", "plain"):
            doc = {"environment": "test", "identifier": ident, "target": "aws",
                   "instance": {"host": "127.0.0.1", "port": src.port, "ca_bundle": str(local.ca),
                                "master_username": MASTER},
                   "tenants": {"orders": {"max_connections": 2}, "billing": {"max_connections": 2}}}
            (tmp_path / f"{ident}.yaml").write_text(yaml.safe_dump(doc))
        t = open_target(load_config(tmp_path / "remote.yaml"))
        assert t.import_master({"username": MASTER, "password": "first-Password-1"}) is None
        # UPDATE_TIME has whole seconds: a table written in the same second as a backup test's snapshot is rightly
        # "not compared". The tests' own writes are done; the next second starts clean.
        time.sleep(1.01 - time.time() % 1.0)
        yield {"dir": tmp_path, "src": src, "key": key, "sg": sg, "rds": rds, "config": tmp_path / "remote.yaml"}
        aws_mod.session.cache_clear()


def target(world, name="remote"):
    return open_target(load_config(world["dir"] / f"{name}.yaml"))


def describe(rds, ident):
    db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    db.pop("LatestRestorableTime", None)  # RDS moves it forward by itself
    return db


class Recorder:
    """moto's RDS client; every call recorded; `on_restore(kw)` runs where RDS would restore the data."""

    def __init__(self, real, on_restore=None):
        self.real, self.on_restore, self.calls = real, on_restore, []

    def __getattr__(self, name):
        attr = getattr(self.real, name)
        if not callable(attr) or name.startswith(("get_", "can_")):
            return attr

        def call(**kw):
            self.calls.append((name, kw))
            out = attr(**kw)
            if name.startswith("restore_db_instance") and self.on_restore:
                self.on_restore(kw)
            return out

        return call


ORIGINAL_CLIENT_FOR = aws_mod.client_for


def patch_rds(monkeypatch, recorder_factory):
    holder = {}

    def client_for(config, name):
        c = ORIGINAL_CLIENT_FOR(config, name)
        if name != "rds":
            return c
        holder.setdefault("rds", recorder_factory(c))
        holder["rds"].real = c
        return holder["rds"]

    monkeypatch.setattr(aws_mod, "client_for", client_for)
    return holder


# -- snapshots ---------------------------------------------------------------------------------------------------
def test_snapshot_create_is_named_tagged_encrypted_and_the_same_minute_twice_gets_a_suffix(world):
    t = target(world)
    now = datetime(2026, 11, 26, 10, 15, 42, tzinfo=timezone.utc)
    seen = []
    s = R.create_snapshot(t, "before-migration", now=now, progress=lambda *a: seen.append(a), **FAST)
    assert s["id"] == "test-remote-before-migration-20261126-1015" and s["status"] == "available"
    assert s["encrypted"] and s["kms_key"] == world["key"] and seen and seen[-1][0] == "available"
    tags = {x["Key"]: x["Value"] for x in world["rds"].describe_db_snapshots(
        DBSnapshotIdentifier=s["id"])["DBSnapshots"][0]["TagList"]}
    assert tags["managed-by"] == "shared-mysql" and tags["environment"] == "test" and tags["instance"] == SOURCE
    assert tags["reason"] == "before-migration" and tags["created-by"] == R.operator()
    again = R.create_snapshot(t, "before-migration", now=now, **FAST)
    assert again["id"] == "test-remote-before-migration-20261126-1015-2"


def test_a_snapshot_of_an_unencrypted_instance_is_refused_with_the_fix(world):
    with pytest.raises(R.RdsError) as e:
        R.create_snapshot(target(world, "plain"), "manual", **FAST)
    msg = str(e.value)
    assert "NOT encrypted" in msg and "copy-db-snapshot" in msg and "--kms-key-id" in msg and "\n" not in msg


@pytest.mark.parametrize("reason", ["Before", "a\nb", "it's", "a--b", "-x", "x-", "", "a" * 33, "a b", "ü"])
def test_hostile_reasons_are_refused_before_any_aws_call(world, monkeypatch, reason):
    holder = patch_rds(monkeypatch, lambda c: Recorder(c))
    with pytest.raises(UsageError) as e:
        R.create_snapshot(target(world), reason, **FAST)
    assert "\n" not in str(e.value) and "--reason" in str(e.value)
    assert not holder  # no RDS client was even made


def test_list_shows_manual_and_automated_sorted_with_the_pitr_window(world):
    t = target(world)
    R.create_snapshot(t, "manual", **FAST)
    r = R.list_snapshots(t)
    types = [s["type"] for s in r["snapshots"]]
    assert types == ["automated", "manual"]  # the automated one is made with the instance, so it is older
    assert all(s["instance"] == SOURCE and s["encrypted"] for s in r["snapshots"])
    assert r["pitr"]["retention_days"] == 14
    assert r["pitr"]["earliest"] == r["snapshots"][0]["created"] and r["pitr"]["latest"] >= r["pitr"]["earliest"]
    other = world["rds"].create_db_snapshot(DBInstanceIdentifier="test-other", DBSnapshotIdentifier="other-snap")
    assert other and "other-snap" not in [s["id"] for s in R.list_snapshots(t)["snapshots"]]


def test_delete_refuses_automated_and_other_instances_snapshots(world):
    t = target(world)
    rds = world["rds"]
    rds.create_db_snapshot(DBInstanceIdentifier="test-other", DBSnapshotIdentifier="test-other-manual-1")
    auto = next(s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(DBInstanceIdentifier=SOURCE)["DBSnapshots"]
                if s["SnapshotType"] == "automated")
    for sid, needle in ((auto, "automated"), ("test-other-manual-1", "belongs to instance test-other"),
                        ("nope-1", "does not exist"), ("x;drop", "not a snapshot identifier"),
                        ("a\nb", "not a snapshot identifier")):
        with pytest.raises(UsageError) as e:
            R.delete_snapshot(t, sid, **FAST)
        assert needle in str(e.value) and "\n" not in str(e.value)
    assert rds.describe_db_snapshots(DBSnapshotIdentifier="test-other-manual-1")["DBSnapshots"]
    assert rds.describe_db_snapshots(DBSnapshotIdentifier=auto)["DBSnapshots"]
    s = R.create_snapshot(t, "manual", **FAST)
    assert R.delete_snapshot(t, s["id"], **FAST)["deleted"]
    assert s["id"] not in [x["id"] for x in R.list_snapshots(t)["snapshots"]]


# -- restore -----------------------------------------------------------------------------------------------------
def test_restore_to_time_copies_the_settings_checks_the_key_and_never_touches_the_source(world, monkeypatch):
    rds = world["rds"]
    before = describe(rds, SOURCE)
    holder = patch_rds(monkeypatch, lambda c: Recorder(c))
    t = target(world)
    when = rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["LatestRestorableTime"]
    r = R.restore_instance(t, "test-remote-restored", to_time=when, tags={"ticket": "INC-42"}, **FAST)
    assert r["status"] == "available" and r["endpoint"] and r["port"] == 3306 and r["encrypted"]
    assert r["kms_key"] == world["key"] and r["warnings"] == []
    assert any("instance.host" in h for h in r["cut_over"]) and any("/endpoint" in h for h in r["cut_over"])
    [(name, kw)] = [c for c in holder["rds"].calls if c[0].startswith("restore_")]
    assert name == "restore_db_instance_to_point_in_time" and kw["SourceDBInstanceIdentifier"] == SOURCE
    assert kw["RestoreTime"] == when.replace(microsecond=0) and "KmsKeyId" not in kw  # to the second
    assert {k: kw[k] for k in ("DBParameterGroupName", "OptionGroupName", "DBSubnetGroupName", "VpcSecurityGroupIds",
                               "DBInstanceClass", "MultiAZ", "Port", "EnableIAMDatabaseAuthentication",
                               "CopyTagsToSnapshot", "DeletionProtection")} == {
        "DBParameterGroupName": "mysql80-ssl-required", "OptionGroupName": "shared-mysql-audit",
        "DBSubnetGroupName": "shared-mysql-subnets", "VpcSecurityGroupIds": [world["sg"]],
        "DBInstanceClass": "db.t4g.small", "MultiAZ": True, "Port": 3306, "EnableIAMDatabaseAuthentication": True,
        "CopyTagsToSnapshot": True, "DeletionProtection": True}
    new = rds.describe_db_instances(DBInstanceIdentifier="test-remote-restored")["DBInstances"][0]
    assert new["DBParameterGroups"][0]["DBParameterGroupName"] == "mysql80-ssl-required"
    assert new["OptionGroupMemberships"][0]["OptionGroupName"] == "shared-mysql-audit"
    assert new["DBSubnetGroup"]["DBSubnetGroupName"] == "shared-mysql-subnets"
    assert [g["VpcSecurityGroupId"] for g in new["VpcSecurityGroups"]] == [world["sg"]]
    assert new["KmsKeyId"] == world["key"] and new["StorageEncrypted"] and new["DeletionProtection"]
    tags = {x["Key"]: x["Value"] for x in new["TagList"]}
    assert tags["team"] == "platform" and tags["cost-center"] == "db" and tags["ticket"] == "INC-42"
    assert tags["restored-from"] == SOURCE and tags["restore-time"] == R.iso(when)
    # The source: only ever described.
    assert describe(rds, SOURCE) == before
    touched = [(n, kw) for n, kw in holder["rds"].calls if not n.startswith(("describe_", "list_"))]
    assert all(SOURCE != kw.get("DBInstanceIdentifier") for n, kw in touched)


def test_restore_from_a_snapshot_and_deletion_protection_as_asked(world):
    t = target(world)
    s = R.create_snapshot(t, "manual", **FAST)
    r = R.restore_instance(t, "test-remote-from-snap", snapshot_id=s["id"], deletion_protection=False, **FAST)
    new = world["rds"].describe_db_instances(DBInstanceIdentifier="test-remote-from-snap")["DBInstances"][0]
    assert r["snapshot"] == s["id"] and new["KmsKeyId"] == world["key"] and not new["DeletionProtection"]
    assert {x["Key"]: x["Value"] for x in new["TagList"]}["restored-from"] == s["id"]


def test_restore_refuses_a_snapshot_under_another_key_or_unencrypted_and_warns_for_an_unencrypted_source(world):
    """Review: `restore --snapshot` took a copy re-encrypted with a foreign key, and an unencrypted one, that
    `snapshot create` refuses to rely on."""
    t = target(world)
    s = R.create_snapshot(t, "manual", **FAST)
    kms = boto3.client("kms")
    other = kms.create_key(Description="someone else's")["KeyMetadata"]["Arn"]
    world["rds"].copy_db_snapshot(SourceDBSnapshotIdentifier=s["id"], TargetDBSnapshotIdentifier="foreign-copy",
                                  KmsKeyId=other)
    with pytest.raises(R.RdsError, match="not the instance's"):
        R.restore_instance(t, "test-remote-foreign", snapshot_id="foreign-copy", **FAST)
    assert R.instance_exists(world["rds"], "test-remote-foreign") is None  # refused before anything was made
    plain = target(world, "plain")
    r = R.restore_instance(plain, "test-plain-restored", use_latest=True, **FAST)
    assert any("is not encrypted, so neither is test-plain-restored" in w for w in r["warnings"])


def test_restore_refuses_times_outside_the_window_bad_names_the_source_and_others_snapshots(world, monkeypatch):
    t = target(world)
    rds = world["rds"]
    rds.create_db_snapshot(DBInstanceIdentifier="test-other", DBSnapshotIdentifier="test-other-manual-2")
    holder = patch_rds(monkeypatch, lambda c: Recorder(c))
    now = datetime.now(timezone.utc)
    cases = [
        (dict(new_id="test-r1", to_time=now - timedelta(days=30)), "outside test-remote's restorable window"),
        (dict(new_id="test-r1", to_time=now + timedelta(hours=1)), "outside test-remote's restorable window"),
        (dict(new_id=SOURCE, use_latest=True), "that is the source instance"),
        (dict(new_id="TEST-REMOTE", use_latest=True), "that is the source instance"),
        (dict(new_id="test-other", use_latest=True), "exists already"),
        (dict(new_id="1abc", use_latest=True), "not a valid RDS identifier"),
        (dict(new_id="a--b", use_latest=True), "not a valid RDS identifier"),
        (dict(new_id="ab-", use_latest=True), "not a valid RDS identifier"),
        (dict(new_id="a" * 64, use_latest=True), "not a valid RDS identifier"),
        (dict(new_id="a\nb", use_latest=True), "not a valid RDS identifier"),
        (dict(new_id="test-r1", snapshot_id="test-other-manual-2"), "belongs to instance test-other"),
        (dict(new_id="test-r1"), "exactly one of"),
        (dict(new_id="test-r1", use_latest=True, snapshot_id="x"), "exactly one of"),
    ]
    for kw, needle in cases:
        with pytest.raises(SharedMySQLError) as e:
            R.restore_instance(t, **kw, **FAST)
        assert needle in str(e.value) and "\n" not in str(e.value), (kw, str(e.value))
    assert not [c for c in holder["rds"].calls if c[0].startswith(("restore_", "modify_", "delete_"))]


# -- backup test -------------------------------------------------------------------------------------------------
class StandIn:
    """A second local server standing in for the restored instance. `copy()` does what RDS's restore does to the
    data (the source's tenant databases and the marker table as they are now, and the master account)."""

    def __init__(self, instance_factory, world):
        self.server = instance_factory({})
        self.world = world
        self.copies = 0

    def admin(self):
        return connect(self.server.target().admin_info())

    def copy(self, kw=None):
        src_t = target(self.world)
        src = connect(src_t.admin_info())
        dst = self.admin()
        try:
            pw = src_t.master_secret()["password"]
            sql(dst, f"CREATE USER IF NOT EXISTS '{MASTER}'@'%' IDENTIFIED BY '{pw}' REQUIRE SSL",
                f"GRANT ALL PRIVILEGES ON *.* TO '{MASTER}'@'%' WITH GRANT OPTION")
            for db in ("orders_db", "billing_db", "shared_mysql"):
                sql(dst, f"DROP DATABASE IF EXISTS `{db}`", f"CREATE DATABASE `{db}`")
                for (name,) in sql(src, f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{db}' "
                                        "AND TABLE_TYPE='BASE TABLE'"):
                    if db == "shared_mysql" and name != "restore_marker":
                        continue
                    create = sql(src, f"SHOW CREATE TABLE `{db}`.`{name}`")[0][1]
                    sql(dst, f"USE `{db}`", create)
                    rows = sql(src, f"SELECT * FROM `{db}`.`{name}`")
                    if rows:
                        marks = ",".join(["%s"] * len(rows[0]))
                        with dst.cursor() as cur:
                            cur.executemany(f"INSERT INTO `{db}`.`{name}` VALUES ({marks})", rows)
        finally:
            src.close()
            dst.close()
        self.copies += 1

    def connect(self, info: ConnectionInfo):
        """The test's only redirection: the restored instance's address and CA are the stand-in's."""
        self.infos = getattr(self, "infos", []) + [info]
        return PyMySQLExecutor.open(replace(info, host="127.0.0.1", port=self.server.port,
                                            ca=str(self.server.target().ca)))


def temp_instances(rds):
    return [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
            if "-bt-" in d["DBInstanceIdentifier"]]


def test_backup_test_restores_verifies_reports_and_deletes_the_temporary_instance(world, instance_factory,
                                                                                  monkeypatch):
    stand = StandIn(instance_factory, world)
    holder = patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=stand.copy))
    t = target(world)
    r = D.aws_backup_test(t, connect=stand.connect, **FAST)
    assert r["ok"], r["problems"]
    assert r["marker_found"] and r["compared"] == 3 and r["tables"] == 3 and r["not_compared"] == []
    assert r["rows"] == 400 and r["temp_deleted"] and stand.copies == 1
    assert r["instance"].startswith("test-remote-bt-") and r["rto_s"] >= r["restore_s"] >= 0
    assert r["rpo_s"] is not None and r["marker_wait_s"] is not None
    # Logged in with the master credential, verified TLS against the target's CA bundle.
    info = stand.infos[0]
    assert info.user == MASTER and info.password == t.master_secret()["password"] and info.ca == t.ca
    [(_, kw)] = [c for c in holder["rds"].calls if c[0] == "restore_db_instance_to_point_in_time"]
    assert kw["TargetDBInstanceIdentifier"] == r["instance"] and kw["DeletionProtection"] is False
    assert kw["RestoreTime"] == datetime.strptime(r["restore_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    tags = {x["Key"]: x["Value"] for x in kw["Tags"]}
    assert tags[D.TAG_PURPOSE] == "backup-test" and tags[D.TAG_SOURCE] == SOURCE
    assert tags[D.TAG_OWNER] == f"{R.operator()} {os.getpid()}" and float(tags[D.TAG_EXPIRES]) > 0
    [(_, dkw)] = [c for c in holder["rds"].calls if c[0] == "delete_db_instance"]
    assert dkw == {"DBInstanceIdentifier": r["instance"], "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True}
    assert temp_instances(world["rds"]) == [] and world["rds"].describe_db_instances(DBInstanceIdentifier=SOURCE)


def test_a_difference_fails_the_test_and_the_temporary_instance_is_still_deleted(world, instance_factory,
                                                                                 monkeypatch):
    stand = StandIn(instance_factory, world)

    def restore_with_a_lost_row(kw):
        stand.copy(kw)
        c = stand.admin()
        sql(c, "UPDATE billing_db.items SET v = 'corrupted' WHERE id = 7")
        c.close()

    patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=restore_with_a_lost_row))
    r = D.aws_backup_test(target(world), connect=stand.connect, **FAST)
    assert not r["ok"] and r["temp_deleted"] and temp_instances(world["rds"]) == []
    assert len(r["problems"]) == 1 and r["problems"][0].startswith("billing_db.items: source 200 rows")


def test_a_missing_marker_fails(world, instance_factory, monkeypatch):
    stand = StandIn(instance_factory, world)

    def restore_too_early(kw):
        stand.copy(kw)
        c = stand.admin()
        sql(c, "DELETE FROM shared_mysql.restore_marker")
        c.close()

    patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=restore_too_early))
    r = D.aws_backup_test(target(world), connect=stand.connect, **FAST)
    assert not r["ok"] and not r["marker_found"] and "marker" in r["problems"][0] and r["temp_deleted"]


def test_tables_written_after_the_restore_point_are_reported_not_compared(world, instance_factory, monkeypatch):
    """An insert the restore includes, undone on the source before the re-read: S1 == S2, yet the restore differs.
    UPDATE_TIME is what tells; the table is 'changed since T, not compared', and the test passes."""
    stand = StandIn(instance_factory, world)
    src = world["src"]

    def writes_around_the_restore(kw):
        c = connect(src.target().admin_info())
        sql(c, "INSERT INTO orders_db.items VALUES (9999, 'late', NULL)")
        stand.copy(kw)
        sql(c, "DELETE FROM orders_db.items WHERE id = 9999")
        c.close()

    patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=writes_around_the_restore))
    r = D.aws_backup_test(target(world), connect=stand.connect, **FAST)
    assert r["ok"], r["problems"]
    assert r["compared"] == 2 and len(r["not_compared"]) == 1
    assert r["not_compared"][0].startswith("orders_db.items: changed since ") and "not compared" in r["not_compared"][0]


def test_an_interrupted_backup_test_deletes_its_instance(world, instance_factory, monkeypatch):
    stand = StandIn(instance_factory, world)
    patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=stand.copy))

    def ctrl_c(status, percent, elapsed):
        if status.startswith("restoring"):
            assert temp_instances(world["rds"])  # it exists at this point
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        D.aws_backup_test(target(world), connect=stand.connect, progress=ctrl_c, **FAST)
    assert temp_instances(world["rds"]) == []


def _temp(rds, ident, owner, expires, source=SOURCE, purpose="backup-test"):
    rds.create_db_instance(DBInstanceIdentifier=ident, Engine="mysql", DBInstanceClass="db.t4g.small",
                           MasterUsername=MASTER, MasterUserPassword="x" * 16, AllocatedStorage=30,
                           Tags=[{"Key": D.TAG_PURPOSE, "Value": purpose}, {"Key": D.TAG_SOURCE, "Value": source},
                                 {"Key": D.TAG_OWNER, "Value": owner}, {"Key": D.TAG_EXPIRES, "Value": str(expires)}])


def test_leftovers_of_dead_runs_are_deleted_and_live_runs_instances_are_not(world, instance_factory, monkeypatch):
    rds = world["rds"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    later, earlier = 2_000_000_000 + 0, 1_000_000_000
    try:
        _temp(rds, "test-remote-bt-202601010000", f"{R.operator()} {dead.pid}", later)      # ours, pid gone
        _temp(rds, "test-remote-bt-202601010001", f"{R.operator()} {live.pid}", later)      # a live run here
        _temp(rds, "test-remote-bt-202601010002", "alice@build-7 4242", later)              # another host's
        _temp(rds, "test-remote-bt-202601010003", "alice@build-7 4242", earlier)            # expired
        _temp(rds, "test-other-bt-202601010004", f"{R.operator()} {dead.pid}", earlier, source="test-other")
        _temp(rds, "test-remote-keep", f"{R.operator()} {dead.pid}", earlier, purpose="something-else")
        stand = StandIn(instance_factory, world)
        patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=stand.copy))
        r = D.aws_backup_test(target(world), connect=stand.connect, **FAST)
        assert r["ok"], r["problems"]
        assert sorted(x["instance"] for x in r["leftovers_deleted"]) == ["test-remote-bt-202601010000",
                                                                        "test-remote-bt-202601010003"]
        left = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
        assert {"test-remote-bt-202601010001", "test-remote-bt-202601010002", "test-other-bt-202601010004",
                "test-remote-keep"} <= left
        assert "test-remote-bt-202601010000" not in left and "test-remote-bt-202601010003" not in left
    finally:
        live.kill()
        live.wait()


def test_two_backup_tests_from_one_checkout_do_not_race(world, monkeypatch):
    holder = patch_rds(monkeypatch, lambda c: Recorder(c))
    t = target(world)
    with D.run_lock(t):
        with pytest.raises(SharedMySQLError) as e:
            D.aws_backup_test(target(world), connect=lambda info: None, **FAST)
    assert "another `backup test` of test-remote runs from this checkout" in str(e.value)
    assert not [c for c in holder["rds"].calls if c[0].startswith(("restore_", "delete_"))]


# -- the CLI, in-process (moto is in-process) and as a real subprocess against moto's server ---------------------
def cli(capsys, world, *args):
    from shared_mysql.cli import main

    try:
        main(["-c", str(world["config"]), *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err, needle):
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and needle in lines[-1], err
    assert not any(line.startswith("error: ") for line in lines[:-1]) and "Traceback" not in err


def test_cli_snapshot_create_list_delete_json_and_refusals(world, capsys):
    code, out, err = cli(capsys, world, "snapshot", "create", "--reason", "pre-deploy", "-o", "json")
    assert code == 0, err
    s = json.loads(out)
    assert s["id"].startswith("test-remote-pre-deploy-") and s["encrypted"]
    assert "snapshot: available" in err  # progress on stderr only
    code, out, err = cli(capsys, world, "snapshot", "list", "-o", "json")
    assert code == 0 and [x["type"] for x in json.loads(out)["snapshots"]] == ["automated", "manual"]
    code, out, err = cli(capsys, world, "snapshot", "list")
    assert code == 0 and "point-in-time window of test-remote" in out and "retention 14 days" in out
    code, out, err = cli(capsys, world, "snapshot", "create", "--reason", "x'; drop")
    assert code == 2 and out == ""
    one_line_error(err, "--reason")
    code, out, err = cli(capsys, world, "snapshot", "create", "--reason", "a\nb")
    assert code == 2
    one_line_error(err, "--reason")
    auto = next(x["id"] for x in R.list_snapshots(target(world))["snapshots"] if x["type"] == "automated")
    code, out, err = cli(capsys, world, "snapshot", "delete", auto)
    assert code == 2
    one_line_error(err, "is automated")
    world["rds"].create_db_snapshot(DBInstanceIdentifier="test-other", DBSnapshotIdentifier="test-other-x")
    code, out, err = cli(capsys, world, "snapshot", "delete", "test-other-x")
    assert code == 2
    one_line_error(err, "belongs to instance test-other")
    code, out, err = cli(capsys, world, "snapshot", "delete", s["id"], "-o", "json")
    assert code == 0 and json.loads(out)["deleted"]
    code, out, err = cli(capsys, world, "snapshot", "create", "--reason", "quick", "--no-wait")
    assert code == 0 and out.startswith("snapshot test-remote-quick-") and err == ""  # no wait, no progress


def test_cli_snapshot_on_a_local_target_and_an_unencrypted_instance(world, capsys):
    world["config"] = world["src"].config_path
    code, out, err = cli(capsys, world, "snapshot", "list")
    assert code == 2
    one_line_error(err, "works on the aws target")
    world["config"] = world["dir"] / "plain.yaml"
    code, out, err = cli(capsys, world, "snapshot", "create")
    assert code == 1
    one_line_error(err, "NOT encrypted")


def test_cli_restore_on_aws(world, capsys):
    code, out, err = cli(capsys, world, "restore", "--to-time", "2001-01-01 00:00:00Z", "--into", "test-r2")
    assert code == 2
    one_line_error(err, "outside test-remote's restorable window")
    code, out, err = cli(capsys, world, "restore", "--into", SOURCE)
    assert code == 2
    one_line_error(err, "that is the source instance")
    code, out, err = cli(capsys, world, "restore", "--into", "bad--name")
    assert code == 2
    one_line_error(err, "not a valid RDS identifier")
    code, out, err = cli(capsys, world, "restore", "--tenant", "orders")
    assert code == 2
    one_line_error(err, "RDS restores whole instances")
    code, out, err = cli(capsys, world, "restore", "--to-time", "2026-01-01 00:00:00Z", "--snapshot", "x")
    assert code == 2
    one_line_error(err, "give one")
    code, out, err = cli(capsys, world, "restore", "-o", "json")
    assert code == 0, err
    r = json.loads(out)
    assert r["instance"].startswith("test-remote-restored-") and r["source"] == SOURCE and r["cut_over"]
    code, out, err = cli(capsys, world, "restore", "--into", "test-r3")
    assert code == 0 and "into NEW instance test-r3" in out and "to cut over:" in out


def test_cli_backup_test_on_aws_ok_and_failed(world, capsys, instance_factory, monkeypatch):
    stand = StandIn(instance_factory, world)
    corrupt = {"on": False}

    def restore(kw):
        stand.copy(kw)
        if corrupt["on"]:
            c = stand.admin()
            sql(c, "DELETE FROM orders_db.items WHERE id = 1")
            c.close()

    patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=restore))
    monkeypatch.setattr(D, "_default_connect", stand.connect)
    monkeypatch.setattr(R, "POLL_S", 0.01)
    code, out, err = cli(capsys, world, "backup", "test", "-o", "json")
    assert code == 0, err
    r = json.loads(out)
    assert r["ok"] and r["temp_deleted"] and r["compared"] == 3
    corrupt["on"] = True
    code, out, err = cli(capsys, world, "backup", "test")
    assert code == 3
    one_line_error(err, "orders_db.items: source 200 rows")
    assert "FAILED" in out and "deleted: yes" in out and temp_instances(world["rds"]) == []
    code, out, err = cli(capsys, world, "backup", "test", "--keep")
    assert code == 2
    one_line_error(err, "always deleted")


def test_cli_as_a_subprocess_against_moto_server(tmp_path):
    """The real command in its own process, AWS_ENDPOINT_URL pointing at moto's server."""
    from moto.server import ThreadedMotoServer

    from ..conftest import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        env = {**{k: v for k, v in os.environ.items() if k != "SHARED_MYSQL_CONFIG"},
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "ap-northeast-2", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        env.pop("AWS_PROFILE", None)
        rds = boto3.client("rds", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="ap-northeast-2",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        kms = boto3.client("kms", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="ap-northeast-2",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        rds.create_db_instance(DBInstanceIdentifier="test-sub", Engine="mysql", DBInstanceClass="db.t4g.small",
                               MasterUsername=MASTER, MasterUserPassword="x" * 16, AllocatedStorage=30,
                               StorageEncrypted=True, KmsKeyId=kms.create_key()["KeyMetadata"]["Arn"],
                               BackupRetentionPeriod=7)
        ca = tmp_path / "ca.pem"
        ca.write_text("")
        (tmp_path / "shared-mysql.yaml").write_text(yaml.safe_dump(
            {"environment": "test", "identifier": "sub", "target": "aws",
             "instance": {"host": "db.example", "ca_bundle": str(ca)}, "tenants": {}}))

        def run(*args):
            return subprocess.run([sys.executable, "-m", "shared_mysql", *args], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=60)

        res = run("snapshot", "create", "--reason", "nightly", "-o", "json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["id"].startswith("test-sub-nightly-")
        res = run("snapshot", "list", "-o", "json")
        assert res.returncode == 0 and len(json.loads(res.stdout)["snapshots"]) == 2
        res = run("snapshot", "create", "--reason", "Nightly--x")
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and res.stderr.startswith("error: --reason")
        res = run("snapshot", "delete", "rds:test-sub-2026-01-01-00-00")
        assert res.returncode == 2 and res.stderr.startswith("error: snapshot rds:test-sub-2026-01-01-00-00")
    finally:
        server.stop()


def test_the_source_is_never_deleted_by_the_cleanup(world):
    rds = world["rds"]
    with pytest.raises(SharedMySQLError):
        D._delete_temp(rds, SOURCE, SOURCE)
    with pytest.raises(SharedMySQLError):  # not tagged as ours
        D._delete_temp(rds, "test-other", SOURCE)
    assert rds.describe_db_instances(DBInstanceIdentifier="test-other")["DBInstances"]



def test_backup_test_of_a_snapshot_compares_what_did_not_change_since_it(world, instance_factory, monkeypatch):
    t = target(world)
    time.sleep(1.1)  # the fixture's writes fall in an earlier second than the snapshot (UPDATE_TIME has seconds)
    s = R.create_snapshot(t, "nightly", **FAST)
    c = connect(world["src"].target().admin_info())
    sql(c, "UPDATE billing_db.items SET v = 'after the snapshot' WHERE id = 3")
    c.close()
    stand = StandIn(instance_factory, world)
    holder = patch_rds(monkeypatch, lambda c: Recorder(c, on_restore=stand.copy))
    r = D.aws_backup_test(t, connect=stand.connect, snapshot_id=s["id"], **FAST)
    assert r["ok"], r["problems"]
    assert r["snapshot"] == s["id"] and "marker_found" not in r and "marker_wait_s" not in r
    assert r["compared"] == 2 and [n.split(":")[0] for n in r["not_compared"]] == ["billing_db.items"]
    [(_, kw)] = [c for c in holder["rds"].calls if c[0].startswith("restore_")]
    assert kw["DBSnapshotIdentifier"] == s["id"] and r["temp_deleted"] and temp_instances(world["rds"]) == []
    world["rds"].create_db_snapshot(DBInstanceIdentifier="test-other", DBSnapshotIdentifier="test-other-s")
    with pytest.raises(UsageError) as e:
        D.aws_backup_test(t, connect=stand.connect, snapshot_id="test-other-s", **FAST)
    assert "belongs to instance test-other" in str(e.value)


class WrongKey(Recorder):
    """RDS answering that the restored instance uses another key (moto always copies the source's)."""

    def __getattr__(self, name):
        attr = super().__getattr__(name)
        if name != "describe_db_instances":
            return attr

        def describe(**kw):
            out = attr(**kw)
            for db in out["DBInstances"]:
                if db["DBInstanceIdentifier"] != SOURCE:
                    db["KmsKeyId"] = "arn:aws:kms:ap-northeast-2:123456789012:key/someone-elses"
            return out

        return describe


def test_a_restored_instance_with_another_kms_key_is_refused_and_fails_the_backup_test(world, instance_factory,
                                                                                       monkeypatch):
    stand = StandIn(instance_factory, world)
    patch_rds(monkeypatch, lambda c: WrongKey(c, on_restore=stand.copy))
    with pytest.raises(R.RestoreCheckFailed) as e:
        R.restore_instance(target(world), "test-remote-wrongkey", use_latest=True, **FAST)
    assert "someone-elses" in str(e.value) and "do not use it" in str(e.value)
    r = D.aws_backup_test(target(world), connect=stand.connect, **FAST)
    assert not r["ok"] and "someone-elses" in r["problems"][0] and r["temp_deleted"]
    assert temp_instances(world["rds"]) == []
