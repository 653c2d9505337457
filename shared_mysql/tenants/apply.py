"""Run a Plan: stage passwords in the store, run the SQL, promote, then delete secrets of dropped accounts.

Crash safety (a kill -9 at any moment, then a re-run, converges):
1. every password the database will see is written to the store as AWSPENDING first (one durable write);
2. the SQL runs; 3. AWSPENDING is promoted to AWSCURRENT (one durable write); 4. removed accounts' secrets go.
A re-run after a crash between 1 and 3 finds the pending secrets and finishes the change with them, so the
database never holds a password that no store holds, and the current secret ends up accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..db import Executor
from ..errors import DestructiveChangeError, SecretStoreError, SharedMySQLError
from ..secrets import CURRENT, PENDING, PREVIOUS, SecretStore
from ..sql import Statement, statements as st
from ..sql.passwords import generate_password
from ..config.model import ROTATION_SUFFIX, USER_SUFFIXES
from .model import Desired, user_fields
from .plan import Action, Plan


@dataclass(frozen=True)
class ApplyResult:
    statements: int
    secrets_written: int
    secrets_deleted: int
    failed: tuple[str, ...] = ()  # statements the server refused (the rest ran), one line each


def check_destructive(plan: Plan, allow_destructive: bool) -> None:
    if plan.interrupted:
        raise SharedMySQLError(
            f"{len(plan.interrupted)} rotation(s) were interrupted ({', '.join(plan.interrupted[:3])}"
            f"{' ...' if len(plan.interrupted) > 3 else ''}); run `shared-mysql rotate --all` (it finishes them with "
            "their pending passwords; `rotate --due` does too), then apply; nothing was changed")
    if plan.destructive and not allow_destructive:
        objs = ", ".join(a.object for a in plan.destructive[:3])
        more = f" and {len(plan.destructive) - 3} more" if len(plan.destructive) > 3 else ""
        raise DestructiveChangeError(
            f"the plan has {len(plan.destructive)} destructive change(s) ({objs}{more}); nothing was changed; "
            "re-run with --allow-destructive to apply them"
        )


def render_statements(action: Action, desired: Desired, password: str | None = None) -> list[Statement]:
    f = desired.flavor
    d = action.detail
    k = action.kind
    if k == "create_database":
        return [st.create_database(d["database"], d["charset"], d["collation"])]
    if k == "alter_database":
        return [st.alter_database(d["database"], d["charset"], d["collation"])]
    if k == "create_user":
        s = st.create_user(f, d["user"], d["host"], _need(password, action), require_ssl=d["require_ssl"],
                           max_connections=d["max_connections"])
        if d.get("locked"):  # an idle rotation twin nobody holds a password for
            s = Statement(s.sql + " ACCOUNT LOCK", (s.redacted or s.sql) + " ACCOUNT LOCK")
        return [s]
    if k == "set_password" and d.get("password_source") == "none":
        return [st.set_password(f, d["user"], d["host"], None)]
    if k == "alter_user":
        return [st.alter_user_limits(d["user"], d["host"], require_ssl=d["require_ssl"],
                                     max_connections=d["max_connections"], flavor=f, locked=d.get("locked", False))]
    if k == "set_password":
        return [st.set_password(f, d["user"], d["host"], _need(password, action))]
    if k == "grant":
        return [st.grant_on_database(f, frozenset(d["privileges"]), d["database"], d["user"], d["host"])]
    if k == "revoke" and d.get("orphan"):
        return _delete_rows(d)
    if k == "revoke_role" and d.get("orphan"):
        table, cols = ("roles_mapping", {"User": d["user"], "Host": d["host"], "Role": d["role_name"]}) \
            if f.is_mariadb else ("role_edges", {"TO_USER": d["user"], "TO_HOST": d["host"],
                                                 "FROM_USER": d["role_name"], "FROM_HOST": d["role_host"]})
        return st.delete_grant_rows(table, cols)
    if k == "revoke" and d["scope_kind"] == "column":
        return [st.revoke_columns(frozenset(d["privileges"]), d["database"], d["table"], d["column"], d["user"],
                                  d["host"])]
    if k == "revoke" and d["scope_kind"] == "routine":
        out = st.revoke_routine(frozenset(d["privileges"]), d["routine_type"], d["database"], d["routine"],
                                d["user"], d["host"])
        return out if isinstance(out, list) else [out]
    if k == "revoke_role":
        return [st.revoke_role(f, d["role_name"], d["role_host"], d["user"], d["host"])]
    if k == "revoke_proxy":
        return st.revoke_proxy(d["proxied_user"], d["proxied_host"], d["user"], d["host"])
    if k == "set_default_role":
        return [st.set_default_role_none(f, d["user"], d["host"])]
    if k == "clear_mandatory_roles":
        return [st.clear_mandatory_roles()]
    if k == "drop_shadow" and d.get("trailing_spaces"):
        # DROP USER of a name with trailing spaces leaves its rows in mysql.db & co (they read back without the
        # spaces), and a CREATE USER of the tenant's name then fails with 1396. Those rows can only be the spaced
        # account's (both names share one grant-table key): remove them, then reload the privileges.
        key = {"User": d["user"].rstrip(" "), "Host": d["host"].rstrip(" ")}
        tables = ("db", "tables_priv", "columns_priv", "procs_priv", "proxies_priv") + \
            (("roles_mapping",) if f.is_mariadb else ())
        out = [st.drop_user(d["user"], d["host"])]
        for table in tables:
            out.append(st.delete_grant_rows(table, key)[0])
        return out + [Statement("FLUSH PRIVILEGES")]
    if k == "drop_shadow":
        return [st.drop_user(d["user"], d["host"])]
    if k == "revoke":
        privs = set(d["privileges"])
        if d["scope_kind"] == "database":
            scope = st.scope_for_pattern(d["scope"])
        elif d["scope_kind"] == "table":
            scope = st.scope_for_table(d["database"], d["table"])
        else:
            scope = "*.*"
        out = []
        if "GRANT OPTION" in privs:
            privs.discard("GRANT OPTION")
            out.append(Statement(f"REVOKE GRANT OPTION ON {scope} FROM {st.grantee(d['user'], d['host'])}"))
        if privs:
            out.insert(0, st.revoke(f, frozenset(privs), scope, d["user"], d["host"]))
        return out
    if k == "drop_user":
        return [st.drop_user(d["user"], d["host"])]
    if k == "drop_database":
        return [st.drop_database(d["database"])]
    if k in ("update_secret", "delete_secret", "put_export", "delete_export", "schedule_rotation",
             "unschedule_rotation", "proxy_auth_add", "proxy_auth_remove", "proxy_default_auth"):
        return []  # store, exports and RDS Proxy actions: no SQL
    raise ValueError(f"no renderer for action kind {k!r}")


def _delete_rows(d: dict) -> list[Statement]:
    """A grant held by an account or role that no longer exists: no REVOKE reaches it, the row goes."""
    who = {"User": d["user"], "Host": d["host"]}
    kind = d["scope_kind"]
    if kind == "database":
        return st.delete_grant_rows("db", {**who, "Db": d["scope"]})
    if kind == "table":
        return st.delete_grant_rows("tables_priv", {**who, "Db": d["database"], "Table_name": d["table"]})
    if kind == "column":
        return st.delete_grant_rows("columns_priv", {**who, "Db": d["database"], "Table_name": d["table"],
                                                     "Column_name": d["column"]})
    if kind == "routine":
        return st.delete_grant_rows("procs_priv", {**who, "Db": d["database"], "Routine_name": d["routine"],
                                                   "Routine_type": d["routine_type"]})
    raise ValueError(f"no grant table for an orphan {kind} grant")


def _standby_password(action: Action, store: SecretStore) -> str:
    """A rotation twin's password: the previous version's while it names the twin, else a random one nobody holds
    (the twin logs in only once a rotation gives it a password)."""
    if action.detail.get("password_source") == "previous":
        prev = store.get(action.detail["secret"], PREVIOUS)
        if prev is None or prev.get("username") != action.detail["user"] or not prev.get("password"):
            raise SecretStoreError(f"secret {action.detail['secret']}: its previous version changed since the plan; "
                                   "re-run plan")
        return prev["password"]
    return generate_password()


def _need(password: str | None, action: Action) -> str | None:
    if password is None and action.detail.get("password_source") != "none":
        raise ValueError(f"{action.object}: a password is required")
    return password


NEEDS_PASSWORD = ("create_user", "set_password", "update_secret")


def apply_plan(plan: Plan, desired: Desired, ex: Executor, store: SecretStore, *,
               allow_destructive: bool = False) -> ApplyResult:
    check_destructive(plan, allow_destructive)

    # 1. Stage every password the database will see as AWSPENDING, in one durable write.
    passwords: dict[str, str | None] = {}
    staged: dict[str, tuple[dict, dict]] = {}
    # The strategy rides along as a tag: the rotation Lambda, which sees only the secret, reads it.
    strategy = {a.secret: a.rotation for t in desired.tenants for a in t.accounts}
    for a in plan.actions:
        if a.kind not in NEEDS_PASSWORD or a.detail.get("twin") == "standby":
            continue  # a rotation twin's password is never staged: random (nobody's) or the previous version's
        name = a.detail["secret"]
        source = a.detail.get("password_source", "current")
        if name in passwords:
            continue
        tags = {**desired.tags, "tenant": a.tenant or "", "role": a.detail["role"],
                "rotation": strategy.get(name, "single")}
        if source == "none":  # IAM: connection info only
            passwords[name] = None
            staged[name] = ({**user_fields(store.get(name, CURRENT)), **desired.secret_meta[name],
                             "username": a.detail["user"]}, tags)
            continue
        if source == "pending":
            value = store.get(name, PENDING)
            if value is None:
                raise SecretStoreError(f"secret {name}: pending version vanished since the plan; re-run plan")
            passwords[name] = value["password"]
            continue
        # Fields a user added to the secret are kept; the ones this tool writes follow the config.
        cur = store.get(name, CURRENT)
        kept = user_fields(cur)
        if source == "new":
            pw = generate_password()
        else:
            if cur is None:
                raise SecretStoreError(f"secret {name}: current version vanished since the plan; re-run plan")
            pw = cur["password"]
        passwords[name] = pw
        # The username is the account the action is about: for alternating twins, the one the secret names.
        staged[name] = ({**kept, **desired.secret_meta[name], "username": a.detail["user"], "password": pw}, tags)
    store.put_pending(staged)

    # 2. The SQL, in plan order.
    stmts: list[Statement] = []
    for a in plan.actions:
        if a.kind in NEEDS_PASSWORD and a.detail.get("twin") == "standby":
            pw = _standby_password(a, store)
        else:
            pw = passwords.get(a.detail.get("secret", "")) if a.kind in NEEDS_PASSWORD else None
        stmts.extend(render_statements(a, desired, pw))
    # One statement the server refuses (a grant it cannot revoke) must not shield the rest of the drift, so apply
    # keeps going and reports the failures at the end. The store stays right either way: a password whose
    # statement failed is promoted anyway and the next plan re-applies it from the store ("current").
    failed = ex.execute_many(stmts, keep_going=True)

    # 3. The database now accepts the pending passwords: make them current.
    store.promote(sorted(passwords))

    # Rotation schedules (Secrets Manager), once the secrets exist with a current version the function can test.
    for a in plan.actions:
        if a.kind == "schedule_rotation":
            store.schedule_rotation(a.detail["secret"], a.detail["function"], a.detail["days"])
        elif a.kind == "unschedule_rotation":
            store.cancel_rotation(a.detail["secret"])

    # 4. Secrets of removed accounts go last, after their users are dropped.
    # A secret is deleted only when its account's drop ran: a refused DROP USER keeps the credential.
    refused = {a.detail["user"] for a in plan.actions if a.kind == "drop_user"
               and any(st.drop_user(a.detail["user"], a.detail["host"]).safe in f for f in failed)}
    gone = [a.detail["secret"] for a in plan.actions if a.kind == "delete_secret"
            and not refused & {f"{a.tenant}{USER_SUFFIXES[a.detail['role']]}{twin}" for twin in ("", ROTATION_SUFFIX)}]
    store.delete(gone)
    return ApplyResult(len(stmts), len(staged), len(gone), tuple(failed))


__all__ = ["apply_plan", "render_statements", "check_destructive", "ApplyResult"]
