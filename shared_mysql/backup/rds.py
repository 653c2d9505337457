"""RDS snapshots and point-in-time restores of the aws target's instance (`{environment}-{identifier}`).

  snapshot_name     the seed's naming, `{env}-{identifier}-{reason}-{YYYYMMDD-HHMM}` (UTC), validated
  create_snapshot   CreateDBSnapshot, tagged; waits; refuses to rely on an unencrypted snapshot
  list_snapshots    manual + automated snapshots of the instance, and its PITR window
  delete_snapshot   manual snapshots of this instance only
  restore_instance  PITR or snapshot restore into a NEW instance with the source's settings passed explicitly;
                    the source is only ever described, never modified

Every botocore error is translated at this boundary (aws.describe_error); waits poll with an injectable `sleep`.
"""

from __future__ import annotations

import getpass
import re
import socket
import time
from datetime import datetime, timezone

from .. import aws as _aws
from ..errors import SharedMySQLError, UsageError

POLL_S = 10.0  # seconds between describes while waiting
SNAPSHOT_WAIT_S = 4 * 3600.0
RESTORE_WAIT_S = 6 * 3600.0
MANAGED_BY = "shared-mysql"
REASON_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
# RDS: 1-255 (snapshots) / 1-63 (instances) letters, digits, hyphens; a letter first; no `--`; no trailing `-`.
_ID_RE = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
# Snapshot ids as given on a command line: automated ones are `rds:<instance>-<time>` (refused later, by name).
_ANY_SNAPSHOT_RE = re.compile(r"(?:rds:)?[A-Za-z][A-Za-z0-9-]{0,254}")
_FAILED = {"failed", "error", "incompatible-restore", "incompatible-parameters", "incompatible-network",
           "storage-full", "inaccessible-encryption-credentials", "restore-error"}


class RdsError(SharedMySQLError):
    """An RDS snapshot or restore failed, or its result cannot be relied on."""


def _rds(target):
    return _aws.client_for(target.config, "rds")


def _call(what: str, fn, **kw):
    """One RDS call; a botocore error becomes one RdsError line naming `what`."""
    try:
        return fn(**kw)
    except SharedMySQLError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise RdsError(f"RDS {what}: {_aws.describe_error(exc)}") from None


def _code(fn, **kw) -> tuple[dict | None, str | None]:
    """(response, None) or (None, the error code): for calls whose 'not found' is an answer, not a failure."""
    try:
        return fn(**kw), None
    except Exception as exc:  # noqa: BLE001 - botocore errors, classified by code
        code = _aws.error_code(exc)
        if code is None:
            raise RdsError(f"RDS: {_aws.describe_error(exc)}") from None
        return None, code


def operator() -> str:
    """`user@host` of this process, within the characters RDS tag values allow."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (a container's uid)
        import os

        user = str(os.getuid())
    return re.sub(r"[^\w.:/=+@-]", "_", f"{user}@{socket.gethostname()}")[:200]


def _utc(value) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value), timezone.utc)


def iso(value) -> str | None:
    return None if value is None else _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_identifier(value: str, what: str, limit: int = 63) -> str:
    """An RDS identifier (instance: 63, snapshot: 255 characters), or one line saying which rule it breaks."""
    rules = (f"1-{limit} letters, digits and hyphens, a letter first, no `--`, not ending in `-`")
    if not isinstance(value, str) or not value.isprintable() or not 1 <= len(value) <= limit \
            or not _ID_RE.fullmatch(value) or "--" in value:
        raise UsageError(f"{what} {value[:80]!r}: not a valid RDS identifier ({rules})")
    return value.lower()


def check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not REASON_RE.fullmatch(reason) or "--" in reason:
        raise UsageError(f"--reason {str(reason)[:40]!r}: use 1-32 lowercase letters, digits and single hyphens "
                         "(e.g. before-migration)")
    return reason


def snapshot_name(config, reason: str, now=None, suffix: int = 0) -> str:
    """`{env}-{identifier}-{reason}-{YYYYMMDD-HHMM}` in UTC; `suffix` > 1 appends `-N` (same minute twice)."""
    check_reason(reason)
    when = _utc(time.time() if now is None else now).strftime("%Y%m%d-%H%M")
    tail = f"-{reason}-{when}" + (f"-{suffix}" if suffix > 1 else "")
    name = f"{config.db_instance_identifier.lower()}{tail}"
    return check_identifier(name, "snapshot name", 255)


# -- describe ---------------------------------------------------------------------------------------------------
def describe_instance(rds, ident: str) -> dict:
    got, code = _code(rds.describe_db_instances, DBInstanceIdentifier=ident)
    if code == "DBInstanceNotFound":
        raise RdsError(f"RDS instance {ident} does not exist; check environment/identifier in the config, or deploy "
                       "the instance first")
    if code:
        raise RdsError(f"RDS DescribeDBInstances {ident}: {code}")
    return got["DBInstances"][0]


def instance_exists(rds, ident: str) -> dict | None:
    got, code = _code(rds.describe_db_instances, DBInstanceIdentifier=ident)
    if code == "DBInstanceNotFound":
        return None
    if code:
        raise RdsError(f"RDS DescribeDBInstances {ident}: {code}")
    return got["DBInstances"][0]


def _snapshots(rds, ident: str) -> list[dict]:
    out = []
    for kind in ("manual", "automated"):
        pages = rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=ident, SnapshotType=kind)
        try:
            for page in pages:
                out += page.get("DBSnapshots", [])
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            raise RdsError(f"RDS DescribeDBSnapshots {ident}: {_aws.describe_error(exc)}") from None
    return out


def _snapshot(rds, snapshot_id: str) -> dict | None:
    got, code = _code(rds.describe_db_snapshots, DBSnapshotIdentifier=snapshot_id)
    if code == "DBSnapshotNotFound":
        return None
    if code:
        raise RdsError(f"RDS DescribeDBSnapshots {snapshot_id}: {code}")
    snaps = got.get("DBSnapshots") or []
    return snaps[0] if snaps else None


def summary(s: dict) -> dict:
    return {"id": s["DBSnapshotIdentifier"], "type": s.get("SnapshotType"), "status": s.get("Status"),
            "created": iso(s.get("SnapshotCreateTime")), "size_gb": s.get("AllocatedStorage"),
            "encrypted": bool(s.get("Encrypted")), "kms_key": s.get("KmsKeyId"),
            "percent": s.get("PercentProgress"), "instance": s.get("DBInstanceIdentifier")}


def pitr_window(rds, db: dict, automated: list[dict] | None = None) -> dict:
    """Earliest/latest restorable time and retention. RDS gives the latest on the instance; the earliest comes
    from the automated backup's RestoreWindow when RDS has it, else from the oldest automated snapshot."""
    ident = db["DBInstanceIdentifier"]
    retention = int(db.get("BackupRetentionPeriod") or 0)
    earliest = None
    got, code = _code(rds.describe_db_instance_automated_backups, DBInstanceIdentifier=ident)
    if got:
        for b in got.get("DBInstanceAutomatedBackups", []):
            t = (b.get("RestoreWindow") or {}).get("EarliestTime")
            if t and (earliest is None or _utc(t) < earliest):
                earliest = _utc(t)
    if earliest is None:
        auto = automated if automated is not None else [s for s in _snapshots(rds, ident)
                                                        if s.get("SnapshotType") == "automated"]
        times = [_utc(s["SnapshotCreateTime"]) for s in auto if s.get("SnapshotCreateTime")]
        earliest = min(times) if times else None
    latest = _utc(db["LatestRestorableTime"]) if db.get("LatestRestorableTime") else None
    if retention == 0:
        earliest = latest = None
    return {"earliest": earliest, "latest": latest, "retention_days": retention}


# -- snapshots ----------------------------------------------------------------------------------------------------
def _wait(check, *, what: str, timeout: float, poll: float, sleep, progress=None, hint: str = ""):
    """Poll `check()` -> (done, status, percent) until done; progress(status, percent, elapsed) each round."""
    started = time.monotonic()
    poll = POLL_S if poll is None else poll
    while True:
        done, status, percent = check()
        elapsed = time.monotonic() - started
        if progress is not None:
            progress(status, percent, elapsed)
        if done:
            return status
        if status in _FAILED:
            raise RdsError(f"{what}: RDS reports status {status}; see the RDS events of it{hint}")
        if elapsed >= timeout:
            raise RdsError(f"{what}: still {status} after {int(elapsed)} s{hint or '; check again later'}")
        sleep(poll)


def create_snapshot(target, reason: str = "manual", *, wait: bool = True, progress=None, now=None,
                    poll: float | None = None, timeout: float = SNAPSHOT_WAIT_S, sleep=time.sleep) -> dict:
    """A manual snapshot of the instance, tagged with who made it and why; with `wait`, waits until it is
    available and refuses to rely on it (RdsError) unless it is encrypted with the instance's KMS key."""
    check_reason(reason)
    rds = _rds(target)
    ident = target.config.db_instance_identifier
    db = describe_instance(rds, ident)
    tags = [{"Key": "managed-by", "Value": MANAGED_BY}, {"Key": "environment", "Value": target.config.environment},
            {"Key": "instance", "Value": ident}, {"Key": "reason", "Value": reason},
            {"Key": "created-by", "Value": operator()}]
    for n in range(1, 10):  # the same minute twice: -2, -3, ...
        name = snapshot_name(target.config, reason, now, suffix=n)
        got, code = _code(rds.create_db_snapshot, DBInstanceIdentifier=ident, DBSnapshotIdentifier=name, Tags=tags)
        if code != "DBSnapshotAlreadyExists":
            break
    if code:
        raise RdsError(f"RDS CreateDBSnapshot {name} of {ident}: {code}; see `shared-mysql snapshot list`")
    snap = got["DBSnapshot"]
    if wait:
        def check():
            s = _snapshot(rds, name) or {}
            return s.get("Status") == "available", s.get("Status") or "missing", s.get("PercentProgress")

        _wait(check, what=f"snapshot {name} of {ident}", timeout=timeout, poll=poll, sleep=sleep, progress=progress,
              hint="; `shared-mysql snapshot list` shows it when it is done")
        snap = _snapshot(rds, name) or snap
    check_encrypted(snap, db)
    return summary(snap)


def check_encrypted(snap: dict, db: dict) -> None:
    name, ident = snap["DBSnapshotIdentifier"], db["DBInstanceIdentifier"]
    if not snap.get("Encrypted"):
        raise RdsError(f"snapshot {name} of {ident} is NOT encrypted (the instance's storage is not): do not rely on "
                       f"it; copy it encrypted with `aws rds copy-db-snapshot --source-db-snapshot-identifier {name} "
                       f"--target-db-snapshot-identifier {name}-encrypted --kms-key-id <KMS key ARN>`, restore from "
                       "the copy, and move the service onto the encrypted instance")
    want = db.get("KmsKeyId")
    if want and snap.get("KmsKeyId") != want:
        raise RdsError(f"snapshot {name} of {ident} is encrypted with KMS key {snap.get('KmsKeyId')}, not the "
                       f"instance's {want}; check who can use that key before relying on the snapshot")


def list_snapshots(target) -> dict:
    rds = _rds(target)
    ident = target.config.db_instance_identifier
    db = describe_instance(rds, ident)
    snaps = _snapshots(rds, ident)
    window = pitr_window(rds, db, [s for s in snaps if s.get("SnapshotType") == "automated"])
    items = sorted((summary(s) for s in snaps), key=lambda s: (s["created"] or "", s["id"]))
    return {"instance": ident, "snapshots": items,
            "pitr": {"earliest": iso(window["earliest"]), "latest": iso(window["latest"]),
                     "retention_days": window["retention_days"]}}


def _own_snapshot(rds, target, snapshot_id: str, verb: str) -> dict:
    """A snapshot of this instance, or one line refusing it."""
    ident = target.config.db_instance_identifier
    if not isinstance(snapshot_id, str) or not _ANY_SNAPSHOT_RE.fullmatch(snapshot_id) or "--" in snapshot_id \
            or snapshot_id.endswith("-"):
        raise UsageError(f"snapshot {str(snapshot_id)[:80]!r}: not a snapshot identifier (see `shared-mysql snapshot "
                         "list`)")
    snap = _snapshot(rds, snapshot_id)
    if snap is None:
        raise UsageError(f"snapshot {snapshot_id} does not exist; `shared-mysql snapshot list` shows those of {ident}")
    if (snap.get("DBInstanceIdentifier") or "").lower() != ident.lower():
        raise UsageError(f"snapshot {snapshot_id} belongs to instance {snap.get('DBInstanceIdentifier')}, not "
                         f"{ident}; shared-mysql {verb} only this config's instance's snapshots")
    return snap


def delete_snapshot(target, snapshot_id: str, *, wait: bool = True, poll: float | None = None,
                    timeout: float = SNAPSHOT_WAIT_S, sleep=time.sleep, progress=None) -> dict:
    """Delete a manual snapshot of this instance (automated ones belong to the retention period)."""
    rds = _rds(target)
    snap = _own_snapshot(rds, target, snapshot_id, "deletes")
    if snap.get("SnapshotType") != "manual":
        raise UsageError(f"snapshot {snapshot_id} is {snap.get('SnapshotType')}: RDS removes automated snapshots "
                         "after backup_retention_period days; only manual snapshots are deleted here")
    _call(f"DeleteDBSnapshot {snapshot_id}", rds.delete_db_snapshot, DBSnapshotIdentifier=snap["DBSnapshotIdentifier"])
    if wait:
        def check():
            s = _snapshot(rds, snap["DBSnapshotIdentifier"])
            return s is None, (s or {}).get("Status", "deleted"), None

        _wait(check, what=f"deleting snapshot {snapshot_id}", timeout=timeout, poll=poll, sleep=sleep,
              progress=progress)
    return {**summary(snap), "deleted": True}


# -- restore ------------------------------------------------------------------------------------------------------
def restore_instance(target, new_id: str, *, to_time: datetime | None = None, snapshot_id: str | None = None,
                     use_latest: bool = False, progress=None, deletion_protection: bool | None = None,
                     tags: dict | None = None, wait: bool = True, multi_az: bool | None = None,
                     poll: float | None = None, timeout: float = RESTORE_WAIT_S, sleep=time.sleep) -> dict:
    """Restore into the NEW instance `new_id` (PITR to `to_time`, the latest restorable time, or a snapshot), with
    the source's parameter group, option group, subnet group, security groups, class, Multi-AZ, port, IAM auth,
    CopyTagsToSnapshot, deletion protection and tags passed explicitly (RDS defaults several of them otherwise).
    The KMS key follows the source/snapshot (the API has no key parameter); it is checked once available."""
    ident = target.config.db_instance_identifier
    if sum(x is not None and x is not False for x in (to_time, snapshot_id, use_latest or None)) != 1:
        raise UsageError("restore: give exactly one of a time (--to-time), a snapshot (--snapshot) or the latest "
                         "restorable time")
    new_id = check_identifier(new_id, "--into", 63)
    if new_id == ident.lower():
        raise UsageError(f"--into {new_id}: that is the source instance; a restore always goes into a NEW instance "
                         "and never touches the source")
    rds = _rds(target)
    src = describe_instance(rds, ident)
    if instance_exists(rds, new_id) is not None:
        raise UsageError(f"--into {new_id}: an RDS instance of that name exists already; pick a new name")
    snap = None
    when = None
    if snapshot_id is not None:
        snap = _own_snapshot(rds, target, snapshot_id, "restores")
        if snap.get("Status") != "available":
            raise RdsError(f"snapshot {snapshot_id} is {snap.get('Status')}, not available; wait for it")
        check_encrypted(snap, src)  # the same refusal as `snapshot create`: unencrypted, or another key
    else:
        window = pitr_window(rds, src)
        if window["latest"] is None:
            raise RdsError(f"{ident} has no point-in-time window (backup_retention_period is "
                           f"{window['retention_days']}); restore from a snapshot with --snapshot instead")
        if to_time is not None:
            when = _utc(to_time).replace(microsecond=0)  # RDS restores to the second; say what it restores to
            lo, hi = window["earliest"], window["latest"]
            if (lo is not None and when < lo) or when > hi:
                raise UsageError(f"--to-time {iso(when)} is outside {ident}'s restorable window "
                                 f"{iso(lo) or '(start unknown)'} .. {iso(hi)}; pick a time inside it")
    wanted_protection = bool(src.get("DeletionProtection")) if deletion_protection is None else deletion_protection
    tag_map = {t["Key"]: t["Value"] for t in src.get("TagList") or [] if not t["Key"].startswith("aws:")}
    tag_map.update(tags or {})
    tag_map.update({"restored-from": snap["DBSnapshotIdentifier"] if snap else ident,
                    "restore-time": iso(when) if when else (iso(snap.get("SnapshotCreateTime")) if snap else "latest")})
    kw = _settings(src, wanted_protection, multi_az, pitr=snap is None)
    kw["Tags"] = [{"Key": k, "Value": str(v)} for k, v in tag_map.items()]
    started = time.monotonic()
    if snap is not None:
        _call(f"RestoreDBInstanceFromDBSnapshot {snapshot_id} into {new_id}", rds.restore_db_instance_from_db_snapshot,
              DBInstanceIdentifier=new_id, DBSnapshotIdentifier=snap["DBSnapshotIdentifier"], **kw)
    else:
        when_kw = {"RestoreTime": when} if when else {"UseLatestRestorableTime": True}
        _call(f"RestoreDBInstanceToPointInTime {ident} into {new_id}", rds.restore_db_instance_to_point_in_time,
              SourceDBInstanceIdentifier=ident, TargetDBInstanceIdentifier=new_id, **when_kw, **kw)
    out = {"instance": new_id, "source": ident, "snapshot": snap["DBSnapshotIdentifier"] if snap else None,
           "restore_time": iso(when) if when else None, "status": "creating", "endpoint": None, "port": None}
    if not wait:
        out["cut_over"] = cut_over_hint(target, new_id, None, None)
        return out

    def check():
        db = instance_exists(rds, new_id) or {}
        return db.get("DBInstanceStatus") == "available", db.get("DBInstanceStatus") or "missing", None

    _wait(check, what=f"restoring {new_id}", timeout=timeout, poll=poll, sleep=sleep, progress=progress,
          hint=f"; it keeps restoring: `aws rds describe-db-instances --db-instance-identifier {new_id}`")
    db = describe_instance(rds, new_id)
    out["warnings"] = check_restored(rds, db, src, snap, kw)
    if not src.get("StorageEncrypted"):
        out["warnings"].append(f"{ident} is not encrypted, so neither is {new_id}: encrypt it (copy a snapshot with "
                               "a KMS key and restore the copy) before relying on either")
    out["warnings"] += after_restore(rds, new_id, src, kw)
    ep = db.get("Endpoint") or {}
    out.update(status=db.get("DBInstanceStatus"), endpoint=ep.get("Address"), port=ep.get("Port"),
               kms_key=db.get("KmsKeyId"), encrypted=bool(db.get("StorageEncrypted")),
               deletion_protection=bool(db.get("DeletionProtection")), seconds=round(time.monotonic() - started, 2))
    out["cut_over"] = cut_over_hint(target, new_id, out["endpoint"], out["port"])
    return out


def after_restore(rds, new_id: str, src: dict, kw: dict) -> list[str]:
    """What no restore call takes: Performance Insights, Enhanced Monitoring and (from a snapshot) storage
    autoscaling, set on the NEW instance as the source has them. Returns warnings for what could not be set."""
    mod: dict = {}
    if src.get("PerformanceInsightsEnabled"):
        mod["EnablePerformanceInsights"] = True
        if src.get("PerformanceInsightsRetentionPeriod"):
            mod["PerformanceInsightsRetentionPeriod"] = int(src["PerformanceInsightsRetentionPeriod"])
        if src.get("PerformanceInsightsKMSKeyId"):
            mod["PerformanceInsightsKMSKeyId"] = src["PerformanceInsightsKMSKeyId"]
    if int(src.get("MonitoringInterval") or 0) > 0 and src.get("MonitoringRoleArn"):
        mod.update(MonitoringInterval=int(src["MonitoringInterval"]), MonitoringRoleArn=src["MonitoringRoleArn"])
    if src.get("MaxAllocatedStorage") and "MaxAllocatedStorage" not in kw:
        mod["MaxAllocatedStorage"] = int(src["MaxAllocatedStorage"])
    if not mod:
        return []
    try:
        _call(f"ModifyDBInstance {new_id} (monitoring, autoscaling)", rds.modify_db_instance,
              DBInstanceIdentifier=new_id, ApplyImmediately=True, **mod)
    except RdsError as exc:
        return [f"{new_id}: {', '.join(sorted(mod))} not set ({exc}); set them with `aws rds modify-db-instance`"]
    return []


def _settings(src: dict, deletion_protection: bool, multi_az: bool | None, *, pitr: bool = True,
              default_option_group: bool = False) -> dict:
    """The source's settings, for the restore call (RDS would otherwise pick defaults for several: the default
    parameter group and security group, no CloudWatch log exports, ...). `default_option_group`: name the engine's
    default option group too (a refresh: RDS would otherwise attach the snapshot's, the source's)."""
    kw: dict = {"DBInstanceClass": src["DBInstanceClass"],
                "MultiAZ": bool(src.get("MultiAZ")) if multi_az is None else multi_az,
                "Port": int((src.get("Endpoint") or {}).get("Port") or src.get("DbInstancePort") or 3306),
                "EnableIAMDatabaseAuthentication": bool(src.get("IAMDatabaseAuthenticationEnabled")),
                "CopyTagsToSnapshot": bool(src.get("CopyTagsToSnapshot")),
                "DeletionProtection": deletion_protection,
                "PubliclyAccessible": bool(src.get("PubliclyAccessible"))}
    pgs = [g["DBParameterGroupName"] for g in src.get("DBParameterGroups") or []]
    if pgs:
        kw["DBParameterGroupName"] = pgs[0]
    # The engine's default option group is what RDS assigns a restore of that instance anyway; not named (moto
    # lists it but cannot find it), except for a refresh, whose snapshot's group is another instance's.
    ogs = [g["OptionGroupName"] for g in src.get("OptionGroupMemberships") or []
           if default_option_group or not g["OptionGroupName"].startswith("default:")]
    if ogs:
        kw["OptionGroupName"] = ogs[0]
    if (src.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"):
        kw["DBSubnetGroupName"] = src["DBSubnetGroup"]["DBSubnetGroupName"]
    sgs = [g["VpcSecurityGroupId"] for g in src.get("VpcSecurityGroups") or []]
    if sgs:
        kw["VpcSecurityGroupIds"] = sgs
    if src.get("StorageType"):
        kw["StorageType"] = src["StorageType"]
    # Carried explicitly: a restored instance otherwise exports no logs to CloudWatch (the slow-query digest and
    # `logs audit` read them there), and takes the default retention, window and CA.
    if src.get("EnabledCloudwatchLogsExports"):
        kw["EnableCloudwatchLogsExports"] = list(src["EnabledCloudwatchLogsExports"])
    if src.get("BackupRetentionPeriod") is not None:
        kw["BackupRetentionPeriod"] = int(src["BackupRetentionPeriod"])
    if src.get("PreferredBackupWindow"):
        kw["PreferredBackupWindow"] = src["PreferredBackupWindow"]
    if src.get("CACertificateIdentifier"):
        kw["CACertificateIdentifier"] = src["CACertificateIdentifier"]
    if src.get("AutoMinorVersionUpgrade") is not None:
        kw["AutoMinorVersionUpgrade"] = bool(src["AutoMinorVersionUpgrade"])
    if src.get("Iops") and src.get("StorageType") in ("io1", "io2", "gp3"):
        kw["Iops"] = int(src["Iops"])
    if src.get("StorageThroughput") and src.get("StorageType") == "gp3":
        kw["StorageThroughput"] = int(src["StorageThroughput"])
    if pitr and src.get("MaxAllocatedStorage"):
        kw["MaxAllocatedStorage"] = int(src["MaxAllocatedStorage"])
    return kw


def check_restored(rds, db: dict, src: dict, snap: dict | None, kw: dict) -> list[str]:
    """The restored instance's encryption must be the source's (or the snapshot's) exactly: RestoreFailed
    otherwise. Deletion protection as asked is enforced on the NEW instance; other drift is returned as warnings."""
    new_id = db["DBInstanceIdentifier"]
    want_key = (snap or src).get("KmsKeyId")
    want_enc = bool((snap or {}).get("Encrypted", src.get("StorageEncrypted")))
    if bool(db.get("StorageEncrypted")) != want_enc or (want_key and db.get("KmsKeyId") != want_key):
        raise RestoreCheckFailed(
            f"restored instance {new_id}: encryption {db.get('StorageEncrypted')} with key {db.get('KmsKeyId')}, "
            f"expected {want_enc} with {want_key}; do not use it: delete it with `aws rds delete-db-instance "
            f"--db-instance-identifier {new_id} --skip-final-snapshot`")
    warnings = []
    if bool(db.get("DeletionProtection")) != kw["DeletionProtection"]:
        # RDS (and moto) may keep the source's setting: set the asked one on the NEW instance only.
        _call(f"ModifyDBInstance {new_id} (deletion protection)", rds.modify_db_instance, DBInstanceIdentifier=new_id,
              DeletionProtection=kw["DeletionProtection"], ApplyImmediately=True)
    for key, have in (("DBInstanceClass", db.get("DBInstanceClass")), ("MultiAZ", bool(db.get("MultiAZ"))),
                      ("Port", int((db.get("Endpoint") or {}).get("Port") or db.get("DbInstancePort") or 0) or None),
                      ("EnableIAMDatabaseAuthentication", bool(db.get("IAMDatabaseAuthenticationEnabled")))):
        if key in kw and have is not None and have != kw[key]:
            warnings.append(f"{new_id}: {key} is {have}, asked {kw[key]}; set it with `aws rds modify-db-instance`")
    checks = {"DBParameterGroupName": [g["DBParameterGroupName"] for g in db.get("DBParameterGroups") or []],
              "OptionGroupName": [g["OptionGroupName"] for g in db.get("OptionGroupMemberships") or []],
              "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups") or []],
              "DBSubnetGroupName": [(db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")]}
    for key, have in checks.items():
        want = kw.get(key)
        if want is None:
            continue
        want = want if isinstance(want, list) else [want]
        if sorted(have) != sorted(want):
            warnings.append(f"{new_id}: {key} is {', '.join(map(str, have)) or 'none'}, asked "
                            f"{', '.join(map(str, want))}; set it with `aws rds modify-db-instance`")
    return warnings


class RestoreCheckFailed(RdsError):
    """A restored instance is not what was asked for where it matters (encryption)."""


def cut_over_hint(target, new_id: str, endpoint: str | None, port: int | None) -> list[str]:
    """What to change to move the services onto the restored instance (nothing here does it)."""
    c = target.config
    ep = endpoint or f"(the endpoint of {new_id} once available)"
    return [f"set instance.host: {ep}" + (f" and instance.port: {port}" if port else "") + f" in {target.loaded.path}"
            ", then `shared-mysql apply` (it republishes the exports)",
            f"the SSM parameter {c.exports_prefix}/endpoint then names {ep} (services reading it follow)",
            f"or keep the name: rename {c.db_instance_identifier} away and {new_id} to {c.db_instance_identifier} "
            "(`aws rds modify-db-instance --new-db-instance-identifier ... --apply-immediately`); the endpoint "
            "follows the identifier",
            f"the restored instance has deletion protection as the source had; delete the old one only when the "
            f"services run on {new_id}"]


def default_restore_id(config, now=None) -> str:
    when = _utc(time.time() if now is None else now).strftime("%Y%m%d%H%M")
    return f"{config.db_instance_identifier[:63 - 10 - len(when)].rstrip('-')}-restored-{when}".lower()
