"""The pure diff: build_plan(desired, actual) -> Plan. Actions carry data, never SQL or passwords.

Order: databases -> users -> grants -> revokes -> secrets -> drops. Destructive actions (drop user, drop database,
delete secret) are flagged so apply can refuse them before any SQL runs.

Who can reach a tenant's data is asked of the whole server, not only of the tenant's own rows: grants to PUBLIC,
routine grants, proxies, roles (granted, default, mandatory), accounts with a tenant's user name on another host
(shadows) and anonymous accounts are drift, found and reverted. The master account, the account the plan was
inspected as, and the server's own accounts are never planned for any change, whatever the config or the secret
store's tags say; a drop needs the tags AND the names this config derives to agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..config.model import DATABASE_SUFFIX, ROTATION_SUFFIX, USER_SUFFIXES, check_tenant_name
from ..errors import ConfigError
from ..secrets import SCHEDULE_TAG
from ..sql.accounts import PASSWORD_PLUGINS, RDS_ACCOUNTS, SERVER_ACCOUNTS, SOCKET_PLUGINS
from ..sql.quoting import db_pattern_matches, db_pattern_matches_exactly, escape_db_pattern, unescape_db_pattern
from .model import (CHARSET, COLLATION, OWNED_SECRET_KEYS, PUBLIC, SYSTEM_DATABASES, SYSTEM_USERS, Actual, Desired,
                    DesiredAccount, secret_name)

CREATE, UPDATE, DELETE = "create", "update", "delete"
# Every kind of action a plan can hold; a meta-test checks each has a renderer and a description.
ACTION_KINDS = ("create_database", "alter_database", "create_user", "alter_user", "set_password", "grant", "revoke",
                "revoke_role", "revoke_proxy", "set_default_role", "clear_mandatory_roles", "drop_shadow",
                "update_secret", "drop_user", "drop_database", "delete_secret", "put_export", "delete_export",
                "proxy_auth_add", "proxy_auth_remove", "proxy_default_auth")


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
    ignored_secrets: tuple[str, ...] = ()  # tagged as ours, but the tags disagree with the names we derive
    exposures: tuple[str, ...] = ()  # reaches tenants' data but is a person's call (apply changes none of it)
    # Rotations killed half-way (secret -> the twin its pending password belongs to): `rotate` finishes them;
    # apply refuses until then, since planning that account could undo the rotation's password.
    interrupted: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.actions and not self.interrupted

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
                          "exports": list(self.unmanaged_exports),
                          "secrets": list(self.ignored_secrets)},
            "exposures": list(self.exposures),
            "interrupted_rotations": list(self.interrupted),
        }


def _schedule_action(acc, s, function: str | None, tenant: str) -> Action | None:
    """secrets.rotation_schedule: the secret rotates every rotation_days through `function`. Turned off, only the
    schedules apply attached (tagged) are taken off; one a user set up on their own is theirs."""
    if acc.auth != "password":
        return None
    have = s.schedule if s is not None else None
    base = {"secret": acc.secret, "role": acc.role}
    if function:
        want = (function, acc.rotation_days)
        if have != want:
            return Action("schedule_rotation", UPDATE if have else CREATE, f"secret {acc.secret}", tenant,
                          {**base, "function": function, "days": acc.rotation_days},
                          f"rotation schedule: every {acc.rotation_days} days by {function.rsplit(':', 1)[-1]}"
                          + (f" (was every {have[1]} days by {have[0].rsplit(':', 1)[-1]})" if have else ""))
        return None
    if have and s.tags.get(SCHEDULE_TAG):
        return Action("unschedule_rotation", UPDATE, f"secret {acc.secret}", tenant, base,
                      "rotation schedule off (secrets.rotation_schedule is false)")
    return None


def _acct(user: str, host: str) -> str:
    if (user, host) == PUBLIC:
        return "PUBLIC"
    # A name with edge spaces would look like another account: shown quoted ('sp_user '@127.0.0.1).
    return f"{user if user == user.strip() else repr(user)}@{host if host == host.strip() else repr(host)}"


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
        if u.plugin != IAM_PLUGIN or u.other_auth:
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
    if u.other_auth:
        return "current", f"also accepts {' or '.join(u.other_auth)} logins (IDENTIFIED VIA ... OR ...)"
    if expected_plugin == "mysql_native_password" and u.auth_string != s.current_hash:
        return "current", "password on the server does not match the stored secret"
    if u.expired:
        return "current", "password is expired (the service would get error 1820)"
    return None


def _user_changes(acc: DesiredAccount, u) -> dict:
    changes = {}
    if u.max_connections != acc.max_connections:
        changes["max_connections"] = [u.max_connections, acc.max_connections]
    if (u.ssl_type == "ANY") != acc.require_ssl or u.ssl_type not in ("ANY", "") or any(u.ssl_detail):
        changes["require_ssl"] = [u.ssl_type or "NONE", "SSL" if acc.require_ssl else "NONE"]
    if u.locked != acc.locked:  # a locked tenant account: the service would get error 4151
        changes["account_locked"] = ["LOCK" if u.locked else "UNLOCK", "LOCK" if acc.locked else "UNLOCK"]
    for k, v in sorted(u.limits.items()):
        changes[k] = [v, 0]
    if u.password_lifetime is not None:
        changes["password_lifetime"] = [u.password_lifetime, "DEFAULT"]
    return changes


def protected_users(desired: Desired, actual: Actual) -> frozenset[str]:
    """User names never planned for any change: the server's own, the master, the account we inspect as."""
    names = set(SYSTEM_USERS) | set(desired.admin_users)
    if actual.current_user:
        names.add(actual.current_user[0])
    return frozenset(names)


def active_user(acc: DesiredAccount, s) -> str:
    """The account the secret's current version names: one of the twins (alternating), else the account itself."""
    if acc.alt and s is not None and s.has_current and s.meta:
        user = s.meta.get("username")
        if user in (acc.user, acc.alt):
            return user
    return acc.user


def standby_account(acc: DesiredAccount, active: str, s, now: float) -> DesiredAccount:
    """The twin the secret does not name: the previous credential, which keeps logging in until the next rotation.
    It keeps the tenant's full connection limit for `grace_s` after a rotation (clients still hold the old secret
    in their caches), then 1: the tenant's budget is its limit, plus at most 1, once the grace has passed."""
    standby = acc.alt if active == acc.user else acc.user
    rotated = s.rotated_at if s is not None else None
    in_grace = rotated is not None and now - rotated < acc.grace_s
    # Nobody holds a password for a twin the previous version does not name (never rotated, or pruned): it is
    # locked, so a password set on it by hand opens nothing. A rotation unlocks it as it becomes current.
    held = s is not None and s.previous_user == standby and s.previous_hash is not None
    return acc.as_user(standby, acc.max_connections if in_grace else 1,
                       locked=acc.locked or not (held or in_grace))


def _standby_actions(sb: DesiredAccount, s, actual: Actual, expected_plugin: str, tenant: str) -> list[Action]:
    base = {"user": sb.user, "host": sb.host, "role": sb.role, "secret": sb.secret, "twin": "standby"}
    u = actual.users.get(sb.key)
    previous = s is not None and s.previous_user == sb.user and s.previous_hash is not None
    if u is None:
        # Re-created with the previous version's password while that names it (clients may hold it).
        return [Action("create_user", CREATE, f"user {_acct(*sb.key)}", tenant,
                       {**base, "max_connections": sb.max_connections, "require_ssl": sb.require_ssl,
                        "password_source": "previous" if previous else "random", "locked": sb.locked},
                       "rotation twin: the secret's previous version" if previous else
                       "rotation twin: a random password nobody holds until a rotation gives it one")]
    out = []
    changes = _user_changes(sb, u)
    if changes:
        out.append(Action("alter_user", UPDATE, f"user {_acct(*sb.key)}", tenant,
                          {**base, "max_connections": sb.max_connections, "require_ssl": sb.require_ssl,
                           "locked": sb.locked, "changes": changes},
                          ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changes.items())))
    # Its password is the previous version's while that names it; otherwise nobody's (random, unknown).
    source = "previous" if previous else "random"
    why = None
    if u.plugin and u.plugin != expected_plugin:
        why = f"authentication plugin is {u.plugin}, expected {expected_plugin}"
    elif u.other_auth:
        why = f"also accepts {' or '.join(u.other_auth)} logins (IDENTIFIED VIA ... OR ...)"
    elif not u.auth_string and (u.plugin or expected_plugin) in PASSWORD_PLUGINS:
        why = "no password: anyone could log in as the rotation twin"
    elif previous and expected_plugin == "mysql_native_password" and u.auth_string != s.previous_hash:
        why = "password on the server does not match the previous version of the secret"
    elif u.expired:
        why = "password is expired"
    if why:
        out.append(Action("set_password", UPDATE, f"user {_acct(*sb.key)}", tenant,
                          {**base, "password_source": source}, why))
    return out


def build_plan(desired: Desired, actual: Actual, *, now: float | None = None) -> Plan:
    import time

    now = time.time() if now is None else now
    flavor = desired.flavor
    protected = protected_users(desired, actual)
    for t in desired.tenants:
        for acc in t.accounts:
            for name in acc.names:
                if name in protected:
                    raise ConfigError(f"tenant {t.name}: account {name} is the master or a system account; "
                                      "rename the tenant or instance.master_username")
    expected_plugin = "mysql_native_password" if flavor.is_mariadb else "caching_sha2_password"
    dbs, users, grants, revokes, secrets, drops = [], [], [], [], [], []
    interrupted: list[str] = []
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
        for acc0 in t.accounts:
            wanted_secrets.add(acc0.secret)
            s = actual.secrets.get(acc0.secret)
            active = active_user(acc0, s)
            if acc0.alt and s is not None and s.has_pending and s.pending_user in acc0.names and \
                    s.pending_user != active:
                # A rotation was interrupted: its pending password belongs to the other twin, and finishing it
                # here (without its login test) could leave the secret naming a password the server rejects. The
                # account is left as it is (both twins kept), shown, and apply refuses until `rotate` finishes it.
                interrupted.append(f"{acc0.secret} (to {s.pending_user})")
                managed_users.update((n, acc0.host) for n in acc0.names)
                continue
            acc = acc0 if active == acc0.user else acc0.as_user(active, alt=acc0.alt, locked=acc0.locked)
            managed_users.add(acc.key)
            base = {"user": acc.user, "host": acc.host, "role": acc.role, "secret": acc.secret}
            u = actual.users.get(acc.key)
            pw = _password_action(acc, actual, expected_plugin, u is not None)
            if u is None:
                users.append(Action("create_user", CREATE, f"user {_acct(*acc.key)}", t.name,
                                    {**base, "max_connections": acc.max_connections, "require_ssl": acc.require_ssl,
                                     "password_source": pw[0], **({"locked": True} if acc.locked else {})},
                                    pw[1]))
            else:
                changes = _user_changes(acc, u)
                if changes:
                    users.append(Action("alter_user", UPDATE, f"user {_acct(*acc.key)}", t.name,
                                        {**base, "max_connections": acc.max_connections,
                                         "require_ssl": acc.require_ssl, "changes": changes,
                                         **({"locked": True} if acc.locked else {})},
                                        ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changes.items())))
                if pw:
                    users.append(Action("set_password", UPDATE, f"user {_acct(*acc.key)}", t.name,
                                        {**base, "password_source": pw[0]}, pw[1]))
            # Secret metadata (host, port, dbname, CA) follows the config; the password stays. The username is
            # the twin the secret names (alternating), which only rotation changes.
            want_meta = desired.secret_meta[acc.secret]
            if want_meta.get("username") != active:
                want_meta = {**want_meta, "username": active}
            if s and s.has_current and not (pw and pw[0] in ("new", "pending", "none")) and s.meta != want_meta:
                # Only the fields this tool writes: anything a user added to the secret is theirs, and kept.
                have_meta = s.meta or {}
                diff = sorted(k for k in OWNED_SECRET_KEYS | want_meta.keys() if have_meta.get(k) != want_meta.get(k))
            else:
                diff = None
            if diff:
                secrets.append(Action("update_secret", UPDATE, f"secret {acc.secret}", t.name,
                                      {**base, "fields": diff}, "connection info changed: " + ", ".join(diff)))
            sched = _schedule_action(acc0, s, desired.rotation_function, t.name)
            if sched:
                secrets.append(sched)
            grants_, revokes_ = _diff_grants(acc, actual, flavor.db_all_privileges, t.name)
            grants += grants_
            revokes += revokes_
            if acc0.alt:
                sb = standby_account(acc0, active, s, now)
                managed_users.add(sb.key)
                users += _standby_actions(sb, s, actual, expected_plugin, t.name)
                grants_, revokes_ = _diff_grants(sb, actual, flavor.db_all_privileges, t.name)
                grants += grants_
                revokes += revokes_
            else:
                # Alternating no more (rotation: single / dual-password, or IAM): the twin goes.
                twin = (acc0.user + ROTATION_SUFFIX, acc0.host)
                if twin in actual.users and twin not in managed_users:
                    drops.append(Action("drop_user", DELETE, f"user {_acct(*twin)}", t.name,
                                        {"user": twin[0], "host": twin[1], "role": acc0.role},
                                        f"rotation twin no longer used (rotation: {acc0.rotation})"))
                    managed_users.add(twin)

    # Tenants or accounts that left the config: their secrets carry our tags, and the tags must agree with
    # the names this config derives before anything is planned for drop.
    desired_names = {t.name for t in desired.tenants}
    gone, ignored = _removed(desired, actual, wanted_secrets, protected)
    for tenant, roles in sorted(gone.items()):
        for role, _sname in sorted(roles.items()):
            for user in (f"{tenant}{USER_SUFFIXES[role]}", f"{tenant}{USER_SUFFIXES[role]}{ROTATION_SUFFIX}"):
                key = (user, "%")
                if key in actual.users and key not in managed_users:
                    drops.append(Action("drop_user", DELETE, f"user {_acct(*key)}", tenant,
                                        {"user": user, "host": "%", "role": role},
                                        "tenant removed from the config" if tenant not in desired_names
                                        else f"{role} account removed from the config"))
                    managed_users.add(key)
        database = f"{tenant}{DATABASE_SUFFIX}"
        if tenant not in desired_names:
            if database in actual.databases:
                drops.append(Action("drop_database", DELETE, f"database {database}", tenant,
                                    {"database": database}, "tenant removed from the config; its data is lost"))
            managed_dbs.add(database)
        for role, sname in sorted(roles.items()):
            drops.append(Action("delete_secret", DELETE, f"secret {sname}", tenant, {"secret": sname, "role": role},
                                "credential of a removed account"))

    # After the drops: an account being dropped as removed from the config is not also a shadow.
    others, exposures = _reach_of_others(desired, actual, protected, managed_users)
    # A name with trailing spaces holds the grant-table row of the name without them: it goes first, so that
    # recreating the tenant's account can succeed.
    early = [a for a in others if a.detail.get("trailing_spaces")]
    revokes += [a for a in others if not a.detail.get("trailing_spaces")]
    if actual.mandatory_roles:
        revokes.append(Action("clear_mandatory_roles", UPDATE, "variable mandatory_roles", None,
                              {"from": actual.mandatory_roles},
                              "mandatory roles are granted to every account, tenants included"))
    for a in others:
        if a.kind == "drop_shadow":
            managed_users.add((a.detail["user"], a.detail["host"]))
    unmanaged_dbs = sorted(d for d in actual.databases if d not in managed_dbs and d not in SYSTEM_DATABASES)
    # Listed unless it is the server's own or the account we inspect as: a `root@%` or an `admin@localhost` is
    # shown (never touched), not hidden behind its name.
    unmanaged_users = sorted(
        _acct(*k) for k in actual.users
        if k not in managed_users and k != actual.current_user and k != PUBLIC
        and k[0] not in SERVER_OWN_USERS and not (k[0] in desired.admin_users and k[1] == "%")
    )
    return Plan(tuple(early + dbs + users + grants + revokes + secrets + drops), tuple(unmanaged_dbs),
                tuple(unmanaged_users),
                ignored_secrets=tuple(ignored), exposures=tuple(exposures), interrupted=tuple(interrupted))


def _removed(desired: Desired, actual: Actual, wanted: set[str], protected: frozenset[str]):
    """Secrets of accounts that left the config, corroborated: tenant -> role -> secret name; and the ignored."""
    gone: dict[str, dict[str, str]] = {}
    ignored: list[str] = []
    for name in sorted(n for n in actual.secrets if n not in wanted):
        s = actual.secrets[name]
        tenant, role = s.tags.get("tenant"), s.tags.get("role", "app")
        why = _uncorroborated(desired, name, s, tenant, role, protected)
        if why:
            ignored.append(f"{name} ({why})")
            continue
        gone.setdefault(tenant, {})[role] = name
    return gone, ignored


def _uncorroborated(desired: Desired, name: str, s, tenant, role, protected) -> str | None:
    if s.tags.get("environment", desired.environment) != desired.environment:
        return f"tagged for environment {s.tags.get('environment')!r}"
    try:
        check_tenant_name(tenant)
    except ValueError:
        return "its tenant tag is not a tenant name"
    if role not in USER_SUFFIXES:
        return f"unknown role tag {role!r}"
    if name != secret_name(desired.environment, tenant, role):
        return f"its name is not the one tenant {tenant} ({role}) would have"
    user = f"{tenant}{USER_SUFFIXES[role]}"
    meta = s.meta or {}
    if user in protected:
        return f"{user} is the master or a system account"
    if meta.get("username", user) not in (user, user + ROTATION_SUFFIX):  # either rotation twin
        return f"its username {meta.get('username')!r} is not {user} (or {user}{ROTATION_SUFFIX})"
    if meta.get("dbname", f"{tenant}{DATABASE_SUFFIX}") != f"{tenant}{DATABASE_SUFFIX}":
        return f"its dbname {meta.get('dbname')!r} is not {tenant}{DATABASE_SUFFIX}"
    return None


# Accounts the server (or RDS) creates and runs itself: neither listed as unmanaged nor reported.
SERVER_OWN_USERS = frozenset(SERVER_ACCOUNTS + RDS_ACCOUNTS)
# Global privileges that do not reach tenants' data (what a monitoring account such as mysqld_exporter holds).
MONITORING_PRIVILEGES = frozenset({"PROCESS", "REPLICATION CLIENT", "BINLOG MONITOR", "SLAVE MONITOR",
                                   "SHOW DATABASES", "USAGE"})


def _reach_of_others(desired: Desired, actual: Actual, protected: frozenset[str], managed: set):
    """Drift outside the tenants' own rows that still reaches them, and exposures apply leaves for a person.

    Reverted: anything granted to PUBLIC; a configured account's user name on another host (a shadow) and
    anonymous accounts (dropped); grants on a tenant's database, its tables, columns and routines held by any other
    account or role (revoked; the account itself is left alone); proxies to or from a tenant account.
    Reported only (exposures): global privileges that reach every database, held by accounts outside the config;
    objects in a tenant's database that run with someone else's rights (DEFINER); anything of protected accounts.
    """
    out: list[Action] = []
    exposures: list[str] = []
    # Configured account names, and their rotation twins' (a twin on another host is a shadow too).
    owner = {n: t.name for t in desired.tenants for a in t.accounts for n in (a.user, a.user + ROTATION_SUFFIX)}
    tenant_dbs = {t.database: t.name for t in desired.tenants}
    admin = actual.current_user
    pub = PUBLIC
    why_public = "granted to PUBLIC: every account holds it"
    # Accounts that can log in as a tenant: its user name on another host, or an anonymous account.
    shadows: set = set()
    # Filtered before sorting (10,000 accounts, nearly all managed): only the few candidates are ordered.
    candidates = sorted(k for k, u in actual.users.items()
                        if not (u.is_role or k in managed or k[0] in protected)
                        and (k[0] == "" or k[0].rstrip(" ") in owner))
    for user, host in candidates:
        name = user.rstrip(" ")
        if name in owner:
            shadows.add((user, host))
            spaced = name != user or host != host.rstrip(" ")
            why = ("its account's name with trailing spaces, which the grant tables hide" if spaced else
                   "its account's user name on another host, with its own password and privileges")
            out.append(Action("drop_shadow", UPDATE, f"user {user}@{host}", owner[name],
                              {"user": user, "host": host, **({"trailing_spaces": True} if spaced else {})},
                              f"shadow of tenant {owner[name]}: {why}"))
        elif user == "":
            shadows.add((user, host))
            out.append(Action("drop_shadow", UPDATE, f"user @{host}", None, {"user": user, "host": host},
                              "anonymous account: accepts any user name, tenants' included"))

    def skip(key) -> bool:
        """Grantees whose grants are not others' reach: ours (diffed on their own), shadows (dropped), the admin."""
        return key in managed or key in shadows or key == admin

    def grant_action(key, tenant, scope_kind, scope, privs, why, **extra):
        u = actual.users.get(key)
        detail = {"orphan": True} if key != pub and u is None else {}
        if key[0] in protected and key != pub:
            exposures.append(f"{_acct(*key)} holds {', '.join(sorted(privs))} on {scope} ({why}); it is a "
                             "protected account, never changed: review it")
            return
        a = _revoke_raw(key, tenant, scope_kind, scope, privs, why + (" (the account no longer exists: the "
                        "grant-table row is removed)" if detail else ""), **extra)
        label = f"role {key[0]}" if u is not None and u.is_role and key != pub else a.object
        out.append(Action(a.kind, a.op, label, a.tenant, {**a.detail, **detail}, a.reason))

    for key in sorted(k for k in actual.db_privs if not skip(k)):
        for pattern, privs in sorted(actual.db_privs[key].items()):
            hit = sorted({t for db, t in tenant_dbs.items() if db_pattern_matches(pattern, db)})
            if key == pub:
                grant_action(key, None, "database", pattern, privs, why_public)
            elif hit:
                grant_action(key, hit[0], "database", pattern, _canonical(privs, desired.flavor.db_all_privileges),
                             f"reaches tenant {', '.join(hit)}'s database")
    grantees = set(actual.table_privs) | set(actual.column_privs) | set(actual.routine_privs)
    for key in sorted(k for k in grantees if not skip(k)):
        for kind, scope, db, privs, extra, what in _object_grants(actual, key):
            if key == pub or db in tenant_dbs:
                grant_action(key, tenant_dbs.get(db), kind, scope, privs,
                             why_public if key == pub else f"reaches tenant {tenant_dbs[db]}'s {what}", **extra)
    if actual.global_privs.get(pub):
        out.append(_revoke_raw(pub, None, "global", "*.*", actual.global_privs[pub], why_public))
    for role, role_host in sorted(actual.role_grants.get(pub, set())):
        out.append(Action("revoke_role", UPDATE, "PUBLIC", None,
                          {"user": pub[0], "host": pub[1], "role_name": role, "role_host": role_host,
                           **_orphan_role(actual, role, role_host)}, "role granted to PUBLIC: every account holds it"))
    # Global privileges reach every tenant: reported, not revoked (a DBA's or a monitor's account may need them).
    for key, privs in sorted(actual.global_privs.items()):
        data = privs - MONITORING_PRIVILEGES
        if not data or key == pub or key in managed or key in shadows or key == admin:
            continue
        if key[0] in SERVER_OWN_USERS:
            continue
        exposures.append(f"{_acct(*key)} holds {', '.join(sorted(data)[:6])}{' ...' if len(data) > 6 else ''} ON *.* "
                         "(outside the config): it reaches every tenant's data; revoke what it does not need")
    # Accounts anyone can log in as, and settings the isolation rests on, as the running server has them.
    def passwordless(u) -> bool:
        return (u.plugin in PASSWORD_PLUGINS and not u.auth_string) or u.plugin in SOCKET_PLUGINS or \
            any(p in SOCKET_PLUGINS for p in u.other_auth)

    for user, host in sorted(k for k, u in actual.users.items() if passwordless(u)):
        u = actual.users[(user, host)]
        if u.is_role or u.locked or (user, host) in shadows or user in SERVER_OWN_USERS or user == "PUBLIC":
            continue
        exposures.append(f"{_acct(user, host)} logs in without a password (plugin {u.plugin or 'none'}): "
                         "set one (ALTER USER ... IDENTIFIED BY) or drop it")
    if actual.variables.get("require_secure_transport") is False:
        exposures.append("require_secure_transport is OFF on the running server: logins without TLS are accepted; "
                         "SET GLOBAL require_secure_transport = ON (RDS: the parameter group; embedded: restart)")
    if actual.variables.get("local_infile") is True:
        exposures.append("local_infile is ON on the running server: LOAD DATA LOCAL lets it read clients' files; "
                         "SET GLOBAL local_infile = OFF")
    # Stored objects in a tenant's database that run with another account's rights.
    own = {t.database: {a.key for a in t.accounts} for t in desired.tenants}
    for schema, name, kind, definer in actual.definers:
        if schema in own and definer not in own[schema]:
            exposures.append(f"{kind.lower()} {schema}.{name} runs as {_acct(*definer)}, not as tenant "
                             f"{tenant_dbs[schema]}: whoever calls it gets that account's rights; recreate it with "
                             f"DEFINER={tenant_dbs[schema]}_user (or SQL SECURITY INVOKER) or drop it")
    # Proxies: a tenant that may proxy as someone, or anyone that may proxy as a tenant (or as any user).
    for (user, host), rows in sorted(actual.proxies.items()):
        if (user, host) in shadows:
            continue  # dropped whole above
        for puser, phost, _grant in sorted(rows):
            tenant = owner.get(user) if (user, host) in managed else None
            target = owner.get(puser)
            if tenant is None and target is None and puser != "":
                continue
            why = (f"tenant account may proxy as {puser or '(any user)'}@{phost}" if tenant else
                   f"may log in as tenant {target}'s account through a proxy" if target else
                   "may proxy as any user, tenants' included")
            if user in protected and (user, host) != admin:
                exposures.append(f"{_acct(user, host)} {why}; it is a protected account, never changed: review it")
                continue
            if (user, host) == admin:
                continue
            out.append(Action("revoke_proxy", UPDATE, f"user {_acct(user, host)}", tenant or target,
                              {"user": user, "host": host, "proxied_user": puser, "proxied_host": phost}, why))
    return out, exposures


def _orphan_role(actual: Actual, role: str, role_host: str) -> dict:
    """A role mapping whose role no longer exists: REVOKE refuses it (error 1959), so the row is removed."""
    u = actual.users.get((role, role_host))
    return {} if u is not None else {"orphan": True}


def _object_grants(actual: Actual, key):
    """A grantee's table, column and routine grants: (scope_kind, scope, database, privileges, detail, what)."""
    for (db, table), privs in sorted(actual.table_privs.get(key, {}).items()):
        yield "table", f"{db}.{table}", db, privs, {"database": db, "table": table}, "table"
    for (db, table, column), privs in sorted(actual.column_privs.get(key, {}).items()):
        yield "column", f"{db}.{table}.{column}", db, privs, {"database": db, "table": table, "column": column}, \
            "column"
    for (db, name, kind), privs in sorted(actual.routine_privs.get(key, {}).items()):
        yield "routine", f"{kind} {db}.{name}", db, privs, {"database": db, "routine": name, "routine_type": kind}, \
            "routine"


def _diff_grants(acc: DesiredAccount, actual: Actual, all_privs: frozenset[str], tenant: str):
    key = acc.key
    want_pattern = escape_db_pattern(acc.database)
    have_db = actual.db_privs.get(key, {})
    # The common case, checked first (10,000 tenants: most of the plan's time otherwise): exactly the one grant.
    if (len(have_db) == 1 and key not in actual.global_privs and key not in actual.table_privs
            and key not in actual.column_privs and key not in actual.routine_privs and key not in actual.role_grants
            and key not in actual.default_roles):
        privs = have_db.get(want_pattern)
        if privs is not None and (privs == acc.privileges or _canonical(set(privs), all_privs) == acc.privileges):
            return (), ()
    grants, revokes = [], []
    obj = f"user {_acct(*key)}"
    want = set(acc.privileges)
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
    for kind, scope, _db, privs, extra, what in _object_grants(actual, acc.key):
        why = f"{what} grant outside the config" + (
            " (a DEFINER routine runs with its definer's rights)" if kind == "routine" else "")
        revokes.append(_revoke(acc, tenant, kind, scope, privs, why, **extra))
    for role, role_host in sorted(actual.role_grants.get(acc.key, set())):
        name = f"{role}@{role_host}" if role_host else role
        orphan = _orphan_role(actual, role, role_host)
        revokes.append(Action("revoke_role", UPDATE, obj, tenant,
                              {"user": acc.user, "host": acc.host, "role_name": role, "role_host": role_host,
                               **orphan}, f"role {name} granted outside the config"
                              + (" (the role no longer exists: the mapping row is removed)" if orphan else "")))
    if actual.default_roles.get(acc.key):
        names = ", ".join(sorted(f"{r}@{h}" if h else r for r, h in actual.default_roles[acc.key]))
        revokes.append(Action("set_default_role", UPDATE, obj, tenant, {"user": acc.user, "host": acc.host},
                              f"default role {names} set outside the config"))
    glob = actual.global_privs.get(acc.key, set())
    if glob:
        revokes.append(_revoke(acc, tenant, "global", "*.*", glob, "global privileges outside the config"))
    return grants, revokes


def _revoke(acc, tenant, scope_kind, scope, privs, why, **extra) -> Action:
    return _revoke_raw(acc.key, tenant, scope_kind, scope, privs, why, **extra)


def _revoke_raw(key, tenant, scope_kind, scope, privs, why, **extra) -> Action:
    return Action("revoke", UPDATE, f"user {_acct(*key)}" if key != PUBLIC else "PUBLIC", tenant,
                  {"user": key[0], "host": key[1], "scope_kind": scope_kind, "scope": scope,
                   "privileges": sorted(privs), **extra}, why)


__all__ = ["Action", "Plan", "build_plan", "secret_name", "protected_users"]
