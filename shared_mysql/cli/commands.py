"""init, up, plan, apply, tenants, credentials."""

from __future__ import annotations

import shlex
import sys
import time
from enum import Enum
from typing import Optional
from urllib.parse import quote

import typer

from ..errors import SharedMySQLError, UsageError
from .app import echo, emit_json, state


class UserRole(str, Enum):
    app = "app"
    readonly = "readonly"


class AuditSource(str, Enum):
    server = "server"
    config = "config"
    aws = "aws"


class Severity(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Fmt(str, Enum):
    env = "env"
    json = "json"
    dsn = "dsn"


def _header(t, ex) -> str:
    c = t.config
    return f"shared-mysql {c.identifier} ({c.environment}, {c.target}) at {t.host}:{t.port}, {ex.flavor.label}"


def _show_plan(t, ex, plan) -> None:
    from ..tenants import blocks, render_text

    blocked = blocks.read(ex)  # suspended or unverified tenants: their accounts stay locked, by design
    if state.json:
        emit_json({**plan.to_json(), "target": {"identifier": t.config.identifier, "host": t.host,
                                                 "port": t.port, "server": ex.flavor.label},
                   "blocked_tenants": blocked})
    else:
        echo(render_text(plan, _header(t, ex)))
        for tenant, b in sorted(blocked.items()):
            what = "SUSPENDED" if b["kind"] == "suspend" else "BLOCKED"
            echo(f"  {what} tenant {tenant} since {b['since']}: {b['reason']} (its accounts stay locked"
                 + (f"; `shared-mysql resume {tenant}`)" if b["kind"] == "suspend" else ")"))


def _apply(t, ex, plan, desired, allow_destructive: bool) -> dict:
    from ..errors import ServerError

    result = t.apply(ex, plan, desired, allow_destructive=allow_destructive)
    if result.failed:
        raise ServerError(f"apply ran {result.statements} statements; the server refused {len(result.failed)} of "
                          f"them and ran the rest; the first: {result.failed[0]}; fix that object by hand, then "
                          "re-run apply")
    after, _ = t.plan(ex)  # inspect again: the plan must now be empty
    return {"statements": result.statements, "secrets_written": result.secrets_written,
            "secrets_deleted": result.secrets_deleted, "converged": after.empty}


def _read_json_credential(which: str) -> dict:
    import json

    if sys.stdin.isatty():
        raise UsageError("--import reads the credential from stdin: "
                         f"shared-mysql credentials {which} --import < secret.json")
    text = sys.stdin.read(1 << 20).removeprefix("\ufeff")  # a credential is a few hundred bytes; editors add BOMs
    try:
        value = json.loads(text)
    except RecursionError:
        raise UsageError("--import: stdin is nested too deeply to be a credential; give RDS secret JSON such as "
                         '{"username": "admin", "password": "..."}') from None
    except json.JSONDecodeError:
        raise UsageError("--import: stdin is not JSON; give RDS secret JSON such as "
                         '{"username": "admin", "password": "..."}') from None
    if not isinstance(value, dict):
        raise UsageError("--import: expected a JSON object with username and password")
    return value


def register(app: typer.Typer) -> None:
    @app.command()
    def init(force: bool = typer.Option(False, "--force", help="Overwrite an existing config file."),
             target: str = typer.Option("local", "--target", help="local (embedded server) or aws (RDS).")):
        """Write an example shared-mysql.yaml (two tenants) for the local or the aws target."""
        from ..config import find_config_path
        from ..config.example import EXAMPLE_AWS, EXAMPLE_LOCAL
        from ..secrets.file import write_private

        examples = {"local": EXAMPLE_LOCAL, "aws": EXAMPLE_AWS}
        if target not in examples:
            raise UsageError(f"--target {target!r}: choose local or aws")
        path = find_config_path(state.config)
        if path.exists() and not force:
            raise UsageError(f"{path} already exists; edit it, or pass --force to overwrite it")
        write_private(path, examples[target].encode())
        path.chmod(0o644)
        if state.json:
            emit_json({"written": str(path)})
        else:
            nxt = "`shared-mysql up`" if target == "local" else "`shared-mysql infra check`, then `infra deploy`"
            echo(f"wrote {path}; next: {nxt}")

    @app.command()
    def up(allow_destructive: bool = typer.Option(False, "--allow-destructive",
                                                  help="Also drop what left the config."),
           lock_timeout: int = typer.Option(0, "--lock-timeout", min=0, max=3600,
                                          help="Seconds to wait for another operator's lock on the server.")):
        """Make the target real (start the embedded server if needed) and apply the config."""
        t = state.target()
        with t.lock():
            status = t.prepare()
            if status and status.get("restart_needed"):
                sys.stderr.write(f"warning: {status['restart_reason']}\n")
            with t.executor() as ex, t.server_lock(ex, lock_timeout, "up"):
                plan, desired = t.plan(ex)
                if not state.json and status:
                    echo(f"server: {status['flavor']} {status['version']} on {status['host']}:{status['port']} "
                         f"(pid {status['pid']})")
                    _show_plan(t, ex, plan)
                from ..tenants.apply import check_destructive

                check_destructive(plan, allow_destructive)
                res = _apply(t, ex, plan, desired, allow_destructive) if not plan.empty else \
                    {"statements": 0, "secrets_written": 0, "secrets_deleted": 0, "converged": True}
        if state.json:
            emit_json({"server": status, "plan": plan.to_json(), "applied": res})
        elif not plan.empty:
            echo(f"Applied: {res['statements']} statements, {res['secrets_written']} secrets written. "
                 f"{'Converged.' if res['converged'] else 'NOT converged: run plan to see what is left.'}")
        if not res["converged"]:
            raise SharedMySQLError("apply finished but the server still differs from the config; run `shared-mysql plan`")

    @app.command()
    def plan(detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode",
                                                    help="Exit 2 when there are changes (0 when none).")):
        """Show what apply would change; changes nothing."""
        t = state.target()
        with t.executor() as ex:
            p, _ = t.plan(ex)
            _show_plan(t, ex, p)
        if detailed_exitcode and not p.empty:
            raise typer.Exit(2)

    @app.command()
    def apply(
        auto_approve: bool = typer.Option(False, "--auto-approve", help="Do not ask for confirmation."),
        allow_destructive: bool = typer.Option(False, "--allow-destructive",
                                               help="Allow dropping users, databases and secrets."),
        lock_timeout: int = typer.Option(0, "--lock-timeout", min=0, max=3600,
                                          help="Seconds to wait for another operator's lock on the server."),
    ):
        """Show the plan, then make the server match the config."""
        t = state.target()
        with t.lock():
            with t.executor() as ex, t.server_lock(ex, lock_timeout, "apply"):
                p, desired = t.plan(ex)
                if not state.json:
                    _show_plan(t, ex, p)
                if p.empty:
                    if state.json:
                        emit_json({"plan": p.to_json(), "applied": None})
                    return
                from ..tenants.apply import check_destructive

                check_destructive(p, allow_destructive)
                if not auto_approve:
                    if not sys.stdin.isatty():
                        raise SharedMySQLError("apply needs confirmation and stdin is not a terminal; "
                                               "re-run with --auto-approve")
                    if not typer.confirm("Apply these changes?", default=False):
                        raise SharedMySQLError("apply cancelled; nothing was changed")
                res = _apply(t, ex, p, desired, allow_destructive)
        if state.json:
            emit_json({"plan": p.to_json(), "applied": res})
        else:
            echo(f"Applied: {res['statements']} statements, {res['secrets_written']} secrets written, "
                 f"{res['secrets_deleted']} deleted. {'Converged.' if res['converged'] else 'NOT converged.'}")
        if not res["converged"]:
            raise SharedMySQLError("apply finished but the server still differs from the config; run `shared-mysql plan`")

    @app.command()
    def rotate(
        tenant: Optional[str] = typer.Argument(None, help="Tenant whose credential to rotate."),
        user: UserRole = typer.Option(UserRole.app, "--user", help="Which account of TENANT."),
        all_: bool = typer.Option(False, "--all", help="Every tenant account (app and read-only)."),
        due: bool = typer.Option(False, "--due", help="Every tenant account older than its rotation_days."),
        master: bool = typer.Option(False, "--master", help="The master credential."),
        force: bool = typer.Option(False, "--force", help="Rotate even within the previous rotation's grace "
                                   "period (clients holding the previous credential would then fail)."),
        lock_timeout: int = typer.Option(0, "--lock-timeout", min=0, max=3600,
                                          help="Seconds to wait for another operator's lock on the server."),
    ):
        """Rotate credentials without downtime (Secrets Manager's four steps; safe to interrupt and re-run)."""
        from ..rotation import RotationError

        chosen = [bool(tenant), all_, due]
        if sum(chosen) > 1 or not (any(chosen) or master):
            raise UsageError("give one of TENANT, --all or --due (and/or --master)")
        if user != UserRole.app and not tenant:
            raise UsageError("--user goes with a TENANT (--all and --due take every account)")
        loaded = state.loaded()
        selection = "all" if (all_ or due) else []
        if tenant:
            from ..tenants.model import account_secret

            _, problem = account_secret(loaded.config, loaded.path, tenant, user.value)
            if problem:
                raise UsageError(problem)
            selection = [(tenant, user.value)]
        t = state.target()
        results = t.rotate(selection, master=master, due=due, force=force, lock_wait=lock_timeout)
        errors = [r for r in results if isinstance(r, RotationError)]
        done = [r for r in results if not isinstance(r, RotationError)]
        skipped = getattr(t, "rotation_skipped", {})
        if state.json:
            emit_json({"rotated": [r.to_json() for r in done], "errors": [str(e) for e in errors],
                       "skipped": {k: f"{v['kind']}: {v['reason']}" for k, v in skipped.items()}})
        else:
            for tenant_, b in skipped.items():
                echo(f"skipped {tenant_}: blocked ({b['kind']}: {b['reason']}); its accounts stay locked")
            for r in done:
                who = f"{r.tenant} ({r.role})" if r.tenant else "master"
                change = f"{r.old_username} -> {r.new_username}" if r.old_username != r.new_username else r.new_username
                echo(f"rotated {who}: {change}, secret {r.secret} version {r.new_version} "
                     f"({r.strategy}{', resumed' if r.resumed else ''}; {', '.join(r.steps)}; {r.seconds:.2f} s)")
            if not results:
                echo("nothing to rotate" + (" (no credential is due)" if due else ""))
        if errors:
            for e in errors[1:]:
                sys.stderr.write(f"error: {e}\n")
            raise SharedMySQLError(str(errors[0]) if len(errors) == 1 else
                                   f"{errors[0]} (and {len(errors) - 1} more above)")

    @app.command()
    def tenants():
        """List tenants from the config: database, accounts, limits, secret names."""
        from ..tenants.model import build_desired
        from ..sql import MARIADB_10_11, MYSQL_8_0

        loaded = state.loaded()
        c = loaded.config
        # Listing needs no server: the flavor only affects privilege names, which are shown as ALL/SELECT here.
        desired = build_desired(c, MYSQL_8_0 if c.target == "aws" else MARIADB_10_11, host=c.host or "", port=c.port,
                                ca=None)
        rows = []
        for t in desired.tenants:
            rows.append({
                "name": t.name, "database": t.database,
                "users": [{"user": a.user, "host": a.host, "role": a.role, "max_connections": a.max_connections,
                           "privileges": "ALL" if a.role == "app" else "SELECT", "secret": a.secret}
                          for a in t.accounts],
                "readonly": c.tenants[t.name].readonly,
                "max_connections": c.tenants[t.name].connection_budget,
            })
        if state.json:
            emit_json(rows)
            return
        if not rows:
            echo("no tenants in the config")
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"tenants of {c.identifier} ({c.environment})")
        for col in ("tenant", "database", "user", "role", "max conn", "secret"):
            table.add_column(col)
        for r in rows:
            for i, u in enumerate(r["users"]):
                table.add_row(r["name"] if i == 0 else "", r["database"] if i == 0 else "", u["user"], u["role"],
                              str(u["max_connections"]), u["secret"])
        used = sum(r["max_connections"] for r in rows)
        Console(width=None if sys.stdout.isatty() else 200).print(table)
        echo(f"connection budget: {used} of {c.instance.max_connections} "
             f"(reserve {c.instance.connection_reserve})")

    @app.command()
    def credentials(
        tenant: Optional[str] = typer.Argument(None, help="Tenant name."),
        user: UserRole = typer.Option(UserRole.app, "--user", help="Which account."),
        fmt: Optional[Fmt] = typer.Option(None, "--format", help="env (default), json or dsn."),
        admin: bool = typer.Option(False, "--admin", help="The master credential instead of a tenant's."),
        import_: bool = typer.Option(False, "--import", help="Store the credential read from stdin (RDS secret "
                                     "JSON) instead of printing it; a tenant's must log in first. The next apply "
                                     "keeps it."),
        via: str = typer.Option("instance", "--via", help="instance, or proxy: DB_HOST / the DSN name the RDS "
                                "Proxy's endpoint (the secret's proxy_host)."),
    ):
        """Print a stored credential (the only command that shows a password)."""
        from ..secrets import CURRENT
        from ..target import open_target
        from ..tenants.model import account_secret

        loaded = state.loaded()
        c = loaded.config
        if admin == bool(tenant):
            raise UsageError("give either a TENANT or --admin")
        if via not in ("instance", "proxy"):
            raise UsageError(f"--via {via[:40]!r}: instance or proxy")
        if via != "instance" and import_:
            raise UsageError("--via picks the endpoint printed; it has nothing to do with --import")
        if admin:
            name = c.master_secret_name
        else:
            name, problem = account_secret(c, loaded.path, tenant, user.value)
            if problem:
                raise UsageError(problem)
        t = open_target(loaded)
        if import_:
            if admin:
                unverified = t.import_master(_read_json_credential("--admin"))
                if unverified:
                    sys.stderr.write(f"warning: stored without a login test: {unverified}\n")
            else:
                t.import_tenant(tenant, user.value, _read_json_credential(f"{tenant} --user {user.value}"))
            if state.json:
                emit_json({"imported": name})
            else:
                echo(f"stored {name}")
            return
        from ..secrets import PENDING

        if admin and t.store.get(name, PENDING) is not None:
            # A master rotation was interrupted: if the server already took the pending password, connecting
            # finishes the rotation, so the password printed is the one that logs in.
            try:
                with t.executor():
                    pass
                t.store.reload()
            except SharedMySQLError as exc:
                sys.stderr.write(f"warning: a master rotation is pending and the server could not be asked which "
                                 f"password it takes ({exc}); if this one is refused, run `shared-mysql rotate "
                                 "--master` once the server is reachable\n")
        secret = t.store.get(name, CURRENT)
        if secret is None:
            raise SharedMySQLError(f"no stored credential {name}; run `shared-mysql up` (or apply) first")
        if via == "proxy":
            if not secret.get("proxy_host"):
                raise SharedMySQLError(f"{name} names no proxy endpoint; turn on instance.enable_rds_proxy (aws) "
                                       "or set instance.proxy_endpoint, then `shared-mysql apply`")
            secret = {**secret, "host": secret["proxy_host"]}
        fmt = fmt or (Fmt.json if state.json else Fmt.env)
        if fmt == Fmt.json:
            emit_json(secret)  # the stored secret (with --via proxy, host is the proxy's)
            return
        # env and dsn always carry the CA and VERIFY_IDENTITY, or consumers fall back to unverified TLS. Secrets
        # of server/aws targets hold no ssl_ca: the CA is the config's instance.ca_bundle (checked to exist).
        from os.path import abspath

        ca = abspath(secret.get("ssl_ca") or t.ca)
        if fmt == Fmt.env:
            pairs = [("DB_HOST", secret["host"]), ("DB_PORT", secret["port"]), ("DB_NAME", secret.get("dbname") or ""),
                     ("DB_USERNAME", secret["username"])]
            pairs += [("DB_AUTH", "iam")] if secret.get("auth") == "iam" else [("DB_PASSWORD", secret["password"])]
            pairs += [("DB_SSL_CA", ca), ("DB_SSL_MODE", "VERIFY_IDENTITY")]
            for k, v in pairs:
                echo(f"{k}={shlex.quote(str(v))}")
        else:
            host = f"[{secret['host']}]" if ":" in str(secret["host"]) else secret["host"]  # an IPv6 literal
            pw = "" if secret.get("auth") == "iam" else ":" + quote(secret["password"], safe="")
            echo(f"mysql://{quote(secret['username'], safe='')}{pw}@{host}:{secret['port']}/"
                 f"{quote(secret.get('dbname') or '', safe='')}?ssl-mode=VERIFY_IDENTITY&ssl-ca={quote(ca, safe='/')}")

    @app.command()
    def audit(
        only: Optional[AuditSource] = typer.Option(None, "--only", help="One source: server, config or aws."),
        fail_on: Severity = typer.Option(Severity.high, "--fail-on",
                                         help="Exit 3 when a finding at or above this severity fails."),
        list_checks: bool = typer.Option(False, "--list", help="List every check (id, source, severity, title)."),
    ):
        """Check the server, the config and AWS against the seed's security checklists (exit 3 on failures)."""
        import json

        from ..audit import failing, load_checks
        from ..audit.report import render_json, render_sarif, render_text, run_audit, unused_suppressions
        from ..errors import FindingsFailed

        if list_checks:
            if state.output.value == "sarif":
                raise UsageError("audit --list: writes text or json (-o json); SARIF is for findings")
            checks = sorted(load_checks().values(), key=lambda c: c.id)
            if state.json:
                emit_json([{"id": c.id, "source": c.source, "severity": c.severity, "title": c.title,
                            "remediation": c.remediation, "references": c.refs} for c in checks])
            else:
                for c in checks:
                    echo(f"{c.id:26} {c.source:6} {c.severity:8} {c.title}")
            return
        loaded = state.loaded()
        from ..target import open_target

        t = open_target(loaded)
        findings, sources = run_audit(t, only.value if only else None)
        unused = unused_suppressions(findings, t.config.audit.ignore)
        if state.output.value == "sarif":
            sys.stdout.write(json.dumps(render_sarif(findings, loaded.path), indent=2) + "\n")
        elif state.json:
            emit_json(render_json(findings, fail_on.value, sources, unused))
        else:
            echo(render_text(findings, fail_on.value, sources, unused))
        bad = failing(findings, fail_on.value)
        if bad:
            raise FindingsFailed(f"audit: {len(bad)} finding(s) at or above {fail_on.value} (first: {bad[0].check} "
                                 f"{bad[0].resource})")

    @app.command()
    def status():
        """Health and the seven alarms (the seed's six + failed logins), CloudWatch's semantics; exit 3 if one fires."""
        from ..errors import FindingsFailed
        from ..observe.status import aws_status, local_status, render

        t = state.target()
        s = aws_status(t) if t.kind == "aws" else local_status(t)
        if state.json:
            emit_json(s)
        else:
            echo(render(s))
        if s["firing"]:
            raise FindingsFailed(f"status: {len(s['firing'])} alarm(s) firing: {', '.join(s['firing'])}")

    @app.command()
    def connections(
        tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's sessions."),
        idle: Optional[int] = typer.Option(None, "--idle", min=0, help="Only sessions idle (Sleep) this many seconds."),
        kill_: bool = typer.Option(False, "--kill", help="Kill the listed sessions (never this tool's own, the "
                                                         "admin's or the server's)."),
    ):
        """Sessions per tenant: the seed's "too many connections" runbook."""
        from ..observe.sessions import kill, read_sessions, select

        if kill_ and tenant is None and idle is None:
            raise UsageError("connections --kill: say whose sessions (--tenant T) or which (--idle SECONDS); killing "
                             "every service's sessions at once is refused")
        t = state.target()
        if tenant is not None and tenant not in t.config.tenants and tenant != "unmanaged":
            raise UsageError(f"--tenant {tenant[:64]!r}: no such tenant in the config (or use unmanaged)")
        with t.executor() as ex:
            desired = t.desired(ex.flavor)
            chosen = select(read_sessions(ex, desired), tenant=tenant, idle=idle)
            killed, failed = kill(ex, chosen) if kill_ else ([], [])
        counts: dict[str, int] = {}
        for s in chosen:
            counts[s.tenant] = counts.get(s.tenant, 0) + 1
        if state.json:
            emit_json({"sessions": [s.to_json() for s in chosen], "by_tenant": counts, "killed": killed,
                       "failed": failed})
        else:
            from ..tenants.render import shown

            for s in chosen:
                mark = "killed " if s.id in killed else ""
                echo(f"{mark}{s.id:>8}  {shown(s.tenant):<20} {shown(s.user)}@{shown(s.host)}  {s.command:<8} "
                     f"{s.seconds:>6}s  {shown(s.query)}")
            echo(f"{len(chosen)} session(s): " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
                 + (f"; killed {len(killed)}" if kill_ else ""))
        if failed:
            raise SharedMySQLError(f"connections --kill: {len(failed)} session(s) could not be killed; the first: "
                                   f"{failed[0]}")

    @app.command()
    def top(once: bool = typer.Option(False, "--once", help="Print one screen and exit."),
            interval: float = typer.Option(2.0, "--interval", min=0.5, max=3600, help="Seconds between refreshes.")):
        """Per tenant: connections vs limit, active queries, the longest one, database size, slow queries."""
        from ..observe.sessions import owners, slow_counts, snapshot

        t = state.target()
        slow_log = t.server.paths.slow_log if t.kind == "local" else None

        def frame(ex, desired, since):
            snap = snapshot(t, ex, desired)
            counts = slow_counts(slow_log, since, owners(desired), desired.admin_users) if slow_log else {}
            for r in snap["tenants"]:
                r["slow_queries"] = counts.get(r["tenant"], 0) if slow_log else None
            snap["interval_s"] = interval
            return snap

        with t.executor() as ex:
            desired = t.desired(ex.flavor)
            if once or state.json or not sys.stdout.isatty():
                snap = frame(ex, desired, time.time() - interval)
                if state.json:
                    emit_json(snap)
                else:
                    from ..observe.sessions import render_top

                    echo(render_top(snap, t.config.identifier))
                return
            from rich.live import Live

            from ..observe.sessions import rich_top

            since = time.time() - interval
            with Live(refresh_per_second=4, screen=False) as live:
                try:
                    while True:
                        now = time.time()
                        live.update(rich_top(frame(ex, desired, since), t.config.identifier))
                        since = now
                        time.sleep(interval)
                except KeyboardInterrupt:
                    pass

    logs = typer.Typer(no_args_is_help=True, help="The server's logs, read for people.")
    app.add_typer(logs, name="logs")

    @logs.command("audit")
    def logs_audit(since: str = typer.Option("1h", "--since", help="How far back: 90s, 30m, 1h, 2d."),
                   tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's accounts.")):
        """Failed logins per 5 minutes and account changes (GRANT/REVOKE/...), from the audit log."""
        from ..observe.auditlog import parse_since, read_cloudwatch, read_local, render, summarise
        from ..observe.sessions import owners

        seconds = parse_since(since)
        t = state.target()
        if tenant is not None and tenant not in t.config.tenants and tenant != "unmanaged":
            raise UsageError(f"--tenant {tenant[:64]!r}: no such tenant in the config (or use unmanaged)")
        now = time.time()
        if t.kind == "local":
            records = read_local(t.server.paths.audit_log, now - seconds)
        elif t.kind == "aws":
            records = read_cloudwatch(t.config, now - seconds, now)
        else:
            raise SharedMySQLError("logs audit: the audit log of a `server` target is a file on that server's host; "
                                   "read it there (server_audit_file_path), or use target local or aws")
        from ..sql import MARIADB_10_11, MYSQL_8_0

        desired = t.desired(MYSQL_8_0 if t.kind == "aws" else MARIADB_10_11)
        out = summarise(records, owners(desired), tenant, int(t.config.instance.alarms.failed_login_threshold),
                        desired.admin_users)
        if state.json:
            emit_json(out)
        else:
            echo(render(out))

    @app.command()
    def exporter(port: int = typer.Option(9104, "--port", min=1, max=65535, help="Port for /metrics."),
                 listen: str = typer.Option("127.0.0.1", "--listen", help="Address to bind (0.0.0.0: every one).")):
        """Prometheus metrics: mysqld_exporter's names where they mean the same, per-tenant series, the alarms."""
        import gc

        try:
            from ..observe.exporter import serve
        except ImportError:
            raise SharedMySQLError("exporter needs prometheus-client: pip install 'shared-mysql[exporter]'") from None
        from ..observe.exporter import check_listen

        shown_host = check_listen(listen)
        gc.enable()  # a long-running command: the CLI's short-life setting does not apply
        t = state.target()
        try:
            serve(t, port, listen)
        except OSError as exc:
            import errno

            fix = "choose another --port" if exc.errno == errno.EADDRINUSE else "give an address of this host " \
                                                                               "in --listen"
            raise SharedMySQLError(f"exporter: cannot listen on {shown_host}:{port}: {exc.strerror}; {fix}") from None
        sys.stderr.write(f"serving http://{shown_host}:{port}/metrics (Ctrl-C stops)\n")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


__all__ = ["register"]
