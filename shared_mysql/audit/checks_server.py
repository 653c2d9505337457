"""Server checks: one snapshot (tenants' inspect reads + 3 queries, constant whatever the number of accounts), then
pure functions over it. The server's own accounts, RDS's (`rdsadmin`...) and the master are recognised, not flagged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..sql.accounts import PASSWORD_PLUGINS, PROTECTED_NAMES, RDS_ACCOUNTS, SERVER_ACCOUNTS, SOCKET_PLUGINS
from ..sql.quoting import as_text, db_pattern_matches, escape_db_pattern
from ..tenants.model import SYSTEM_DATABASES
from . import Fail, check

AUDIT_VARIABLES = ("require_secure_transport", "local_infile", "tls_version", "slow_query_log", "max_connections",
                   "server_audit_logging", "server_audit_events", "server_audit_incl_users",
                   "server_audit_excl_users", "version")
Q_VARIABLES = ("SHOW GLOBAL VARIABLES WHERE Variable_name IN ("
               + ", ".join(f"'{v}'" for v in AUDIT_VARIABLES) + ")")
Q_PLUGINS = ("SELECT PLUGIN_NAME, PLUGIN_STATUS FROM information_schema.PLUGINS "
             "WHERE PLUGIN_NAME IN ('SERVER_AUDIT', 'audit_log')")
Q_STATUS = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Ssl_server_not_after', 'Ssl_server_not_before')"
AUDIT_QUERIES = 3  # on top of inspect's

# Global privileges that hand over the server (CIS MySQL 5.2-5.8); any other *.* privilege still reaches every
# tenant's data.
DANGEROUS = frozenset({"SUPER", "FILE", "PROCESS", "SHUTDOWN", "CREATE USER", "RELOAD", "GRANT OPTION",
                       "REPLICATION SLAVE", "REPLICATION CLIENT", "BINLOG MONITOR", "BINLOG ADMIN", "BINLOG REPLAY",
                       "REPLICATION MASTER ADMIN", "REPLICATION SLAVE ADMIN", "SLAVE MONITOR", "CONNECTION ADMIN",
                       "SYSTEM_USER", "SYSTEM_VARIABLES_ADMIN", "ROLE_ADMIN", "ALL PRIVILEGES"})
REQUIRED_AUDIT_EVENTS = ("CONNECT", "QUERY_DDL", "QUERY_DCL")


@dataclass
class ServerSnapshot:
    flavor: object
    actual: object  # tenants.model.Actual
    config: object
    desired: object  # tenants.model.Desired
    variables: dict[str, str] = field(default_factory=dict)  # lower-case names
    plugins: dict[str, str] = field(default_factory=dict)  # upper-case name -> status
    status: dict[str, str] = field(default_factory=dict)
    ages: dict[str, float | None] = field(default_factory=dict)  # secret name -> days since rotated / written
    now: float = 0.0

    # -- who is who ---------------------------------------------------------------------------------------------
    @property
    def admins(self) -> frozenset[tuple[str, str]]:
        """The master account exactly: its name(s) on '%' (as RDS and shared-mysql create it), and the account this
        audit logs in as. The same name on another host is just another account."""
        keys = {(n, "%") for n in self.desired.admin_users}
        if self.actual.current_user:
            keys.add(tuple(self.actual.current_user))
        return frozenset(keys)

    def is_system(self, user: str, host: str) -> bool:
        """The server's own accounts where the server creates them (localhost), and RDS's own on an RDS target.
        The same names on another host, or on a server that is not RDS, are ordinary accounts. PUBLIC is not
        recognised: what is granted to it, every account holds."""
        if user in SERVER_ACCOUNTS:
            return host == "localhost"
        if user in RDS_ACCOUNTS:
            return self.config.target == "aws" and host in ("localhost", "%" if user == "rdsrepladmin" else "")
        return False

    def is_recognised(self, user: str, host: str) -> bool:
        """The server's own accounts, RDS's and the master: never flagged as unmanaged or over-privileged."""
        return self.is_system(user, host) or (user, host) in self.admins

    @property
    def managed(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(user, host) of every account the config manages, twins included -> (tenant, own database)."""
        out = {}
        for t in self.desired.tenants:
            for a in t.accounts:
                for n in a.names:
                    out[(n, a.host)] = (t.name, t.database)
        return out

    @property
    def tenant_databases(self) -> set[str]:
        return {t.database for t in self.desired.tenants}

    def var(self, name: str) -> str | None:
        v = self.variables.get(name)
        return None if v is None else as_text(v)


def server_snapshot(ex, config, desired, store, now: float | None = None) -> ServerSnapshot:
    from ..rotation import age_days
    from ..tenants.inspect import parse_server, read_server

    raw = read_server(ex)
    variables = {as_text(k).lower(): as_text(v) for k, v in ex.query(Q_VARIABLES)}
    plugins = {as_text(k).upper(): as_text(v) for k, v in ex.query(Q_PLUGINS)}
    status = {as_text(k): as_text(v) for k, v in ex.query(Q_STATUS)}
    actual = parse_server(ex.flavor, raw)
    now = time.time() if now is None else now
    ages: dict[str, float | None] = {}
    if store is not None:
        store.reload()
        names = store.names()
        wanted = [a.secret for t in desired.tenants for a in t.accounts if a.auth == "password"]
        for name in wanted + [config.master_secret_name]:
            ages[name] = age_days(store, name, now, names) if name in names else None
    return ServerSnapshot(ex.flavor, actual, config, desired, variables, plugins, status, ages, now)


def _acct(user: str, host: str) -> str:
    from ..sql.quoting import account

    if (user, host) == ("PUBLIC", ""):
        return "PUBLIC"
    try:
        return account(user, host)
    except ValueError:  # a NUL beside a backslash: no SQL form; shown escaped, never raised
        import json

        return f"{json.dumps(user)}@{json.dumps(host)}"


def _on(value: str | None) -> bool:
    return (value or "").upper() in ("1", "ON", "TRUE", "YES")


def _accounts(s: ServerSnapshot):
    """Accounts that can log in (not roles, not locked), with their record."""
    for key, u in s.actual.users.items():
        if not u.is_role and not u.locked:
            yield key, u


@check("SRV-ANONYMOUS", "server", "critical", "No anonymous accounts",
       "DROP USER ''@'<host>';  -- anyone could log in as it", cis="CIS MySQL 8.0 7.7")
def anonymous(s: ServerSnapshot):
    for (user, host), u in s.actual.users.items():
        if user == "" and not u.is_role:
            yield Fail(_acct(user, host), f"anonymous account {_acct(user, host)} exists: any user name logs in as it",
                       fix=f"DROP USER {_acct(user, host)};")


@check("SRV-NO-PASSWORD", "server", "critical", "Every account has a password",
       "ALTER USER '<user>'@'<host>' IDENTIFIED BY '<strong password>';  or DROP USER it",
       cis="CIS MySQL 8.0 7.3")
def no_password(s: ServerSnapshot):
    for (user, host), u in _accounts(s):
        if (u.plugin in PASSWORD_PLUGINS and not u.auth_string) or u.other_empty:
            yield Fail(_acct(user, host), f"{_acct(user, host)} logs in without a password (plugin "
                                          f"{u.plugin or 'default'}, empty authentication string)",
                       fix=f"DROP USER {_acct(user, host)};  (or ALTER USER {_acct(user, host)} IDENTIFIED BY "
                           "'<strong password>';)")


@check("SRV-WILDCARD-HOST", "server", "high", "Privileged accounts do not log in from wildcard hosts",
       "RENAME USER '<user>'@'%' TO '<user>'@'<the operator network>';  (or REVOKE the global privileges)",
       cis="CIS MySQL 8.0 7.6")
def wildcard_host(s: ServerSnapshot):
    for (user, host), u in _accounts(s):
        if s.is_recognised(user, host) or not ("%" in host or "_" in host):
            continue
        privs = s.actual.global_privs.get((user, host), set()) - {"USAGE"}
        if privs:
            yield Fail(_acct(user, host), f"{_acct(user, host)} holds {', '.join(sorted(privs)[:5])} ON *.* and logs "
                                          f"in from any host matching '{host}'")


@check("SRV-GLOBAL-PRIVILEGES", "server", "critical", "Only the admin holds server-wide privileges",
       "REVOKE <privileges> ON *.* FROM '<user>'@'<host>';  (SUPER, FILE, PROCESS, SHUTDOWN, CREATE USER, RELOAD, "
       "GRANT OPTION and replication privileges belong to the master only)",
       cis="CIS MySQL 8.0 5.1-5.8")
def global_privileges(s: ServerSnapshot):
    for (user, host), privs in sorted(s.actual.global_privs.items()):
        privs = set(privs) - {"USAGE"}
        if not privs or s.is_recognised(user, host):
            continue
        bad = sorted(privs & DANGEROUS)
        sev = "critical" if bad or (user, host) == ("PUBLIC", "") else "high"
        shown = ", ".join((bad or sorted(privs))[:6]) + (" ..." if len(privs) > 6 else "")
        yield Fail(_acct(user, host), f"{_acct(user, host)} holds {shown} ON *.* (every tenant's data"
                                      f"{' and the server itself' if bad else ''})", sev,
                   fix="shared-mysql apply" if (user, host) in s.managed else
                   f"REVOKE ALL PRIVILEGES ON *.* FROM {_acct(user, host)};  "
                   f"REVOKE GRANT OPTION ON *.* FROM {_acct(user, host)};")


@check("SRV-TENANT-SCOPE", "server", "critical", "Tenant accounts reach their own database only",
       "shared-mysql apply  (revokes what reaches beyond the tenant's database; escaped grants: "
       "GRANT ... ON `orders\\_db`.* instead of `orders_db`.*)",
       cis="CIS MySQL 8.0 5.9")
def tenant_scope(s: ServerSnapshot):
    a = s.actual
    for key, (tenant, own) in sorted(s.managed.items()):
        if key not in a.users:
            continue
        who = _acct(*key)
        privs = a.global_privs.get(key, set()) - {"USAGE"}
        if privs:
            yield Fail(who, f"{who} (tenant {tenant}) holds {', '.join(sorted(privs)[:6])} ON *.*")
        for pattern in sorted(a.db_privs.get(key, {})):
            if pattern == escape_db_pattern(own):
                continue
            if db_pattern_matches(pattern, own):
                yield Fail(who, f"{who} (tenant {tenant}) is granted on `{pattern}`.*, an unescaped wildcard "
                                f"pattern: it also matches other databases (e.g. {own.replace('_', 'X', 1)})")
            else:
                yield Fail(who, f"{who} (tenant {tenant}) is granted on `{pattern}`.*, outside {own}")
        for (db, table) in sorted(a.table_privs.get(key, {})):
            if db != own:
                yield Fail(who, f"{who} (tenant {tenant}) is granted on {db}.{table}, outside {own}")
        for (db, table, column) in sorted(a.column_privs.get(key, {})):
            if db != own:
                yield Fail(who, f"{who} (tenant {tenant}) is granted on {db}.{table}({column}), outside {own}")
        for (db, name, kind) in sorted(a.routine_privs.get(key, {})):
            if db != own:
                yield Fail(who, f"{who} (tenant {tenant}) may run {kind.lower()} {db}.{name}, outside {own}")
        for role, role_host in sorted(a.role_grants.get(key, set())):
            yield Fail(who, f"{who} (tenant {tenant}) holds role {role}{'@' + role_host if role_host else ''}")
        for puser, phost, _ in sorted(a.proxies.get(key, set())):
            yield Fail(who, f"{who} (tenant {tenant}) may proxy as {_acct(puser, phost)}")


@check("SRV-ACCOUNT-TLS", "server", "high", "Accounts require TLS",
       "ALTER USER '<user>'@'<host>' REQUIRE SSL;  (tenant accounts: shared-mysql apply)",
       cis="CIS MySQL 8.0 8.2")
def account_tls(s: ServerSnapshot):
    for (user, host), u in _accounts(s):
        if s.is_system(user, host) or u.plugin in SOCKET_PLUGINS:
            continue  # the server's and RDS's own (socket/local), not ours to change
        if not u.ssl_type or u.ssl_type.upper() in ("", "NONE"):
            yield Fail(_acct(user, host), f"{_acct(user, host)} has no TLS requirement (REQUIRE NONE)",
                       fix="shared-mysql apply" if (user, host) in s.managed else
                       f"ALTER USER {_acct(user, host)} REQUIRE SSL;")


@check("SRV-SECURE-TRANSPORT", "server", "critical", "require_secure_transport is ON",
       "SET PERSIST require_secure_transport = ON;  (RDS: the parameter group; embedded: shared-mysql local up)",
       cis="CIS MySQL 8.0 8.1", checkov="CKV_AWS_382", prowler="rds_instance_transport_encrypted")
def secure_transport(s: ServerSnapshot):
    value = s.var("require_secure_transport")
    on = _on(value) if value is not None else s.actual.variables.get("require_secure_transport", False)
    if not on:
        yield Fail("require_secure_transport", "require_secure_transport is OFF: logins without TLS are accepted")


@check("SRV-TLS-VERSION", "server", "high", "Only TLS 1.2 or newer is accepted",
       "tls_version = TLSv1.2,TLSv1.3  (my.cnf / the parameter group; needs a restart)", cis="CIS MySQL 8.0 8.1")
def tls_version(s: ServerSnapshot):
    value = s.var("tls_version")
    if value is None:
        return
    old = [v for v in (p.strip() for p in value.split(",")) if v in ("TLSv1", "TLSv1.0", "TLSv1.1", "SSLv3")]
    if old:
        yield Fail("tls_version", f"tls_version accepts {', '.join(old)} ({value})")


@check("SRV-LOCAL-INFILE", "server", "high", "local_infile is OFF",
       "SET GLOBAL local_infile = OFF;  (and local_infile = 0 in my.cnf / the parameter group)",
       cis="CIS MySQL 8.0 4.4")
def local_infile(s: ServerSnapshot):
    value = s.var("local_infile")
    on = _on(value) if value is not None else s.actual.variables.get("local_infile", False)
    if on:
        yield Fail("local_infile", "local_infile is ON: LOAD DATA LOCAL lets the server read clients' files")


@check("SRV-TEST-DATABASE", "server", "medium", "No test database",
       "DROP DATABASE test;  DELETE FROM mysql.db WHERE Db LIKE 'test%';  FLUSH PRIVILEGES;",
       cis="CIS MySQL 8.0 4.2")
def test_database(s: ServerSnapshot):
    for name in sorted(s.actual.databases):
        if name in s.tenant_databases:
            continue  # a tenant named test_something owns test_something_db
        if name == "test" or name.startswith("test_"):
            yield Fail(f"database {name}", f"database {name} exists (example/test databases are open to everyone "
                                           "on default installs)", fix=f"DROP DATABASE `{name}`;")
    for (user, host), dbs in sorted(s.actual.db_privs.items()):
        for pattern in dbs:
            if pattern in ("test", "test\\_%", "test_%") and user == "":
                yield Fail(f"grant {pattern}", f"anonymous grant on `{pattern}`.* (the default install's test "
                                               "databases)")


@check("SRV-AUDIT-LOG", "server", "high", "The audit plugin logs CONNECT, QUERY_DDL and QUERY_DCL",
       "INSTALL SONAME 'server_audit'; SET GLOBAL server_audit_events = 'CONNECT,QUERY_DDL,QUERY_DCL'; "
       "SET GLOBAL server_audit_logging = ON;  (RDS: the MARIADB_AUDIT_PLUGIN option group)",
       cis="CIS MySQL 8.0 6.4", prowler="rds_instance_integration_cloudwatch_logs")
def audit_log(s: ServerSnapshot):
    status = s.plugins.get("SERVER_AUDIT")
    if status is None:
        yield Fail("server_audit", "the audit plugin (server_audit) is not installed: logins and GRANT/REVOKE are "
                                   "not recorded")
        return
    if status.upper() != "ACTIVE":
        yield Fail("server_audit", f"the audit plugin is {status}, not ACTIVE")
    if not _on(s.var("server_audit_logging")):
        yield Fail("server_audit_logging", "server_audit_logging is OFF")
    events = {e.strip().upper() for e in (s.var("server_audit_events") or "").split(",") if e.strip()}
    if "QUERY" in events:  # every statement: DDL and DCL included
        events |= {"QUERY_DDL", "QUERY_DCL"}
    missing = [e for e in REQUIRED_AUDIT_EVENTS if e not in events]
    incl, excl = (s.var("server_audit_incl_users") or "").strip(), (s.var("server_audit_excl_users") or "").strip()
    if incl:
        yield Fail("server_audit_incl_users", f"server_audit_incl_users is '{incl}': only those accounts are logged",
                   fix="SET GLOBAL server_audit_incl_users = '';")
    if excl:
        yield Fail("server_audit_excl_users", f"server_audit_excl_users is '{excl}': those accounts are not logged",
                   fix="SET GLOBAL server_audit_excl_users = '';")
    if missing:
        yield Fail("server_audit_events", f"server_audit_events is '{s.var('server_audit_events') or ''}': "
                                          f"{', '.join(missing)} not logged")


@check("SRV-SLOW-LOG", "server", "low", "The slow query log is on",
       "SET GLOBAL slow_query_log = ON;  (the seed's parameter group: slow_query_log = 1, long_query_time = 2)",
       cis="CIS MySQL 8.0 6.1", checkov="CKV_AWS_129")
def slow_log(s: ServerSnapshot):
    value = s.var("slow_query_log")
    if value is not None and not _on(value):
        yield Fail("slow_query_log", "slow_query_log is OFF: slow tenants cannot be found")


def _reach(s: ServerSnapshot, key) -> tuple[list[str], list[str]]:
    """(server-wide privileges or their equivalent, tenant databases reached) of an account, through the roles it
    holds too (one level: a role granted to a role is rare and the role itself is audited). Write access to the
    `mysql` schema is server-wide: it can rewrite the grant tables. PROXY as the admin is the admin's reach."""
    a = s.actual
    keys = [key] + sorted((r, h) for r, h in a.role_grants.get(key, set()))
    glob: set[str] = set()
    reached: set[str] = set()
    dbs = s.tenant_databases
    for k in keys:
        glob |= a.global_privs.get(k, set()) - {"USAGE"}
        for pattern, privs in a.db_privs.get(k, {}).items():
            if db_pattern_matches(pattern, "mysql") and privs - {"SELECT", "SHOW VIEW"}:
                glob.add(f"{'/'.join(sorted(privs)[:3])} ON mysql.* (the grant tables)")
            reached |= {d for d in dbs if db_pattern_matches(pattern, d)}
        for (db, table), privs in a.table_privs.get(k, {}).items():
            if db == "mysql" and privs - {"SELECT"}:
                glob.add(f"{'/'.join(sorted(privs)[:3])} ON mysql.{table} (a grant table)")
        for priv_map in (a.table_privs, a.column_privs, a.routine_privs):
            reached |= {x[0] for x in priv_map.get(k, {}) if x[0] in dbs}
        for puser, phost, _ in a.proxies.get(k, set()):
            if (puser, phost) in s.admins or s.is_system(puser, phost):
                glob.add(f"PROXY as {_acct(puser, phost)}")
    return sorted(glob), sorted(reached)


@check("SRV-UNMANAGED-ACCOUNT", "server", "medium", "Every account is managed by the config",
       "DROP USER '<user>'@'<host>';  or add the service as a tenant in shared-mysql.yaml",
       cis="CIS MySQL 8.0 5.1")
def unmanaged_account(s: ServerSnapshot):
    managed = s.managed
    a = s.actual
    keys = set(a.users) | set(a.global_privs) | set(a.db_privs) | set(a.table_privs) | set(a.column_privs) | \
        set(a.routine_privs) | set(a.proxies) | set(a.role_grants)  # PUBLIC may hold grants without a row
    for key in sorted(keys):
        user, host = key
        u = a.users.get(key)
        if key in managed or s.is_recognised(user, host) or user == "" or \
                (user == "root" and host == "localhost" and u is not None and u.plugin in SOCKET_PLUGINS):
            continue  # anonymous accounts have their own check; root by socket is the OS administrator's
        public = key == ("PUBLIC", "")
        glob, reached = _reach(s, key)
        if public:
            who, what, drop = "PUBLIC", "PUBLIC (what every account holds)", "REVOKE ALL PRIVILEGES, GRANT OPTION " \
                                                                            "FROM PUBLIC;"
            if not glob and not reached:
                continue  # PUBLIC itself is the server's; only what it holds matters
        else:
            role = u is not None and u.is_role
            who = _acct(user, host)
            what = f"{'role' if role else 'account'} {who} is not in the config and"
            drop = f"DROP {'ROLE ' + user if role else 'USER ' + who};"
        if glob:
            yield Fail(who, f"{what} holds {', '.join(glob[:6])} ON *.*", "critical", fix=drop)
        elif reached:
            yield Fail(who, f"{what} reaches tenant data: {', '.join(reached[:6])}",
                       "critical" if public else "high", fix=drop)
        else:
            yield Fail(who, f"{what} holds nothing{' (locked)' if u is not None and u.locked else ''}",
                       "low" if u is not None and u.locked else None, fix=drop + "  (or add its service as a tenant)")


@check("SRV-UNMANAGED-DATABASE", "server", "low", "Every database belongs to a tenant",
       "add the owning service as a tenant, or DROP DATABASE it once its data is safe elsewhere",
       cis="CIS MySQL 8.0 4.2")
def unmanaged_database(s: ServerSnapshot):
    known = s.tenant_databases | set(SYSTEM_DATABASES) | {s.config.instance.database_name}
    for name in sorted(s.actual.databases):
        if name not in known and name != "test" and not name.startswith("test_"):
            yield Fail(f"database {name}", f"database {name} belongs to no tenant in the config")


@check("SRV-CONNECTION-LIMIT", "server", "medium", "Tenant accounts have a connection limit",
       "shared-mysql apply  (sets MAX_USER_CONNECTIONS from tenants.<name>.max_connections)",
       cis="CIS MySQL 8.0 8.4")
def connection_limit(s: ServerSnapshot):
    for key, (tenant, _) in sorted(s.managed.items()):
        u = s.actual.users.get(key)
        if u is not None and not u.is_role and u.max_connections == 0:
            yield Fail(_acct(*key), f"{_acct(*key)} (tenant {tenant}) has no MAX_USER_CONNECTIONS: one service can "
                                    "take every connection")


@check("SRV-CONNECTION-BUDGET", "server", "medium", "Tenant limits fit in max_connections minus the reserve",
       "lower tenants' max_connections in shared-mysql.yaml and apply, or raise max_connections",
       cis="CIS MySQL 8.0 8.3")
def connection_budget(s: ServerSnapshot):
    try:
        limit = int(s.var("max_connections") or s.config.instance.max_connections)
    except ValueError:
        limit = s.config.instance.max_connections
    reserve = s.config.instance.connection_reserve
    used = 0
    for t in s.desired.tenants:
        for a in t.accounts:  # twins: the larger of the two (the idle one is held to 1 after its grace)
            limits = [s.actual.users[(n, a.host)].max_connections for n in a.names if (n, a.host) in s.actual.users]
            used += max(limits, default=0)
    if used > limit - reserve:
        yield Fail("max_connections", f"tenant connection limits add up to {used}, more than max_connections "
                                      f"{limit} minus connection_reserve {reserve}")


@check("SRV-CREDENTIAL-AGE", "server", "medium", "Credentials were rotated within their period",
       "shared-mysql rotate --due  (and --master for the master credential)",
       checkov="CKV2_AWS_57", prowler="secretsmanager_secret_rotated_periodically")
def credential_age(s: ServerSnapshot):
    periods = {a.secret: a.rotation_days for t in s.desired.tenants for a in t.accounts if a.auth == "password"}
    periods[s.config.master_secret_name] = s.config.instance.secret_rotation_days
    for name, days in sorted(periods.items()):
        age = s.ages.get(name)
        if age is not None and age > days:
            yield Fail(f"secret {name}", f"secret {name} is {age:.0f} days old (rotation period {days} days)")


def _cert_time(value: str) -> datetime | None:
    for fmt in ("%b %d %H:%M:%S %Y %Z", "%b %d %H:%M:%S %Y GMT", "%b  %d %H:%M:%S %Y %Z"):
        try:
            return datetime.strptime(" ".join(value.split()), fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


@check("SRV-CERTIFICATE", "server", "high", "The server's certificate is valid for 30 more days",
       "embedded: shared-mysql local up renews it; RDS: modify the instance's CA (rds-ca-rsa2048-g1)",
       checkov="CKV_AWS_211", prowler="rds_instance_certificate_expiration")
def certificate(s: ServerSnapshot):
    value = (s.status.get("Ssl_server_not_after") or "").strip()
    if not value:
        yield Fail("server certificate", "the server presents no TLS certificate (Ssl_server_not_after is empty)")
        return
    when = _cert_time(value)
    if when is None:
        raise ValueError(f"cannot read Ssl_server_not_after {value!r}")
    days = (when.timestamp() - s.now) / 86400.0
    if days < 0:
        yield Fail("server certificate", f"the server's certificate expired on {value}", "critical")
    elif days < 30:
        yield Fail("server certificate", f"the server's certificate expires in {days:.0f} days ({value})")


@check("SRV-FOREIGN-DEFINER", "server", "high", "Stored objects in tenant databases run as that tenant",
       "DROP the object, or re-create it with DEFINER = the tenant's account (or SQL SECURITY INVOKER)",
       cis="CIS MySQL 8.0 5.9")
def foreign_definer(s: ServerSnapshot):
    owners: dict[str, set[str]] = {}
    for t in s.desired.tenants:
        owners[t.database] = {n for a in t.accounts for n in a.names}
    for schema, name, kind, (user, host) in s.actual.definers:
        if schema in owners and user not in owners[schema]:
            yield Fail(f"{kind.lower()} {schema}.{name}", f"{kind.lower()} {schema}.{name} runs as {_acct(user, host)}, "
                                                          "not as the tenant: it lends that account's rights")


__all__ = ["ServerSnapshot", "server_snapshot", "AUDIT_QUERIES", "PROTECTED_NAMES"]
