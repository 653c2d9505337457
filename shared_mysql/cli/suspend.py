"""`suspend TENANT` / `resume TENANT`: the seed's incident response, isolating a compromised service at once."""

from __future__ import annotations

from typing import Optional

import typer

from .app import UsageError, echo, emit_json, state


def register(app: typer.Typer) -> None:
    @app.command("suspend")
    def suspend_cmd(
        tenant: str = typer.Argument(..., help="The tenant to cut off."),
        reason: Optional[str] = typer.Option(None, "--reason", help="Why (recorded, shown by plan and status)."),
        lock_timeout: int = typer.Option(0, "--lock-timeout", min=0, max=3600, help="Wait for another operator."),
    ):
        """Lock the tenant's accounts (both rotation twins, every host) and kill its sessions, now; recorded on the
        server so plan and apply keep them locked until `resume`."""
        from ..tenants import blocks

        t = state.target()
        if tenant not in t.config.tenants:
            raise UsageError(f"{tenant!r}: not a tenant in {t.loaded.path}")
        why = (reason or "suspended by an operator").strip()
        if not why.isprintable() or len(why) > 400:
            raise UsageError("--reason: one line of printable text, at most 400 characters")
        killed: list[int] = []
        from ..config.model import DATABASE_SUFFIX

        database = f"{tenant}{DATABASE_SUFFIX}"
        with t.executor() as ex, t.server_lock(ex, lock_timeout, "suspend"):
            earlier = blocks.block(ex, tenant, why, kind="suspend")
            locked = blocks.lock_now(ex, tenant, killed)  # no new logins, the open sessions ended
            # Then its events (an event runs as its definer, locked or not), then once more any session that an
            # event started in between.
            events, failed = blocks.disable_events(ex, tenant, database, killed=killed)
        if state.json:
            emit_json({"tenant": tenant, "suspended": True, "reason": earlier["reason"] if earlier else why,
                       "since": earlier["since"] if earlier else None, "locked": locked, "killed": killed,
                       "events_disabled": events, "events_failed": failed})
        else:
            if earlier:
                echo(f"{tenant} was already suspended since {earlier['since']}: {earlier['reason']} (kept)")
            else:
                echo(f"suspended {tenant}: {why}")
            for a in locked:
                echo(f"locked {a}")
            echo(f"killed {len(killed)} session(s)")
            for e in events:
                echo(f"disabled event {e}")
        if failed:
            from ..errors import SharedMySQLError

            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise SharedMySQLError(f"suspend {tenant}: its accounts are locked, but {failed[0]}{more}")

    @app.command("resume")
    def resume_cmd(
        tenant: str = typer.Argument(..., help="The tenant to let back in."),
        lock_timeout: int = typer.Option(0, "--lock-timeout", min=0, max=3600, help="Wait for another operator."),
    ):
        """Lift a suspension: the tenant's accounts are unlocked by the config's own plan (unless another block,
        such as an unverified refresh, keeps them locked)."""
        from ..tenants import blocks

        t = state.target()
        if tenant not in t.config.tenants:
            raise UsageError(f"{tenant!r}: not a tenant in {t.loaded.path}")
        from dataclasses import replace

        with t.lock():
            with t.executor() as ex, t.server_lock(ex, lock_timeout, "resume"):
                suspended = blocks.get(ex, tenant, "suspend") is not None
                events = blocks.unblock(ex, tenant, kind="suspend")  # and its events, once no block is left
                still = blocks.read(ex).get(tenant)
                unlocked: list[str] = []
                if not still:
                    # Its accounts unlocked as the config has them: nothing else (grants, other tenants' drift is
                    # for `apply` to show). A resume killed after the unblock converges the same way.
                    plan, desired = t.plan(ex)
                    mine = tuple(a for a in plan.actions if a.tenant == tenant and a.kind == "alter_user"
                                 and "account_locked" in a.detail.get("changes", {}))
                    unlocked = [a.detail["user"] for a in mine]
                    if mine:
                        t.apply(ex, replace(plan, actions=mine), desired)
        if state.json:
            emit_json({"tenant": tenant, "was_suspended": suspended, "unlocked": unlocked, "events_enabled": events,
                       "still_blocked": still})
            return
        echo(f"resumed {tenant}" if suspended else f"{tenant} was not suspended")
        for u in unlocked:
            echo(f"unlocked {u}")
        for e in events:
            echo(f"enabled event {e}")
        if still:
            echo(f"{tenant} stays locked: {still['kind']}: {still['reason']} (its accounts, and the events the "
                 "suspension disabled, come back when that is lifted too)")


def register_isolate(app: typer.Typer) -> None:
    @app.command("isolate")
    def isolate_cmd(source: str = typer.Option(..., "--source", help="A security group id or a CIDR.")):
        """aws: remove exactly the ingress rules that admit SOURCE on the database port from the instance's (and
        the proxy's) security groups; recorded, so `unisolate` puts them back."""
        import sys

        from ..isolation import isolate

        t = state.target()
        if t.kind != "aws":
            raise UsageError("isolate: security groups are the aws target's; on local/server use `suspend TENANT`")
        out = isolate(t, source, say=None if state.json else (lambda m: sys.stdout.write(m + "\n")))
        if state.json:
            emit_json(out)
        elif not out["removed"]:
            echo(f"no rule admits {out['source']} on port {t.port}: nothing removed"
                 + (f" ({out['recorded']} removed earlier, recorded)" if out["recorded"] else ""))

    @app.command("unisolate")
    def unisolate_cmd(source: str = typer.Option(..., "--source", help="The source isolate removed.")):
        """aws: put back exactly what `isolate --source` removed."""
        import sys

        from ..isolation import unisolate

        t = state.target()
        if t.kind != "aws":
            raise UsageError("unisolate: security groups are the aws target's")
        out = unisolate(t, source, say=None if state.json else (lambda m: sys.stdout.write(m + "\n")))
        if state.json:
            emit_json(out)
        elif not out["restored"]:
            echo(f"nothing recorded for {out['source']}: nothing to put back")


__all__ = ["register", "register_isolate"]


def register_doctor(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        tenant: str = typer.Argument(..., help="The service (tenant) that cannot connect."),
        user: str = typer.Option("app", "--user", help="app or readonly."),
        from_sg: Optional[str] = typer.Option(None, "--from-sg", help="aws: the service's security group; checks "
                                              "that the instance's (or proxy's) groups admit it on the port."),
        from_cidr: Optional[str] = typer.Option(None, "--from-cidr", help="aws: the service's CIDR (another VPC "
                                                "through a transit gateway: its CIDR)."),
        role_arn: Optional[str] = typer.Option(None, "--role-arn", help="aws: the service's IAM role; simulates "
                                               "GetSecretValue on its secret and kms:Decrypt on its key."),
        via: str = typer.Option("instance", "--via", help="instance, or proxy: walk the path through the RDS "
                                "Proxy."),
    ):
        """Walk the path from the service to its database; the first broken link with its cause and fix; exit 3
        when a step fails."""
        import re

        from ..doctor import Options, diagnose
        from ..errors import FindingsFailed
        from ..isolation import parse_source

        if user not in ("app", "readonly"):
            raise UsageError(f"--user {user[:40]!r}: app or readonly")
        if via not in ("instance", "proxy"):
            raise UsageError(f"--via {via[:40]!r}: instance or proxy")
        if from_sg and from_cidr:
            raise UsageError("give --from-sg or --from-cidr, not both")
        if from_sg and not re.fullmatch(r"sg-[0-9a-f]{8,17}", from_sg.strip()):
            raise UsageError(f"--from-sg {from_sg[:60]!r}: a security group id (sg-0123abcd)")
        if from_cidr and parse_source(from_cidr, "--from-cidr", everything=True)[0] == "sg":
            raise UsageError(f"--from-cidr {from_cidr[:60]!r}: a CIDR (10.1.0.0/16)")
        if role_arn and not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", role_arn):
            raise UsageError(f"--role-arn {role_arn[:80]!r}: an IAM role ARN (arn:aws:iam::123456789012:role/name)")
        t = state.target()
        if (from_sg or from_cidr or role_arn) and t.kind != "aws":
            raise UsageError("--from-sg, --from-cidr and --role-arn check AWS: the aws target's")
        opts = Options(via=via, from_sg=from_sg and from_sg.strip(), from_cidr=from_cidr and from_cidr.strip(),
                       role_arn=role_arn)
        r = diagnose(t, tenant, user, opts)
        if state.json:
            emit_json(r.to_json())
        else:
            for s in r.steps:
                echo(f"{'✓' if s.ok else '✗'} {s.name}: {s.detail}" + (f"\n  fix: {s.fix}" if not s.ok and s.fix
                                                                         else ""))
            for n in r.not_checked():
                echo(f"- {n}: not checked")
            if t.kind == "aws":
                for n, why in r.skipped.items():
                    echo(f"- {n}: {why}")
        if not r.ok:
            bad = next(s for s in r.steps if not s.ok)
            raise FindingsFailed(f"doctor {tenant}: {bad.name}: {bad.detail}")
