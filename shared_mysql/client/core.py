"""Connections for applications: cached secrets, verified TLS, re-fetch on auth errors, failover-safe retries.

What an application passes on to PyMySQL goes through an allowlist (`check_options`), so no keyword can loosen
TLS or change the account or the endpoint; a CA given as ssl_ca= or ssl={"ca": ...} is mapped onto ca=."""

from __future__ import annotations

import os
import random
import ssl
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from .iam import RateLimiter, TokenCache
from .options import PASS_THROUGH, ClientError, Options, _check_role, check_options  # noqa: F401 (PASS_THROUGH re-exported)

# Connect errors seen during a Multi-AZ failover: can't connect, gone away, lost, read-only (old primary).
# PyMySQL also reports a failed TLS handshake as 2003; `_tls_failure` singles those out, so they are not retried.
RETRYABLE = frozenset({2003, 2006, 2013, 1290})
DEFAULT_DEADLINE = 130.0  # RDS documents failovers of 60-120 s
DEFAULT_TTL = 3600.0
CA_ENV = "SHARED_MYSQL_CA_BUNDLE"


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
                database: str | None = None, deadline: float | None = None, ca: str | None = None,
                via: str = "instance", **kwargs):
        """A PyMySQL connection with verified TLS; retried through failovers until the deadline.

        `via="proxy"`: through the RDS Proxy (the endpoint apply writes into the secret as `proxy_host`); IAM
        tokens are then signed for the proxy's host, as RDS Proxy requires.

        `kwargs` go to PyMySQL only if they are on the PASS_THROUGH allowlist (see `check_options`)."""
        import pymysql

        opts = check_options("connect():", kwargs, ca=ca)
        _check_role("connect():", user, secret)
        if opts.ca:  # a bad CA given here is one line before any secret is read
            _context(opts.ca, opts.ca_origin, "connect()")
        if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                     or deadline < 0):
            raise ClientError(f"connect(): deadline={deadline!r} must be a number of seconds (0 or more)")
        if via not in ("instance", "proxy"):
            raise ClientError(f"connect(): via={via!r} must be 'instance' or 'proxy'")
        src = self._source(tenant, user, secret)
        total = self.deadline if deadline is None else deadline
        per_attempt = self.connect_timeout if opts.connect_timeout is None else opts.connect_timeout
        start = self.clock()
        refetched = False
        attempt = 0
        while True:
            s = self._secret(src, refresh=False)
            host, port, username = s["host"], int(s["port"]), s["username"]
            if via == "proxy":
                host = s.get("proxy_host")
                if not host:
                    raise ClientError(f"{src.label}: connect(via='proxy'): the secret names no proxy endpoint; "
                                      "turn on instance.enable_rds_proxy (aws) or set instance.proxy_endpoint, "
                                      "then `shared-mysql apply`")
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
               pool_pre_ping: bool = True, connect_args: dict | None = None, via: str = "instance", **kwargs):
        """A SQLAlchemy engine with the seed's pool settings; every new connection goes through `connect`.

        `connect_args` are checked now, by the same allowlist as connect(), not at the first checkout."""
        if connect_args is not None and not isinstance(connect_args, dict):
            raise ClientError(f"engine(): connect_args must be a dict of connect() options, not "
                              f"{type(connect_args).__name__}")
        args = dict(connect_args or {})
        own = {k: args.pop(k) for k in ("database", "deadline", "ca") if k in args}  # connect()'s own
        if via not in ("instance", "proxy"):
            raise ClientError(f"engine(): via={via!r} must be 'instance' or 'proxy'")
        own["via"] = via
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


_clients: dict[str | None, Client] = {}
_default_lock = threading.Lock()


def default_client(config: Any = None) -> Client:
    """One Client (secret cache, tokens, rate limit) per config path per process; None: $SHARED_MYSQL_CONFIG or
    ./shared-mysql.yaml, as the CLI finds it."""
    key = None if config is None else str(getattr(config, "path", config))
    with _default_lock:
        c = _clients.get(key)
        if c is None:
            c = _clients[key] = Client(config=config)
        return c


def connect(tenant: str | None = None, user: str = "app", *, config: Any = None, **kwargs):
    """`shared_mysql.client.connect("orders")`: config from ./shared-mysql.yaml or $SHARED_MYSQL_CONFIG (or
    `config=` a path); `connect(secret="prod-orders-db-credentials")` on ECS, with no config file."""
    return default_client(config).connect(tenant, user, **kwargs)


def engine(tenant: str | None = None, user: str = "app", *, config: Any = None, **kwargs):
    return default_client(config).engine(tenant, user, **kwargs)
