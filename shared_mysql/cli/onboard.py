"""`iam-policy TENANT` and `ci-workflow TENANT`: what a service needs to join the platform."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from .app import UsageError, emit_json, state


def register(app: typer.Typer) -> None:
    @app.command("iam-policy")
    def iam_policy_cmd(
        tenant: str = typer.Argument(..., help="The service (tenant)."),
        user: str = typer.Option("app", "--user", help="app or readonly."),
    ):
        """The least-privilege IAM policy of the service's task role (JSON)."""
        from ..onboard.iam import policy

        if user not in ("app", "readonly"):
            raise UsageError(f"--user {user!r}: app or readonly")
        doc = policy(state.target(), tenant, user)
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")

    @app.command("ci-workflow")
    def ci_workflow_cmd(
        tenant: str = typer.Argument(..., help="The service (tenant)."),
        role_arn: Optional[str] = typer.Option(None, "--role-arn", help="The role the job assumes (OIDC)."),
        migrations_dir: Optional[str] = typer.Option(None, "--dir", help="The migrations directory in the repo."),
        config_path: str = typer.Option("shared-mysql.yaml", "--config-path", help="The config's path in the repo."),
        branch: str = typer.Option("main", "--branch", help="Migrate on pushes to this branch."),
        runs_on: str = typer.Option("ubuntu-latest", "--runs-on", help="The runner (one that reaches the instance: "
                                                                       "self-hosted in the VPC for private RDS)."),
        package: Optional[str] = typer.Option(None, "--package", help="The pip requirement to install "
                                                                      "(default: this version, with the aws extra)."),
    ):
        """A GitHub Actions workflow that migrates the tenant's database (OIDC role, no stored secrets)."""
        from ..onboard.workflow import render, workflow

        doc = workflow(state.target(), tenant, role_arn=role_arn, config_path=config_path,
                       migrations_dir=migrations_dir, branch=branch, runs_on=runs_on, package=package)
        if state.json:
            emit_json(doc)
        else:
            sys.stdout.write(render(doc))


__all__ = ["register"]
