"""Desired and actual state of tenants. Plain data: built from config (desired) or read from the server (actual)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config.model import DATABASE_SUFFIX, ROTATION_SUFFIX, USER_SUFFIXES, Config
from ..sql.accounts import PROTECTED_NAMES
from ..sql.flavor import Flavor

CHARSET = "utf8mb4"
COLLATION = "utf8mb4_unicode_ci"
USER_HOST = "%"
MANAGED_BY = "shared-mysql"
# Accounts and schemas a server owns itself; never reported as unmanaged, never touched.
# The tool's own schema on the instance (target.py: the operator lock's secret salt and who holds it; admin only).
META_DATABASE = "shared_mysql"
SYSTEM_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema", META_DATABASE})
SYSTEM_USERS = PROTECTED_NAMES
# The fields of a tenant's secret that this tool writes; anything else in it is the user's and is kept as it is.
OWNED_SECRET_KEYS = frozenset({"engine", "host", "port", "username", "dbname", "database", "ssl_ca", "auth",
                               "masterarn", "proxy_host"})


def user_fields(secret: dict | None) -> dict:
    """The fields of a secret that a user added (kept through every new version this tool writes)."""
    return {k: v for k, v in (secret or {}).items() if k not in OWNED_SECRET_KEYS and k != "password"}
# The pseudo-account every account inherits from (MariaDB 10.11 `GRANT ... TO PUBLIC`).
PUBLIC = ("PUBLIC", "")

Account_ = tuple[str, str]  # (user, host)


def secret_name(environment: str, tenant: str, role: str) -> str:
    """The seed's naming: `{environment}-{tenant}-db-credentials`; the read-only account alongside."""
    return f"{environment}-{tenant}-db-credentials" if role == "app" else f"{environment}-{tenant}-db-{role}-credentials"


def account_secret(config: Config, source: object, tenant: str, role: str) -> tuple[str | None, str | None]:
    """(secret name, None) for a tenant's account, or (None, the one-line problem) when it has no such account."""
    if tenant not in config.tenants:
        known = ", ".join(sorted(config.tenants)) or "none"
        return None, f"tenant {tenant[:64]!r} is not in {source} (tenants: {known[:400]})"
    if role == "readonly" and not config.tenants[tenant].readonly:
        return None, f"tenant {tenant!r} has no read-only account; set readonly: true in {source} and apply"
    return secret_name(config.environment, tenant, role), None


def derived_user_names(tenant: str) -> tuple[str, ...]:
    """Every account name a tenant's namespace holds: app, readonly and their rotation twins."""
    names = [f"{tenant}{suffix}" for suffix in USER_SUFFIXES.values()]
    return tuple(names + [n + ROTATION_SUFFIX for n in names])


@dataclass(frozen=True, slots=True)
class DesiredAccount:
    tenant: str
    role: str  # "app" | "readonly"
    user: str
    host: str
    database: str
    privileges: frozenset[str]
    max_connections: int
    secret: str
    require_ssl: bool = True
    auth: str = "password"  # "password" | "iam"
    rotation: str = "alternating"  # "alternating" | "dual-password" | "single"
    alt: str | None = None  # alternating: the twin's name (`<user>_alt`); the secret names whichever is current
    grace_s: float = 7200.0  # how long the previous twin keeps the full limit after a rotation
    rotation_days: int = 30
    locked: bool = False  # an idle rotation twin nobody holds a password for: ACCOUNT LOCK until a rotation

    @property
    def key(self) -> Account_:
        return (self.user, self.host)

    def as_user(self, user: str, max_connections: int | None = None, alt: str | None = None,
                locked: bool = False) -> "DesiredAccount":
        """This account under another name (a rotation twin): dataclasses.replace costs ~4x as much, 20,000 times
        per plan at 10,000 tenants."""
        return DesiredAccount(self.tenant, self.role, user, self.host, self.database, self.privileges,
                              self.max_connections if max_connections is None else max_connections, self.secret,
                              self.require_ssl, self.auth, self.rotation, alt, self.grace_s, self.rotation_days,
                              locked)

    @property
    def names(self) -> tuple[str, ...]:
        """Both twins' user names (alternating), or the one."""
        return (self.user, self.alt) if self.alt else (self.user,)


@dataclass(frozen=True)
class DesiredTenant:
    name: str
    database: str
    accounts: tuple[DesiredAccount, ...]


@dataclass(frozen=True)
class Desired:
    flavor: Flavor
    environment: str
    identifier: str
    tenants: tuple[DesiredTenant, ...]
    admin_users: frozenset[str]  # the master account's name(s): config and store; never planned for change
    secret_meta: dict[str, dict]  # secret name -> expected non-password fields of its JSON
    # secrets.rotation_schedule: the function Secrets Manager rotates tenant secrets with (None: no schedules)
    rotation_function: str | None = None

    @property
    def tags(self) -> dict[str, str]:
        return {"managed-by": MANAGED_BY, "instance": self.identifier, "environment": self.environment}


def build_desired(config: Config, flavor: Flavor, *, host: str, port: int, ca: str | None,
                  extra_meta: dict | None = None, admin_users: tuple[str, ...] = (),
                  rotation_function: str | None = None, blocked: frozenset[str] = frozenset()) -> Desired:
    """`blocked`: tenants whose accounts stay locked (tenants/blocks.py: an unverified refresh)."""
    tenants = []
    meta: dict[str, dict] = {}
    for name, t in sorted(config.tenants.items()):
        database = f"{name}{DATABASE_SUFFIX}"
        roles = [("app", flavor.db_all_privileges, t.max_connections)]
        if t.readonly:
            roles.append(("readonly", frozenset({"SELECT"}), t.readonly_limit))
        accounts = []
        for role, privs, limit in roles:
            user = f"{name}{USER_SUFFIXES[role]}"
            sname = secret_name(config.environment, name, role)
            alternating = t.rotation == "alternating" and t.auth == "password"
            accounts.append(DesiredAccount(
                name, role, user, USER_HOST, database, privs, limit, sname, auth=t.auth, rotation=t.rotation,
                alt=user + ROTATION_SUFFIX if alternating else None, grace_s=t.rotation_grace_minutes * 60.0,
                rotation_days=t.rotation_days or config.instance.secret_rotation_days, locked=name in blocked))
            # RDS secret JSON, plus `database` (the key the seed's CI workflow reads with `jq -r '.database'`).
            meta[sname] = {"engine": flavor.name, "host": host, "port": port, "username": user,
                           "dbname": database, "database": database, **({"ssl_ca": ca} if ca else {}),
                           # IAM accounts log in with a 15-minute token: the secret holds connection info only.
                           **({"auth": "iam"} if t.auth == "iam" else {}), **(extra_meta or {})}
        tenants.append(DesiredTenant(name, database, tuple(accounts)))
    dual = sorted({a.tenant for t in tenants for a in t.accounts if a.rotation == "dual-password" and a.auth == "password"})
    if dual and flavor.is_mariadb:
        from ..errors import ConfigError

        raise ConfigError(f"tenants.{dual[0]}.rotation: dual-password needs MySQL 8.0.14+ (RETAIN CURRENT PASSWORD); "
                          f"this server is {flavor.label}: use alternating (the default) or single")
    iam = sorted({a.tenant for t in tenants for a in t.accounts if a.auth == "iam"})
    if iam and flavor.is_mariadb:
        from ..errors import ConfigError

        raise ConfigError(f"tenants.{iam[0]}.auth: iam needs MySQL with AWSAuthenticationPlugin (RDS); this server "
                          f"is {flavor.label}: use auth: password")
    admins = frozenset({config.instance.master_username, *admin_users})
    for t in tenants:
        for n in derived_user_names(t.name):
            if n in admins or n in SYSTEM_USERS:
                from ..errors import ConfigError

                raise ConfigError(f"tenants.{t.name}: its account name {n} is the master account's (or a system "
                                  "account's); rename the tenant or instance.master_username")
    return Desired(flavor, config.environment, config.identifier, tuple(tenants), admins, meta, rotation_function)


# Records read from the server are built by the ten thousand: slotted, not frozen (a frozen dataclass pays
# object.__setattr__ per field, ~13 us per account).
@dataclass(slots=True)
class ActualUser:
    user: str
    host: str
    plugin: str
    auth_string: str = field(repr=False)
    ssl_type: str
    max_connections: int
    locked: bool = False  # ACCOUNT LOCK: the service gets error 4151
    expired: bool = False  # PASSWORD EXPIRE: the service gets error 1820
    is_role: bool = False  # MariaDB roles live in the same table; they cannot log in
    other_auth: tuple[str, ...] = ()  # MariaDB `IDENTIFIED VIA a OR b`: plugins beyond the first
    other_empty: bool = False  # one of those later methods checks a password and its string is empty
    limits: dict = field(default_factory=dict)  # non-zero per-hour limits / max_statement_time
    password_lifetime: int | None = None  # per-account PASSWORD EXPIRE INTERVAL (None: server default)
    ssl_detail: tuple[str, str, str] = ("", "", "")  # ssl_cipher, x509_issuer, x509_subject


@dataclass(slots=True)
class SecretState:
    tags: dict
    meta: dict | None  # current version's JSON without the password
    current_hash: str | None = field(default=None, repr=False)
    has_current: bool = False
    has_pending: bool = False
    previous_user: str | None = None  # AWSPREVIOUS's username (alternating: the idle twin, still logging in)
    pending_user: str | None = None  # AWSPENDING's username: another twin than current's means a rotation in flight
    previous_hash: str | None = field(default=None, repr=False)
    schedule: tuple[str, int] | None = None  # Secrets Manager rotates it: (function ARN, every N days)

    @property
    def rotated_at(self) -> float | None:
        """When the current version became current by a rotation (the `rotated-at` tag, epoch seconds)."""
        try:
            return float(self.tags.get("rotated-at", ""))
        except ValueError:
            return None


@dataclass
class Actual:
    databases: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (charset, collation)
    users: dict[Account_, ActualUser] = field(default_factory=dict)
    global_privs: dict[Account_, set[str]] = field(default_factory=dict)  # without USAGE
    db_privs: dict[Account_, dict[str, set[str]]] = field(default_factory=dict)  # raw pattern -> privileges
    table_privs: dict[Account_, dict[tuple[str, str], set[str]]] = field(default_factory=dict)
    column_privs: dict[Account_, dict[tuple[str, str, str], set[str]]] = field(default_factory=dict)
    role_grants: dict[Account_, set[tuple[str, str]]] = field(default_factory=dict)  # granted roles (name, host)
    routine_privs: dict[Account_, dict[tuple[str, str, str], set[str]]] = field(default_factory=dict)  # (db, name, type)
    proxies: dict[Account_, set[tuple[str, str, bool]]] = field(default_factory=dict)  # may proxy as (user, host, grant)
    default_roles: dict[Account_, set[tuple[str, str]]] = field(default_factory=dict)
    mandatory_roles: str = ""  # MySQL 8: roles every account holds
    current_user: Account_ | None = None  # the account inspect ran as (the admin): never planned for change
    definers: list[tuple[str, str, str, Account_]] = field(default_factory=list)  # (schema, name, kind, definer)
    variables: dict[str, bool] = field(default_factory=dict)  # live values: require_secure_transport, local_infile
    secrets: dict[str, SecretState] = field(default_factory=dict)
