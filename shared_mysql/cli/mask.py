"""`refresh` and `mask [--check]`: environment refresh with verified data masking."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .app import echo, emit_json, state


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def _render(out: dict, verb: str) -> None:
    for note in out.get("notes", []):
        _err(f"note: {note}")
    for r in out["tenants"]:
        for c in r["columns"]:
            what = f"{c['table']}.{c['column'] or '*'}"
            bad = c["violations"] or c["matches"] or c["unfinished"]
            fp = (f", {c['matches']} of {c['fingerprints']} sampled source values left" if c["fingerprints"]
                  else "")
            echo(f"{'✗' if bad else '✓'} {r['tenant']}: {what} {c['rule']}: {c['rows']} row(s), "
                 f"{c['violations']} breaking the rule{fp}")
        for n in r.get("notes", []):
            echo(f"  note: {n}")
        for p in r["problems"]:
            if not any(p.startswith(f"{c['table']}.") for c in r["columns"]):
                echo(f"✗ {r['tenant']}: {p}")
        extra = ""
        if "rows_masked" in r:
            extra = (f": {r['rows_masked']} row(s) masked in {r['mask_s']} s"
                     + (" (resumed)" if r.get("resumed") else ""))
        echo(f"{r['tenant']} ({r['database']}) {verb}{extra}: {'OK' if r['ok'] else 'FAILED'}")
    if not out["tenants"]:
        echo("no tenant declares masking rules (tenants.<t>.masking)")


def _fail(out: dict, verb: str) -> None:
    from ..masking.run import MaskingFailed

    bad = [r for r in out["tenants"] if not r["ok"]]
    if bad:
        first = bad[0]["problems"][0] if bad[0]["problems"] else "verification failed"
        raise MaskingFailed(f"{verb}: {len(bad)} tenant(s) not masked; {bad[0]['tenant']}: {first}")


def register(app: typer.Typer) -> None:
    @app.command("mask")
    def mask_cmd(
        check: bool = typer.Option(False, "--check", help="Only verify (read-only): exit 3 when anything is "
                                                          "unmasked."),
        tenant: Optional[List[str]] = typer.Option(None, "--tenant", help="Only this tenant (repeat)."),
        batch: int = typer.Option(20000, "--batch", min=1, max=1000000, help="Rows per masking transaction."),
        lock_timeout: float = typer.Option(0.0, "--lock-timeout", min=0, help="Wait this long for another "
                                                                              "operator's command."),
    ):
        """Mask the tenants' data in place by their rules (resumes an interrupted run), then verify; with
        --check, verify only."""
        from ..masking.run import check as run_check
        from ..masking.run import mask as run_mask

        t = state.target()
        t.prepare()
        if check:
            out = run_check(t, tenant or None)
        else:
            def progress(table, n):
                if not state.json and sys.stderr.isatty():
                    sys.stderr.write(f"\r  {table}: {n} row(s)")

            out = run_mask(t, tenant or None, batch=batch, lock_wait=lock_timeout, progress=progress)
            if not state.json and sys.stderr.isatty():
                sys.stderr.write("\r\033[K")  # the progress line is done
        if state.json:
            emit_json(out)
        else:
            _render(out, "check" if check else "masking")
        _fail(out, "mask --check" if check else "mask")

    @app.command("refresh")
    def refresh_cmd(
        source: str = typer.Option(..., "--from", help="The source environment's config file (e.g. prod.yaml)."),
        tenant: Optional[List[str]] = typer.Option(None, "--tenant", help="Only this tenant (repeat)."),
        restart: bool = typer.Option(False, "--restart", help="Start over instead of resuming an unfinished "
                                                              "refresh."),
        batch: int = typer.Option(20000, "--batch", min=1, max=1000000, help="Rows per masking transaction."),
        lock_timeout: float = typer.Option(0.0, "--lock-timeout", min=0, help="Wait this long for another "
                                                                              "operator's command."),
    ):
        """Copy the source environment's data into this config's target, mask it, verify it, then apply this
        target's own accounts and secrets. Exit 3 (tenant left locked) when verification fails."""
        from ..config import load_config
        from ..masking.refresh import refresh

        from pathlib import Path

        from ..errors import UsageError

        if not Path(source).is_file():
            raise UsageError(f"--from {source}: no such file; give the source environment's config")
        t = state.target()
        src = load_config(source)
        out = refresh(t, src, tenant or None, restart=restart, batch=batch, lock_wait=lock_timeout,
                      progress=lambda m: _err(m) if not state.json else None)
        if state.json:
            emit_json(out)
        else:
            _render(out, "refresh")
            if out.get("cutover"):
                echo(out["cutover"])
        _fail(out, "refresh")


__all__ = ["register"]
