"""`backup create|archive|list|verify|prune|test` and `restore`: logical backups and PITR (local/server); on
aws, `restore` and `backup test` are RDS point-in-time restores into a new instance (backup/rds.py, rds_drill.py)."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .app import UsageError, echo, emit_json, state


def _target():
    t = state.target()
    if t.kind == "aws":
        raise UsageError("backups of the aws target are RDS snapshots and PITR: use `shared-mysql snapshot "
                         "create|list`, `restore --to-time` and `backup test`")
    t.prepare()
    return t


def _store_target():
    """list/verify/prune read the local backup directory: on aws the backups are RDS's."""
    t = state.target()
    if t.kind == "aws":
        raise UsageError("backups of the aws target are RDS snapshots: `shared-mysql snapshot list` shows them and "
                         "the point-in-time window")
    return t


def _mb(n) -> str:
    return f"{(n or 0) / 1e6:.1f} MB"


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def register(app: typer.Typer) -> None:
    backup = typer.Typer(no_args_is_help=True, help="Consistent encrypted backups, binlog archiving, restore tests.")
    app.add_typer(backup, name="backup")

    @backup.command("create")
    def create_cmd(
        tenant: Optional[List[str]] = typer.Option(None, "--tenant", help="Only this tenant's database (repeat)."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, max=32,
                                               help="Dump sessions (default: config)."),
    ):
        """A consistent backup (no global lock), compressed and encrypted, with a manifest."""
        from ..backup.create import create

        t = _target()
        s = create(t, tenants=tenant or None, workers=workers)
        if state.json:
            emit_json(s)
            return
        echo(f"backup {s['id']}: {len(s['databases'])} database(s), {_mb(s['raw_size'])} of rows in "
             f"{_mb(s['size'])}, {s['duration_s']:.2f} s")
        echo(f"  position {s['position']['file']}:{s['position']['pos']}"
             + (f" (GTID {s['position']['gtid']})" if s["position"].get("gtid") else "")
             + f"; commits held {s['lock_ms']} ms")

    @backup.command("archive")
    def archive_cmd(follow: bool = typer.Option(False, "--follow", help="Keep copying until stopped (SIGTERM).")):
        """Copy the server's binlogs into the archive (resumes; safe from cron; one archiver at a time)."""
        from ..backup.archive import Archive, ArchiveBusy

        t = _target()
        arch = Archive(t)
        try:
            if follow:
                _err(f"archiving binlogs into {arch.dir} until stopped")
                arch.follow(on_event=lambda m: _err(f"archive: {m}"))
                s = arch.summary()
            else:
                s = arch.run_once()
        except ArchiveBusy as exc:
            _err(str(exc))
            return
        if state.json:
            emit_json(s)
        else:
            echo(f"archive {s['dir']}: {s['files']} binlog(s) {s['first']}..{s['last']}, RPO {s['rpo_s']} s"
                 + (f"; sealed {', '.join(s.get('sealed') or [])}" if s.get("sealed") else ""))
        if s.get("new_gaps") or (follow and s.get("gaps")):
            from ..errors import FindingsFailed

            g = (s.get("new_gaps") or s["gaps"])[0]
            raise FindingsFailed(f"binlog gap: {g['from']}..{g['to']} {g['reason']}; point-in-time restores across "
                                 "it are impossible: take a new backup now (`shared-mysql backup create`)")

    @backup.command("list")
    def list_cmd():
        """Backups (id, time, position, size, verified) and the archive's RPO and gaps."""
        from ..backup.archive import Archive
        from ..backup.store import BackupDir, backup_dir

        t = _store_target()
        store = BackupDir(backup_dir(t))
        items = [b.summary() for b in store.list()]
        arch = Archive(t).summary()
        broken = [n for n in store.broken() if not n.startswith(".restore-")]  # a running restore's own
        from ..backup.restore import Journal

        unfinished = Journal(store).pending()
        if state.json:
            emit_json({"backups": items, "archive": arch, "incomplete": broken, "unfinished_restores": unfinished})
            return
        for b in items:
            v = b["verified"]
            mark = "never verified" if v is None else ("verified " + v["at"] if v["ok"] else "FAILED verify " + v["at"])
            echo(f"{b['id']}  {b['time']}  {b['position']['file']}:{b['position']['pos']}  {_mb(b['size']):>10}  "
                 f"{'partial ' if b['partial'] else ''}{mark}")
        if not items:
            echo("no backups yet (`shared-mysql backup create`)")
        for n in broken:
            echo(f"{n}  incomplete (interrupted; never restored from; `backup prune` removes it)"
                 if n.startswith(".") else
                 f"{n}  DAMAGED: its manifest is missing or unreadable; never restored from (inspect it, then "
                 "remove the directory)")
        echo(f"archive: {arch['files']} binlog(s), RPO {arch['rpo_s']} s"
             + "".join(f"; GAP {g['from']}..{g['to']}" for g in arch["gaps"]))
        for server, dbs in unfinished.items():
            echo(f"UNFINISHED restore into {', '.join(dbs)} on {server} (interrupted while swapping in: its views, "
                 "routines or triggers may be missing); re-run the same restore to finish it")

    @backup.command("verify")
    def verify_cmd(backup_id: str = typer.Argument(..., metavar="ID", help="A backup id (`backup list`).")):
        """Check every file of a backup (present, size, checksum, decrypts, rows); exit 3 when anything is wrong."""
        from ..backup.manage import verify
        from ..backup.store import BackupDir, backup_dir
        from ..errors import FindingsFailed

        t = _store_target()
        b = BackupDir(backup_dir(t)).get(backup_id)
        res = verify(t, b)
        if state.json:
            emit_json(res)
        else:
            for p in res["problems"]:
                echo(f"✗ {p}")
            for w in res["warnings"]:
                echo(f"! {w}")
            echo(f"backup {b.id}: {res['files']} file(s), {res['rows']} rows: " + ("OK" if res["ok"] else "FAILED"))
        if not res["ok"]:
            raise FindingsFailed(f"backup {b.id}: {len(res['problems'])} problem(s); the first: {res['problems'][0]}")

    @backup.command("prune")
    def prune_cmd(dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted.")):
        """Delete what backup_retention_period no longer needs (never the newest verified backup)."""
        from ..backup.manage import prune, prune_plan

        t = _store_target()
        plan = prune_plan(t)
        if not state.json:
            for b in plan["backups"]:
                echo(f"- backup {b}")
            for n in plan["binlogs"]:
                echo(f"- binlog {n}")
            for n in plan["partials"]:
                echo(f"- {n}")
            if not (plan["backups"] or plan["binlogs"] or plan["partials"]):
                echo(f"nothing to prune (retention {plan['retention_days']} days, cutoff {plan['cutoff']})")
        res = plan if dry_run else prune(t, plan)
        if state.json:
            emit_json({**res, "dry_run": dry_run})
        elif not dry_run and (plan["backups"] or plan["binlogs"] or plan["partials"]):
            echo(f"pruned {len(res['backups'])} backup(s), {len(res['binlogs'])} binlog(s), "
                 f"{len(res['partials'])} incomplete backup(s)")

    @backup.command("test")
    def test_cmd(
        workers: Optional[int] = typer.Option(None, "--workers", min=1, max=32,
                                               help="Load sessions (default: config)."),
        keep: bool = typer.Option(False, "--keep", help="Keep the scratch server's directory (debugging)."),
        snapshot: Optional[str] = typer.Option(None, "--snapshot", help="aws: restore this snapshot instead of "
                                                                        "the point in time now."),
    ):
        """Restore the latest backup + binlogs into a scratch server (aws: the instance into a temporary
        instance), compare with the live server; report RTO and RPO; exit 3 when verification fails."""
        import signal

        from ..backup.drill import VerificationFailed, run

        def stop(signum, frame):  # SIGTERM from a scheduler: unwind, so the scratch server is removed
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        if state.target().kind == "aws":
            if workers is not None or keep:
                raise UsageError("--workers and --keep are for the local/server backup test; on aws the temporary "
                                 "instance is always deleted")
            return _aws_backup_test(snapshot)
        if snapshot is not None:
            raise UsageError("--snapshot is for the aws target (RDS snapshots); here `backup test` uses the latest "
                             "backup")
        t = _target()
        r = run(t, workers=workers, keep=keep)
        if state.json:
            emit_json(r)
        else:
            for p in r["problems"]:
                echo(f"✗ {p}")
            echo(f"backup test of {r['backup']} ({r['backup_time']}) to {r['position'][0]}:{r['position'][1]}: "
                 + ("OK" if r["ok"] else "FAILED"))
            if "rto_s" in r:
                echo(f"  {r['tables']} table(s), {r['rows']} rows; RTO {r['rto_s']} s (load {r['load_s']} s, "
                     f"binlog replay {r['replay_s']} s); RPO {r['rpo_s']} s; scratch server removed: "
                     f"{'yes' if r['scratch_removed'] else 'NO'}")
        if not r["ok"]:
            raise VerificationFailed(f"backup test: {len(r['problems'])} difference(s); the first: {r['problems'][0]}")

    @app.command("restore")
    def restore_cmd(
        to_time: Optional[str] = typer.Option(None, "--to-time", help="Roll forward to this time (local, or with Z "
                                                                      "/ +09:00): every commit at or before it."),
        tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's database."),
        into: Optional[str] = typer.Option(None, "--into", help="With --tenant: restore as this new database, next "
                                                                "to the live one."),
        backup_id: Optional[str] = typer.Option(None, "--backup",
                                                 help="Start from this backup (default: newest before T)."),
        allow_destructive: bool = typer.Option(False, "--allow-destructive", help="Replace existing databases."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, max=32,
                                               help="Load sessions (default: config)."),
        snapshot: Optional[str] = typer.Option(None, "--snapshot", help="aws: restore this RDS snapshot."),
    ):
        """Restore a backup, to a point in time with the archived binlogs; never overwrites without
        --allow-destructive. aws: into a NEW instance (--into, default {source}-restored-{time})."""
        from ..backup.restore import parse_time, restore

        if state.target().kind == "aws":
            if tenant is not None:
                raise UsageError("--tenant: RDS restores whole instances; restore into a new instance with --into, "
                                 "then copy the tenant's database from it")
            if backup_id is not None or allow_destructive or workers is not None:
                raise UsageError("--backup, --allow-destructive and --workers are for local/server backups; on aws "
                                 "give --to-time or --snapshot (the source is never overwritten)")
            return _aws_restore(to_time, into, snapshot)
        if snapshot is not None:
            raise UsageError("--snapshot is for the aws target (RDS snapshots); use --backup ID here")
        t = _target()
        when = parse_time(to_time) if to_time is not None else None
        r = restore(t, to_time=when, tenant=tenant, into=into, allow_destructive=allow_destructive,
                    backup_id=backup_id, workers=workers)
        if state.json:
            emit_json(r)
            return
        for bad in r.get("skipped_damaged", []):
            _err(f"warning: backup {bad} is newer but its manifest is missing or unreadable; it was skipped")
        for src, dst in r["databases"].items():
            echo(f"restored {src}" + (f" as {dst}" if dst != src else ""))
        echo(f"from backup {r['backup']} ({r['backup_time']})"
             + (f", rolled forward to {r['to_time']} through {r['binlogs']} binlog(s)" if r["to_time"] else "")
             + f": {r['rows_loaded']} rows, {r['rto_s']} s")
        if any(src == dst for src, dst in r["databases"].items()):
            echo("take a backup now (`shared-mysql backup create`): no point-in-time restore from an older backup "
                 "can roll forward across this restore")


def _aws_restore(to_time: str | None, into: str | None, snapshot: str | None) -> None:
    from datetime import datetime, timezone

    from ..backup.rds import restore_instance
    from ..backup.restore import parse_time
    from .snapshot import progress_line

    if to_time is not None and snapshot is not None:
        raise UsageError("--to-time and --snapshot: give one (a snapshot is a fixed time)")
    t = state.target()
    when = datetime.fromtimestamp(parse_time(to_time), timezone.utc) if to_time is not None else None
    if snapshot is not None and not snapshot.strip():
        raise UsageError("--snapshot: empty; give a snapshot id (`shared-mysql snapshot list`)")
    new_id = into if into is not None else _free_restore_id(t)
    r = restore_instance(t, new_id, to_time=when, snapshot_id=snapshot, use_latest=when is None and snapshot is None,
                         progress=progress_line(f"restore {new_id}"))
    for w in r.get("warnings", []):
        _err(f"warning: {w}")
    if state.json:
        emit_json(r)
        return
    src = f"snapshot {r['snapshot']}" if r["snapshot"] else \
        f"{r['source']} at {r['restore_time'] or 'the latest restorable time'}"
    echo(f"restored {src} into NEW instance {r['instance']}: {r['endpoint']}:{r['port']} "
         f"(encrypted: {'yes, ' + str(r['kms_key']) if r['encrypted'] else 'no'}); {r['source']} was not touched")
    echo("to cut over:")
    for line in r["cut_over"]:
        echo(f"  - {line}")


def _free_restore_id(t) -> str:
    """{source}-restored-{YYYYMMDDHHMM}, with -2, -3... when a restore of the same minute exists already."""
    from ..aws import client_for
    from ..backup.rds import default_restore_id, instance_exists

    base = default_restore_id(t.config)
    rds = client_for(t.config, "rds")
    for n in range(1, 10):
        name = base if n == 1 else f"{base[:60]}-{n}"
        if instance_exists(rds, name) is None:
            return name
    return base  # restore_instance says it exists


def _aws_backup_test(snapshot: str | None) -> None:
    from ..backup.drill import VerificationFailed
    from ..backup.rds_drill import aws_backup_test

    if snapshot is not None and not snapshot.strip():
        raise UsageError("--snapshot: empty; give a snapshot id (`shared-mysql snapshot list`)")
    t = state.target()

    def progress(status, percent, elapsed):
        _err(f"backup test: {status}" + (f" {percent}%" if percent is not None else "") + f" ({int(elapsed)} s)")

    r = aws_backup_test(t, progress=progress, snapshot_id=snapshot)
    if state.json:
        emit_json(r)
    else:
        for x in r["leftovers_deleted"]:
            echo(f"deleted leftover {x['instance']} ({x['why']})")
        for p in r["problems"]:
            echo(f"✗ {p}")
        for n in r["not_compared"]:
            echo(f"~ {n}")
        echo(f"backup test of {r['source']} restored to {r['restore_time']} as {r['instance']}: "
             + ("OK" if r["ok"] else "FAILED"))
        if "rto_s" in r:
            echo(f"  {r.get('compared', 0)} of {r['tables']} table(s) compared, {len(r['not_compared'])} changed "
                 f"since; RTO {r['rto_s']} s (restore {r['restore_s']} s); RPO {r['rpo_s']} s"
                 + (f" (marker restorable after {r['marker_wait_s']} s)" if r.get("marker_wait_s") is not None else ""))
        echo(f"  temporary instance {r['instance']} deleted: {'yes' if r.get('temp_deleted') else 'NO'}")
    if not r["ok"]:
        raise VerificationFailed(f"backup test of {r['source']}: {len(r['problems'])} problem(s); the first: "
                                 f"{r['problems'][0]}")
    if not r.get("temp_deleted"):
        from ..errors import SharedMySQLError

        raise SharedMySQLError(f"backup test: the temporary instance {r['instance']} could not be deleted; delete it "
                               f"with `aws rds delete-db-instance --db-instance-identifier {r['instance']} "
                               "--skip-final-snapshot --delete-automated-backups`")


__all__ = ["register"]
