"""`refresh` on the aws target: the source instance's data becomes this target's instance, masked first.

The seed's script, made safe and resumable (state in `<state dir>/refresh-aws.json`; every step checks what is
already done, so a re-run after a kill continues):

1. snapshot    a manual snapshot of the source (`{env}-{id}-refresh-to-{target env}-...`), encrypted or refused
2. copy        re-encrypted with the target's KMS key when the keys differ (copy-db-snapshot), so the target's
               data stays under its own key
3. restore     into a NEW instance `{target}-refresh-{time}` with the *target's* settings (parameter, option and
               subnet groups, security groups, class, Multi-AZ, port): the services' endpoint is not touched yet
4. master      a new master password (stored as the target master secret's pending version first), set with
               ModifyDBInstance: the source's master password never works on the target
5. mask        tenants blocked and their (source) accounts locked at once; masking, then the check. A failure
               exits 3 here: the new instance is never cut over and the target keeps serving its old data
6. cut over    the old target renamed `{target}-pre-refresh-{time}`, the new one renamed to the target's
               identifier (the endpoint follows the name); the pending master password becomes current
7. apply       the target's own accounts, passwords, secrets and exports (the source's credentials stop working)

The old instance is kept (deletion protection off) and named in the output: delete it when satisfied.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ..backup import rds as R
from ..db import ConnectionInfo, PyMySQLExecutor
from ..errors import SharedMySQLError
from ..secrets import CURRENT, PENDING
from ..sql.passwords import generate_password
from ..tenants import blocks
from . import engine
from .run import MaskingFailed, mask_database

STATE = "refresh-aws.json"


def _state_path(target):
    return target.state_dir / STATE


def _read(target) -> dict | None:
    from ..secrets.file import read_json_dict

    return read_json_dict(_state_path(target)) or None


def _write(target, st: dict) -> None:
    from ..secrets.file import write_json

    write_json(_state_path(target), st)


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d%H%M")


def reset_master(rds, ident: str, password: str) -> None:
    """ModifyDBInstance MasterUserPassword (RDS applies it while the instance is `resetting-master-credentials`)."""
    R._call(f"ModifyDBInstance {ident} (master password)", rds.modify_db_instance, DBInstanceIdentifier=ident,
            MasterUserPassword=password, ApplyImmediately=True)


def _available(rds, ident: str, what: str, poll, sleep, say) -> dict:
    def check():
        db = R.instance_exists(rds, ident) or {}
        return db.get("DBInstanceStatus") == "available", db.get("DBInstanceStatus") or "missing", None

    R._wait(check, what=what, timeout=R.RESTORE_WAIT_S, poll=poll, sleep=sleep,
            progress=lambda s, p, e: say(f"  {what}: {s} ({int(e)} s)"))
    return R.describe_instance(rds, ident)


def refresh_aws(target, source_loaded, names: list[str], rules: dict, *, restart: bool = False,
                batch: int = engine.BATCH, lock_wait: float = 0.0, say=None, resolve=None, now: float | None = None,
                poll: float | None = None, sleep=time.sleep) -> dict:
    """See the module docstring. `resolve(instance_id, host, port) -> (host, port)` maps the new instance's
    endpoint (tests point it at a local server standing in for RDS)."""
    from ..target import open_target

    say = say or (lambda m: None)
    resolve = resolve or (lambda ident, host, port: (host, port))
    now = time.time() if now is None else now
    cfg = target.config
    source = open_target(source_loaded)
    rds = R._rds(target)
    tgt_id = cfg.db_instance_identifier
    label = f"{source_loaded.config.environment}/{source_loaded.config.identifier}"
    st = None if restart else _read(target)
    if st is not None and (st.get("source") != source_loaded.config.db_instance_identifier
                           or sorted(st.get("tenants", [])) != sorted(names)):
        raise SharedMySQLError(f"an unfinished refresh of {tgt_id} from {st.get('source')} (tenants "
                               f"{', '.join(st.get('tenants', []))}) is recorded in {_state_path(target)}; re-run it "
                               "with the same --from and --tenant, or start over with --restart")
    if st is None or st.get("phase") == "done":
        st = {"source": source_loaded.config.db_instance_identifier, "tenants": names, "phase": "start",
              "stamp": _stamp(now), "started": now}
        _write(target, st)
    out = {"source": label, "target": f"{cfg.environment}/{cfg.identifier}", "tenants": [], "notes": [], "ok": True,
           "steps": []}

    def step(name: str) -> None:
        st["phase"] = name
        _write(target, st)
        out["steps"].append(name)

    tgt = R.instance_exists(rds, tgt_id) if st["phase"] in ("start", "snapshot", "copied", "masked") else None
    if tgt is None and st["phase"] in ("start", "snapshot", "copied"):
        raise SharedMySQLError(f"RDS instance {tgt_id} does not exist: a refresh replaces an existing target (it "
                               "takes its settings); deploy it first")
    if tgt is not None:
        st.setdefault("deletion_protection", bool(tgt.get("DeletionProtection")))
    if st["phase"] == "start":
        reason = R.check_reason(f"refresh-to-{cfg.environment}"[:32].rstrip("-"))
        say(f"snapshot of {st['source']}")
        snap = R.create_snapshot(source, reason, progress=lambda s, p, e: say(f"  snapshot: {s} {p or 0}%"),
                                 poll=poll, sleep=sleep)
        st["snapshot"] = snap["id"]
        step("snapshot")
    if st["phase"] == "snapshot":
        snap = R._snapshot(rds, st["snapshot"]) or {}
        want = tgt.get("KmsKeyId")
        st["restore_from"] = st["snapshot"]
        if want and snap.get("KmsKeyId") != want:
            copy = f"{st['snapshot']}-for-{cfg.environment}"[:255]
            say(f"re-encrypting the snapshot with {tgt_id}'s KMS key ({copy})")
            if R._snapshot(rds, copy) is None:
                R._call(f"CopyDBSnapshot {st['snapshot']}", rds.copy_db_snapshot,
                        SourceDBSnapshotIdentifier=st["snapshot"], TargetDBSnapshotIdentifier=copy, KmsKeyId=want,
                        CopyTags=True)

            def done():
                s = R._snapshot(rds, copy) or {}
                return s.get("Status") == "available", s.get("Status") or "missing", s.get("PercentProgress")

            R._wait(done, what=f"copying snapshot {copy}", timeout=R.SNAPSHOT_WAIT_S, poll=poll, sleep=sleep)
            st["restore_from"] = copy
        step("copied")
    new_id = st.setdefault("new_id", f"{tgt_id[:63 - 22]}-refresh-{st['stamp']}".lower())
    old_id = st.setdefault("old_id", f"{tgt_id[:63 - 26]}-pre-refresh-{st['stamp']}".lower())
    if st["phase"] == "copied":
        if R.instance_exists(rds, new_id) is None:
            # The TARGET's settings (its option group named even when it is the engine's default: RDS would
            # attach the snapshot's, prod's); deletion protection off until the cut over.
            kw = R._settings(tgt, False, None, pitr=False, default_option_group=True)
            tags = {t["Key"]: t["Value"] for t in tgt.get("TagList") or [] if not t["Key"].startswith("aws:")}
            tags.update({"shared-mysql:refresh-from": st["source"], "restored-from": st["restore_from"]})
            kw["Tags"] = [{"Key": k, "Value": str(v)} for k, v in tags.items()]
            say(f"restoring {st['restore_from']} as {new_id} (with {tgt_id}'s settings)")
            R._call(f"RestoreDBInstanceFromDBSnapshot {st['restore_from']} into {new_id}",
                    rds.restore_db_instance_from_db_snapshot, DBInstanceIdentifier=new_id,
                    DBSnapshotIdentifier=st["restore_from"], **kw)
        db = _available(rds, new_id, f"restoring {new_id}", poll, sleep, say)
        for w in R.after_restore(rds, new_id, tgt, {}):  # Performance Insights, monitoring, autoscaling
            out["notes"].append(w)
        if tgt.get("KmsKeyId") and db.get("KmsKeyId") != tgt.get("KmsKeyId") or not db.get("StorageEncrypted"):
            raise R.RestoreCheckFailed(f"refreshed instance {new_id}: encrypted {db.get('StorageEncrypted')} with "
                                       f"{db.get('KmsKeyId')}, expected {tgt.get('KmsKeyId')}; it was not cut over: "
                                       f"delete it (`aws rds delete-db-instance --db-instance-identifier {new_id} "
                                       "--skip-final-snapshot`) and re-run with --restart")
        step("restored")
    name = cfg.master_secret_name
    if st["phase"] == "restored":
        target.store.reload()
        cur = target.store.get(name, CURRENT) or {"username": cfg.instance.master_username}
        pending = target.store.get(name, PENDING)
        if not pending or not pending.get("password"):
            pending = {**cur, "password": generate_password()}
            target.store.put_pending({name: (pending, {})})  # stored first: a kill after the modify loses nothing
        say(f"setting a new master password on {new_id}")
        reset_master(rds, new_id, pending["password"])
        _available(rds, new_id, f"master password of {new_id}", poll, sleep, say)
        step("master")
    if st["phase"] in ("master", "failed"):
        # First time on this instance: runs it holds came with the source's snapshot, never ours to resume.
        first = st["phase"] == "master" and not st.get("masking_started")
        st["masking_started"] = True
        _write(target, st)
        res = _mask_new(target, rds, new_id, names, rules, label, batch, resolve, say, first=first)
        out["tenants"] = res
        if not all(r["ok"] for r in res):
            step("failed")
            out["ok"] = False
            out["notes"].append(f"{new_id} was NOT cut over: {tgt_id} keeps serving its old data; fix the rules and "
                                "re-run `refresh` (it resumes), or delete the new instance and re-run with --restart")
            return out
        step("masked")
    if st["phase"] == "masked":
        _cut_over(rds, tgt_id, new_id, old_id, tgt, poll, sleep, say)
        step("cut_over")
    if st["phase"] == "cut_over":
        target.store.reload()
        if target.store.get(name, PENDING) is not None:
            target.store.promote([name])
        R._call(f"ModifyDBInstance {tgt_id} (deletion protection)", rds.modify_db_instance,
                DBInstanceIdentifier=tgt_id, DeletionProtection=bool(st.get("deletion_protection", True)),
                ApplyImmediately=True)
        target.__dict__.pop("_endpoint", None)  # the identifier now names the refreshed instance
        from .run import _apply_accounts

        with target.executor() as ex:
            with target.server_lock(ex, lock_wait, "refresh"):
                _apply_accounts(target, ex)
        step("done")
        out["notes"].append(f"the previous {tgt_id} is kept as {old_id} (deletion protection off): delete it when "
                            f"the refreshed data is confirmed: `aws rds delete-db-instance --db-instance-identifier "
                            f"{old_id} --skip-final-snapshot`")
    out.update(new_instance=new_id, old_instance=old_id, snapshot=st.get("snapshot"))
    return out


def _mask_new(target, rds, new_id, names, rules, label, batch, resolve, say, first: bool = False) -> list[dict]:
    """Block + lock the tenants, then mask and check, on the new instance (its own endpoint)."""
    db = R.describe_instance(rds, new_id)
    ep = db.get("Endpoint") or {}
    host, port = resolve(new_id, ep.get("Address"), int(ep.get("Port") or 3306))
    pending = target.store.get(target.config.master_secret_name, PENDING) or \
        target.store.get(target.config.master_secret_name, CURRENT)
    info = ConnectionInfo(host, port, pending.get("username") or target.config.instance.master_username,
                          pending["password"], ca=target.ca)
    out = []
    with PyMySQLExecutor.open(info) as ex:
        for t in names:  # all locked before any masking starts
            blocks.block(ex, t, f"refresh from {label}: masking not verified yet")
            locked = blocks.lock_now(ex, t)
            say(f"{t}: blocked on {new_id}, {len(locked)} source account(s) locked")
        conn, notes = engine.open_session(info)
        try:
            if first:
                for t in names:
                    engine.abandon_runs(conn, f"{t}_db")
            for t in names:
                run = engine.latest_run(conn, f"{t}_db")
                fresh = run is None or run.source != f"refresh:{label}" or run.phase in ("verified", "abandoned")
                if not fresh and run.digest != engine.rules_digest(rules[t]):
                    raise SharedMySQLError(
                        f"tenants.{t}.masking changed since this refresh started masking {new_id}; the source's "
                        "values are partly masked there, so the new rules' fingerprints would be of masked data: "
                        "re-run with --restart (a new snapshot and instance)")
                r = mask_database(conn, t, rules[t], source=f"refresh:{label}", new_run=fresh, batch=batch)
                r["notes"] = notes
                out.append(r)
                if r["ok"]:
                    blocks.unblock(ex, t)
                    say(f"{t}: masking verified")
                else:
                    say(f"{t}: verification FAILED; it stays locked and {new_id} is not cut over")
        finally:
            conn.close()
    return out


def _cut_over(rds, tgt_id, new_id, old_id, tgt, poll, sleep, say) -> None:
    """The old target renamed away, the new instance renamed to the target's name. Each rename is checked
    first, so a re-run after a kill between them continues."""
    tgt = R.instance_exists(rds, tgt_id) if R.instance_exists(rds, old_id) is None else None  # as it is now
    if R.instance_exists(rds, old_id) is None and tgt is not None and \
            R.instance_exists(rds, new_id) is not None:
        say(f"renaming {tgt_id} to {old_id}")
        if tgt and tgt.get("DeletionProtection"):
            R._call(f"ModifyDBInstance {tgt_id}", rds.modify_db_instance, DBInstanceIdentifier=tgt_id,
                    DeletionProtection=False, ApplyImmediately=True)
        R._call(f"ModifyDBInstance {tgt_id} (rename)", rds.modify_db_instance, DBInstanceIdentifier=tgt_id,
                NewDBInstanceIdentifier=old_id, ApplyImmediately=True)
        _available(rds, old_id, f"renaming {tgt_id}", poll, sleep, say)
    if R.instance_exists(rds, new_id) is not None and R.instance_exists(rds, tgt_id) is None:
        say(f"renaming {new_id} to {tgt_id}")
        R._call(f"ModifyDBInstance {new_id} (rename)", rds.modify_db_instance, DBInstanceIdentifier=new_id,
                NewDBInstanceIdentifier=tgt_id, ApplyImmediately=True)
        _available(rds, tgt_id, f"renaming {new_id}", poll, sleep, say)
    if R.instance_exists(rds, tgt_id) is None:
        raise SharedMySQLError(f"cut over: neither {new_id} nor {tgt_id} exists; check the RDS console (the "
                               f"previous target is {old_id}) and re-run")


__all__ = ["refresh_aws", "MaskingFailed"]
