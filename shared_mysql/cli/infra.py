"""`shared-mysql infra synth|check|diff|deploy`: the CDK app built from shared-mysql.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess

import typer

from ..errors import SharedMySQLError
from .app import echo, emit_json, state


class CheckFailed(SharedMySQLError):
    exit_code = 3  # failing findings, as for audits


def _synth(nag: bool = True):
    from ..infra.app import synth

    return synth(state.loaded(), nag=nag)


def _cdk_cli() -> str:
    for cand in (shutil.which("cdk"), os.path.join(os.getcwd(), "node_modules", ".bin", "cdk")):
        if cand and os.path.exists(cand):
            return cand
    raise SharedMySQLError("`infra diff` and `infra deploy` need the AWS CDK CLI; install it with "
                           "`npm install -g aws-cdk` (synth and check do not)")


def _require_credentials() -> None:
    from ..aws import session

    c = state.loaded().config
    creds = session(c.aws.region, c.aws.profile, c.instance.aws_region).get_credentials()
    if creds is None:
        raise SharedMySQLError("no AWS credentials found; set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY) to diff or deploy; `infra synth` and `infra check` work offline")


def build() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command()
    def synth():
        """Write the CloudFormation template(s) to cdk.out/ next to the config (offline)."""
        r = _synth(nag=False)
        if state.json:
            emit_json({"outdir": str(r.outdir), "templates": [str(t) for t in r.templates]})
        else:
            for t in r.templates:
                echo(f"wrote {t}")

    @app.command()
    def check():
        """Synthesise, then run cdk-nag (AwsSolutions) and cfn-lint (offline). Exit 3 on findings."""
        from ..infra.app import cfn_lint

        r = _synth(nag=True)
        lint = cfn_lint(r.templates)
        lint_errors = [m for m in lint if m["level"] == "Error"]
        if state.json:
            emit_json({"templates": [str(t) for t in r.templates], "nag": r.findings, "cfn_lint": lint,
                       "acknowledged": r.acknowledged, "passed": not r.failures and not lint_errors})
        else:
            for f in r.findings:
                echo(f"{f['severity']}: {f['rule']}: {f['description']} ({', '.join(f['resources'])})")
            for m in lint:
                echo(f"cfn-lint {m['level'].lower()}: {m['rule']}: {m['message']} ({os.path.basename(m['file'])}:"
                     f"{m['line']})")
            echo(f"cdk-nag AwsSolutions: {len(r.failures)} failing, {len(r.acknowledged)} acknowledged with a reason:")
            for rule, reason in r.acknowledged.items():
                echo(f"  {rule.split('::', 1)[1]}: {reason}")
            echo(f"cfn-lint: {len(lint_errors)} errors, {len(lint) - len(lint_errors)} warnings/informational")
        if r.failures or lint_errors:
            raise CheckFailed(f"infra check failed: {len(r.failures)} cdk-nag finding(s), {len(lint_errors)} "
                              "cfn-lint error(s); fix them or acknowledge them with a reason")

    def _cdk(action: str, extra: list[str]) -> None:
        _require_credentials()
        cdk = _cdk_cli()
        r = _synth(nag=True)
        cmd = [cdk, action, "--app", str(r.outdir), *extra]
        res = subprocess.run(cmd)
        if res.returncode != 0:
            raise SharedMySQLError(f"cdk {action} exited {res.returncode}; see its output above")

    @app.command()
    def diff():
        """Compare the synthesised stack with what is deployed (needs AWS credentials and the CDK CLI)."""
        _cdk("diff", [])

    @app.command()
    def deploy(auto_approve: bool = typer.Option(False, "--auto-approve",
                                                 help="Do not ask before security-sensitive changes.")):
        """Deploy the stack (needs AWS credentials and the CDK CLI)."""
        _cdk("deploy", ["--require-approval", "never"] if auto_approve else [])

    return app
