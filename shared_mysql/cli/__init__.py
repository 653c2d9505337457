"""The `shared-mysql` command: parse -> call the library -> render -> exit code.

Global options (-c/--config, -o/--output, --debug) are accepted before or after the command, as kubectl users
expect (`shared-mysql tenants -o json`): they are hoisted in front of the command before Typer parses.
"""

from __future__ import annotations

import sys

GLOBAL_WITH_VALUE = {"-c": "--config", "--config": "--config", "-o": "--output", "--output": "--output"}
GLOBAL_FLAGS = {"--debug"}


def hoist_globals(argv: list[str]) -> list[str]:
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name, eq, value = arg.partition("=")
        if name in GLOBAL_WITH_VALUE and arg.startswith("--") and eq:
            front += [GLOBAL_WITH_VALUE[name], value]
        elif arg in GLOBAL_WITH_VALUE and i + 1 < len(argv):
            front += [GLOBAL_WITH_VALUE[arg], argv[i + 1]]
            i += 1
        elif len(arg) > 2 and arg[:2] in ("-c", "-o") and not arg.startswith("--"):
            front += [GLOBAL_WITH_VALUE[arg[:2]], arg[2:]]
        elif arg in GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    import gc

    # Every command is short-lived and builds tens of thousands of objects (accounts, grants, secrets) that form
    # no reference cycles: the cyclic collector would walk them all, again and again, for nothing (~30% of a
    # 10,000-tenant plan). A command that runs for long (a future exporter or follower) turns it back on.
    enabled = gc.isenabled()
    gc.disable()
    try:
        _main(argv)
    finally:
        if enabled:
            gc.enable()


def _fast(args: list[str]) -> bool:
    """`slowlog digest` of files is a batch job people time against pt-query-digest: it runs without building the
    Typer app (~0.25 s of imports and parameter adapters). Only a command line it fully understands; anything else
    (help, errors, --debug) takes the Typer path below, so messages are the same."""
    if "slowlog" not in args or "digest" not in args:
        return False
    from ..slowlog.command import fast_args

    kw = fast_args(args)
    if kw is None:
        return False
    from ..errors import SharedMySQLError

    try:
        from ..slowlog.command import run

        run(**kw)
    except SharedMySQLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except PermissionError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: permission denied:{where}", file=sys.stderr)
        sys.exit(1)
    return True


def _main(argv: list[str] | None) -> None:
    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    if _fast(args):
        sys.exit(0)
    from ..errors import SharedMySQLError
    from .app import build_app, state

    import typer

    try:  # Typer 0.2x ships its own copy of click; older ones use click itself
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - depends on the installed Typer
        import click.exceptions as cx

    from ..db import set_operator

    set_operator(" ".join(["shared-mysql", *args]))  # named to whoever waits on this command's server lock
    app = build_app()
    try:
        # Not standalone: usage errors come here too, and are one line like every other error (Typer's boxed
        # rendering is several); --help and typer.Exit return their exit code.
        code = app(args=args, prog_name="shared-mysql", standalone_mode=False)
    except getattr(cx, "NoArgsIsHelpError", ()):  # `shared-mysql` alone, or a group alone: help was printed
        sys.exit(2)
    except cx.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "shared-mysql"
        msg = _one_line(exc.format_message()).replace("Value error, ", "").rstrip(".")
        print(f"error: {msg}; see `{cmd} --help`", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: aborted; nothing more was done", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM where a command maps it (backup test): cleanup has run
        if state.debug:
            raise
        print("error: interrupted; re-run the command to finish or undo what it started", file=sys.stderr)
        sys.exit(130)
    except SharedMySQLError as exc:
        if state.debug:
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except PermissionError as exc:  # the state dir of another user, most often: one line, not a traceback
        if state.debug:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: permission denied:{where}; run shared-mysql as the user that owns the state directory "
              "(.shared-mysql/ next to the config)", file=sys.stderr)
        sys.exit(1)
    if code == 130:  # Typer turns Ctrl-C (and SIGTERM where a command maps it) into a silent exit 130
        print("error: interrupted; re-run the command to finish or undo what it started", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())
