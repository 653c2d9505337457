"""Frozen config models. Instance settings use the seed's Terraform variable names and defaults."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# MySQL 8 caps user names at 32 characters (MariaDB at 80): we hold every flavor to the smaller limit.
MAX_USER_NAME = 32
MAX_DATABASE_NAME = 64
# Rotation (a later capability) alternates between `<user>` and `<user><ROTATION_SUFFIX>`;
# names are sized now so that rotation never needs a rename.
ROTATION_SUFFIX = "_alt"
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

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Alarms(BaseModel):
    """The seed's six CloudWatch alarm thresholds (plus the seed's failed-login alarm)."""

    model_config = _STRICT
    cpu_utilization_threshold: float = 80
    free_storage_space_threshold: int = 5 * 1024**3
    freeable_memory_threshold: int = 256 * 1024**2
    database_connections_threshold: int = 180
    read_latency_threshold: float = 0.1
    write_latency_threshold: float = 0.1
    failed_login_threshold: int = 10


class Instance(BaseModel):
    """The shared instance. Field names and defaults follow the seed's Terraform variables."""

    model_config = _STRICT
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)
    aws_region: str = "ap-northeast-2"
    mysql_version: str = "8.0.35"
    instance_class: str = "db.t4g.small"
    allocated_storage: int = Field(default=30, ge=20, le=65536)
    max_allocated_storage: int = Field(default=200, ge=20, le=65536)
    storage_type: Literal["gp3", "gp2", "io1", "io2"] = "gp3"
    database_name: str = "shared_db"
    master_username: str = "admin"
    vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()
    allowed_security_group_ids: tuple[str, ...] = ()
    allowed_cidr_blocks: tuple[str, ...] = ()
    multi_az: bool = True
    backup_retention_period: int = Field(default=14, ge=0, le=35)
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "Mon:04:00-Mon:05:00"
    # The seed's parameter group; `require_secure_transport` is always forced on.
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # Connections kept back for the master user, operators and monitoring (the seed alarms at 180 of 200).
    connection_reserve: int = Field(default=20, ge=1)
    alarms: Alarms = Field(default_factory=Alarms)

    @field_validator("master_username")
    @classmethod
    def _master_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,15}", v):
            raise ValueError("must be 1-16 letters, digits or _ starting with a letter (RDS rule); e.g. admin")
        return v

    @field_validator("parameters")
    @classmethod
    def _params(cls, v: dict) -> dict:
        for name in v:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"parameter name {name!r} must be a server variable name such as max_connections")
        mc = v.get("max_connections")
        if mc is not None and (not isinstance(mc, int) or isinstance(mc, bool) or not 10 <= mc <= 100000):
            raise ValueError("max_connections must be a whole number between 10 and 100000")
        return v

    @model_validator(mode="after")
    def _storage(self) -> "Instance":
        if self.max_allocated_storage < self.allocated_storage:
            raise ValueError(
                f"max_allocated_storage ({self.max_allocated_storage}) must be >= allocated_storage "
                f"({self.allocated_storage})"
            )
        return self

    @property
    def max_connections(self) -> int:
        return int(self.parameters.get("max_connections", 200))


class Tenant(BaseModel):
    """One service: its own database, an app account and optionally a read-only account."""

    model_config = _STRICT
    max_connections: int = Field(default=10, ge=1, le=100000)
    readonly: bool = False
    # Defaults to a quarter of the app limit (at least 1): analytics should not crowd out the service.
    readonly_max_connections: int | None = Field(default=None, ge=1, le=100000)

    @property
    def readonly_limit(self) -> int:
        if self.readonly_max_connections is not None:
            return self.readonly_max_connections
        return max(1, self.max_connections // 4)

    @property
    def connection_budget(self) -> int:
        return self.max_connections + (self.readonly_limit if self.readonly else 0)


class Config(BaseModel):
    """The whole file. `path` is where it was read from (state lives in `.shared-mysql/` beside it)."""

    model_config = _STRICT
    environment: str = "prod"
    identifier: str = "shared-mysql"
    target: Literal["local", "server", "aws"] = "local"
    instance: Instance = Field(default_factory=Instance)
    tenants: dict[str, Tenant] = Field(default_factory=dict)

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

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if v != "local":
            raise ValueError(f"target {v!r} is not implemented yet; use target: local")
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
    def master_secret_name(self) -> str:
        return f"{self.environment}-{self.identifier}-master-password"


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
