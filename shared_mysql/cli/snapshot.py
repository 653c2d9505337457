"""`snapshot create|list|delete` (aws): RDS manual snapshots named like the seed's, and the PITR window."""

from __future__ import annotations

import sys

import typer

from .app import UsageError, echo, emit_json, state


def aws_target(what: str):
    t = state.target()
    if t.kind != "aws":
        raise UsageError(f"{what} works on the aws target (RDS); this config's target is {t.kind}: use "
                         "`shared-mysql backup create|list` there")
    return t


def progress_line(what: str):
    """Progress on stderr (stdout stays the result, for -o json)."""
    def show(status, percent, elapsed):
        pct = f" {percent}%" if percent is not None else ""
        sys.stderr.write(f"{what}: {status}{pct} ({int(elapsed)} s)\n")
        sys.stderr.flush()

    return show


def register(app: typer.Typer) -> None:
    snap = typer.Typer(no_args_is_help=True, help="RDS snapshots of the aws target's instance.")
    app.add_typer(snap, name="snapshot")

    @snap.command("create")
    def create_cmd(
        reason: str = typer.Option("manual", "--reason", help="Why (a word: before-migration); in the name and tags."),
        no_wait: bool = typer.Option(False, "--no-wait", help="Return once RDS has started the snapshot."),
    ):
        """A manual snapshot `{env}-{identifier}-{reason}-{YYYYMMDD-HHMM}`, tagged; waits until available and
        refuses an unencrypted one."""
        from ..backup.rds import check_reason, create_snapshot

        check_reason(reason)
        t = aws_target("snapshot create")
        s = create_snapshot(t, reason, wait=not no_wait, progress=progress_line("snapshot"))
        if state.json:
            emit_json(s)
            return
        echo(f"snapshot {s['id']} of {s['instance']}: {s['status']}, "
             + (f"encrypted with {s['kms_key']}" if s["encrypted"] else "NOT encrypted"))

    @snap.command("list")
    def list_cmd():
        """Manual and automated snapshots of the instance, oldest first, and its point-in-time window."""
        from ..backup.rds import list_snapshots

        r = list_snapshots(aws_target("snapshot list"))
        if state.json:
            emit_json(r)
            return
        for s in r["snapshots"]:
            echo(f"{s['id']}  {s['type']:<9}  {s['status']:<9}  {s['created']}  {s['size_gb'] or 0} GB  "
                 + ("encrypted" if s["encrypted"] else "NOT ENCRYPTED"))
        if not r["snapshots"]:
            echo(f"no snapshots of {r['instance']} (`shared-mysql snapshot create`)")
        p = r["pitr"]
        echo(f"point-in-time window of {r['instance']}: "
             + (f"{p['earliest'] or '(start unknown)'} .. {p['latest']} (retention {p['retention_days']} days)"
                if p["latest"] else f"none (backup_retention_period {p['retention_days']})"))

    @snap.command("delete")
    def delete_cmd(snapshot_id: str = typer.Argument(..., metavar="ID", help="A manual snapshot (`snapshot list`).")):
        """Delete a manual snapshot of this instance (never an automated one, never another instance's)."""
        from ..backup.rds import delete_snapshot

        t = aws_target("snapshot delete")
        r = delete_snapshot(t, snapshot_id, progress=progress_line("delete"))
        if state.json:
            emit_json(r)
            return
        echo(f"deleted snapshot {r['id']} of {r['instance']}")


__all__ = ["register", "aws_target", "progress_line"]
