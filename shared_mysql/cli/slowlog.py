"""`slowlog digest`: the slow log by fingerprint and by tenant."""

from __future__ import annotations

from typing import List, Optional

import typer

from .app import state


def register(app: typer.Typer) -> None:
    slowlog = typer.Typer(no_args_is_help=True, help="The slow log: which service is slow, with which query.")
    app.add_typer(slowlog, name="slowlog")

    @slowlog.command("digest")
    def digest(
        files: Optional[List[str]] = typer.Argument(None, help="Slow-log files (plain or gzip; rotations are read "
                                                               "oldest first). Default: this target's slow log."),
        since: Optional[str] = typer.Option(None, "--since", help="From: a duration back (1h, 2d) or a time."),
        until: Optional[str] = typer.Option(None, "--until", help="Until: a duration back or a time."),
        tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's queries (or unmanaged, "
                                                                    "admin)."),
        limit: int = typer.Option(20, "--limit", min=0, help="Fingerprints to list (0: all)."),
        pt_compatible: bool = typer.Option(False, "--pt-compatible", help="Fingerprints exactly as pt-query-digest "
                                                                          "3.2.1 makes them, its bugs included."),
        cloudwatch: bool = typer.Option(False, "--cloudwatch", help="Read the instance's slowquery log group "
                                                                    "(CloudWatch Logs)."),
        log_group: Optional[str] = typer.Option(None, "--log-group", help="With --cloudwatch: another log group."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, max=64,
                                              help="Processes for files (default: one per core for big input)."),
    ):
        """Slow queries by fingerprint (pt-query-digest's classes and checksums) and by tenant."""
        from ..slowlog.command import run

        run(config=state.config, json_out=state.json, files=files or None, since=since, until=until, tenant=tenant,
            limit=limit, pt_compatible=pt_compatible, cloudwatch=cloudwatch, log_group=log_group, workers=workers)


__all__ = ["register"]
