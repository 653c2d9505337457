"""`doctor TENANT`: the path from a service to its database, walked in order; the first broken link is named with
its cause and fix, and what could not be checked after it is listed (issue 15, item 1).

  config -> secret -> exports -> access (aws, --role-arn) -> instance (aws) -> proxy (--via proxy) -> DNS ->
  network (aws, --from-sg/--from-cidr) -> TCP -> TLS -> login -> privileges -> headroom -> proxy (configured, direct)

Every network step times out in 5 s with the step named, never the default socket timeout. The TCP, TLS and login
steps read one connection made as the service makes it (no bare probe or handshake: a connection closed before it
authenticates counts against the server's max_connect_errors for this host). Every AWS read goes through boto3
(`clients` lets tests hand in stubs).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from .errors import SharedMySQLError

TIMEOUT = 5.0
STEPS = ("config", "secret", "exports", "access", "instance", "proxy", "dns", "network", "tcp", "tls", "login",
         "privileges", "headroom")
# Instance states a service can connect through (some with a note); anything else is the broken link.
USABLE = {"available", "backing-up", "modifying", "storage-optimization", "configuring-enhanced-monitoring",
          "configuring-log-exports", "configuring-iam-database-auth", "maintenance"}
NOTABLE = ("failover", "reboot", "restart", "storage-full", "storage full", "low storage", "shutdown", "stopped",
           "recovery", "out of memory", "crash")


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
    planned: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # step -> why it does not apply here

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def not_checked(self) -> list[str]:
        done = {s.name for s in self.steps}
        return [n for n in self.planned if n not in done]

    def to_json(self) -> dict:
        return {"tenant": self.tenant, "role": self.role, "ok": self.ok,
                "steps": [s.__dict__ for s in self.steps], "not_checked": self.not_checked(),
                "not_applicable": self.skipped}


@dataclass
class Options:
    via: str = "instance"  # or "proxy"
    from_sg: str | None = None
    from_cidr: str | None = None
    role_arn: str | None = None
    clients: dict = field(default_factory=dict)  # service -> boto3 client (tests: stubs)


def _client(target, opts: Options, service: str):
    c = opts.clients.get(service)
    if c is None:
        from .aws import client_for

        c = opts.clients[service] = client_for(target.config, service)
    return c


def diagnose(target, tenant: str, role: str = "app", opts: Options | None = None) -> Report:
    from . import proxy

    opts = opts or Options()
    r = Report(tenant, role)
    r.opts = opts
    aws = target.kind == "aws"
    via_proxy = opts.via == "proxy"
    has_proxy = proxy.managed(target.config) or bool(target.config.instance.proxy_endpoint)
    steps = [("config", _config), ("secret", _secret), ("exports", _exports)]
    if aws and opts.role_arn:
        steps.append(("access", _access))
    else:
        r.skipped["access"] = "give --role-arn (aws) to simulate the service role's access" if aws else "aws only"
    if aws:
        steps.append(("instance", _instance))
    else:
        r.skipped["instance"] = "aws only"
    if via_proxy:
        steps.append(("proxy", _proxy))
    steps += [("dns", _dns)]
    if aws and (opts.from_sg or opts.from_cidr):
        steps.append(("network", _network))
    else:
        r.skipped["network"] = ("give --from-sg or --from-cidr to check the security groups" if aws else "aws only")
    steps += [("tcp", _tcp), ("tls", _tls), ("login", _login), ("privileges", _privileges), ("headroom", _headroom)]
    if has_proxy and not via_proxy:
        steps.append(("proxy", _proxy))
    elif not has_proxy and not via_proxy:
        r.skipped["proxy"] = "no proxy in the config"
    r.planned = [n for n, _ in steps]
    r.host, r.port = target.host, target.port
    try:
        for name, step in steps:
            if any(s.name == name for s in r.steps):
                continue  # a step that answered for the next one too (login's 1044 is the privileges link)
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
        if tenant in target.config.tenants:  # the tenant is there, its read-only account is not
            return Step("config", False, problem, f"set readonly: true under tenants.{tenant} in "
                        f"{target.loaded.path} and run `shared-mysql apply`")
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
    # What the login needs besides the network: a usable CA bundle, and for IAM tenants a token that can be signed.
    # Checked here, so that no step has to open a connection it cannot finish (see _attempt).
    from .db import tls_context

    try:
        r.ca = cur.get("ssl_ca") or target.ca
        tls_context(r.ca)
    except Exception as exc:  # noqa: BLE001 - a missing, unreadable or non-PEM bundle, or no ca_bundle
        why = f"{exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc}"[:200]
        return Step("secret", False, f"the CA bundle for {r.secret_name} cannot be used ({why})",
                    f"point ssl_ca in {r.secret_name} (or instance.ca_bundle) at a PEM bundle")
    if cur.get("auth") == "iam":
        try:
            _password(target, r, host=target.host)
        except SharedMySQLError as exc:
            return Step("secret", False, str(exc), "give the doctor AWS credentials (it signs the token the service "
                        "would)")
    return Step("secret", True, f"{r.secret_name} names {cur['username']}"
                + (" (a rotation is pending)" if pending else ""))


def _exports(target, tenant, role, r) -> Step:
    """What a consumer reads (SSM parameters or env files) must agree with reality: the username the secret names,
    the secret's ARN, and the endpoint and port the instance answers at."""
    prefix = target.config.exports_prefix
    pre = "" if role == "app" else f"{role}-"
    base = f"{prefix}/tenants/{tenant}/{pre}"
    if target.config.exports_backend == "none":
        return Step("exports", True, "exports are off (exports.backend none)")
    try:
        have = target.exports.read()
    except SharedMySQLError as exc:
        return Step("exports", False, f"cannot read the exports: {exc}", "check SSM access, or the state dir")
    fix = "run `shared-mysql apply` (it republishes the exports)"
    p = base + "username"
    if have.get(p) != r.secret["username"]:
        also = ""
        if have.get(p) is None and target.config.exports_backend == "files":
            also = f" (or {tenant}.env no longer agrees with parameters.json: consumers read either, so neither counts)"
        return Step("exports", False, f"{p} is {_shown(have.get(p))}{also}, the secret names "
                    f"{r.secret['username']}", fix)
    db = f"{prefix}/tenants/{tenant}/database-name"
    if r.secret.get("dbname") and have.get(db) != r.secret["dbname"]:
        return Step("exports", False, f"{db} is {_shown(have.get(db))}, the secret names {r.secret['dbname']}", fix)
    arn = target.store.reference(r.secret_name)
    if arn and have.get(base + "secret-arn") != arn:
        return Step("exports", False, f"{base}secret-arn is {_shown(have.get(base + 'secret-arn'))}, the secret is "
                    f"{arn}", fix)
    owner = "redeploy the infra stack (it owns the instance-level exports)" if target.kind == "aws" else fix
    ep, port = have.get(f"{prefix}/endpoint"), have.get(f"{prefix}/port")
    if ep is not None and ep != target.host:
        return Step("exports", False, f"{prefix}/endpoint is {_shown(ep)}, the instance is {target.host}", owner)
    if port is not None and port != str(target.port):
        return Step("exports", False, f"{prefix}/port is {_shown(port)}, the instance listens on {target.port}", owner)
    checked = ["username", "database"] + (["secret ARN"] if arn else []) + (["endpoint"] if ep is not None else []) + \
        (["port"] if port is not None else [])
    return Step("exports", True, f"{p} = {have[p]}; {', '.join(checked)} agree with reality")


def _shown(v) -> str:
    return "missing" if v is None else repr(str(v)[:120])


def _dns(target, tenant, role, r) -> Step:
    host = r.host
    try:
        addrs = sorted({a[4][0] for a in socket.getaddrinfo(host, r.port, type=socket.SOCK_STREAM)})
    except OSError as exc:
        return Step("dns", False, f"{host} does not resolve ({exc.strerror or exc})",
                    "check the endpoint (instance.host / SSM endpoint) and the VPC's DNS (from another VPC: the "
                    "transit gateway's or the resolver rule's DNS)")
    r.addrs = addrs
    return Step("dns", True, f"{host} -> {', '.join(addrs)}")


def _attempt(target, r) -> None:
    """The one connection the tcp, tls and login steps read: connect, greeting, TLS, authentication, as the service
    makes it. No bare TCP probe and no bare handshake: a connection closed before authenticating counts against the
    server's max_connect_errors for the doctor's host (where name resolution is on), and enough runs would block
    it. Sets r.conn, or r.fail = (stage, code, message) with stage tcp | tls | login."""
    import pymysql

    from .db import tls_context

    s = r.secret
    ctx = tls_context(r.ca)  # loads: the secret step checked it
    try:
        password = _password(target, r)
    except SharedMySQLError as exc:  # signed for target.host a moment ago; the proxy's host cannot differ
        r.fail = ("login", None, str(exc))
        return
    try:
        r.conn = pymysql.connect(host=r.host, port=r.port, user=s["username"], password=password,
                                 database=s.get("dbname"), ssl=ctx, connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                                 write_timeout=TIMEOUT, charset="utf8mb4", autocommit=True)
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        msg = " ".join(str(exc.args[-1] if exc.args else exc).split())
        tls = any(k in msg for k in ("SSL", "certificate", "CERTIFICATE", "TLS"))
        if code == 2003 and not tls:
            r.fail = ("tcp", code, msg)
        elif code in (2003, 2013) or tls:
            r.fail = ("tls", code, msg)
        else:
            r.fail = ("login", code, msg)
    except OSError as exc:
        r.fail = ("tls", None, f"{exc.__class__.__name__}: {exc}"[:160])


def _tcp(target, tenant, role, r) -> Step:
    _attempt(target, r)
    stage, code, msg = getattr(r, "fail", (None, None, ""))
    if stage == "login" and code is None:  # the IAM token could not be signed: no connection was made
        return Step("tcp", False, f"no connection was made: {msg}", "give the doctor AWS credentials")
    if stage != "tcp":
        return Step("tcp", True, f"{r.host}:{r.port} accepts connections")
    if "timed out" in msg.lower():
        return Step("tcp", False, f"{r.host}:{r.port} did not answer within {TIMEOUT:.0f} s",
                    "a security group, NACL or firewall drops it: allow the service's group/CIDR on the port "
                    "(`shared-mysql doctor ... --from-sg/--from-cidr` checks the groups), and the route back")
    why = msg.split("(", 1)[-1].rstrip(")") if "(" in msg else msg
    fix = "`shared-mysql local up`" if target.kind == "local" else "start the server, check the host and port"
    return Step("tcp", False, f"{r.host}:{r.port}: {why}", fix)


def _tls(target, tenant, role, r) -> Step:
    """The login's own connection: its greeting and TLS handshake are this step, its authentication the next."""
    stage, code, msg = getattr(r, "fail", (None, None, ""))
    ca = r.ca
    if stage == "tls":
        low = msg.lower()
        if "timed out" in low or code == 2013:
            return Step("tls", False, f"{r.host}:{r.port} accepted TCP but sent no MySQL greeting or finished no TLS "
                        f"handshake within {TIMEOUT:.0f} s",
                        "something other than MySQL listens there, or a middlebox holds the connection: check the "
                        "port and any proxy or TLS inspection on the path")
        why = msg.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip(" )") \
            if "certificate verify failed" in msg else msg[:160]
        if "hostname" in low or "mismatch" in low:
            fix = (f"connect to a name the certificate holds (the RDS endpoint, not an IP or a CNAME of it); "
                   f"{r.host} is not one")
        elif "expired" in low:
            fix = ("the server's certificate has expired: rotate the instance's CA (aws rds modify-db-instance "
                   "--ca-certificate-identifier ...)")
        elif "certificate" in low:
            fix = (f"the CA {ca} did not sign the server's certificate: fix ssl_ca in {r.secret_name} (or "
                   "instance.ca_bundle; for RDS, the regional bundle)")
        else:
            fix = "the server must offer TLS (require_secure_transport, a certificate)"
        return Step("tls", False, f"TLS: {why}", fix)
    if stage == "login":
        return Step("tls", True, f"TLS verified against {ca} (the login failed after it)")
    return Step("tls", True, _cert_detail(r.conn, ca))


def _cert_detail(conn, ca) -> str:
    try:
        cert = conn._sock.getpeercert()  # noqa: SLF001 - PyMySQL keeps the SSLSocket there
        left = (time.mktime(time.strptime(cert["notAfter"], "%b %d %H:%M:%S %Y %Z")) - time.time()) / 86400
        warn = f"; renew it: it expires in {left:.0f} days" if left < 30 else ""
        return f"TLS verified against {ca}; the certificate is valid for {left:.0f} more days{warn}"
    except Exception:  # noqa: BLE001 - the detail only
        return f"TLS verified against {ca}"


def _password(target, r, host: str | None = None) -> str:
    s = r.secret
    if s.get("auth") == "iam":  # a 15-minute token, signed for the host the service connects to (the proxy's too)
        from .client.iam import TokenCache

        try:
            return TokenCache().get(host or r.host, r.port, s["username"], s.get("region"))
        except Exception as exc:  # noqa: BLE001 - boto3 credential errors
            from .aws import describe_error

            raise SharedMySQLError(f"cannot sign an IAM token for {s['username']}: {describe_error(exc)}") from None
    return s["password"]


def _login(target, tenant, role, r) -> Step:
    s = r.secret
    stage, code, msg = getattr(r, "fail", (None, None, ""))
    if stage != "login":
        return Step("login", True, f"{s['username']} logs in" + (" with an IAM token" if s.get("auth") == "iam"
                                                                  else ""))
    if code in (4151, 3118):  # MariaDB's and MySQL's "account is locked"
        from .tenants import blocks

        with target.executor() as ex:
            b = blocks.read(ex).get(tenant)
        why = f" ({b['kind']}: {b['reason']})" if b else ""
        return Step("login", False, f"{s['username']}'s account is locked{why}",
                    f"`shared-mysql resume {tenant}`" if b and b["kind"] == "suspend" else
                    "finish what locked it (refresh), or `shared-mysql apply`")
    if code == 1045:
        if s.get("auth") == "iam":
            return Step("login", False, f"access denied for {s['username']} with an IAM token",
                        "the credentials the service runs with need rds-db:connect on this account "
                        f"(`shared-mysql iam-policy {tenant}`), and the instance IAM auth on")
        return Step("login", False, f"access denied for {s['username']}: {_why_denied(target, r)}",
                    _fix_denied(target, tenant, r))
    if code == 1044:  # logged in, but refused its own database: the privileges link
        r.steps.append(Step("login", True, f"{s['username']} logs in"))
        return Step("privileges", False, f"{s['username']} may not use {s.get('dbname')} (error 1044)",
                    "run `shared-mysql apply` (it re-grants the tenant's privileges)")
    if code in (1226, 1040):
        return Step("login", False, f"{s['username']}: too many connections ({msg})",
                    "find who holds them: `shared-mysql connections --tenant " + tenant + "`")
    return Step("login", False, f"error {code}: {msg}", "see the message")


def _why_denied(target, r) -> str:
    """Which password the server holds. A pending password (an interrupted rotation) is tried by a real login: on
    MySQL 8 (caching_sha2_password, salted) the hash cannot be compared, and a refused login does not count
    against max_connect_errors. The current one is compared by hash where the plugin allows it."""
    from .db import ConnectionInfo, connect
    from .sql.passwords import native_hash
    from .sql.quoting import string

    pending_pw = (r.pending or {}).get("password")
    if pending_pw:
        who = r.pending.get("username") or r.secret["username"]
        try:
            connect(ConnectionInfo(r.host, r.port, who, pending_pw, ca=r.ca,
                                   connect_timeout=TIMEOUT, read_timeout=TIMEOUT)).close()
            return (f"the server took the pending password of an interrupted {_interrupted(target, r)} "
                    f"({who}); the store's current differs")
        except SharedMySQLError:
            pass
    try:
        with target.executor() as ex:
            rows = ex.query("SELECT authentication_string, plugin FROM mysql.user WHERE User = "
                            f"{string(r.secret['username'])}")
    except SharedMySQLError:
        return "the server refuses the stored password"
    if not rows:
        return "the account does not exist on the server"
    if rows[0][1] not in ("mysql_native_password", "", None):
        return (f"the server refuses the stored password ({rows[0][1]} hashes are salted, so whether it holds "
                "another one cannot be read)")
    if rows[0][0] and rows[0][0] != native_hash(r.secret["password"]):
        return "the store's current password is not the one the server holds"
    return "the server refuses the stored password (host or TLS requirement)"


def _interrupted(target, r) -> str:
    """A pending version is a rotation's when it moves an alternating account to its twin, or the account does not
    alternate; an alternating account's pending version for the same user is an apply's (rotation.py agrees)."""
    t = target.config.tenants.get(r.tenant)
    alternating = t is not None and t.rotation == "alternating" and t.auth == "password"
    same = (r.pending or {}).get("username") == r.secret.get("username")
    return "apply" if alternating and same else "rotation"


def _fix_denied(target, tenant, r) -> str:
    if r.pending:
        if _interrupted(target, r) == "apply":
            return "finish the interrupted apply: `shared-mysql apply`"
        return f"finish the rotation: `shared-mysql rotate {tenant}{' --user readonly' if r.role == 'readonly' else ''}`"
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


# -- aws --------------------------------------------------------------------------------------------------------
def _access(target, tenant, role, r) -> Step:
    """IAM policy simulation of the service's role: GetSecretValue on exactly this secret (with the secret's
    resource policy), kms:Decrypt on exactly its key (through Secrets Manager)."""
    from .aws import describe_error

    arn_role = r.opts.role_arn
    sm, iam = _client(target, r.opts, "secretsmanager"), _client(target, r.opts, "iam")
    try:
        desc = sm.describe_secret(SecretId=r.secret_name)
        arn = desc["ARN"]
        policy = sm.get_resource_policy(SecretId=arn).get("ResourcePolicy")
        res = iam.simulate_principal_policy(
            PolicySourceArn=arn_role, ActionNames=["secretsmanager:GetSecretValue"], ResourceArns=[arn],
            **({"ResourcePolicy": policy} if policy else {}))["EvaluationResults"][0]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        return Step("access", False, f"cannot simulate {arn_role}'s access: {describe_error(exc)}",
                    "run the doctor with credentials that may call iam:SimulatePrincipalPolicy and "
                    "secretsmanager:DescribeSecret / GetResourcePolicy")
    if res["EvalDecision"] != "allowed":
        return Step("access", False, f"{arn_role} may not secretsmanager:GetSecretValue on {r.secret_name} "
                    f"({res['EvalDecision']})",
                    f"attach the policy `shared-mysql iam-policy {tenant}"
                    f"{' --user readonly' if role == 'readonly' else ''}` prints to the service's role")
    key = desc.get("KmsKeyId")
    if not key:
        return Step("access", True, f"{arn_role} may read {r.secret_name} (encrypted with aws/secretsmanager, which "
                    "any principal of the account may use through Secrets Manager)")
    region = arn.split(":")[3]
    try:
        kms = _client(target, r.opts, "kms")
        key_arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
        res = iam.simulate_principal_policy(
            PolicySourceArn=arn_role, ActionNames=["kms:Decrypt"], ResourceArns=[key_arn],
            ContextEntries=[{"ContextKeyName": "kms:ViaService", "ContextKeyType": "string",
                             "ContextKeyValues": [f"secretsmanager.{region}.amazonaws.com"]}])["EvaluationResults"][0]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        return Step("access", False, f"cannot simulate kms:Decrypt for {arn_role}: {describe_error(exc)}",
                    "run the doctor with credentials that may call kms:DescribeKey and iam:SimulatePrincipalPolicy")
    if res["EvalDecision"] != "allowed":
        return Step("access", False, f"{arn_role} may read {r.secret_name} but not kms:Decrypt with its key "
                    f"{key_arn} ({res['EvalDecision']})",
                    f"allow kms:Decrypt on that key (via secretsmanager.{region}.amazonaws.com): `shared-mysql "
                    f"iam-policy {tenant}` prints it")
    return Step("access", True, f"{arn_role} may read {r.secret_name} and decrypt it with {key_arn} (simulated; "
                "the key's own policy is not)")


def _instance(target, tenant, role, r) -> Step:
    from datetime import datetime, timedelta, timezone

    from .aws import describe_error

    ident = target.config.db_instance_identifier
    rds = _client(target, r.opts, "rds")
    try:
        db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        events = rds.describe_events(SourceIdentifier=ident, SourceType="db-instance", Duration=1440)["Events"]
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        return Step("instance", False, f"cannot describe RDS instance {ident}: {describe_error(exc)}",
                    "check the name (environment + identifier), the region, and rds:DescribeDBInstances / "
                    "rds:DescribeEvents for the doctor's credentials")
    since = datetime.now(timezone.utc) - timedelta(hours=24)
    notable = []
    for e in events:
        when = e.get("Date")
        if isinstance(when, datetime) and (when if when.tzinfo else when.replace(tzinfo=timezone.utc)) < since:
            continue
        text = (e.get("Message") or "").lower()
        if any(k in text for k in NOTABLE) or {"failover", "failure", "low storage"} & set(e.get("EventCategories")
                                                                                          or ()):
            stamp = when.strftime("%Y-%m-%d %H:%M UTC") if isinstance(when, datetime) else "?"
            notable.append(f"{stamp} {e.get('Message')}")
    status = db.get("DBInstanceStatus", "?")
    last = f"; last 24 h: {'; '.join(notable[-3:])}" if notable else "; no failover, reboot or storage event in 24 h"
    if status not in USABLE:
        fix = {"rebooting": f"wait: `aws rds wait db-instance-available --db-instance-identifier {ident}`",
               "starting": f"wait: `aws rds wait db-instance-available --db-instance-identifier {ident}`",
               "stopped": f"`aws rds start-db-instance --db-instance-identifier {ident}`",
               "storage-full": "raise instance.allocated_storage / max_allocated_storage and deploy, then find what "
                               "filled it (`shared-mysql status`)"}.get(status, "see the RDS events and the console")
        return Step("instance", False, f"RDS instance {ident} is {status}{last}", fix)
    az = db.get("AvailabilityZone", "?")
    multi = "Multi-AZ" if db.get("MultiAZ") else "single-AZ"
    return Step("instance", True, f"{ident} {status} ({multi}, {az}){last}")


def _network(target, tenant, role, r) -> Step:
    """Does any ingress rule of the instance's (or, via the proxy, the proxy's) security groups admit the source
    on the port? A source isolated by `shared-mysql isolate` is named as such."""
    import ipaddress

    from .aws import describe_error
    from .isolation import isolated, parse_source

    src = r.opts.from_sg or r.opts.from_cidr
    kind, value = parse_source(src, "--from-sg" if r.opts.from_sg else "--from-cidr", everything=True)
    port = r.port
    try:
        if r.opts.via == "proxy":
            groups = list(r.proxy.get("VpcSecurityGroupIds") or [])
        else:
            db = _client(target, r.opts, "rds").describe_db_instances(
                DBInstanceIdentifier=target.config.db_instance_identifier)["DBInstances"][0]
            groups = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])
                      if g.get("Status", "active") == "active"]
        sgs = _client(target, r.opts, "ec2").describe_security_groups(GroupIds=groups)["SecurityGroups"] \
            if groups else []
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        return Step("network", False, f"cannot read the security groups: {describe_error(exc)}",
                    "give the doctor's credentials ec2:DescribeSecurityGroups")
    for g in sgs:
        for p in g.get("IpPermissions", []):
            proto = p.get("IpProtocol")
            if proto not in ("tcp", "-1", "6"):
                continue
            if proto != "-1" and not (p.get("FromPort", 0) <= port <= p.get("ToPort", 65535)):
                continue
            if kind == "sg":
                if any(pair.get("GroupId") == value for pair in p.get("UserIdGroupPairs", [])):
                    return Step("network", True, f"{g['GroupId']} admits {value} on {port}")
            else:
                net = ipaddress.ip_network(value)
                ranges = p.get("IpRanges", []) if kind == "cidr" else p.get("Ipv6Ranges", [])
                for rng in ranges:
                    cidr = rng.get("CidrIp") or rng.get("CidrIpv6")
                    if cidr and net.subnet_of(ipaddress.ip_network(cidr, strict=False)):
                        return Step("network", True, f"{g['GroupId']} admits {value} on {port} (rule {cidr})")
    where = "the proxy's" if r.opts.via == "proxy" else "the instance's"
    if value in isolated(target):
        return Step("network", False, f"{value} was isolated by `shared-mysql isolate`",
                    f"`shared-mysql unisolate --source {value}` once the incident is closed")
    first = groups[0] if groups else "(none)"
    flag = f"--source-group {value}" if kind == "sg" else f"--cidr {value}"
    detail = f"no ingress rule of {where} security groups ({', '.join(groups) or 'none'}) admits {value} on port {port}"
    if kind != "sg" and ipaddress.ip_network(value).prefixlen == 0:
        return Step("network", True, f"no rule admits everyone ({value}) on port {port}, as it should be; give the "
                    "service's own CIDR or security group to check its path")
    key = "allowed_security_group_ids" if kind == "sg" else "allowed_cidr_blocks"
    return Step("network", False, detail,
                f"add {value} to instance.{key} and `shared-mysql infra deploy`, or `aws ec2 "
                f"authorize-security-group-ingress --group-id {first} --protocol tcp --port {port} {flag}`"
                + ("" if kind == "sg" else " (from another VPC through a transit gateway: that VPC's CIDR; a "
                   "security group id does not cross it)"))


def _proxy(target, tenant, role, r) -> Step:
    from . import proxy

    name = proxy.proxy_name(target.config)
    if not proxy.managed(target.config):
        ep = target.config.instance.proxy_endpoint
        if not ep:
            return Step("proxy", False, "the config has no proxy", "set instance.enable_rds_proxy (aws) or "
                        "instance.proxy_endpoint, then `shared-mysql apply`")
        bad = _secret_proxy_host(r, ep)
        if bad:
            return bad
        return Step("proxy", True, f"proxy endpoint {ep} (not an RDS Proxy this tool manages: its auth is not "
                    "checked)")
    try:
        rds = _client(target, r.opts, "rds")
        p = proxy.describe(target.config, rds)
        if p is None:
            return Step("proxy", False, f"RDS Proxy {name} does not exist",
                        "deploy the infra stack with instance.enable_rds_proxy: true")
        targets = rds.describe_db_proxy_targets(DBProxyName=name).get("Targets", [])
    except SharedMySQLError as exc:
        return Step("proxy", False, str(exc), "check rds:DescribeDBProxies for the doctor's credentials")
    except Exception as exc:  # noqa: BLE001 - botocore errors, translated
        from .aws import describe_error

        return Step("proxy", False, f"cannot describe {name}'s targets: {describe_error(exc)}",
                    "check rds:DescribeDBProxyTargets for the doctor's credentials")
    r.proxy = p
    if p.get("Status") != "available":
        return Step("proxy", False, f"RDS Proxy {name} is {p.get('Status')}", "wait until it is available")
    bad = [t for t in targets if (t.get("TargetHealth") or {}).get("State") != "AVAILABLE"]
    if not targets or bad:
        h = (bad[0].get("TargetHealth") or {}) if bad else {}
        reason = h.get("Reason") or ""
        fix = {"AUTH_FAILURE": "the proxy cannot log in to the instance: its role must read the secret (the stack's "
                               "TenantSecrets statement) and the secret's password must be the server's (`shared-mysql "
                               f"doctor {tenant}` direct)",
               "CONNECTION_FAILED": "the proxy's security group must reach the instance's on the port",
               "PENDING_PROXY_CAPACITY": "wait: the proxy is scaling"}.get(reason, "see the target's health in RDS")
        what = (f"target {bad[0].get('RdsResourceId') or bad[0].get('Endpoint')} is {h.get('State')}"
                f"{': ' + reason if reason else ''}{' (' + h['Description'] + ')' if h.get('Description') else ''}"
                if bad else "no target is registered")
        return Step("proxy", False, f"RDS Proxy {name}: {what}", fix if bad else "deploy the infra stack")
    if r.secret.get("auth") == "iam":
        if p.get("DefaultAuthScheme") != "IAM_AUTH":
            return Step("proxy", False, f"RDS Proxy {name} does not log in with IAM (DefaultAuthScheme "
                        f"{p.get('DefaultAuthScheme', 'NONE')}), so the IAM tenant {tenant} cannot use it",
                        "`shared-mysql apply` (it sets IAM_AUTH), and deploy the infra stack (rds-db:connect for "
                        "the proxy's role)")
        how = "end-to-end IAM"
    else:
        arn = target.store.reference(r.secret_name)
        if not any(e.get("SecretArn") == arn for e in p.get("Auth") or []):
            return Step("proxy", False, f"RDS Proxy {name}'s auth list lacks {r.secret_name}, so {tenant} cannot "
                        "log in through it", "`shared-mysql apply` (with instance.enable_rds_proxy on it keeps the "
                        "auth list equal to the tenants' secrets)")
        how = f"{r.secret_name} in its auth list"
    bad = _secret_proxy_host(r, p.get("Endpoint"))
    if bad:
        return bad
    return Step("proxy", True, f"RDS Proxy {name} available, {len(targets)} target(s) AVAILABLE, {how}")


def _secret_proxy_host(r, endpoint: str | None) -> Step | None:
    """The service reaches the proxy at the secret's proxy_host (connect(via="proxy"), `credentials --via
    proxy`): it must be the proxy's endpoint. Via the proxy, the next steps go there, as the service does."""
    have = r.secret.get("proxy_host")
    if not have:
        return Step("proxy", False, f"{r.secret_name} names no proxy endpoint, so connect(via=\"proxy\") and "
                    "`credentials --via proxy` fail", "`shared-mysql apply` (it writes proxy_host into the secrets)")
    if endpoint and have != endpoint:
        return Step("proxy", False, f"{r.secret_name} names the proxy {have[:120]}, the proxy is {endpoint}",
                    "`shared-mysql apply` (it rewrites proxy_host)")
    if r.opts.via == "proxy":
        r.host = have
    return None
