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
    from ..errors import SharedMySQLError
    from .app import build_app, state

    args = hoist_globals(list(sys.argv[1:] if argv is None else argv))
    app = build_app()
    try:
        # Standalone mode: usage errors exit 2, typer.Exit carries its code; our errors come through here.
        app(args=args, prog_name="shared-mysql")
    except SharedMySQLError as exc:
        if state.debug:
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
