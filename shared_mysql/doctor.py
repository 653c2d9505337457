"""`doctor TENANT`: the path from a service to its database, walked in order; the first broken link is named with
its cause and fix, and what could not be checked after it is listed (issue 15, the local/server steps so far).

  config -> secret -> exports -> DNS -> TCP -> TLS + login -> privileges -> connection headroom

Every network step times out in 5 s with the step named, never the default socket timeout.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from .errors import SharedMySQLError

TIMEOUT = 5.0
STEPS = ("config", "secret", "exports", "dns", "tcp", "login", "privileges", "headroom")


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class Report:
    tenant: str
    role: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def not_checked(self) -> list[str]:
        done = {s.name for s in self.steps}
        return [n for n in STEPS if n not in done]

    def to_json(self) -> dict:
        return {"tenant": self.tenant, "role": self.role, "ok": self.ok,
                "steps": [s.__dict__ for s in self.steps], "not_checked": self.not_checked()}


def diagnose(target, tenant: str, role: str = "app") -> Report:
    r = Report(tenant, role)
    try:
        for step in (_config, _secret, _exports, _dns, _tcp, _login, _privileges, _headroom):
            s = step(target, tenant, role, r)
            r.steps.append(s)
            if not s.ok:
                break
    finally:
        conn = getattr(r, "conn", None)
        if conn is not None and conn.open:
            conn.close()  # the tenant's own session, whichever step stopped
    return r


# -- the steps ------------------------------------------------------------------------------------------------
def _config(target, tenant, role, r) -> Step:
    from .tenants.model import account_secret

    name, problem = account_secret(target.config, target.loaded.path, tenant, role)
    if problem:
        return Step("config", False, problem, f"add the tenant to {target.loaded.path} and run `shared-mysql apply`")
    r.secret_name = name
    return Step("config", True, f"tenant {tenant} ({role}) is in {target.loaded.path}")


def _secret(target, tenant, role, r) -> Step:
    from .secrets import CURRENT, PENDING

    try:
        target.store.reload()
        cur = target.store.get(r.secret_name, CURRENT)
        pending = target.store.get(r.secret_name, PENDING)
    except SharedMySQLError as exc:
        return Step("secret", False, f"cannot read {r.secret_name}: {exc}", "check the store's key / AWS access")
    if not cur or not cur.get("username"):
        return Step("secret", False, f"no current version of {r.secret_name}", "run `shared-mysql apply`")
    r.secret, r.pending = cur, pending
    return Step("secret", True, f"{r.secret_name} names {cur['username']}"
                + (" (a rotation is pending)" if pending else ""))


def _exports(target, tenant, role, r) -> Step:
    p = f"{target.config.exports_prefix}/tenants/{tenant}/{'username' if role == 'app' else 'readonly-username'}"
    if target.config.exports_backend == "none":
        return Step("exports", True, "exports are off (exports.backend none)")
    try:
        have = target.exports.read()
    except SharedMySQLError as exc:
        return Step("exports", False, f"cannot read the exports: {exc}", "check SSM access, or the state dir")
    if have.get(p) != r.secret["username"]:
        return Step("exports", False, f"{p} is {have.get(p)!r}, the secret names {r.secret['username']}",
                    "run `shared-mysql apply` (it republishes the exports)")
    return Step("exports", True, f"{p} = {have[p]}")


def _dns(target, tenant, role, r) -> Step:
    host = target.host
    try:
        addrs = sorted({a[4][0] for a in socket.getaddrinfo(host, target.port, type=socket.SOCK_STREAM)})
    except OSError as exc:
        return Step("dns", False, f"{host} does not resolve ({exc.strerror or exc})",
                    "check the endpoint (instance.host / SSM endpoint) and the VPC's DNS")
    r.addrs = addrs
    return Step("dns", True, f"{host} -> {', '.join(addrs)}")


def _tcp(target, tenant, role, r) -> Step:
    try:
        with socket.create_connection((target.host, target.port), timeout=TIMEOUT):
            pass
    except socket.timeout:
        return Step("tcp", False, f"{target.host}:{target.port} did not answer within {TIMEOUT:.0f} s",
                    "a security group or firewall drops it: allow the service's group/CIDR on the port")
    except OSError as exc:
        fix = "`shared-mysql local up`" if target.kind == "local" else "start the server, check the port"
        return Step("tcp", False, f"{target.host}:{target.port}: {exc.strerror or exc}", fix)
    return Step("tcp", True, f"{target.host}:{target.port} accepts connections")


def _login(target, tenant, role, r) -> Step:
    from .db import ConnectionInfo, connect

    s = r.secret
    ca = s.get("ssl_ca") or target.ca
    info = ConnectionInfo(target.host, target.port, s["username"], s["password"], ca=ca,
                          database=s.get("dbname"), connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    try:
        conn = connect(info)
    except SharedMySQLError as exc:
        msg = str(exc)
        if "TLS" in msg or "certificate" in msg:
            return Step("login", False, f"TLS: {msg.split(': ', 1)[-1]}",
                        f"the CA {ca} did not sign the server's certificate: fix ssl_ca in {r.secret_name} (or "
                        "instance.ca_bundle)")
        if "error 4151" in msg or "locked" in msg.lower():
            from .tenants import blocks

            with target.executor() as ex:
                b = blocks.read(ex).get(tenant)
            why = f" ({b['kind']}: {b['reason']})" if b else ""
            return Step("login", False, f"{s['username']}'s account is locked{why}",
                        f"`shared-mysql resume {tenant}`" if b and b["kind"] == "suspend" else
                        "finish what locked it (refresh), or `shared-mysql apply`")
        if "error 1045" in msg:
            return Step("login", False, f"access denied for {s['username']}: {_why_denied(target, r)}",
                        _fix_denied(tenant, r))
        if "error 1044" in msg:  # logged in, but refused its own database: the privileges link
            r.steps.append(Step("login", True, f"{s['username']} logs in over verified TLS"))
            return Step("privileges", False, f"{s['username']} may not use {s.get('dbname')} (error 1044)",
                        "run `shared-mysql apply` (it re-grants the tenant's privileges)")
        if "error 1226" in msg or "error 1040" in msg:
            return Step("login", False, f"{s['username']}: too many connections ({msg.split(': ', 1)[-1]})",
                        "find who holds them: `shared-mysql connections --tenant " + tenant + "`")
        return Step("login", False, msg.split(": ", 1)[-1], "see the message")
    r.conn = conn
    return Step("login", True, f"{s['username']} logs in over verified TLS")


def _why_denied(target, r) -> str:
    from .sql.passwords import native_hash
    from .sql.quoting import string

    try:
        with target.executor() as ex:
            rows = ex.query("SELECT authentication_string FROM mysql.user WHERE User = "
                            f"{string(r.secret['username'])}")
    except SharedMySQLError:
        return "the server refuses the stored password"
    if not rows:
        return "the account does not exist on the server"
    if rows[0][0] and rows[0][0] != native_hash(r.secret["password"]):
        if r.pending and rows[0][0] == native_hash(r.pending.get("password", "")):
            return "the server took the pending password of an interrupted rotation; the store's current differs"
        return "the store's current password is not the one the server holds"
    return "the server refuses the stored password (host or TLS requirement)"


def _fix_denied(tenant, r) -> str:
    if r.pending:
        return f"finish the rotation: `shared-mysql rotate {tenant}`"
    return "re-apply the stored password: `shared-mysql apply` (it resets a password that differs)"


def _privileges(target, tenant, role, r) -> Step:
    db = r.secret.get("dbname") or f"{tenant}_db"
    try:
        with r.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()")
            cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS _doctor_probe (x INT)" if role == "app" else "SELECT 1")
    except Exception as exc:  # noqa: BLE001 - PyMySQL errors: the step's answer
        return Step("privileges", False, f"{r.secret['username']} on {db}: {exc.args[-1] if exc.args else exc}",
                    "run `shared-mysql apply` (it re-grants the tenant's privileges)")
    return Step("privileges", True, f"{r.secret['username']} can work in {db}")


def _headroom(target, tenant, role, r) -> Step:
    from .sql.quoting import string

    user = r.secret["username"]
    try:
        with target.executor() as ex:
            limit = ex.query(f"SELECT max_user_connections FROM mysql.user WHERE User = {string(user)}")
            used = ex.query(f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = {string(user)}")
            total = ex.query("SELECT COUNT(*), @@max_connections FROM information_schema.PROCESSLIST")
    except SharedMySQLError as exc:
        return Step("headroom", False, f"cannot read connection counts: {exc}", "check the admin credential")
    cap = int(limit[0][0]) if limit and limit[0][0] else 0
    n = int(used[0][0]) - 1  # this check's own session
    all_n, max_c = int(total[0][0]), int(total[0][1])
    if cap and n >= cap:
        return Step("headroom", False, f"{user} uses {n} of its {cap} connections (MAX_USER_CONNECTIONS)",
                    f"raise tenants.{tenant}.max_connections, or find the leak: `shared-mysql connections --tenant "
                    f"{tenant}`")
    if all_n >= max_c - 1:
        return Step("headroom", False, f"the server has {all_n} of {max_c} connections", "see `shared-mysql top`")
    return Step("headroom", True, f"{user}: {n} of {cap or 'unlimited'} connections; server {all_n} of {max_c}")
