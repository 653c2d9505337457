"""Frozen config models. Instance settings use the seed's Terraform variable names and defaults."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (AfterValidator, AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, Strict,
                      field_validator, model_validator)

from ..sql.accounts import PROTECTED_ACCOUNTS, ROTATION_SUFFIX
from .params import ALLOWED, check_parameter, control_character

# MySQL 8 caps user names at 32 characters (MariaDB at 80): we hold every flavor to the smaller limit.
MAX_USER_NAME = 32
MAX_DATABASE_NAME = 64
USER_SUFFIXES = {"app": "_user", "readonly": "_readonly"}
DATABASE_SUFFIX = "_db"
LONGEST_USER_SUFFIX = max(len(s) for s in USER_SUFFIXES.values()) + len(ROTATION_SUFFIX)
MAX_TENANT_NAME = MAX_USER_NAME - LONGEST_USER_SUFFIX

TENANT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# System schemas, accounts and names that would collide with what servers or this tool own.
RESERVED_NAMES = frozenset(
    {
        "mysql", "sys", "information_schema", "performance_schema", "mariadb", "test", "root",
        "admin", "rdsadmin", "innodb", "tmp", "lost_found", "shared_mysql", "all", "default",
        "database", "schema", "select", "insert", "update", "delete", "grant", "user", "table",
        "index", "key", "order", "group", "where", "from", "drop", "create", "alter", "null",
    }
)

# Accounts the servers (MySQL, MariaDB, RDS) keep for themselves; compared case-insensitively.
SYSTEM_ACCOUNTS = PROTECTED_ACCOUNTS

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _no_control(v: str) -> str:
    """Text that reaches files, commands and one-line errors: no control, format or line-separator characters."""
    ch = control_character(v)
    if ch is not None:
        raise ValueError(f"contains the control character {ch!r}; remove it")
    return v


def _exact_int(v: object) -> object:
    # Literal[0, 1, ...] compares by equality, so YAML true (== 1) and 7.0 (== 7) would pass as choices.
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is a YAML boolean, not a whole number")
    if isinstance(v, float):
        raise ValueError(f"{v!r} is not a whole number")
    return v


# Strict scalars, per field: YAML `true` is not an int, "20" is not an int, 1 is not a bool (an int is a fine
# float). Model-wide strict mode would also refuse the lists YAML gives for tuple fields.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), AfterValidator(_no_control)]
PiRetention = Annotated[Literal[7, 731], BeforeValidator(_exact_int)]
MonitoringInterval = Annotated[Literal[0, 1, 5, 10, 15, 30, 60], BeforeValidator(_exact_int)]

# RDS for MySQL does not offer Performance Insights on these classes.
NO_PERFORMANCE_INSIGHTS = frozenset({"db.t2.micro", "db.t2.small", "db.t3.micro", "db.t3.small", "db.t4g.micro",
                                     "db.t4g.small"})
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)


class Alarms(BaseModel):
    """The seed's six CloudWatch alarm thresholds (plus the seed's failed-login alarm)."""

    model_config = _STRICT
    cpu_utilization_threshold: Float = 80
    free_storage_space_threshold: Int = 5 * 1024**3
    freeable_memory_threshold: Int = 256 * 1024**2
    database_connections_threshold: Int = 180
    read_latency_threshold: Float = 0.1
    write_latency_threshold: Float = 0.1
    failed_login_threshold: Int = 10


class Instance(BaseModel):
    """The shared instance. Field names and defaults follow the seed's Terraform variables."""

    model_config = _STRICT
    # local: 127.0.0.1; server: required; aws: looked up from RDS (describe-db-instances) when not set.
    host: Text | None = None
    port: Int | None = Field(default=None, ge=1, le=65535)
    # The CA bundle that signed the server's certificate (for RDS, the regional bundle); relative to this file.
    ca_bundle: Text | None = None
    proxy_endpoint: Text | None = None
    aws_region: Text = "ap-northeast-2"
    mysql_version: Text = "8.0.35"
    instance_class: Text = "db.t4g.small"
    allocated_storage: Int = Field(default=30, ge=20, le=65536)
    max_allocated_storage: Int = Field(default=200, ge=20, le=65536)
    storage_type: Literal["gp3", "gp2", "io1", "io2"] = "gp3"
    database_name: Text = "shared_db"
    master_username: Text = "admin"
    vpc_id: Text | None = None
    private_subnet_ids: tuple[Text, ...] = ()
    allowed_security_group_ids: tuple[Text, ...] = ()
    allowed_cidr_blocks: tuple[Text, ...] = ()
    multi_az: Bool = True
    backup_retention_period: Int = Field(default=14, ge=0, le=35)
    backup_window: Text = "03:00-04:00"
    maintenance_window: Text = "Mon:04:00-Mon:05:00"
    # The seed's parameter group: allowlisted names with typed values only (params.py); what shared-mysql forces
    # (require_secure_transport, the audit plugin, paths, the listener) cannot be overridden.
    parameters: dict[str, bool | int | float | str] = Field(default_factory=dict)
    # Connections kept back for the master user, operators and monitoring (the seed alarms at 180 of 200).
    connection_reserve: Int = Field(default=20, ge=1)
    alarms: Alarms = Field(default_factory=Alarms)
    # -- the rest of the seed's module (used by `shared-mysql infra`) -----------------------------------------
    availability_zones: tuple[Text, ...] = ()  # default: <region>a, <region>b, ... one per private subnet
    kms_key_id: Text | None = None  # RDS storage + Performance Insights key ARN; default: read from SSM below
    rds_kms_key_parameter: Text = "/shared/kms/rds-encryption-key-arn"
    secrets_kms_key_parameter: Text = "/shared/kms/secrets-manager-key-arn"
    performance_insights_enabled: Bool | None = None  # default: on where the instance class supports it
    performance_insights_retention_period: PiRetention = 7  # the free tier, or two years
    monitoring_interval: MonitoringInterval = 60
    deletion_protection: Bool = True
    skip_final_snapshot: Bool = False
    auto_minor_version_upgrade: Bool = True
    enabled_cloudwatch_logs_exports: tuple[Literal["error", "general", "slowquery", "audit"], ...] = (
        "error", "general", "slowquery", "audit")
    cloudwatch_log_retention_days: Int = 30
    alarm_sns_topic_arn: Text | None = None  # default: the stack creates an encrypted topic
    secret_rotation_days: Int = Field(default=30, ge=1, le=365)
    enable_rds_proxy: Bool = False
    proxy_max_connections_percent: Int = Field(default=100, ge=1, le=100)
    proxy_max_idle_connections_percent: Int = Field(default=50, ge=0, le=100)
    proxy_connection_borrow_timeout: Int = Field(default=120, ge=1, le=3600)
    create_read_replica: Bool = False
    replica_instance_class: Text | None = None
    tags: dict[Text, Text] = Field(default_factory=dict)

    @field_validator("master_username")
    @classmethod
    def _master_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,15}", v):
            raise ValueError("must be 1-16 letters, digits or _ starting with a letter (RDS rule); e.g. admin")
        if v.lower() in {a.lower() for a in SYSTEM_ACCOUNTS}:
            raise ValueError(f"{v!r} is an account the server keeps for itself ({', '.join(SYSTEM_ACCOUNTS)}); "
                             "choose another, e.g. admin")
        return v

    @field_validator("parameters", mode="before")
    @classmethod
    def _params(cls, v: object) -> object:
        # Before type validation, so every name and value gets check_parameter's one line naming the key.
        if isinstance(v, dict):
            for name, value in v.items():
                check_parameter(name, value)
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not is_host(v):
            raise ValueError(f"{v!r} is not a host name or IP address; e.g. db.internal.example.com or 10.0.1.5")
        return v

    @field_validator("database_name")
    @classmethod
    def _database_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", v):
            raise ValueError(f"{v!r}: use 1-64 letters, digits or _ starting with a letter (RDS rule); e.g. shared_db")
        return v

    @model_validator(mode="after")
    def _storage(self) -> "Instance":
        if self.max_allocated_storage < self.allocated_storage:
            raise ValueError(
                f"max_allocated_storage ({self.max_allocated_storage}) must be >= allocated_storage "
                f"({self.allocated_storage})"
            )
        return self

    @field_validator("instance_class", "replica_instance_class")
    @classmethod
    def _class(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"db\.[a-z0-9]+\.[a-z0-9]+", v):
            raise ValueError(f"{v!r} is not an RDS instance class; e.g. db.t4g.small or db.r6g.large")
        return v

    @field_validator("mysql_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"8\.(0|4)\.\d+", v):
            raise ValueError(f"{v!r}: give an exact RDS MySQL 8.0/8.4 engine version, e.g. 8.0.35")
        return v

    @field_validator("allowed_cidr_blocks")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for c in v:
            try:
                net = ipaddress.ip_network(c, strict=True)
            except ValueError:
                raise ValueError(f"{c!r} is not a CIDR block such as 10.0.0.0/16") from None
            if net.prefixlen == 0:
                raise ValueError(f"{c} opens MySQL to the whole internet (the seed's checklist forbids it); "
                                 "allow the application's security group or VPC CIDR instead")
        return v

    @field_validator("cloudwatch_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            raise ValueError(f"{v} is not a CloudWatch Logs retention; use one of "
                             f"{', '.join(map(str, LOG_RETENTION_DAYS))} (never-expiring groups are not allowed)")
        return v

    @model_validator(mode="after")
    def _aws_rules(self) -> "Instance":
        from .windows import check_windows

        check_windows(self.backup_window, self.maintenance_window)
        if self.performance_insights_enabled and self.instance_class in NO_PERFORMANCE_INSIGHTS:
            raise ValueError(
                f"performance_insights_enabled: RDS MySQL has no Performance Insights on {self.instance_class}; "
                "use db.t4g.medium or larger, or set performance_insights_enabled: false"
            )
        if self.availability_zones and self.private_subnet_ids and \
                len(self.availability_zones) != len(self.private_subnet_ids):
            raise ValueError("availability_zones: give one zone per entry of private_subnet_ids, in the same order")
        return self

    @property
    def performance_insights(self) -> bool:
        if self.performance_insights_enabled is None:
            return self.instance_class not in NO_PERFORMANCE_INSIGHTS
        return self.performance_insights_enabled

    @property
    def max_connections(self) -> int:
        return int(self.parameters.get("max_connections", 200))


class Migrations(BaseModel):
    """`shared-mysql migrate`: Flyway-compatible migrations run as the tenant."""

    model_config = _STRICT
    table: Text | None = None  # the history table (Flyway's default flyway_schema_history; the seed uses schema_version)
    dir: Text | None = None  # the migrations directory (relative to the config's); --dir overrides it
    max_locking_rows: Int | None = Field(default=None, ge=0)  # the online-DDL check's threshold

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        # up to 58: Flyway names its index <table>_s_idx, which must fit MySQL's 64
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,57}", v):
            raise ValueError("must be a table name: letters, digits, _ or $ (up to 58, so Flyway's <table>_s_idx "
                             "fits), e.g. schema_version")
        return v


class Tenant(BaseModel):
    """One service: its own database, an app account and optionally a read-only account."""

    model_config = _STRICT
    # password: a stored random password; iam: RDS IAM database authentication (MySQL on RDS only).
    auth: Literal["password", "iam"] = "password"
    max_connections: Int = Field(default=10, ge=1, le=100000)
    readonly: Bool = False
    # Defaults to a quarter of the app limit (at least 1): analytics should not crowd out the service.
    readonly_max_connections: Int | None = Field(default=None, ge=1, le=100000)
    # How `rotate` changes passwords (README, "Credential rotation"): alternating twins <name>/<name>_alt (the
    # previous credential keeps logging in until the next rotation), dual-password (MySQL 8.0.14+: RETAIN CURRENT
    # PASSWORD), or single (one account; new logins with the old password fail from the change on).
    rotation: Literal["alternating", "dual-password", "single"] = "alternating"
    # `rotate --due` rotates credentials older than this (default: instance.secret_rotation_days, the seed's 30).
    rotation_days: Int | None = Field(default=None, ge=1, le=3650)
    # How long after a rotation the previous credential keeps the tenant's full connection limit (clients cache
    # secrets: shared_mysql.client for an hour); after it, the idle twin is held to 1 connection.
    rotation_grace_minutes: Int = Field(default=120, ge=0, le=10080)
    # `refresh` and `mask`: "table.column" -> rule (hash, email, fixed('v'), null, shuffle, truncate); see
    # masking/rules.py. Unset: this tenant holds data nobody declared safe to copy, so `refresh` refuses it;
    # `{}` declares that nothing needs masking.
    masking: dict[Text, Text] | None = None
    migrations: Migrations | None = None

    @field_validator("masking", mode="before")
    @classmethod
    def _yaml_null(cls, v):
        # `payments.card: null` is YAML's null value: read it as the rule null, as written.
        return {k: ("null" if x is None else x) for k, x in v.items()} if isinstance(v, dict) else v

    @field_validator("masking")
    @classmethod
    def _masking(cls, v: dict | None) -> dict | None:
        if v is not None:
            from ..masking.rules import RuleError, parse_rules

            try:
                parse_rules(v)
            except RuleError as exc:
                raise ValueError(str(exc)) from None
        return v

    @property
    def readonly_limit(self) -> int:
        if self.readonly_max_connections is not None:
            return self.readonly_max_connections
        return max(1, self.max_connections // 4)

    @property
    def connection_budget(self) -> int:
        return self.max_connections + (self.readonly_limit if self.readonly else 0)


class Aws(BaseModel):
    """boto3 settings. Unset values follow boto3's usual chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL...),
    and the region finally falls back to instance.aws_region."""

    model_config = _STRICT
    region: Text | None = None
    profile: Text | None = None
    endpoint_url: Text | None = None


# A Lambda function ARN (aws, aws-cn, aws-us-gov partitions), optionally with a version or alias.
LAMBDA_ARN = r"arn:aws(-cn|-us-gov)?:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?"


class Secrets(BaseModel):
    model_config = _STRICT
    backend: Literal["file", "aws"] | None = None  # default: aws for target aws, file otherwise
    kms_key_id: Text = "alias/secrets-manager"
    recovery_window_days: Int = Field(default=7, ge=7, le=30)
    # Secrets Manager rotates every tenant secret (password accounts) on its own, every rotation_days, through a
    # rotation function: the infra stack deploys it (in the VPC, least IAM) and exports its ARN to SSM as
    # {exports prefix}/rotation-function-arn; `apply` attaches the secrets to it. rotation_function_arn: another one.
    rotation_schedule: Bool = False
    rotation_function_arn: Text | None = None

    @field_validator("rotation_function_arn")
    @classmethod
    def _function_arn(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(LAMBDA_ARN, v):
            raise ValueError("must be a Lambda function ARN, e.g. arn:aws:lambda:ap-northeast-2:123456789012:"
                             "function:prod-shared-mysql-rotation")
        return v


class Exports(BaseModel):
    model_config = _STRICT
    backend: Literal["files", "ssm", "none"] | None = None  # default: ssm for target aws, files otherwise
    prefix: Text | None = None  # default: /shared/rds/{environment}

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or v.endswith("/") or "//" in v):
            raise ValueError("must start with / and not end with /, e.g. /shared/rds/prod")
        return v


class AuditIgnore(BaseModel):
    """A finding accepted on purpose: still reported (as suppressed, with the reason), never failing the run."""

    model_config = _STRICT
    id: Text  # a check id, e.g. SRV-UNMANAGED-ACCOUNT
    resource: Text = Field(default="*", min_length=1)  # the finding's resource; shell-style wildcards
    reason: Text

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.fullmatch(r"(SRV|CFG|AWS)-[A-Z0-9-]+", v):
            raise ValueError("must be a check id such as SRV-UNMANAGED-ACCOUNT (`shared-mysql audit --list` "
                             "shows them)")
        return v

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if len(v.strip()) < 10:
            raise ValueError("say why this finding is accepted (at least a few words): a suppression without a "
                             "reason is refused")
        return v


class Audit(BaseModel):
    model_config = _STRICT
    ignore: tuple[AuditIgnore, ...] = ()


class Backup(BaseModel):
    """Logical backups and the binlog archive of the local and server targets (`shared-mysql backup`)."""

    model_config = _STRICT
    dir: Text | None = None  # default: backups/ in the state dir; relative paths are from the config's directory
    workers: Int = Field(default=2, ge=1, le=32)  # dump and load sessions at once


class Config(BaseModel):
    """The whole file. `path` is where it was read from (state lives in `.shared-mysql/` beside it)."""

    model_config = _STRICT
    environment: Text = "prod"
    identifier: Text = "shared-mysql"
    target: Literal["local", "server", "aws"] = "local"
    instance: Instance = Field(default_factory=Instance)
    aws: Aws = Field(default_factory=Aws)
    secrets: Secrets = Field(default_factory=Secrets)
    exports: Exports = Field(default_factory=Exports)
    audit: Audit = Field(default_factory=Audit)
    backup: Backup = Field(default_factory=Backup)
    migrations: Migrations = Field(default_factory=Migrations)  # defaults for every tenant's migrations
    tenants: dict[Text, Tenant] = Field(default_factory=dict)

    @field_validator("environment")
    @classmethod
    def _env(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", v):
            raise ValueError("must be lowercase letters, digits or - (up to 20), e.g. prod, staging, dev")
        return v

    @field_validator("identifier")
    @classmethod
    def _ident(cls, v: str) -> str:
        # RDS DB instance identifier rules.
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", v) or v.endswith("-") or "--" in v:
            raise ValueError(
                "must be 1-63 lowercase letters, digits or hyphens, start with a letter, "
                "not end with a hyphen nor contain two consecutive hyphens (RDS rule)"
            )
        return v

    @field_validator("tenants", mode="before")
    @classmethod
    def _tenant_names(cls, v):
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError("must be a mapping of tenant name to settings, e.g. {orders: {max_connections: 20}}")
        out = {}
        for name, settings in v.items():
            check_tenant_name(name)
            out[name] = {} if settings is None else settings
        return out

    @model_validator(mode="after")
    def _target_settings(self) -> "Config":
        inst = self.instance
        if self.target == "server" and not inst.host:
            raise ValueError("instance.host: required for target server (the server's host name or address)")
        if self.target != "local" and not inst.ca_bundle:
            raise ValueError(
                f"instance.ca_bundle: required for target {self.target}: the CA bundle that signed the server's "
                "certificate (for RDS, the regional bundle such as ap-northeast-2-bundle.pem)"
            )
        if self.target == "local" and inst.host is not None and not is_loopback(inst.host):
            raise ValueError(
                f"instance.host: {inst.host} is not a loopback address; the embedded server (target local) is "
                "private to this machine: use 127.0.0.1 (the default), ::1 or localhost"
            )
        if self.secrets.rotation_function_arn and not self.secrets.rotation_schedule:
            raise ValueError("secrets.rotation_function_arn: set, but secrets.rotation_schedule is false, so nothing "
                             "uses it; turn the schedule on or remove the ARN")
        if self.secrets.rotation_schedule:
            if self.target != "aws":
                raise ValueError(f"secrets.rotation_schedule: the rotation function runs in the instance's VPC on AWS; "
                                 f"target {self.target} has none: run `shared-mysql rotate --due` from cron instead")
            region = self.aws.region or self.instance.aws_region
            arn = self.secrets.rotation_function_arn
            if arn and arn.split(":")[3] != region:
                raise ValueError(f"secrets.rotation_function_arn: the function is in {arn.split(':')[3]}, the secrets "
                                 f"in {region}; Secrets Manager invokes a function of its own region only")
            if self.secrets_backend != "aws":
                raise ValueError("secrets.rotation_schedule: Secrets Manager runs the schedule, so it needs "
                                 "secrets.backend aws; elsewhere run `shared-mysql rotate --due` from cron")
            for name, t in self.tenants.items():
                if t.rotation == "dual-password" and t.auth == "password":
                    raise ValueError(
                        f"tenants.{name}.rotation: dual-password is rotated by `shared-mysql rotate --due` (it must "
                        "DISCARD OLD PASSWORD after the grace), not by the scheduled function: use alternating, or "
                        "turn secrets.rotation_schedule off")
        if self.target == "local":
            for name, t in self.tenants.items():
                if t.auth == "iam":
                    raise ValueError(
                        f"tenants.{name}.auth: iam needs RDS MySQL (AWSAuthenticationPlugin); the local target "
                        "runs MariaDB: use auth: password, or target: aws"
                    )
        return self

    @model_validator(mode="after")
    def _accounts_and_flavor(self) -> "Config":
        problem = master_name_collision(self.instance.master_username, self.tenants)
        if problem:
            raise ValueError(f"instance.master_username: {problem}")
        if self.target == "aws":
            for name in self.instance.parameters:
                if ALLOWED[name].only == "mariadb":
                    raise ValueError(f"instance.parameters.{name}: a MariaDB parameter; RDS MySQL (target aws) "
                                     "does not have it: remove it")
        return self

    @model_validator(mode="after")
    def _budget(self) -> "Config":
        limit = self.instance.max_connections
        reserve = self.instance.connection_reserve
        used = sum(t.connection_budget for t in self.tenants.values())
        if used + reserve > limit:
            raise ValueError(
                f"tenant connection limits add up to {used} and, with connection_reserve {reserve}, exceed "
                f"instance.parameters.max_connections {limit}; lower tenants' max_connections or raise max_connections"
            )
        return self

    @property
    def port(self) -> int:
        if self.instance.port is not None:
            return self.instance.port
        return 13306 if self.target == "local" else 3306

    @property
    def host(self) -> str | None:
        return self.instance.host or ("127.0.0.1" if self.target == "local" else None)

    @property
    def db_instance_identifier(self) -> str:
        """The seed names the RDS instance `{environment}-{identifier}` (e.g. prod-shared-mysql)."""
        return f"{self.environment}-{self.identifier}"

    @property
    def master_secret_name(self) -> str:
        return f"{self.environment}-{self.identifier}-master-password"

    @property
    def connection_secret_name(self) -> str:
        return f"{self.environment}-{self.identifier}-connection"

    @property
    def secrets_backend(self) -> str:
        return self.secrets.backend or ("aws" if self.target == "aws" else "file")

    @property
    def exports_backend(self) -> str:
        return self.exports.backend or ("ssm" if self.target == "aws" else "files")

    @property
    def exports_prefix(self) -> str:
        return self.exports.prefix or f"/shared/rds/{self.environment}"


def _account_roles(tenant: str) -> dict[str, str]:
    """Every account name a tenant's namespace holds -> its role: app, readonly and their rotation twins."""
    names = {f"{tenant}{suffix}": role for role, suffix in USER_SUFFIXES.items()}
    return {**names, **{n + ROTATION_SUFFIX: f"{role} rotation" for n, role in names.items()}}


def master_name_collision(master: str, tenants) -> str | None:
    """Why `master` is, or would be once its tenant is added, an account shared-mysql derives; else None."""
    low = master.lower()
    for suffix in sorted({s + r for s in USER_SUFFIXES.values() for r in ("", ROTATION_SUFFIX)}, key=len):
        stem = low[:-len(suffix)]
        if not low.endswith(suffix) or not _possible_tenant(stem):
            continue
        role = _account_roles(stem)[low]
        if stem in tenants:
            return f"{master!r} is also the {role} account of tenant {stem!r}; choose another, e.g. admin"
        return (f"{master!r} is the {role} account tenant {stem!r} would get; choose a name no tenant derives "
                "(not <tenant>_user, <tenant>_readonly or their _alt twins), e.g. admin")
    return None


def _possible_tenant(name: str) -> bool:
    try:
        check_tenant_name(name)
    except ValueError:
        return False
    return True


def is_host(v: str) -> bool:
    """An IP literal, or an RFC 1123 host name whose last label is not all digits (so no malformed IPv4)."""
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        pass
    labels = v.split(".")
    return (len(v) <= 253 and not labels[-1].isdigit()
            and all(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", label) for label in labels))


def is_loopback(v: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: where the embedded server may listen."""
    if v.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(v).is_loopback
    except ValueError:
        return False


def check_tenant_name(name: object) -> None:
    """Raise ValueError naming the tenant and the fix when `name` cannot be a tenant name."""
    if not isinstance(name, str) or not TENANT_NAME_RE.fullmatch(name):
        raise ValueError(
            f"tenant name {name!r} is invalid: use lowercase ASCII letters, digits and _ , "
            "starting with a letter (no quotes, spaces or dashes), e.g. orders or order_history"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"tenant name {name!r} is reserved (system or SQL name); choose another, e.g. {name}_svc")
    if len(name) > MAX_TENANT_NAME:
        raise ValueError(
            f"tenant name {name!r} is {len(name)} characters; at most {MAX_TENANT_NAME} fit so that "
            f"'{name}_readonly{ROTATION_SUFFIX}' stays within MySQL's {MAX_USER_NAME}-character user names"
        )
