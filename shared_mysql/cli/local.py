"""`shared-mysql local up|down|status`: the embedded server only."""

from __future__ import annotations

import sys

import typer

from .app import echo, emit_json, state

# The owned settings shown in text output (JSON shows all): what the security model rests on.
SHOWN_FORCED = ("bind_address", "require_secure_transport", "skip_name_resolve", "secure_file_priv",
                "log_bin_trust_function_creators", "mysqlx")


def _print_status(st: dict) -> None:
    if st.get("restart_needed"):
        # One line on stderr in both modes (JSON also carries restart_needed / restart_reason).
        sys.stderr.write(f"warning: {st['restart_reason']}\n")
    if state.json:
        emit_json(st)
        return
    if st["running"]:
        # What the process really listens on (from /proc), which differs from the config until a restart.
        echo(f"running: {st['flavor']} {st['version']} (pid {st['pid']})")
        echo(f"listening: {', '.join(st['listening']) or 'no TCP listener found in /proc'}")
        sock = st["unix_socket"]
        echo(f"unix socket: {sock['path']} ({'REACHABLE' if sock['reachable'] else 'removed: TCP with TLS only'})")
    else:
        echo(f"stopped: {st['flavor']} {st['version']}, port {st['port']}")
    echo(f"datadir: {st['datadir']}")
    echo(f"ca:      {st['ca']}")
    for name, path in st["logs"].items():
        if path:
            label = "binlog:" if name == "binlog" else f"{name} log:"
            echo(f"{label:11s}{path}")
    forced = st.get("forced") or {}
    shown = [f"{k}={forced[k]}" for k in SHOWN_FORCED if k in forced]
    if shown:
        echo(f"forced:    {', '.join(shown)}")


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
        # Under the target's lock when it has one, so a concurrent `local up` is not cut short.
        was = t.local_down()
        if state.json:
            emit_json({"stopped": was, "running": False})
        else:
            echo("stopped" if was else "not running")

    @app.command("status")
    def status():
        """Show whether the embedded server runs, what it listens on, and where its files and logs are."""
        t = _local_target()
        _print_status(t.server.status())

    return app
