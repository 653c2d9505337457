"""The pure diff: build_plan(desired, actual) -> Plan. Actions carry data, never SQL or passwords.

Order: databases -> users -> grants -> revokes -> secrets -> drops. Destructive actions (drop user, drop database,
delete secret) are flagged so apply can refuse them before any SQL runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..sql.quoting import db_pattern_matches_exactly, escape_db_pattern, unescape_db_pattern
from .model import (CHARSET, COLLATION, SYSTEM_DATABASES, SYSTEM_USERS, Actual, Desired, DesiredAccount,
                    secret_name)

CREATE, UPDATE, DELETE = "create", "update", "delete"
# Every kind of action a plan can hold; a meta-test checks each has a renderer and a description.
ACTION_KINDS = ("create_database", "alter_database", "create_user", "alter_user", "set_password", "grant", "revoke",
                "revoke_role", "update_secret", "drop_user", "drop_database", "delete_secret", "put_export",
                "delete_export")


@dataclass(frozen=True)
class Action:
    kind: str  # one of ACTION_KINDS
    op: str  # create | update | delete
    object: str  # what a person reads: "database orders_db", "user orders_user@%"
    tenant: str | None = None
    detail: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def destructive(self) -> bool:
        return self.op == DELETE

    def to_json(self) -> dict:
        d = asdict(self)
        d["destructive"] = self.destructive
        return d


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    unmanaged_databases: tuple[str, ...] = ()
    unmanaged_users: tuple[str, ...] = ()
    unmanaged_exports: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.actions

    @property
    def destructive(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.destructive)

    def counts(self) -> dict[str, int]:
        c = {CREATE: 0, UPDATE: 0, DELETE: 0}
        for a in self.actions:
            c[a.op] += 1
        return c

    def to_json(self) -> dict:
        return {
            "changes": not self.empty,
            "summary": self.counts(),
            "actions": [a.to_json() for a in self.actions],
            "unmanaged": {"databases": list(self.unmanaged_databases), "users": list(self.unmanaged_users),
                          "exports": list(self.unmanaged_exports)},
        }


def _acct(user: str, host: str) -> str:
    return f"{user}@{host}"


def _canonical(privs: set[str], all_privs: frozenset[str]) -> set[str]:
    """`ALL PRIVILEGES` expands on the server; a superset of the flavor's list is exactly ALL."""
    if privs >= all_privs:
        return set(all_privs) | ({"GRANT OPTION"} & privs)
    return set(privs)


IAM_PLUGIN = "AWSAuthenticationPlugin"


def _password_action(acc: DesiredAccount, actual: Actual, expected_plugin: str, exists: bool) -> tuple[str, str] | None:
    """(password source, reason) when the account's password must be set, else None.

    Sources: "pending" finishes an interrupted change (the store already holds the new password);
    "current" re-applies the stored password; "new" generates one (stored as pending before any SQL runs).
    """
    s = actual.secrets.get(acc.secret)
    if acc.auth == "iam":
        # No password: the secret carries connection info; the server must use the IAM plugin.
        if not exists:
            return "none", "IAM authentication (AWSAuthenticationPlugin)"
        u = actual.users[acc.key]
        if u.plugin != IAM_PLUGIN:
            return "none", f"authentication plugin is {u.plugin or 'none'}, expected {IAM_PLUGIN}"
        if not (s and s.has_current) or s.has_pending:
            return "none", "connection info for an IAM account"
        return None
    if s and s.has_pending:
        return "pending", "finish an interrupted change: the store holds a pending password"
    if not exists:
        if s and s.has_current:
            return "current", "recreate with the stored password"
        return "new", "new account"
    if not (s and s.has_current):
        return "new", "no stored credential for this account"
    u = actual.users[acc.key]
    if u.plugin and u.plugin != expected_plugin:
        return "current", f"authentication plugin is {u.plugin}, expected {expected_plugin}"
    if expected_plugin == "mysql_native_password" and u.auth_string != s.current_hash:
        return "current", "password on the server does not match the stored secret"
    return None


def build_plan(desired: Desired, actual: Actual) -> Plan:
    flavor = desired.flavor
    expected_plugin = "mysql_native_password" if flavor.is_mariadb else "caching_sha2_password"
    dbs, users, grants, revokes, secrets, drops = [], [], [], [], [], []
    managed_dbs: set[str] = set()
    managed_users: set[tuple[str, str]] = set()
    wanted_secrets: set[str] = set()

    for t in desired.tenants:
        managed_dbs.add(t.database)
        have = actual.databases.get(t.database)
        if have is None:
            dbs.append(Action("create_database", CREATE, f"database {t.database}", t.name,
                              {"database": t.database, "charset": CHARSET, "collation": COLLATION}))
        elif have != (CHARSET, COLLATION):
            dbs.append(Action("alter_database", UPDATE, f"database {t.database}", t.name,
                              {"database": t.database, "charset": CHARSET, "collation": COLLATION,
                               "from": {"charset": have[0], "collation": have[1]}},
                              f"character set {have[0]}/{have[1]} -> {CHARSET}/{COLLATION}"))
        for acc in t.accounts:
            managed_users.add(acc.key)
            wanted_secrets.add(acc.secret)
            base = {"user": acc.user, "host": acc.host, "role": acc.role, "secret": acc.secret}
            u = actual.users.get(acc.key)
            pw = _password_action(acc, actual, expected_plugin, u is not None)
            if u is None:
                users.append(Action("create_user", CREATE, f"user {_acct(*acc.key)}", t.name,
                                    {**base, "max_connections": acc.max_connections, "require_ssl": acc.require_ssl,
                                     "password_source": pw[0]}, pw[1]))
            else:
                changes = {}
                if u.max_connections != acc.max_connections:
                    changes["max_connections"] = [u.max_connections, acc.max_connections]
                if (u.ssl_type == "ANY") != acc.require_ssl or u.ssl_type not in ("ANY", ""):
                    changes["require_ssl"] = [u.ssl_type or "NONE", "SSL" if acc.require_ssl else "NONE"]
                if changes:
                    users.append(Action("alter_user", UPDATE, f"user {_acct(*acc.key)}", t.name,
                                        {**base, "max_connections": acc.max_connections,
                                         "require_ssl": acc.require_ssl, "changes": changes},
                                        ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changes.items())))
                if pw:
                    users.append(Action("set_password", UPDATE, f"user {_acct(*acc.key)}", t.name,
                                        {**base, "password_source": pw[0]}, pw[1]))
            # Secret metadata (host, port, dbname, CA) follows the config; the password stays.
            s = actual.secrets.get(acc.secret)
            want_meta = desired.secret_meta[acc.secret]
            if s and s.has_current and not (pw and pw[0] in ("new", "pending", "none")) and s.meta != want_meta:
                diff = sorted(k for k in set(want_meta) | set(s.meta or {}) if (s.meta or {}).get(k) != want_meta.get(k))
                secrets.append(Action("update_secret", UPDATE, f"secret {acc.secret}", t.name,
                                      {**base, "fields": diff}, "connection info changed: " + ", ".join(diff)))
            grants_, revokes_ = _diff_grants(acc, actual, flavor.db_all_privileges, t.name)
            grants += grants_
            revokes += revokes_

    # Tenants or accounts that left the config: known to be ours through the store's tags.
    gone: dict[str, dict] = {}
    for name, s in sorted(actual.secrets.items()):
        if name in wanted_secrets:
            continue
        tenant, role = s.tags.get("tenant"), s.tags.get("role", "app")
        gone.setdefault(tenant, {})[role] = name
    desired_names = {t.name for t in desired.tenants}
    for tenant, roles in sorted(gone.items()):
        for role, sname in sorted(roles.items()):
            user = (actual.secrets[sname].meta or {}).get("username") or f"{tenant}_{'user' if role == 'app' else role}"
            key = (user, "%")
            if key in actual.users and key not in managed_users:
                drops.append(Action("drop_user", DELETE, f"user {_acct(*key)}", tenant,
                                    {"user": user, "host": "%", "role": role},
                                    "tenant removed from the config" if tenant not in desired_names
                                    else f"{role} account removed from the config"))
                managed_users.add(key)
        database = f"{tenant}_db"
        if tenant not in desired_names:
            if database in actual.databases:
                drops.append(Action("drop_database", DELETE, f"database {database}", tenant,
                                    {"database": database}, "tenant removed from the config; its data is lost"))
            managed_dbs.add(database)
        for role, sname in sorted(roles.items()):
            drops.append(Action("delete_secret", DELETE, f"secret {sname}", tenant, {"secret": sname, "role": role},
                                "credential of a removed account"))

    unmanaged_dbs = sorted(d for d in actual.databases if d not in managed_dbs and d not in SYSTEM_DATABASES)
    unmanaged_users = sorted(
        _acct(*k) for k in actual.users
        if k not in managed_users and k[0] not in SYSTEM_USERS and k[0] != desired.admin_user
    )
    return Plan(tuple(dbs + users + grants + revokes + secrets + drops), tuple(unmanaged_dbs), tuple(unmanaged_users))


def _diff_grants(acc: DesiredAccount, actual: Actual, all_privs: frozenset[str], tenant: str):
    grants, revokes = [], []
    obj = f"user {_acct(*acc.key)}"
    want_pattern = escape_db_pattern(acc.database)
    want = set(acc.privileges)
    have_db = actual.db_privs.get(acc.key, {})
    have = _canonical(set(have_db.get(want_pattern, set())), all_privs)
    missing = want - have
    if missing:
        grants.append(Action("grant", CREATE if not have else UPDATE, obj, tenant,
                             {"user": acc.user, "host": acc.host, "database": acc.database,
                              "privileges": sorted(want if missing >= want else missing)},
                             f"on {acc.database} (exact match, wildcards escaped)"))
    extra = have - want
    if extra:
        revokes.append(_revoke(acc, tenant, "database", want_pattern, extra, "privileges beyond the config"))
    for pattern, privs in sorted(have_db.items()):
        if pattern == want_pattern:
            continue
        if not db_pattern_matches_exactly(pattern) and unescape_db_pattern(pattern) == acc.database:
            why = f"unescaped wildcard grant on {pattern} also matches other databases"
        else:
            why = "grant outside the config"
        revokes.append(_revoke(acc, tenant, "database", pattern, _canonical(privs, all_privs), why))
    for (db, table), privs in sorted(actual.table_privs.get(acc.key, {}).items()):
        revokes.append(_revoke(acc, tenant, "table", f"{db}.{table}", privs, "table grant outside the config",
                               database=db, table=table))
    for (db, table, column), privs in sorted(actual.column_privs.get(acc.key, {}).items()):
        revokes.append(_revoke(acc, tenant, "column", f"{db}.{table}.{column}", privs,
                               "column grant outside the config", database=db, table=table, column=column))
    for role, role_host in sorted(actual.role_grants.get(acc.key, set())):
        name = f"{role}@{role_host}" if role_host else role
        revokes.append(Action("revoke_role", UPDATE, obj, tenant,
                              {"user": acc.user, "host": acc.host, "role_name": role, "role_host": role_host},
                              f"role {name} granted outside the config"))
    glob = actual.global_privs.get(acc.key, set())
    if glob:
        revokes.append(_revoke(acc, tenant, "global", "*.*", glob, "global privileges outside the config"))
    return grants, revokes


def _revoke(acc, tenant, scope_kind, scope, privs, why, **extra) -> Action:
    return Action("revoke", UPDATE, f"user {_acct(*acc.key)}", tenant,
                  {"user": acc.user, "host": acc.host, "scope_kind": scope_kind, "scope": scope,
                   "privileges": sorted(privs), **extra}, why)


__all__ = ["Action", "Plan", "build_plan", "secret_name"]
