"""`shared-mysql local up|down|status`: the embedded server only."""

from __future__ import annotations

import typer

from .app import echo, emit_json, state


def _print_status(st: dict) -> None:
    if state.json:
        emit_json(st)
        return
    if st["running"]:
        echo(f"running: {st['flavor']} {st['version']} on {st['host']}:{st['port']} (pid {st['pid']})")
    else:
        echo(f"stopped: {st['flavor']} {st['version']}, port {st['port']}")
    echo(f"datadir: {st['datadir']}")
    echo(f"ca:      {st['ca']}")
    for name, path in st["logs"].items():
        if path:
            label = "binlog:" if name == "binlog" else f"{name} log:"
            echo(f"{label:11s}{path}")


def _local_target():
    from ..errors import UsageError

    t = state.target()
    if t.kind != "local":
        raise UsageError(f"`local` manages the embedded server; this config has target: {t.kind}")
    return t


def build() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("up")
    def up():
        """Start the embedded server (idempotent; recovers from a crash or a stale pid file)."""
        t = _local_target()
        st = t.local_up()
        _print_status(st)

    @app.command("down")
    def down():
        """Stop the embedded server cleanly."""
        t = _local_target()
        was = t.server.down()
        if state.json:
            emit_json({"stopped": was, "running": False})
        else:
            echo("stopped" if was else "not running")

    @app.command("status")
    def status():
        """Show whether the embedded server runs, and where its files and logs are."""
        t = _local_target()
        _print_status(t.server.status())

    return app
