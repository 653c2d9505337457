"""`migrate TENANT [info|validate|repair|baseline]`: Flyway-compatible migrations, run as the tenant."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .app import echo, emit_json, state


class Action(str, Enum):
    migrate = "migrate"
    info = "info"
    validate = "validate"
    repair = "repair"
    baseline = "baseline"


def register(app: typer.Typer) -> None:
    @app.command("migrate")
    def migrate_cmd(
        tenant: str = typer.Argument(..., help="The tenant whose database is migrated."),
        action: Action = typer.Argument(Action.migrate, help="migrate (default), info, validate, repair, baseline."),
        directory: Optional[Path] = typer.Option(None, "--dir", help="The migrations directory "
                                                                     "(default: tenants.<t>.migrations.dir)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run; change nothing."),
        target_version: Optional[str] = typer.Option(None, "--target", help="Migrate up to this version."),
        version: Optional[str] = typer.Option(None, "--version", help="baseline: the version the existing schema is "
                                                                      "at (default 1)."),
        lock_timeout: float = typer.Option(60.0, "--lock-timeout", min=0, help="Wait this long for another "
                                                                               "migration of the same database."),
        allow_locking: bool = typer.Option(False, "--allow-locking", help="Run changes that copy or lock a table "
                                                                          "above max_locking_rows."),
    ):
        """Apply pending migrations as the tenant (its own credential and database), Flyway-compatible."""
        import re

        from ..migrations import runner
        from .app import UsageError

        if target_version is not None and not re.fullmatch(r"\d+([._]\d+)*", target_version):
            raise UsageError(f"--target {target_version[:40]!r}: a version, digits separated by . or _ (e.g. 7 or 1.2)")
        if version is not None and action != Action.baseline:
            raise UsageError("--version is for `migrate TENANT baseline`; use --target to stop at a version")
        t = state.target()
        if action == Action.migrate:
            out = runner.migrate(t, tenant, directory, target_version=target_version and
                                 target_version.replace("_", "."), dry_run=dry_run,
                                 lock_wait=lock_timeout, allow_locking=allow_locking,
                                 say=(lambda m: sys.stderr.write(m + "\n")) if not state.json else None)
            if state.json:
                emit_json(out)
            elif dry_run:
                for c in out["checks"]:
                    mark = {"ok": "✓", "locking": "!", "refused": "✗", "error": "✗"}[c["verdict"]]
                    how = (f"ALGORITHM={c['algorithm']}, LOCK={c['lock']}" if c["algorithm"] else
                           "a new table (empty)") if c["verdict"] != "error" else f"fails: {c['error']}"
                    echo(f"{mark} {c['script']}:{c['line']} {c['table']} (~{c['rows']} rows): {how}"
                         + (f"; REFUSED above max_locking_rows {out['max_locking_rows']}" if c["verdict"] == "refused"
                            else "") + (f"; safer: {c['safer']}" if c.get("safer") else ""))
                for m in out["pending"]:
                    echo(f"would apply {m['type']} {m['version'] or ''} {m['description']} ({m['script']}, "
                         f"{m['statements']} statement(s))".replace("  ", " "))
                if not out["pending"]:
                    echo(f"{out['database']} is up to date")
            else:
                for m in out["applied"]:
                    echo(f"applied {m['script']} ({m['statements']} statement(s), {m['ms']} ms)")
                echo(f"{out['database']}: {len(out['applied'])} migration(s) applied in {out['seconds']} s"
                     if out["applied"] else f"{out['database']} is up to date")
        elif action in (Action.info, Action.validate):
            out = runner.info(t, tenant, directory)
            if state.json:
                emit_json(out)
            else:
                for m in out["migrations"]:
                    echo(f"{m['state']:<8} {m['version'] or '':<10} {m['description']:<40} {m['type']:<9} "
                         f"{m['installed_on'] or ''}")
                for p in out["problems"]:
                    echo(f"✗ {p}")
            if action == Action.validate and out["problems"]:
                raise runner.ValidationFailed(f"validate {tenant}: {len(out['problems'])} problem(s); the first: "
                                              f"{out['problems'][0]}")
        elif action == Action.repair:
            out = runner.repair(t, tenant, directory, lock_wait=lock_timeout)
            if state.json:
                emit_json(out)
            else:
                for k, what in (("removed_failed", "removed failed"), ("realigned", "realigned checksum of"),
                                ("marked_deleted", "marked deleted")):
                    for s in out[k]:
                        echo(f"{what} {s}")
                if not any(out[k] for k in ("removed_failed", "realigned", "marked_deleted")):
                    echo("nothing to repair")
        else:
            out = runner.baseline(t, tenant, version or "1")
            if state.json:
                emit_json(out)
            else:
                echo(f"{tenant}: baseline at version {out['baseline']}"
                     + (" (already there)" if out["already"] else ""))


__all__ = ["register"]
