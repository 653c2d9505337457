"""The plan for people (+ ~ - lines) and for machines (JSON). Passwords only ever appear as <redacted>."""

from __future__ import annotations

import json

from ..sql import REDACTED
from .plan import Action, Plan

SIGNS = {"create": "+", "update": "~", "delete": "-"}
_SOURCES = {"new": "new random password", "pending": "pending password from the store",
            "current": "stored password", "none": "none: IAM authentication",
            "random": "random and not stored: nobody holds it until a rotation", "previous": "the secret's previous version"}


def shown(value) -> str:
    """A name read back from the server, as one printable token: anything with a control character, a line or
    paragraph separator or an escape sequence is shown JSON-quoted, so no name can forge a line of the plan."""
    text = str(value)
    if text.isprintable():  # False for Cc/Cf/Zl/Zp/Zs-other-than-space: \n, ESC, U+2028, bidi overrides...
        return text
    return json.dumps(text)


def _safe_detail(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, str):
            out[k] = shown(v)
        elif isinstance(v, list):
            out[k] = [shown(x) if isinstance(x, str) else x for x in v]
        else:
            out[k] = v
    return out


def describe(a: Action) -> str:
    d = _safe_detail(a.detail)
    k = a.kind
    if k == "create_database":
        return f"database {d['database']} ({d['charset']} / {d['collation']})"
    if k == "alter_database":
        return f"database {d['database']}: {a.reason}"
    if k == "create_user":
        where = "" if d["password_source"] == "random" else f" -> secret {d['secret']}"
        return (f"user {d['user']}@{d['host']} ({d['role']}{' rotation twin' if d.get('twin') else ''}, "
                f"REQUIRE {'SSL' if d['require_ssl'] else 'NONE'}, MAX_USER_CONNECTIONS {d['max_connections']}, "
                f"{'ACCOUNT LOCK, ' if d.get('locked') else ''}"
                f"password {REDACTED}: {_SOURCES[d['password_source']]}{where})")
    if k == "alter_user":
        return f"user {d['user']}@{d['host']}: {shown(a.reason)}"
    if k == "set_password" and d["password_source"] == "none":
        return f"user {d['user']}@{d['host']}: IAM authentication (AWSAuthenticationPlugin; {a.reason})"
    if k == "set_password":
        return f"user {d['user']}@{d['host']}: password {REDACTED} ({_SOURCES[d['password_source']]}; {a.reason})"
    if k == "grant":
        return f"grant {', '.join(d['privileges']) if len(d['privileges']) < 5 else 'ALL PRIVILEGES'} " \
               f"ON {d['database']}.* TO {d['user']}@{d['host']}"
    raw_user, raw_host = a.detail.get("user"), a.detail.get("host")
    who = "PUBLIC" if (raw_user, raw_host) == ("PUBLIC", "") else \
        f"role {d.get('user')}" if raw_host == "" and raw_user else f"{d.get('user')}@{d.get('host')}"
    if k == "revoke":
        privs = ", ".join(d["privileges"]) if len(d["privileges"]) < 5 else f"{len(d['privileges'])} privileges"
        scope = f"{d['database']}.{d['table']} ({d['column']})" if d["scope_kind"] == "column" else d["scope"]
        return f"revoke {privs} ON {scope}{'.*' if d['scope_kind'] == 'database' else ''} " \
               f"FROM {who} ({shown(a.reason)})"
    if k == "revoke_role":
        return f"revoke role {d['role_name']} FROM {who} ({shown(a.reason)})"
    if k == "revoke_proxy":
        return f"revoke PROXY ON {d['proxied_user']}@{d['proxied_host']} FROM {who} ({a.reason})"
    if k == "set_default_role":
        return f"user {who}: default role NONE ({shown(a.reason)})"
    if k == "clear_mandatory_roles":
        return f"mandatory_roles = '' (was {d['from']}; {a.reason})"
    if k == "drop_shadow":
        return f"drop user {who} ({a.reason})"
    if k in ("update_secret", "schedule_rotation", "unschedule_rotation"):
        return f"secret {d['secret']}: {shown(a.reason)}"
    if k == "drop_user":
        return f"user {d['user']}@{d['host']} ({a.reason})"
    if k == "drop_database":
        return f"database {d['database']} ({a.reason})"
    if k == "delete_secret":
        return f"secret {d['secret']} ({a.reason})"
    if k == "put_export":
        value = "(known after apply)" if d["value"] is None else d["value"]
        return f"export {d['name']} = {value}" + (f" (was {d['from']})" if "from" in d else "")
    if k == "delete_export":
        return f"export {d['name']} ({a.reason})"
    if k == "proxy_auth_add":
        what = "add" if a.op == "create" else "update"
        return f"RDS Proxy {d['proxy']}: {what} secret {d['secret']} {'to' if what == 'add' else 'in'} its auth list ({a.reason})"
    if k == "proxy_auth_remove":
        return f"RDS Proxy {d['proxy']}: remove secret {d['secret']} from its auth list ({a.reason})"
    if k == "proxy_default_auth":
        return f"RDS Proxy {d['proxy']}: default auth scheme {d['from']} -> {d['to']} ({a.reason})"
    raise ValueError(f"no description for action kind {k!r}")


def render_text(plan: Plan, header: str = "") -> str:
    lines = [header] if header else []
    if plan.interrupted:
        lines.append("Interrupted rotations (apply refuses until `shared-mysql rotate --all` finishes them):")
        lines += [f"  ! {shown(x)}" for x in plan.interrupted]
    if plan.empty:
        lines.append("No changes. The server matches the config.")
    elif plan.actions:
        for a in plan.actions:
            warn = "  [destructive]" if a.destructive else ""
            lines.append(f"  {SIGNS[a.op]} {describe(a)}{warn}")
        c = plan.counts()
        lines.append(f"Plan: {c['create']} to create, {c['update']} to update, {c['delete']} to destroy.")
    if plan.unmanaged_databases or plan.unmanaged_users or plan.unmanaged_exports:
        lines.append("Unmanaged (not in the config, never touched):")
        if plan.unmanaged_databases:
            lines.append("  databases: " + ", ".join(map(shown, plan.unmanaged_databases)))
        if plan.unmanaged_users:
            lines.append("  users: " + ", ".join(map(shown, plan.unmanaged_users)))
        if plan.unmanaged_exports:
            lines.append("  exports: " + ", ".join(map(shown, plan.unmanaged_exports)))
    if plan.exposures:
        lines.append("Exposures (reach tenants' data; apply changes none of them, a person should review each):")
        lines += [f"  ! {shown(x)}" for x in plan.exposures]
    if plan.ignored_secrets:
        lines.append("Ignored secrets (tagged as this instance's, but not corroborated; never used to drop anything):")
        lines += [f"  {shown(s)}" for s in plan.ignored_secrets]
    # The last line of defence: no line leaves here with a control character in it.
    return "\n".join(ln if ln.isprintable() else shown(ln) for ln in lines)
