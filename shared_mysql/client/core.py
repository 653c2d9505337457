"""Connections for applications: cached secrets, verified TLS, re-fetch on auth errors, failover-safe retries.

What an application passes on to PyMySQL goes through an allowlist (`check_options`), so no keyword can loosen
TLS or change the account or the endpoint; a CA given as ssl_ca= or ssl={"ca": ...} is mapped onto ca=."""

from __future__ import annotations

import enum
import os
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from ..errors import SharedMySQLError
from .iam import RateLimiter, TokenCache

# Connect errors seen during a Multi-AZ failover: can't connect, gone away, lost, read-only (old primary).
# PyMySQL also reports a failed TLS handshake as 2003; `_tls_failure` singles those out, so they are not retried.
RETRYABLE = frozenset({2003, 2006, 2013, 1290})
DEFAULT_DEADLINE = 130.0  # RDS documents failovers of 60-120 s
DEFAULT_TTL = 3600.0
CA_ENV = "SHARED_MYSQL_CA_BUNDLE"
ROLES = ("app", "readonly")


class ClientError(SharedMySQLError):
    """A connection could not be made (the line names the tenant, the account and the endpoint), or was asked for
    with an option that would weaken it (the line names the option and the fix)."""


@lru_cache(maxsize=32)
def _tls(ca: str):
    from ..db import tls_context

    return tls_context(ca)


def _context(ca: str, origin: str, where: str):
    """The verifying SSLContext for `ca`; a missing, unreadable or non-PEM bundle is one line naming it."""
    fix = f"point {origin} at the PEM bundle that signed the server's certificate (for RDS, the regional bundle)"
    try:
        return _tls(ca)
    except IsADirectoryError:
        problem = "is a directory, not a PEM file"
    except FileNotFoundError:
        problem = "does not exist"
    except PermissionError:
        problem = "cannot be read by this process (permission denied)"
    except ssl.SSLError as exc:  # before OSError: SSLError is one
        problem = f"holds no usable PEM certificate ({exc.reason or exc.__class__.__name__})"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    raise ClientError(f"{where}: CA bundle {ca} (from {origin}) {problem}; {fix}") from None


# -- what an application may pass through to PyMySQL ------------------------------------------------------
# An ALLOWLIST: each of these shapes results or the session, never where we connect, as whom, or how TLS is
# verified. Everything else is refused with one line before any secret is read or any socket opened, because
# PyMySQL lets many of its options silently replace the SSLContext, the account or the endpoint we chose.
PASS_THROUGH: dict[str, str] = {
    "autocommit": "transaction mode of the session",
    "binary_prefix": "how bytes parameters are quoted (_binary'...')",
    "charset": "the connection character set; charsets whose characters can end in a backslash are refused",
    "client_flag": "protocol options; only the bits in CLIENT_FLAGS (never LOCAL_FILES)",
    "collation": "the connection collation",
    "connect_timeout": "seconds per attempt; still capped by what is left of the deadline",
    "conv": "the application's own type converters",
    "cursorclass": "the shape of result rows",
    "init_command": "SQL run once after login, which the application could run itself",
    "max_allowed_packet": "a client-side size limit",
    "program_name": "a connection attribute (performance_schema.session_connect_attrs)",
    "read_timeout": "a socket timeout on the open connection",
    "sql_mode": "session SQL semantics, which the application could SET itself",
    "use_unicode": "str or bytes in results",
    "write_timeout": "a socket timeout on the open connection",
}

# client_flag bits an application may set: result semantics only. PyMySQL sets its CAPABILITIES (and SSL,
# CONNECT_WITH_DB) itself, so those bits are no-ops. LOCAL_FILES lets the server read files from this host;
# COMPRESS, DEPRECATE_EOF and SESSION_TRACK change the wire protocol in ways PyMySQL does not speak.
CLIENT_FLAGS = ("FOUND_ROWS", "IGNORE_SPACE", "INTERACTIVE", "MULTI_STATEMENTS", "MULTI_RESULTS", "PS_MULTI_RESULTS")

# Multibyte charsets where a character's second byte can be 0x5C (a backslash): with them a byte-level escaper can
# be tricked into a quote that ends the string (the classic GBK/SJIS injection; MySQL's docs warn about them).
# PyMySQL 2.x escapes str before encoding and sends bytes as hex, so this is defence in depth; the tenants' schemas
# are utf8mb4 anyway.
UNSAFE_CHARSETS = frozenset({"big5", "cp932", "gb18030", "gbk", "sjis"})

_VERIFIED = "shared-mysql always verifies; pass ca= for a different CA bundle"
_ENDPOINT = "shared-mysql connects to the host and port in the stored secret; change the secret (or instance.host)"
_ACCOUNT = ("shared-mysql logs in as the account in the stored secret, re-read after a rotation; "
            "pass user='readonly' for the read-only account or secret= for another secret")
_CLIENT_CERT = ("would replace the client's verified TLS context with PyMySQL's own; shared-mysql logs in with "
                "the stored secret and sends no client certificate; remove it")

# Options handled explicitly: what passing them would do, and the fix.
REFUSED: dict[str, str] = {
    "host": f"would change the endpoint; {_ENDPOINT}",
    "port": f"would change the endpoint; {_ENDPOINT}",
    "unix_socket": f"would connect through a socket, without TLS, to whatever listens there; {_ENDPOINT}",
    "named_pipe": f"would connect through a pipe, without TLS; {_ENDPOINT}",
    "bind_address": ("would choose the source address, and with it which user@host account the server matches; "
                     "remove it"),
    "user": f"would replace the stored account; {_ACCOUNT}",
    "password": f"would replace the stored credential; {_ACCOUNT}",
    "passwd": f"would replace the stored credential; {_ACCOUNT}",
    "auth_plugin_map": ("would change how the stored credential is sent; shared-mysql logs in with the secret's "
                        "password or IAM token; remove it"),
    "server_public_key": ("is for RSA password exchange without TLS; shared-mysql always uses verified TLS; "
                          "remove it"),
    "db": "is PyMySQL's old spelling; pass database=",
    "read_default_file": ("would read host, user, password, socket and ssl-* from an option file, overriding the "
                          "stored endpoint, account and TLS; remove it (pass ca= for a different CA bundle)"),
    "read_default_group": ("would read host, user, password, socket and ssl-* from an option file (/etc/my.cnf by "
                           "default), overriding the stored endpoint, account and TLS; remove it"),
    "local_infile": ("would let the server read files from this host (LOAD DATA LOCAL); shared-mysql never "
                     "enables it; remove it"),
    "defer_connect": ("would hand back an unconnected connection, outside the client's retries and credential "
                      "re-read; call connect() when the connection is needed"),
    "compress": "is not supported by PyMySQL; remove it",
    "ssl_cert": _CLIENT_CERT,
    "ssl_key": _CLIENT_CERT,
    "ssl_key_password": _CLIENT_CERT,
    "tenant": "belongs to engine() itself, not to connect_args",
    "secret": "belongs to engine() itself, not to connect_args",
}


# Refused options whose False is PyMySQL's default, so passing False asks for nothing.
_OFF_BY_DEFAULT = frozenset({"local_infile", "defer_connect", "compress", "named_pipe"})


@dataclass(frozen=True)
class Options:
    """An application's keyword arguments, checked: what goes to PyMySQL, and a CA given in any spelling."""

    pymysql: dict = field(default_factory=dict)
    ca: str | None = None
    ca_origin: str = "ca="
    connect_timeout: float | None = None


def _show(v: Any) -> str:
    return v.name if isinstance(v, enum.Enum) else repr(v)


def check_options(fn: str, kwargs: dict, *, ca: Any = None) -> Options:
    """Split `kwargs` into allowlisted PyMySQL options and a CA path, or raise one line naming the option and the
    fix. Pure: no file, secret or network is touched. `fn` prefixes messages ("connect():")."""
    cas: list[tuple[str, str]] = []

    def refuse(name: str, why: str):
        raise ClientError(f"{fn} {name} {why}")

    def ca_value(name: str, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            refuse(f"{name}={_show(value)}", "is not a CA bundle path; pass ca= a PEM file")
        cas.append((name if name.startswith("ssl[") else f"{name}=", os.fspath(value)))

    ca_value("ca", ca)
    passed: dict = {}
    timeout = None
    for opt, value in kwargs.items():
        if opt in ("ssl_verify_cert", "ssl_verify_identity"):
            # True asks for what the client always does; anything else would loosen it.
            if value is None or value is True or value == ssl.CERT_REQUIRED:
                continue
            what = "TLS verification" if opt == "ssl_verify_cert" else "host name checking"
            refuse(f"{opt}={_show(value)}", f"would turn {what} off; {_VERIFIED}")
        elif opt == "ssl_disabled":
            if value is None or value is False:
                continue
            refuse(f"{opt}={_show(value)}", f"would turn TLS off; {_VERIFIED}")
        elif opt == "ssl_ca":
            ca_value("ssl_ca", value)
        elif opt == "ssl":
            _check_ssl(value, refuse, ca_value)
        elif opt == "client_flag":
            _check_client_flag(value, refuse)
            passed[opt] = value
        elif opt == "charset":
            if not isinstance(value, str) or value.lower() in UNSAFE_CHARSETS:
                refuse(f"{opt}={_show(value)}", "is a charset whose characters can end in a backslash byte, "
                       f"where client-side escaping is unsafe ({', '.join(sorted(UNSAFE_CHARSETS))}); use utf8mb4, "
                       "the default")
            passed[opt] = value
        elif opt == "connect_timeout":
            timeout = value
        elif opt in PASS_THROUGH:
            passed[opt] = value
        elif opt in REFUSED:
            if value is None or (value is False and opt in _OFF_BY_DEFAULT):
                continue  # PyMySQL's own default: asks for nothing
            shown = f"{opt}={_show(value)}" if isinstance(value, bool) else f"{opt}="
            refuse(shown, REFUSED[opt])
        else:
            refuse(f"{opt}=", "is not an option shared-mysql passes to PyMySQL; allowed: "
                   f"{', '.join(sorted(PASS_THROUGH))}, ssl_ca (mapped to ca=)")
    if len({path for _, path in cas}) > 1:
        raise ClientError(f"{fn} {' and '.join(n for n, _ in cas)} name different CA bundles; give one, as ca=")
    origin, path = cas[0] if cas else ("ca=", None)
    return Options(passed, path, origin, timeout)


def _check_ssl(value: Any, refuse: Callable, ca_value: Callable) -> None:
    """`ssl=` may carry a CA (mapped onto ca=) and settings that ask for verification; nothing else."""
    if value is None:
        return
    if isinstance(value, ssl.SSLContext):
        refuse("ssl=<SSLContext>", f"would replace the client's verified TLS context; {_VERIFIED}")
    if not isinstance(value, dict):
        refuse(f"ssl={_show(value)}", f"would turn TLS verification off; {_VERIFIED}")
    for key, v in value.items():
        name = f"ssl[{key!r}]"
        if key == "ca":
            ca_value(name, v)
        elif key == "check_hostname":
            if v is not True:
                refuse(f"{name}={_show(v)}", f"would turn host name checking off; {_VERIFIED}")
        elif key == "verify_mode":
            if not (v is True or v == ssl.CERT_REQUIRED or (isinstance(v, str) and v.lower() == "required")):
                refuse(f"{name}={_show(v)}", f"would turn TLS verification off; {_VERIFIED}")
        elif key in ("cert", "key", "password"):
            refuse(f"{name}=", _CLIENT_CERT)
        elif key == "capath":
            refuse(f"{name}=", "would replace the client's verified TLS context; pass ca= a PEM bundle file instead")
        else:
            refuse(f"{name}=", f"would replace the client's verified TLS context (TLS 1.2+, CA and host name "
                   f"checked); {_VERIFIED}")


def _check_client_flag(value: Any, refuse: Callable) -> None:
    from pymysql.constants import CLIENT

    if not isinstance(value, int) or isinstance(value, bool):
        refuse(f"client_flag={_show(value)}", "is not an int of pymysql.constants.CLIENT bits")
    if value & CLIENT.LOCAL_FILES:
        refuse("client_flag=LOCAL_FILES", REFUSED["local_infile"])
    ok = CLIENT.CAPABILITIES | CLIENT.SSL | CLIENT.CONNECT_WITH_DB
    for name in CLIENT_FLAGS:
        ok |= getattr(CLIENT, name)
    extra = value & ~ok
    if extra:
        names = [n for n in dir(CLIENT) if n.isupper() and n != "CAPABILITIES" and getattr(CLIENT, n) & extra]
        refuse(f"client_flag={'|'.join(names) or hex(extra)}", "is not passed through; allowed bits: "
               f"{', '.join(CLIENT_FLAGS)}")


def _check_role(fn: str, user: str, secret: str | None) -> None:
    if secret and user != "app":
        raise ClientError(f"{fn} user={user!r} would be ignored: secret= names the account itself; pass the "
                          "read-only account's secret name instead")
    if user not in ROLES:
        raise ClientError(f"{fn} user={user!r} is not an account role; pass user='app' (the default) or "
                          "user='readonly'; the MySQL user name comes from the stored secret")


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS problem behind a PyMySQL connect error, or None. A handshake cut short (EOF, reset) is a failover
    symptom and stays retryable; a certificate that does not verify will not verify on the next attempt."""
    orig = getattr(exc, "original_exception", None)
    if isinstance(orig, ssl.SSLCertVerificationError):
        return orig.verify_message or orig.reason or "certificate verify failed"
    if isinstance(orig, ssl.SSLError) and not isinstance(orig, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                                                                ssl.SSLSyscallError)):
        return f"handshake failed: {orig.reason or orig}"
    msg = str(exc.args[-1]) if getattr(exc, "args", None) else ""
    if "CERTIFICATE_VERIFY_FAILED" in msg:  # a PyMySQL that does not keep original_exception
        return "certificate verify failed"
    return None


@dataclass(frozen=True)
class Source:
    """Where one account's secret comes from: a store (found through the config) or Secrets Manager by name."""

    key: str  # secret name or ARN
    label: str  # for messages: "tenant orders (app)" or "secret prod-orders-db-credentials"
    fetch: Callable[[], dict | None]
    ca: str | None = None  # CA from the config, used when the secret does not carry ssl_ca


class Client:
    """Holds the secret cache, IAM tokens and rate limiter. Thread-safe; one per process is enough."""

    def __init__(self, *, config: Any = None, secret_ttl: float = DEFAULT_TTL, deadline: float = DEFAULT_DEADLINE,
                 connect_timeout: float = 10.0, ca: str | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, tokens: TokenCache | None = None,
                 limiter: RateLimiter | None = None):
        self.config = config
        self.secret_ttl = secret_ttl
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.ca = ca
        self.clock = clock
        self.sleep = sleep
        self.tokens = tokens or TokenCache(clock=clock)
        self.limiter = limiter or RateLimiter(clock=clock, sleep=sleep)
        self._cache: dict[str, tuple[dict, float]] = {}
        self._sources: dict[tuple, Source] = {}
        self._lock = threading.Lock()
        self._loaded = None
        self._sm = None
        self.fetches = 0
        self.attempts = 0

    # -- where secrets come from ---------------------------------------------------------------------------
    def _loaded_config(self):
        if self._loaded is None:
            from ..config import LoadedConfig, load_config

            cfg = self.config
            self._loaded = cfg if isinstance(cfg, LoadedConfig) else load_config(cfg)
        return self._loaded

    def _source(self, tenant: str | None, user: str, secret: str | None) -> Source:
        key = (tenant, user, secret)
        src = self._sources.get(key)
        if src is None:
            src = self._sources[key] = self._make_source(tenant, user, secret)
        return src

    def _make_source(self, tenant: str | None, user: str, secret: str | None) -> Source:
        if secret:
            return Source(secret, f"secret {secret}", lambda: self._from_secrets_manager(secret))
        if not tenant:
            raise ClientError("give a tenant (found through shared-mysql.yaml) or secret= (a Secrets Manager name)")
        from ..target import open_target
        from ..tenants.model import account_secret

        loaded = self._loaded_config()
        name, problem = account_secret(loaded.config, loaded.path, tenant, user)
        if problem:
            raise ClientError(problem)
        target = open_target(loaded)
        store = target.store
        # The local target's secrets carry their CA; elsewhere the config's bundle (checked to exist) is used.
        ca = None if target.kind == "local" else target.ca

        def fetch() -> dict | None:
            store.reload()  # a re-fetch must see a rotation that happened since the last read
            return store.get(name)

        return Source(name, f"tenant {tenant} ({user})", fetch, ca)

    def _from_secrets_manager(self, secret_id: str) -> dict | None:
        import json

        from ..aws import client, describe_error, error_code

        if self._sm is None:
            self._sm = client("secretsmanager")
        try:
            # Name the stage: right after a rotation a plain read can return the previous version.
            resp = self._sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
        except Exception as exc:  # noqa: BLE001 - botocore errors, translated
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise ClientError(f"secret {secret_id}: {describe_error(exc)}") from None
        return json.loads(resp["SecretString"])

    def _secret(self, src: Source, *, refresh: bool = False) -> dict:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(src.key)
            if hit and not refresh and now < hit[1]:
                return hit[0]
        value = src.fetch()
        self.fetches += 1
        if value is None:
            raise ClientError(f"{src.label}: no credential stored under {src.key}; run `shared-mysql apply`")
        # Jitter the expiry so that a fleet of clients does not re-fetch in lockstep.
        expires = now + self.secret_ttl * random.uniform(0.9, 1.0)
        with self._lock:
            self._cache[src.key] = (value, expires)
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- connecting ----------------------------------------------------------------------------------------
    def connect(self, tenant: str | None = None, user: str = "app", *, secret: str | None = None,
                database: str | None = None, deadline: float | None = None, ca: str | None = None, **kwargs):
        """A PyMySQL connection with verified TLS; retried through failovers until the deadline.

        `kwargs` go to PyMySQL only if they are on the PASS_THROUGH allowlist (see `check_options`)."""
        import pymysql

        opts = check_options("connect():", kwargs, ca=ca)
        _check_role("connect():", user, secret)
        if opts.ca:  # a bad CA given here is one line before any secret is read
            _context(opts.ca, opts.ca_origin, "connect()")
        src = self._source(tenant, user, secret)
        total = self.deadline if deadline is None else deadline
        per_attempt = self.connect_timeout if opts.connect_timeout is None else opts.connect_timeout
        start = self.clock()
        refetched = False
        attempt = 0
        while True:
            s = self._secret(src, refresh=False)
            host, port, username = s["host"], int(s["port"]), s["username"]
            where = f"{src.label}: cannot connect as {username} to {host}:{port}"
            cafile, origin = self._ca(opts, s, src)
            if not cafile:
                raise ClientError(f"{where}: TLS is always verified and no CA bundle is known; pass ca= or set "
                                  f"{CA_ENV} (for RDS, the regional bundle)")
            ctx = _context(cafile, origin, where)
            iam = s.get("auth") == "iam"
            if iam:
                self.limiter.acquire((host, port))
                password = self.tokens.get(host, port, username, s.get("region"))
            else:
                password = s["password"]
            remaining = total - (self.clock() - start)
            self.attempts += 1
            try:
                # Only allowlisted options reach PyMySQL, after ours: none of them can name TLS, account or endpoint.
                return pymysql.connect(
                    host=host, port=port, user=username, password=password,
                    database=database if database is not None else s.get("dbname"),
                    ssl=ctx, connect_timeout=max(1.0, min(per_attempt, remaining)),
                    **{"charset": "utf8mb4", **opts.pymysql})
            except pymysql.err.MySQLError as exc:
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
                msg = str(exc.args[-1]) if exc.args else str(exc)
                tls = _tls_failure(exc)
                if tls:
                    raise ClientError(f"{where}: {_tls_hint(tls, cafile, origin, host)}") from None
                if code == 1045 and not refetched:
                    # A rotation may have changed the password since we cached it: read the secret once more.
                    refetched = True
                    self._secret(src, refresh=True)
                    if iam:
                        self.tokens.invalidate(host, port, username, s.get("region"))
                    continue
                if code in RETRYABLE:
                    elapsed = self.clock() - start
                    delay = min(10.0, 0.25 * 2 ** attempt) * random.uniform(0.5, 1.0)
                    if elapsed + delay < total:
                        attempt += 1
                        self.sleep(delay)
                        continue
                    raise ClientError(f"{where}: error {code} after {attempt + 1} attempts over {elapsed:.0f}s "
                                      f"(deadline {total:.0f}s); is the server up?") from None
                hint = " (the stored credential was re-read and still fails)" if code == 1045 else ""
                raise ClientError(f"{where}: error {code}: {_clean(msg)}{hint}") from None

    def _ca(self, opts: Options, secret: dict, src: Source) -> tuple[str | None, str]:
        """The CA bundle and where it came from, in precedence order."""
        for path, origin in ((opts.ca, opts.ca_origin), (secret.get("ssl_ca"), "the secret's ssl_ca"),
                             (src.ca, "instance.ca_bundle"), (self.ca, "Client(ca=)"),
                             (os.environ.get(CA_ENV), f"${CA_ENV}")):
            if path:
                return str(path), origin
        return None, ""

    def engine(self, tenant: str | None = None, user: str = "app", *, secret: str | None = None,
               pool_size: int = 10, max_overflow: int = 20, pool_timeout: float = 30, pool_recycle: int = 3600,
               pool_pre_ping: bool = True, connect_args: dict | None = None, **kwargs):
        """A SQLAlchemy engine with the seed's pool settings; every new connection goes through `connect`.

        `connect_args` are checked now, by the same allowlist as connect(), not at the first checkout."""
        args = dict(connect_args or {})
        own = {k: args.pop(k) for k in ("database", "deadline", "ca") if k in args}  # connect()'s own
        opts = check_options("engine(): connect_args", args, ca=own.get("ca"))
        _check_role("engine():", user, secret)
        for k in ENGINE_REFUSED:
            if k in kwargs:
                raise ClientError(f"engine(): {k}= would replace the client's connect(), which verifies TLS and "
                                  "reads the stored secret; use Client.connect inside your own pool instead")
        if opts.ca:
            _context(opts.ca, opts.ca_origin, "engine()")
        try:
            from sqlalchemy import create_engine, event
        except ImportError:
            raise ClientError("engine() needs SQLAlchemy: pip install 'shared-mysql[sqlalchemy]'") from None
        self._source(tenant, user, secret)  # fail now, not at first checkout, on an unknown tenant
        eng = create_engine(
            "mysql+pymysql://", creator=lambda: self.connect(tenant, user, secret=secret, **own, **args),
            pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, pool_recycle=pool_recycle,
            pool_pre_ping=pool_pre_ping, **kwargs)

        @event.listens_for(eng, "handle_error")
        def _failover(ctx):  # a read-only or lost server: drop the pooled connection, reconnect through connect()
            orig = ctx.original_exception
            code = orig.args[0] if getattr(orig, "args", None) and isinstance(orig.args[0], int) else None
            if code in RETRYABLE:
                ctx.is_disconnect = True

        return eng


# create_engine() arguments that bypass `creator`, and with it everything connect() guarantees.
ENGINE_REFUSED = ("creator", "async_creator", "pool")


def _tls_hint(problem: str, ca: str, origin: str, host: str) -> str:
    if "mismatch" in problem.lower():  # X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH
        return (f"TLS verification failed: the server's certificate does not name {host} ({problem}); connect "
                "through a name the certificate lists (not retried)")
    if problem.startswith("handshake failed"):
        return f"TLS {problem} (CA bundle {ca} from {origin}; not retried)"
    return (f"TLS verification failed against CA bundle {ca} (from {origin}): {problem}; check that this bundle "
            "signed the server's certificate (for RDS, the regional bundle), or pass ca= another; not retried")


def _clean(msg: str) -> str:
    return " ".join(msg.split())


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def connect(tenant: str | None = None, user: str = "app", **kwargs):
    """`shared_mysql.client.connect("orders")`: config from ./shared-mysql.yaml or $SHARED_MYSQL_CONFIG;
    `connect(secret="prod-orders-db-credentials")` on ECS, with no config file."""
    return default_client().connect(tenant, user, **kwargs)


def engine(tenant: str | None = None, user: str = "app", **kwargs):
    return default_client().engine(tenant, user, **kwargs)
