"""Command definitions. Library calls only; every error is a SharedMySQLError rendered by `main`."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Optional

import typer

from ..errors import SharedMySQLError, UsageError  # noqa: F401 (UsageError used by commands)


class Output(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"  # audit only


class State:
    config: Optional[str] = None
    output: Output = Output.text
    debug: bool = False

    def loaded(self):
        from ..config import load_config

        return load_config(self.config)

    def target(self):
        from ..target import open_target

        return open_target(self.loaded())

    @property
    def json(self) -> bool:
        return self.output == Output.json


state = State()


def emit_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def build_app():
    app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                      help="Run one MySQL/MariaDB instance shared by many services, as code.")

    @app.callback()
    def _globals(
        ctx: typer.Context,
        config: Optional[str] = typer.Option(None, "--config", "-c", envvar="SHARED_MYSQL_CONFIG",
                                             help="Config file [default: ./shared-mysql.yaml]."),
        output: Output = typer.Option(Output.text, "--output", "-o",
                                      help="text for people, json for machines (sarif: audit only)."),
        debug: bool = typer.Option(False, "--debug", help="Log SQL (redacted) and show tracebacks."),
    ):
        state.config, state.output, state.debug = config, output, debug
        if output == Output.sarif and ctx.invoked_subcommand != "audit":
            raise UsageError("-o sarif: only `audit` writes SARIF; use -o text or -o json")
        if debug:
            import logging  # only here: ~7 ms of start-up otherwise

            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="debug: %(name)s: %(message)s")
            # botocore logs whole request and response bodies at DEBUG: GetSecretValue's SecretString,
            # PutSecretValue, ModifyDBInstance's MasterUserPassword. Our own SQL log is redacted; theirs is not.
            for name in ("botocore", "boto3", "urllib3", "s3transfer"):
                logging.getLogger(name).setLevel(logging.WARNING)

    from . import backup, commands, infra, local, mask, migrate, onboard, slowlog, snapshot, suspend

    commands.register(app)
    slowlog.register(app)
    backup.register(app)
    snapshot.register(app)
    mask.register(app)
    migrate.register(app)
    onboard.register(app)
    suspend.register(app)
    suspend.register_isolate(app)
    suspend.register_doctor(app)
    app.add_typer(local.build(), name="local", help="Manage the embedded server only.")
    app.add_typer(infra.build(), name="infra", help="The AWS infrastructure as a CDK app (needs the infra extra).")
    return app


__all__ = ["build_app", "state", "emit_json", "echo", "Output"]
