"""Tenants through RDS Proxy (issue 15, item 2).

RDS Proxy logs in to the database as a user only when that user's secret is in the proxy's auth list and its role
can read the secret. The infra stack gives the proxy the master secret alone, so no tenant could log in through it.
With `instance.enable_rds_proxy` on an aws target, `plan`/`apply` keep the auth list equal to the tenants' secrets:

- every password account (app and readonly) has an entry `SECRETS`, `IAMAuth: DISABLED` (the service sends the
  password it reads from its secret, as it does to the instance), `ClientPasswordAuthType: MYSQL_NATIVE_PASSWORD`;
- IAM-auth tenants go through the proxy with end-to-end IAM (`DefaultAuthScheme: IAM_AUTH`): their accounts have
  no password, so there is no secret for the proxy to log in with; the proxy's role connects with `rds-db:connect`
  (the stack grants it for exactly those accounts);
- the master's entry (the stack's) is always kept; any other entry is removed only with `--allow-destructive`.

ModifyDBProxy replaces the whole list, so apply writes the list it computed after the secrets exist, re-diffed (a
re-run after a crash converges). The secrets' names are derived (`{environment}-{tenant}-db[-readonly]-credentials`),
and their ARNs known only after apply: the plan names them, "known after apply".
"""

from __future__ import annotations

from .errors import SharedMySQLError
from .tenants.plan import CREATE, DELETE, UPDATE, Action

ENTRY = {"AuthScheme": "SECRETS", "IAMAuth": "DISABLED", "ClientPasswordAuthType": "MYSQL_NATIVE_PASSWORD"}


def proxy_name(config) -> str:
    """The stack names the proxy `{instance}-proxy` (infra/stack.py)."""
    return f"{config.db_instance_identifier}-proxy"


def managed(config) -> bool:
    return config.target == "aws" and bool(config.instance.enable_rds_proxy)


def describe(config, rds=None) -> dict | None:
    """The proxy as RDS describes it, or None when it does not exist."""
    from .aws import client_for, describe_error, error_code

    rds = rds or client_for(config, "rds")
    try:
        return rds.describe_db_proxies(DBProxyName=proxy_name(config))["DBProxies"][0]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        if error_code(exc) in ("DBProxyNotFoundFault", "DBProxyNotFound"):
            return None
        raise SharedMySQLError(f"cannot describe RDS Proxy {proxy_name(config)}: {describe_error(exc)}") from None


def _require(config, rds=None) -> dict:
    p = describe(config, rds)
    if p is None:
        raise SharedMySQLError(f"instance.enable_rds_proxy is on but RDS Proxy {proxy_name(config)} does not exist; "
                               "deploy the infra stack (`shared-mysql infra deploy`), or set enable_rds_proxy: false")
    return p


def desired_entries(desired) -> dict[str, dict]:
    """secret name -> the entry it needs (password accounts only)."""
    out = {}
    for t in desired.tenants:
        for a in t.accounts:
            if a.auth != "iam":
                out[a.secret] = {**ENTRY, "Description": f"shared-mysql: tenant {t.name} ({a.role})"[:1000]}
    return out


def wants_iam(desired) -> bool:
    return any(a.auth == "iam" for t in desired.tenants for a in t.accounts)


def _name_of(arn: str) -> str:
    """secret ARN -> its name (ARNs end in -XXXXXX, six random characters)."""
    tail = arn.split(":secret:", 1)[-1]
    return tail[:-7] if len(tail) > 7 and tail[-7] == "-" else tail


def _tenant_of(name: str, environment: str) -> str | None:
    import re

    m = re.fullmatch(re.escape(environment) + r"-(.+)-db(?:-readonly)?-credentials", name)
    return m.group(1) if m else None


def plan_actions(target, desired, proxy: dict | None = None) -> list[Action]:
    """The diff between the proxy's auth list and the tenants' secrets (pure but for the two reads)."""
    c = target.config
    proxy = proxy or _require(c)
    name = proxy_name(c)
    master = target.store.reference(c.master_secret_name)
    want = desired_entries(desired)
    have = {}
    for e in proxy.get("Auth") or []:
        arn = e.get("SecretArn")
        if arn:
            have[_name_of(arn)] = (arn, e)
    out = []
    for sname, entry in sorted(want.items()):
        tenant = _tenant_of(sname, c.environment)
        if sname not in have:
            out.append(Action("proxy_auth_add", CREATE, f"proxy {name} auth {sname}", tenant,
                              {"proxy": name, "secret": sname, "arn": target.store.reference(sname)},
                              "so the tenant can log in through the proxy"))
        else:
            e = have[sname][1]
            diff = {k: v for k, v in entry.items() if k != "Description" and e.get(k, v) != v}
            if diff:
                out.append(Action("proxy_auth_add", UPDATE, f"proxy {name} auth {sname}", tenant,
                                  {"proxy": name, "secret": sname, "arn": have[sname][0]},
                                  ", ".join(f"{k} {e.get(k)} -> {v}" for k, v in sorted(diff.items()))))
    for sname, (arn, _e) in sorted(have.items()):
        if sname in want or arn == master or sname == c.master_secret_name:
            continue
        out.append(Action("proxy_auth_remove", DELETE, f"proxy {name} auth {sname}", _tenant_of(sname, c.environment),
                          {"proxy": name, "secret": sname, "arn": arn},
                          "not a tenant secret of this config (removed only with --allow-destructive)"))
    if wants_iam(desired) and proxy.get("DefaultAuthScheme", "NONE") != "IAM_AUTH":
        iam = sorted({t.name for t in desired.tenants for a in t.accounts if a.auth == "iam"})
        out.append(Action("proxy_default_auth", UPDATE, f"proxy {name} default auth", None,
                          {"proxy": name, "from": proxy.get("DefaultAuthScheme", "NONE"), "to": "IAM_AUTH"},
                          f"IAM tenants ({', '.join(iam)}) log in through the proxy with end-to-end IAM"))
    return out


def apply(target, desired, *, allow_destructive: bool = False, rds=None) -> list[str]:
    """Write the auth list (and the default scheme) the config wants; returns what changed, one line each.
    Re-read and re-diffed here: the secrets exist now, so every ARN is known."""
    from .aws import client_for, describe_error

    c = target.config
    rds = rds or client_for(c, "rds")
    proxy = _require(c, rds)
    target.store.reload()
    actions = plan_actions(target, desired, proxy)
    if not actions or (not allow_destructive and all(a.kind == "proxy_auth_remove" for a in actions)):
        return []
    removed = {a.detail["secret"] for a in actions if a.kind == "proxy_auth_remove"}
    keep_removed = not allow_destructive
    auth = []
    want = desired_entries(desired)
    for e in proxy.get("Auth") or []:
        arn = e.get("SecretArn")
        sname = _name_of(arn) if arn else None
        if sname in want:
            continue  # rewritten below, as the config wants it
        if sname in removed and not keep_removed:
            continue
        auth.append({k: v for k, v in e.items() if k in ("AuthScheme", "SecretArn", "IAMAuth", "Description",
                                                          "ClientPasswordAuthType", "UserName")})
    missing = []
    for sname, entry in sorted(want.items()):
        arn = target.store.reference(sname)
        if not arn:
            missing.append(sname)
            continue
        auth.append({**entry, "SecretArn": arn})
    if missing:
        raise SharedMySQLError(f"RDS Proxy {proxy_name(c)}: secret {missing[0]} does not exist yet; run "
                               "`shared-mysql apply` again")
    kwargs = {"DBProxyName": proxy_name(c), "Auth": auth}
    if any(a.kind == "proxy_default_auth" for a in actions):
        kwargs["DefaultAuthScheme"] = "IAM_AUTH"
    try:
        rds.modify_db_proxy(**kwargs)
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"RDS Proxy {proxy_name(c)}: ModifyDBProxy failed: {describe_error(exc)}; nothing "
                               "else was changed on the proxy; re-run `shared-mysql apply`") from None
    done = []
    for a in actions:
        if a.kind == "proxy_auth_remove" and not allow_destructive:
            continue
        done.append(f"{a.op} {a.object}")
    return done


def endpoint(config, rds=None) -> str | None:
    """The endpoint a service reaches the proxy at: instance.proxy_endpoint, else (aws, proxy enabled) RDS's."""
    if config.instance.proxy_endpoint:
        return config.instance.proxy_endpoint
    if not managed(config):
        return None
    p = describe(config, rds)
    return (p or {}).get("Endpoint")
