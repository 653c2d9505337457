"""`slowlog digest` as a function: shared by the Typer command and the CLI's start-up fast path (no Typer, no
pydantic unless a config is read), so a digest of files starts in ~0.05 s instead of the CLI's ~0.3 s."""

from __future__ import annotations

import os
import sys
import time

from ..errors import SharedMySQLError, UsageError


def parse_when(text: str, now: float, option: str) -> float:
    """A duration back from now (90s, 30m, 1h, 2d, 1h30m) or a time: 2026-11-26 10:15[:00], ISO 8601 with T, Z
    or an offset (no zone: this machine's local time)."""
    from datetime import datetime

    from ..observe.auditlog import duration

    back = duration(text)
    if back is not None:
        return now - back
    t = text.strip()
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text[:40]!r}: write a duration (90s, 30m, 1h, 2d) or a time "
                         "('2026-11-26 10:15:00', 2026-11-26T10:15:00Z)") from None
    return dt.timestamp() if dt.tzinfo else dt.astimezone().timestamp()


def _attribution(config: str | None, need_config: bool):
    """(who, admins, loaded config or None): account -> tenant from the config's tenants (app, readonly and the
    rotation twins); none when digesting files with no config at all."""
    explicit = config or os.environ.get("SHARED_MYSQL_CONFIG")
    if not need_config and not explicit and not os.path.exists("shared-mysql.yaml"):  # the default config path
        return {}, (), None
    from ..config import load_config
    from ..tenants.model import derived_user_names

    loaded = load_config(config)
    cfg = loaded.config
    who = {n: t for t in cfg.tenants for n in derived_user_names(t)}
    return who, (cfg.instance.master_username,), loaded


def run(*, config: str | None, json_out: bool, files: list[str] | None, since: str | None, until: str | None,
        tenant: str | None, limit: int, pt_compatible: bool, cloudwatch: bool, log_group: str | None,
        workers: int | None) -> None:
    from .parse import Options
    from .report import build, render_text
    from .sources import digest_cloudwatch, digest_files, rotation_order, slowquery_group

    if log_group and not cloudwatch:
        raise UsageError("--log-group: only with --cloudwatch")
    if cloudwatch and files:
        raise UsageError("--cloudwatch reads CloudWatch Logs: give no FILE with it")
    now = time.time()
    t_since = parse_when(since, now, "--since") if since else None
    t_until = parse_when(until, now, "--until") if until else None
    if t_since is not None and t_until is not None and t_since > t_until:
        raise UsageError("--since is after --until: nothing could match; swap them")
    who, admins, loaded = _attribution(config, need_config=not files)
    cfg = loaded.config if loaded else None
    if tenant is not None and tenant not in ("unmanaged", "admin") and (cfg is None or tenant not in cfg.tenants):
        raise UsageError(f"--tenant {tenant[:64]!r}: no such tenant in the config (or use unmanaged, admin)")
    opts = Options(pt_compatible=pt_compatible, who=who, admins=admins, since=t_since, until=t_until, tenant=tenant)
    if files:
        d, meta = digest_files(rotation_order(files), opts, workers)
    else:
        from ..target import open_target

        t = open_target(loaded)
        if cloudwatch or t.kind == "aws":
            if t.kind != "aws" and not log_group:
                raise UsageError("--cloudwatch: this config's target is not aws; give --log-group")
            group = log_group or slowquery_group(t.config)
            d, meta = digest_cloudwatch(t.config, group, t_since if t_since is not None else now - 86400, t_until,
                                        opts)
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
    report = build(d, meta, limit=limit, pt_compatible=pt_compatible, tenant=tenant, since=t_since, until=t_until)
    if json_out:
        import json

        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report) + "\n")


_VALUED = {"--since", "--until", "--tenant", "--limit", "--log-group", "--workers", "--config", "--output"}
_FLAGS = {"--pt-compatible", "--cloudwatch"}


def fast_args(args: list[str]) -> dict | None:
    """`[--config C] [--output text|json] slowlog digest ...` (globals already hoisted to the front) as run()'s
    keywords, or None: anything else (help, --debug, an unknown or repeated option, a bad value) goes through
    Typer, which says what is wrong exactly as for every other command."""
    kw: dict = {"config": None, "json_out": False, "files": [], "since": None, "until": None, "tenant": None,
                "limit": 20, "pt_compatible": False, "cloudwatch": False, "log_group": None, "workers": None}
    seen: set = set()
    i, command = 0, []
    while i < len(args):
        a = args[i]
        if a == "--":
            if command != ["slowlog", "digest"]:
                return None
            kw["files"].extend(args[i + 1:])
            break
        if a.startswith("-"):
            name, eq, value = a.partition("=")
            if name in _FLAGS and not eq:
                if name in seen:
                    return None
                seen.add(name)
                kw[name[2:].replace("-", "_")] = True
                i += 1
                continue
            if name not in _VALUED or name in seen:
                return None
            if not eq:
                if i + 1 >= len(args):
                    return None
                value = args[i + 1]
                i += 1
            seen.add(name)
            if name == "--output":
                if value not in ("text", "json"):
                    return None
                kw["json_out"] = value == "json"
            elif name in ("--limit", "--workers"):
                if not value.isdigit() or (name == "--workers" and not 1 <= int(value) <= 64):
                    return None
                kw[name[2:]] = int(value)
            else:
                kw[name[2:].replace("-", "_")] = value
        elif len(command) < 2:
            command.append(a)
        else:
            kw["files"].append(a)
        i += 1
    if command != ["slowlog", "digest"]:
        return None
    kw["files"] = kw["files"] or None
    return kw


__all__ = ["run", "fast_args", "parse_when"]
