"""Read the server and the secret store into an `Actual`, in a constant number of queries."""

from __future__ import annotations

import re

from ..db import Executor
from ..secrets import CURRENT, PENDING, SecretStore
from ..sql.passwords import native_hash
from .model import MANAGED_BY, Actual, ActualUser, SecretState

Q_SCHEMATA = ("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
              "FROM information_schema.SCHEMATA")
Q_USERS = "SELECT User, Host, plugin, authentication_string, ssl_type, max_user_connections FROM mysql.user"
Q_GLOBAL = "SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES"
Q_SCHEMA = "SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES"
Q_TABLE = ("SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, IS_GRANTABLE "
           "FROM information_schema.TABLE_PRIVILEGES")
Q_COLUMN = ("SELECT GRANTEE, TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, PRIVILEGE_TYPE, IS_GRANTABLE "
            "FROM information_schema.COLUMN_PRIVILEGES")
# Role grants: MariaDB keeps them in mysql.roles_mapping (roles have no host), MySQL 8 in mysql.role_edges.
Q_ROLES_MARIADB = "SELECT User, Host, Role, '' FROM mysql.roles_mapping"
Q_ROLES_MYSQL = "SELECT TO_USER, TO_HOST, FROM_USER, FROM_HOST FROM mysql.role_edges"
QUERIES = (Q_SCHEMATA, Q_USERS, Q_GLOBAL, Q_SCHEMA, Q_TABLE, Q_COLUMN, Q_ROLES_MARIADB)

_GRANTEE = re.compile(r"^'(.*)'@'(.*)'$")


def _grantee(g: str) -> tuple[str, str]:
    m = _GRANTEE.match(g)
    if not m:
        raise ValueError(f"unexpected GRANTEE format {g!r}")
    return m.group(1), m.group(2)


def _s(v) -> str:
    return v.decode() if isinstance(v, (bytes, bytearray)) else ("" if v is None else str(v))


def inspect_server(ex: Executor, actual: Actual | None = None) -> Actual:
    a = actual or Actual()
    for name, cs, coll in ex.query(Q_SCHEMATA):
        a.databases[_s(name)] = (_s(cs), _s(coll))
    for user, host, plugin, auth, ssl_type, maxc in ex.query(Q_USERS):
        u = ActualUser(_s(user), _s(host), _s(plugin), _s(auth), _s(ssl_type), int(maxc or 0))
        a.users[(u.user, u.host)] = u
    for grantee, priv, grantable in ex.query(Q_GLOBAL):
        key = _grantee(_s(grantee))
        privs = a.global_privs.setdefault(key, set())
        if _s(priv) != "USAGE":
            privs.add(_s(priv))
        if _s(grantable) == "YES":
            privs.add("GRANT OPTION")
    for grantee, schema, priv, grantable in ex.query(Q_SCHEMA):
        privs = a.db_privs.setdefault(_grantee(_s(grantee)), {}).setdefault(_s(schema), set())
        privs.add(_s(priv))
        if _s(grantable) == "YES":
            privs.add("GRANT OPTION")
    for grantee, schema, table, priv, grantable in ex.query(Q_TABLE):
        privs = a.table_privs.setdefault(_grantee(_s(grantee)), {}).setdefault((_s(schema), _s(table)), set())
        privs.add(_s(priv))
        if _s(grantable) == "YES":
            privs.add("GRANT OPTION")
    for grantee, schema, table, column, priv, grantable in ex.query(Q_COLUMN):
        key = (_s(schema), _s(table), _s(column))
        privs = a.column_privs.setdefault(_grantee(_s(grantee)), {}).setdefault(key, set())
        privs.add(_s(priv))
    for user, host, role, role_host in ex.query(Q_ROLES_MARIADB if ex.flavor.is_mariadb else Q_ROLES_MYSQL):
        a.role_grants.setdefault((_s(user), _s(host)), set()).add((_s(role), _s(role_host)))
    return a


def inspect_secrets(store: SecretStore, identifier: str, actual: Actual | None = None) -> Actual:
    """Secrets tagged as ours for this instance; passwords are reduced to their native hash, then dropped."""
    a = actual or Actual()
    currents = store.get_all(CURRENT)
    for name, info in store.names().items():
        tags = info["tags"]
        if tags.get("managed-by") != MANAGED_BY or tags.get("instance") != identifier or "tenant" not in tags:
            continue
        cur = currents.get(name)
        meta = {k: v for k, v in cur.items() if k != "password"} if cur else None
        a.secrets[name] = SecretState(
            tags=dict(tags), meta=meta,
            current_hash=native_hash(cur["password"]) if cur and cur.get("password") else None,
            has_current=CURRENT in info["stages"], has_pending=PENDING in info["stages"],
        )
    return a
