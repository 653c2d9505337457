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


def _classify(target, desired, proxy: dict):
    """Each entry of the proxy's list by what it is, matched on the exact ARN (a same-named secret re-created, or
    in another account or region, is not the tenant's):
      keep:   the master's entry (the stack's), and tenant entries that are right as they are
      fix:    secret name -> the tenant entry to rewrite (wrong ARN, or attributes drifted)
      remove: entries that are no tenant secret of this config (incl. entries without a SecretArn)"""
    c = target.config
    master = target.store.reference(c.master_secret_name)
    want = desired_entries(desired)
    arns = {n: target.store.reference(n) for n in want}
    keep, remove, seen = [], [], {}
    for e in proxy.get("Auth") or []:
        arn = e.get("SecretArn")
        if arn and master and arn == master:
            keep.append(e)
            continue
        sname = _name_of(arn) if arn else None
        if sname in want and arn == arns[sname]:
            seen[sname] = e
            continue
        remove.append(e)  # a stale ARN of a tenant's name is rewritten below (its fix) and the old entry goes
    fix = {}
    for sname, entry in want.items():
        e = seen.get(sname)
        if e is None:
            stale = [x for x in remove if x.get("SecretArn") and _name_of(x["SecretArn"]) == sname]
            fix[sname] = ("create" if not stale else f"its entry names {stale[0]['SecretArn']}, the secret is "
                          f"{arns[sname] or '(known after apply)'}")
            continue
        diff = {k: v for k, v in entry.items() if k != "Description" and e.get(k, v) != v}
        if diff:
            fix[sname] = ", ".join(f"{k} {e.get(k)} -> {v}" for k, v in sorted(diff.items()))
        else:
            keep.append(e)
    return keep, fix, remove, arns


def _label(e: dict) -> str:
    if e.get("SecretArn"):
        return _name_of(e["SecretArn"])
    return f"user {e.get('UserName') or '(unnamed)'}"


def plan_actions(target, desired, proxy: dict | None = None, classified=None) -> list[Action]:
    """The diff between the proxy's auth list and the tenants' secrets (pure but for the reads)."""
    c = target.config
    proxy = proxy or _require(c)
    name = proxy_name(c)
    keep, fix, remove, arns = classified or _classify(target, desired, proxy)
    out = []
    for sname, why in sorted(fix.items()):
        tenant = _tenant_of(sname, c.environment)
        if why == "create":
            out.append(Action("proxy_auth_add", CREATE, f"proxy {name} auth {sname}", tenant,
                              {"proxy": name, "secret": sname, "arn": arns[sname]},
                              "so the tenant can log in through the proxy"))
        else:
            out.append(Action("proxy_auth_add", UPDATE, f"proxy {name} auth {sname}", tenant,
                              {"proxy": name, "secret": sname, "arn": arns[sname]}, why))
    fixed_stale = {s for s, why in fix.items() if why.startswith("its entry names")}
    for e in remove:
        label = _label(e)
        if label in fixed_stale:
            continue  # shown as the tenant entry's update
        out.append(Action("proxy_auth_remove", DELETE, f"proxy {name} auth {label}",
                          _tenant_of(label, c.environment), {"proxy": name, "secret": label,
                                                             "arn": e.get("SecretArn")},
                          "not a tenant secret of this config (removed only with --allow-destructive)"))
    if wants_iam(desired) and proxy.get("DefaultAuthScheme", "NONE") != "IAM_AUTH":
        iam = sorted({t.name for t in desired.tenants for a in t.accounts if a.auth == "iam"})
        out.append(Action("proxy_default_auth", UPDATE, f"proxy {name} default auth", None,
                          {"proxy": name, "from": proxy.get("DefaultAuthScheme", "NONE"), "to": "IAM_AUTH"},
                          f"IAM tenants ({', '.join(iam)}) log in through the proxy with end-to-end IAM"))
    return out


FIELDS = ("AuthScheme", "SecretArn", "IAMAuth", "Description", "ClientPasswordAuthType", "UserName")


def apply(target, desired, *, allow_destructive: bool = False, rds=None) -> list[str]:
    """Write the auth list (and the default scheme) the config wants; returns what changed, one line each.
    Re-read and re-diffed here: the secrets exist now, so every ARN is known."""
    from .aws import client_for, describe_error

    c = target.config
    rds = rds or client_for(c, "rds")
    proxy = _require(c, rds)
    target.store.reload()
    classified = keep, fix, remove, arns = _classify(target, desired, proxy)
    actions = plan_actions(target, desired, proxy, classified)
    if not actions or (not allow_destructive and all(a.kind == "proxy_auth_remove" for a in actions)):
        return []
    missing = sorted(n for n in fix if not arns[n])
    if missing:
        raise SharedMySQLError(f"RDS Proxy {proxy_name(c)}: secret {missing[0]} does not exist yet; run "
                               "`shared-mysql apply` again")
    want = desired_entries(desired)
    stale = {n for n, why in fix.items() if why.startswith("its entry names")}
    auth = [{k: v for k, v in e.items() if k in FIELDS} for e in keep]
    if not allow_destructive:  # entries that are no tenant's stay until --allow-destructive (a stale ARN is fixed)
        auth += [{k: v for k, v in e.items() if k in FIELDS} for e in remove if _label(e) not in stale]
    auth += [{**want[n], "SecretArn": arns[n]} for n in sorted(fix)]
    kwargs = {"DBProxyName": proxy_name(c), "Auth": auth}
    if any(a.kind == "proxy_default_auth" for a in actions):
        kwargs["DefaultAuthScheme"] = "IAM_AUTH"
    try:
        rds.modify_db_proxy(**kwargs)
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        raise SharedMySQLError(f"RDS Proxy {proxy_name(c)}: ModifyDBProxy failed: {describe_error(exc)}; nothing "
                               "else was changed on the proxy; re-run `shared-mysql apply`") from None
    return [f"{a.op} {a.object}" for a in actions if allow_destructive or a.kind != "proxy_auth_remove"]


def endpoint(config, rds=None) -> str | None:
    """The endpoint a service reaches the proxy at: instance.proxy_endpoint, else (aws, proxy enabled) RDS's."""
    if config.instance.proxy_endpoint:
        return config.instance.proxy_endpoint
    if not managed(config):
        return None
    p = describe(config, rds)
    return (p or {}).get("Endpoint")
