"""`slowlog digest`: the slow log by fingerprint and by tenant."""

from __future__ import annotations

import os
import time
from typing import List, Optional

import typer

from ..errors import UsageError
from .app import echo, emit_json, state


def parse_when(text: str, now: float, option: str) -> float:
    """A duration back from now (90s, 30m, 1h, 2d, 1h30m) or a time: 2026-11-26 10:15[:00], ISO 8601 with T, Z
    or an offset (no zone: this machine's local time)."""
    from datetime import datetime

    from ..observe.auditlog import _DURATION

    t = text.strip()
    low = t.lower().replace(" ", "")
    parts = _DURATION.findall(low)
    if parts and "".join(n + u for n, u in parts) == low:
        return now - sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts)
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text[:40]!r}: write a duration (90s, 30m, 1h, 2d) or a time "
                         "('2026-11-26 10:15:00', 2026-11-26T10:15:00Z)") from None
    return dt.timestamp() if dt.tzinfo else dt.astimezone().timestamp()


def _attribution(need_config: bool):
    """(who, admins, config or None): account -> tenant from the config's tenants (app, readonly and the
    rotation twins); none when digesting files with no config at all."""
    explicit = state.config or os.environ.get("SHARED_MYSQL_CONFIG")
    if not need_config and not explicit and not os.path.exists("shared-mysql.yaml"):  # the default config path
        return {}, (), None
    loaded = state.loaded()
    cfg = loaded.config
    from ..tenants.model import derived_user_names

    who = {n: t for t in cfg.tenants for n in derived_user_names(t)}
    return who, (cfg.instance.master_username,), cfg


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
        from ..errors import SharedMySQLError
        from ..slowlog.parse import Options
        from ..slowlog.report import build, render_text
        from ..slowlog.sources import digest_cloudwatch, digest_files, rotation_order, slowquery_group

        if log_group and not cloudwatch:
            raise UsageError("--log-group: only with --cloudwatch")
        if cloudwatch and files:
            raise UsageError("--cloudwatch reads CloudWatch Logs: give no FILE with it")
        now = time.time()
        t_since = parse_when(since, now, "--since") if since else None
        t_until = parse_when(until, now, "--until") if until else None
        if t_since is not None and t_until is not None and t_since > t_until:
            raise UsageError("--since is after --until: nothing could match; swap them")
        who, admins, cfg = _attribution(need_config=not files)
        if tenant is not None and tenant not in ("unmanaged", "admin") and (cfg is None or tenant not in cfg.tenants):
            raise UsageError(f"--tenant {tenant[:64]!r}: no such tenant in the config (or use unmanaged, admin)")
        opts = Options(pt_compatible=pt_compatible, who=who, admins=admins, since=t_since, until=t_until,
                       tenant=tenant)
        if files:
            d, meta = digest_files(rotation_order(files), opts, workers)
        else:
            t = state.target()
            if cloudwatch or t.kind == "aws":
                if t.kind != "aws" and not log_group:
                    raise UsageError("--cloudwatch: this config's target is not aws; give --log-group")
                group = log_group or slowquery_group(t.config)
                d, meta = digest_cloudwatch(t.config, group, t_since if t_since is not None else now - 86400,
                                            t_until, opts)
            elif t.kind == "local":
                log = t.server.paths.slow_log
                found = [str(p) for p in log.parent.glob(log.name + "*") if p.is_file()]
                if not found:
                    raise SharedMySQLError(f"{log}: no slow log yet (the server writes it once a query takes longer "
                                           "than instance.long_query_time); run `shared-mysql up` first")
                d, meta = digest_files(rotation_order(found), opts, workers)
            else:
                raise UsageError("slowlog digest: a `server` target's slow log is a file on that server's host; copy "
                                 "it here and give it: shared-mysql slowlog digest FILE...")
        if cfg is None:
            meta = {**meta, "attribution": "none (no config: every account is unmanaged)"}
        report = build(d, meta, limit=limit, pt_compatible=pt_compatible, tenant=tenant, since=t_since,
                       until=t_until)
        if state.json:
            emit_json(report)
        else:
            echo(render_text(report))


__all__ = ["register", "parse_when"]
