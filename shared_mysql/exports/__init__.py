"""Connection info published for consumers, under the seed's SSM names (never a password).

  {prefix}/endpoint, port, database-name (aws), master-password-secret-arn, connection-secret-arn (when that
  secret exists), proxy-endpoint (when configured), rotation-function-arn (aws: the infra stack's tenant rotation
  function, with secrets.rotation_schedule), and per tenant {prefix}/tenants/{tenant}/database-name,
  username, secret-arn (+ readonly-username, readonly-secret-arn).
`prefix` defaults to /shared/rds/{environment}. Backends: SSM Parameter Store, or files in the state dir.
Exports are diffed into the same plan as the tenants and converge like everything else.

One owner per parameter: on `target: aws` the instance-level names describe the RDS instance and belong to the
infrastructure layer that created it (`shared-mysql infra`, or the seed's Terraform module), so the CLI writes only
the per-tenant names there. On `local` and `server` targets the CLI writes both.
"""

from __future__ import annotations

from ..tenants.plan import CREATE, DELETE, UPDATE, Action


INSTANCE_LEVEL = ("endpoint", "port", "database-name", "master-password-secret-arn", "connection-secret-arn",
                  "proxy-endpoint", "rotation-function-arn")


def owns_instance_level(config) -> bool:
    return config.target != "aws"


def desired_exports(target, desired, refs: dict[str, str | None],
                    users: dict[str, str] | None = None) -> dict[str, str | None]:
    """`users`: secret name -> the account its current version names (alternating rotation moves it between
    the twins; the published username follows), for the accounts where that is not the configured name."""
    c = target.config
    p = c.exports_prefix
    out: dict[str, str | None] = {}
    if c.exports_backend == "none":  # nothing is published, so nothing is planned (apply would never converge)
        return out
    if owns_instance_level(c):
        out[f"{p}/endpoint"] = target.host
        out[f"{p}/port"] = str(target.port)
        out[f"{p}/master-password-secret-arn"] = refs.get(c.master_secret_name)
        if refs.get(c.connection_secret_name):
            out[f"{p}/connection-secret-arn"] = refs[c.connection_secret_name]
        if c.instance.proxy_endpoint:
            out[f"{p}/proxy-endpoint"] = c.instance.proxy_endpoint
    for t in desired.tenants:
        base = f"{p}/tenants/{t.name}"
        out[f"{base}/database-name"] = t.database
        for a in t.accounts:
            pre = "" if a.role == "app" else f"{a.role}-"
            out[f"{base}/{pre}username"] = (users or {}).get(a.secret, a.user)
            out[f"{base}/{pre}secret-arn"] = refs.get(a.secret)
    return out


def managed(name: str, prefix: str, instance_level: bool = True) -> bool:
    """Names under the prefix that the CLI owns; anything else there is never touched."""
    rest = name[len(prefix) + 1:] if name.startswith(prefix + "/") else None
    return rest is not None and (rest.startswith("tenants/") or (instance_level and rest in INSTANCE_LEVEL))


def unmanaged(names, prefix: str) -> list[str]:
    """Names under the prefix that neither the CLI nor the infrastructure layer owns."""
    return sorted(n for n in names if not managed(n, prefix, instance_level=True))


def plan_exports(want: dict[str, str | None], have: dict[str, str], prefix: str,
                 instance_level: bool = True) -> list[Action]:
    """Pure diff of parameter name -> value. A value of None means "known after apply"."""
    actions = []
    for name in sorted(want):
        value = want[name]
        if name not in have:
            actions.append(Action("put_export", CREATE, f"export {name}", None, {"name": name, "value": value}))
        elif value is not None and have[name] != value:
            actions.append(Action("put_export", UPDATE, f"export {name}", None,
                                  {"name": name, "value": value, "from": have[name]}, f"{have[name]} -> {value}"))
    for name in sorted(have):
        if name not in want and managed(name, prefix, instance_level):
            actions.append(Action("delete_export", DELETE, f"export {name}", _tenant_of(name, prefix),
                                  {"name": name, "from": have[name]}, "no longer in the config"))
    return actions


def _tenant_of(name: str, prefix: str) -> str | None:
    rest = name[len(prefix) + 1:]
    return rest.split("/")[1] if rest.startswith("tenants/") else None


def open_exports(target):
    backend = target.config.exports_backend
    if backend == "ssm":
        from ..aws import client_for
        from .ssm import SsmExports

        return SsmExports(client_for(target.config, "ssm"), target.config.exports_prefix,
                          tags={"managed-by": "shared-mysql", "instance": target.config.identifier})
    if backend == "files":
        from .files import FileExports

        return FileExports(target.state_dir / "exports", target.config.exports_prefix)
    from .files import NoExports

    return NoExports()
