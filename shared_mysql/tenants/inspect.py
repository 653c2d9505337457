"""Read the server and the secret store into an `Actual`, in a constant number of queries.

Every place a privilege can live is read, on both flavors: global (MariaDB's `global_priv.access` bitmask, which
also holds what was granted TO PUBLIC and never shows in information_schema; MySQL's `mysql.user` columns plus
dynamic privileges in `mysql.global_grants`), database (`mysql.db`), table and column (`tables_priv`,
`columns_priv`), routine (`procs_priv`: EXECUTE on a SQL SECURITY DEFINER routine runs with its definer's
rights), proxy (`proxies_priv`), roles and default roles (`roles_mapping` / `role_edges` + `default_roles`), and
MySQL's `mandatory_roles`. Accounts carry lock, expiry, resource limits and every authentication method, so an
account that can log in as a tenant (a shadow on another host, an anonymous account) is visible too.

The grant tables are read directly (one row per grant, privileges aggregated server-side into one Y/N string)
instead of information_schema's one row per privilege: ~10x fewer values through the driver at 10,000 tenants.
The three reads that grow with the tenants (schemas, accounts, database grants) come back as JSON arrays built by
the server, in at most 64 rows: the driver's row-by-row parsing cost more than the server's work.
"""

from __future__ import annotations

import json
import re

from ..db import Executor
from ..errors import ServerError
from ..secrets import CURRENT, PENDING, PREVIOUS, SecretStore
from ..sql.accounts import PASSWORD_PLUGINS
from ..sql.passwords import native_hash
from ..sql.quoting import as_text as _s
from .model import MANAGED_BY, Actual, ActualUser, SecretState

# (columns, source, what spreads rows over the 64 JSON chunks)
Q_SCHEMATA = ("SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME", "information_schema.SCHEMATA",
              "SCHEMA_NAME")
# The *_priv columns of mysql.db (and mysql.user on MySQL), in table order: differs by flavor and version.
Q_PRIV_COLUMNS = ("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' "
                  "AND TABLE_NAME IN ('db', 'user') AND COLUMN_NAME LIKE '%\\_priv' ORDER BY TABLE_NAME, "
                  "ORDINAL_POSITION")
# JSON_QUERY embeds Priv as JSON (NULL when it is not a JSON object: read as {}, as the server does).
Q_ACCOUNTS_MARIADB = ("User, Host, JSON_QUERY(Priv, '$')", "mysql.global_priv", "CONCAT(User, '@', Host)")
Q_TABLES = "SELECT User, Host, Db, Table_name, Table_priv FROM mysql.tables_priv"
Q_COLUMNS = "SELECT User, Host, Db, Table_name, Column_name, Column_priv FROM mysql.columns_priv"
Q_PROCS = "SELECT User, Host, Db, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv"
Q_PROXIES = "SELECT User, Host, Proxied_user, Proxied_host, With_grant FROM mysql.proxies_priv"
# Role grants: MariaDB keeps them in mysql.roles_mapping (roles have no host), MySQL 8 in mysql.role_edges.
Q_ROLES_MARIADB = "SELECT User, Host, Role, '' FROM mysql.roles_mapping"
Q_ROLES_MYSQL = "SELECT TO_USER, TO_HOST, FROM_USER, FROM_HOST FROM mysql.role_edges"
Q_DEFAULT_ROLES_MYSQL = "SELECT USER, HOST, DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles"
Q_GLOBAL_GRANTS_MYSQL = "SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants"
Q_USERS_MYSQL = ("SELECT User, Host, plugin, authentication_string, ssl_type, max_user_connections, max_questions, "
                 "max_updates, max_connections, account_locked, password_expired, password_lifetime, ssl_cipher, "
                 "x509_issuer, x509_subject, {mask} FROM mysql.user")
# Stored objects that run with their definer's rights: a routine, view, trigger or event in a tenant's database
# defined by someone else lends that account's privileges to whoever can use it.
Q_DEFINERS = (
    "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, DEFINER FROM information_schema.ROUTINES "
    "WHERE SECURITY_TYPE = 'DEFINER' UNION ALL "
    "SELECT EVENT_SCHEMA, EVENT_NAME, 'EVENT', DEFINER FROM information_schema.EVENTS")
# Views and triggers live in files per database: the server lists every database's directory for each (~0.1 s
# apiece at 10,000 databases), so each runs on a connection of its own, beside the other reads.
Q_DEFINER_VIEWS = ("SELECT TABLE_SCHEMA, TABLE_NAME, 'VIEW', DEFINER FROM information_schema.VIEWS "
                   "WHERE SECURITY_TYPE = 'DEFINER'")
Q_DEFINER_TRIGGERS = "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, 'TRIGGER', DEFINER FROM information_schema.TRIGGERS"
# Account names ending in spaces: the grant tables are CHAR columns and read back without them ('orders_user '
# looks like 'orders_user'), but the server's in-memory accounts keep them, and information_schema is built from
# those. Without this, a renamed 'billing_user ' locked the tenant out while plan said "No changes", and a shadow
# 'orders_user '@'127.0.0.1' survived apply.
Q_SPACED = ("SELECT DISTINCT GRANTEE FROM information_schema.USER_PRIVILEGES "
            "WHERE GRANTEE LIKE '% ''@''%''' OR GRANTEE LIKE '%@''% '''")
# Who we are, and the live values of settings the security model rests on (a SET GLOBAL outlives my.cnf).
Q_SESSION = "SELECT CURRENT_USER(), @@GLOBAL.require_secure_transport, @@GLOBAL.local_infile"
Q_SESSION_MYSQL = ("SELECT CURRENT_USER(), @@GLOBAL.require_secure_transport, @@GLOBAL.local_infile, "
                   "@@GLOBAL.mandatory_roles")
# group_concat_max_len is not needed: CONCAT (not GROUP_CONCAT) builds the Y/N strings.

# MariaDB's global_priv.access bit i is this privilege (checked on 10.11 by granting each one alone).
MARIADB_ACCESS_BITS = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "SHUTDOWN", "PROCESS", "FILE",
    "GRANT OPTION", "REFERENCES", "INDEX", "ALTER", "SHOW DATABASES", "SUPER", "CREATE TEMPORARY TABLES",
    "LOCK TABLES", "EXECUTE", "REPLICATION SLAVE", "BINLOG MONITOR", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE",
    "ALTER ROUTINE", "CREATE USER", "EVENT", "TRIGGER", "CREATE TABLESPACE", "DELETE HISTORY", "SET USER",
    "FEDERATED ADMIN", "CONNECTION ADMIN", "READ_ONLY ADMIN", "REPLICATION SLAVE ADMIN", "REPLICATION MASTER ADMIN",
    "BINLOG ADMIN", "BINLOG REPLAY", "SLAVE MONITOR", "SHOW CREATE ROUTINE",
)
_SSL_TYPES = {0: "", 1: "ANY", 2: "X509", 3: "SPECIFIED"}
# *_priv column stems whose privilege name is not the stem in upper case with spaces.
_PRIV_COLUMN_NAMES = {"Create_tmp_table": "CREATE TEMPORARY TABLES", "Grant": "GRANT OPTION",
                      "Repl_slave": "REPLICATION SLAVE", "Repl_client": "REPLICATION CLIENT",
                      "Show_db": "SHOW DATABASES"}
# SET values of tables_priv.Table_priv / columns_priv.Column_priv / procs_priv.Proc_priv that differ likewise.
_SET_NAMES = {"Grant": "GRANT OPTION", "Delete versioning rows": "DELETE HISTORY"}



def column_privilege(column: str) -> str:
    stem = column[:-5] if column.endswith("_priv") else column
    return _PRIV_COLUMN_NAMES.get(stem) or stem.replace("_", " ").upper()


def set_privileges(value) -> set[str]:
    """'Select,Alter Routine,Grant' -> {'SELECT', 'ALTER ROUTINE', 'GRANT OPTION'}."""
    out = set()
    for p in _s(value).split(","):
        p = p.strip()
        if p:
            out.add(_SET_NAMES.get(p) or p.upper())
    return out


def access_privileges(access: int) -> set[str]:
    out = {name for i, name in enumerate(MARIADB_ACCESS_BITS) if access >> i & 1}
    unknown = access >> len(MARIADB_ACCESS_BITS)
    if unknown:  # a newer server's privilege: still drift, still revoked (REVOKE ALL covers it)
        out.add(f"privilege bits {unknown << len(MARIADB_ACCESS_BITS):#x}")
    return out


class _Masks:
    """Y/N strings over a table's *_priv columns -> privilege sets, memoised (a handful of distinct masks)."""

    def __init__(self, columns: list[str]):
        self.names = [column_privilege(c) for c in columns]
        self._memo: dict[str, frozenset[str]] = {}

    def __call__(self, mask) -> frozenset[str]:
        mask = _s(mask)
        got = self._memo.get(mask)
        if got is None:
            got = self._memo[mask] = frozenset(n for n, yn in zip(self.names, mask) if yn == "Y")
        return got


def _concat(columns: list[str]) -> str:
    return "CONCAT(" + ", ".join(f"`{c}`" for c in columns) + ")"


JSON_CHUNKS = 64


def json_query(ex: Executor, spec: tuple[str, str, str]) -> str:
    columns, source, spread = spec
    # MariaDB builds JSON_ARRAYAGG with GROUP_CONCAT, whose default limit (1 MB) would cut a chunk short.
    prefix = "SET STATEMENT group_concat_max_len = 4294967295 FOR " if ex.flavor.is_mariadb else ""
    return (f"{prefix}SELECT JSON_ARRAYAGG(JSON_ARRAY({columns})) FROM {source} "
            f"GROUP BY CRC32({spread}) MOD {JSON_CHUNKS}")


def _json_rows(ex: Executor, spec: tuple[str, str, str]) -> list[list]:
    """`SELECT columns FROM source`, as the server's JSON arrays: one query, at most JSON_CHUNKS rows."""
    out: list[list] = []
    for (doc,) in ex.query(json_query(ex, spec)):
        try:
            rows = json.loads(doc)
        except (TypeError, ValueError):
            raise ServerError(f"reading {spec[1]}: the server returned {len(doc or '')} bytes that are not a JSON "
                              "array (cut short by max_allowed_packet?); raise max_allowed_packet and re-run") from None
        out.extend(rows)
    return out


def inspect_queries(ex: Executor) -> int:
    """How many queries inspect_server runs on this flavor (constant: it never depends on the data)."""
    return 14 if ex.flavor.is_mariadb else 16


def inspect_server(ex: Executor, actual: Actual | None = None) -> Actual:
    return parse_server(ex.flavor, read_server(ex), actual)


class start_inspect:  # noqa: N801 - used like a function: `reading = start_inspect(ex)` ... `reading.result()`
    """`inspect_server`, with its reads started now on a background thread: the server works (and the driver
    waits) while the caller does its own work; `result()` waits and parses. `ex` belongs to the thread until
    `result()` or `join()` returns: do not use it in between."""

    def __init__(self, ex: Executor):
        import threading

        self.ex = ex
        self._out: dict = {}
        self._worker = threading.Thread(target=self._run, name="shared-mysql-inspect", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        try:
            self._out["raw"] = read_server(self.ex)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._out["error"] = exc

    def join(self) -> None:
        self._worker.join()

    def result(self, actual: Actual | None = None) -> Actual:
        self._worker.join()
        if "error" in self._out:
            raise self._out["error"]
        return parse_server(self.ex.flavor, self._out["raw"], actual)


def read_server(ex: Executor) -> dict:
    """Every read inspect needs, as the server returned it (the same constant number of queries)."""
    mariadb = ex.flavor.is_mariadb
    # The slowest reads, and nearly all of their time the server's: started first, on connections of their own.
    views, triggers = ex.query_later(Q_DEFINER_VIEWS), ex.query_later(Q_DEFINER_TRIGGERS)
    raw: dict = {"schemata": _json_rows(ex, Q_SCHEMATA)}
    cols: dict[str, list[str]] = {"db": [], "user": []}
    for table, column in ex.query(Q_PRIV_COLUMNS):
        cols.setdefault(_s(table), []).append(_s(column))
    raw["cols"] = cols
    raw["session"] = ex.query(Q_SESSION if mariadb else Q_SESSION_MYSQL)[0]
    if mariadb:
        raw["accounts"] = _json_rows(ex, Q_ACCOUNTS_MARIADB)
    else:
        mask_sql = _concat(cols["user"]) if cols["user"] else "''"
        raw["accounts"] = ex.query(Q_USERS_MYSQL.format(mask=mask_sql))
        raw["global_grants"] = ex.query(Q_GLOBAL_GRANTS_MYSQL)
    raw["db"] = _json_rows(ex, (f"User, Host, Db, {_concat(cols['db'])}", "mysql.db", "CONCAT(User, '@', Host)")) \
        if cols["db"] else []
    raw["tables"] = ex.query(Q_TABLES)
    raw["columns"] = ex.query(Q_COLUMNS)
    raw["procs"] = ex.query(Q_PROCS)
    raw["proxies"] = ex.query(Q_PROXIES)
    raw["roles"] = ex.query(Q_ROLES_MARIADB if mariadb else Q_ROLES_MYSQL)
    raw["spaced"] = ex.query(Q_SPACED)
    raw["default_roles"] = [] if mariadb else ex.query(Q_DEFAULT_ROLES_MYSQL)
    raw["definers"] = ex.query(Q_DEFINERS) + views() + triggers()
    return raw


def parse_server(flavor, raw: dict, actual: Actual | None = None) -> Actual:
    a = actual or Actual()
    mariadb = flavor.is_mariadb
    for name, cs, coll in raw["schemata"]:
        a.databases[name] = (cs, coll)
    cols = raw["cols"]
    row = raw["session"]
    a.current_user = _split_account(_s(row[0]))
    a.variables = {"require_secure_transport": _s(row[1]).upper() in ("1", "ON"),
                   "local_infile": _s(row[2]).upper() in ("1", "ON")}
    if mariadb:
        for user, host, priv in raw["accounts"]:
            _mariadb_account(a, user, host, priv)
    else:
        a.mandatory_roles = _s(row[3]).strip()
        _mysql_accounts(a, raw["accounts"], raw["global_grants"], cols["user"])

    if cols["db"]:
        masks = _Masks(cols["db"])
        memo = masks._memo
        db_privs = a.db_privs
        for user, host, db, mask in raw["db"]:
            privs = memo.get(mask)
            if privs is None:
                privs = masks(mask)
            if privs:
                db_privs.setdefault((user, host), {}).setdefault(db, set()).update(privs)
    for user, host, db, table, privs in raw["tables"]:
        p = set_privileges(privs)
        if p:
            a.table_privs.setdefault((_s(user), _s(host)), {}).setdefault((_s(db), _s(table)), set()).update(p)
    for user, host, db, table, column, privs in raw["columns"]:
        p = set_privileges(privs)
        if p:
            key = (_s(db), _s(table), _s(column))
            a.column_privs.setdefault((_s(user), _s(host)), {}).setdefault(key, set()).update(p)
    for user, host, db, name, kind, privs in raw["procs"]:
        p = set_privileges(privs)
        if p:
            key = (_s(db), _s(name), _s(kind).upper())
            a.routine_privs.setdefault((_s(user), _s(host)), {}).setdefault(key, set()).update(p)
    for user, host, puser, phost, with_grant in raw["proxies"]:
        a.proxies.setdefault((_s(user), _s(host)), set()).add((_s(puser), _s(phost), bool(with_grant)))
    for user, host, role, role_host in raw["roles"]:
        a.role_grants.setdefault((_s(user), _s(host)), set()).add((_s(role), _s(role_host)))
    for (grantee,) in raw["spaced"]:
        _respace(a, _s(grantee))
    for schema, name, kind, definer in raw["definers"]:
        a.definers.append((_s(schema), _s(name), _s(kind).upper(), _split_account(_s(definer))))
    for user, host, role, role_host in raw["default_roles"]:
        a.default_roles.setdefault((_s(user), _s(host)), set()).add((_s(role), _s(role_host)))
    return a


def _num(v, bad):
    """A number from hand-editable JSON: ints and floats as they are, anything else (text, lists) as `bad`."""
    if type(v) is int:  # nearly always
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return bad if v is not None else 0
    return v


_GRANTEE = re.compile(r"'((?:[^']|'')*)'@'((?:[^']|'')*)'", re.S)


def _respace(a: Actual, grantee: str) -> None:
    """Give an account read from the grant tables its real name (with trailing spaces) and its privileges."""
    m = _GRANTEE.fullmatch(grantee)
    if not m:
        return
    real = (m.group(1).replace("''", "'"), m.group(2).replace("''", "'"))
    seen = (real[0].rstrip(" "), real[1].rstrip(" "))
    if seen == real:
        return
    for table in (a.users, a.global_privs, a.db_privs, a.table_privs, a.column_privs, a.routine_privs,
                  a.proxies, a.role_grants, a.default_roles):
        if seen in table:
            table[real] = table.pop(seen)
    u = a.users.get(real)
    if u is not None:
        u.user, u.host = real


def _split_account(s: str) -> tuple[str, str]:
    """CURRENT_USER() is `user@host`; user names may contain '@', host names may not."""
    user, _, host = s.rpartition("@")
    return user, host


_LIMIT_KEYS = ("max_questions", "max_updates", "max_connections", "max_statement_time")


def _mariadb_account(a: Actual, user: str, host: str, p) -> None:
    if not isinstance(p, dict):  # NULL: Priv was not a JSON object
        p = {}
    methods = p.get("auth_or") if isinstance(p.get("auth_or"), list) and p.get("auth_or") else [{}]
    # auth_or lists every way to log in; `{}` stands for the top-level plugin/authentication_string.
    plugins = [(m.get("plugin"), m.get("authentication_string", "")) if m else
               (p.get("plugin", ""), p.get("authentication_string", "")) for m in methods if isinstance(m, dict)]
    first = plugins[0] if plugins else (p.get("plugin", ""), p.get("authentication_string", ""))
    # Values are read defensively: the JSON is editable by hand, and odd data must never stop inspect.
    ssl_type = p.get("ssl_type", 0)
    lifetime = _num(p.get("password_lifetime", -1), -1)
    u = ActualUser(
        user, host, str(first[0] or ""), str(first[1] or ""),
        _SSL_TYPES.get(ssl_type, "UNKNOWN") if isinstance(ssl_type, int) else "UNKNOWN",
        int(_num(p.get("max_user_connections", 0), -1)),
        locked=p.get("account_locked", False) is not False,
        expired=p.get("password_last_changed", 1) == 0,
        is_role=p.get("is_role", False) is True,
        other_auth=tuple(str(pl or "") for pl, _ in plugins[1:]) if len(plugins) > 1 else (),
        other_empty=any(str(pl or "") in PASSWORD_PLUGINS and not auth for pl, auth in plugins[1:]),
        limits={k: v for k in _LIMIT_KEYS if (v := _num(p.get(k, 0), -1)) != 0},
        password_lifetime=None if lifetime == -1 else int(lifetime),
        ssl_detail=(str(p.get("ssl_cipher") or ""), str(p.get("x509_issuer") or ""), str(p.get("x509_subject") or "")),
    )
    a.users[(user, host)] = u
    access = int(_num(p.get("access", 0), -1))
    if access < 0:  # unreadable: treat as every privilege, so the account's drift is revoked, never missed
        access = (1 << len(MARIADB_ACCESS_BITS)) - 1
    if access:
        a.global_privs[(user, host)] = access_privileges(access)
    role = p.get("default_role")
    if role:
        a.default_roles.setdefault((user, host), set()).add((str(role), ""))


def _mysql_accounts(a: Actual, rows, global_grants, priv_columns: list[str]) -> None:
    masks = _Masks(priv_columns)
    for (user, host, plugin, auth, ssl_type, maxc, mq, mu, mc, locked, expired, lifetime, cipher, issuer,
         subject, mask) in rows:
        key = (_s(user), _s(host))
        limits = {k: int(v) for k, v in (("max_questions", mq), ("max_updates", mu), ("max_connections", mc))
                  if v not in (0, None)}
        a.users[key] = ActualUser(
            key[0], key[1], _s(plugin), _s(auth), _s(ssl_type), int(maxc or 0),
            locked=_s(locked) == "Y", expired=_s(expired) == "Y", limits=limits,
            password_lifetime=None if lifetime is None else int(lifetime),
            ssl_detail=(_s(cipher), _s(issuer), _s(subject)),
        )
        privs = masks(mask)
        if privs:
            a.global_privs[key] = set(privs)
    for user, host, priv, grantable in global_grants:
        privs = a.global_privs.setdefault((_s(user), _s(host)), set())
        privs.add(_s(priv).upper())
        if _s(grantable) == "Y":
            privs.add("GRANT OPTION")


def inspect_secrets(store: SecretStore, identifier: str, actual: Actual | None = None) -> Actual:
    """Secrets tagged as ours for this instance; passwords are reduced to their native hash, then dropped.

    Tags alone decide nothing destructive: the plan corroborates them against the names this config derives.
    """
    a = actual or Actual()
    currents = store.get_all(CURRENT)
    previous = None
    for name, info in store.names().items():
        tags = info["tags"]
        if tags.get("managed-by") != MANAGED_BY or tags.get("instance") != identifier or "tenant" not in tags:
            continue
        # names() and get_all() hand out copies: used as they are.
        meta = currents.get(name)
        pw = meta.pop("password", None) if isinstance(meta, dict) else None
        if not isinstance(meta, dict):
            meta = None
        a.secrets[name] = SecretState(
            tags=tags, meta=meta,
            current_hash=native_hash(pw) if isinstance(pw, str) and pw else None,
            has_current=CURRENT in info["stages"], has_pending=PENDING in info["stages"],
            schedule=info.get("rotation"),
        )
        if PENDING in info["stages"]:  # rare: an interrupted apply or rotation
            pend = store.get(name, PENDING)
            user = pend.get("username") if isinstance(pend, dict) else None
            a.secrets[name].pending_user = user if isinstance(user, str) else None
        if PREVIOUS in info["stages"]:
            if previous is None:  # read only when some secret has one (rotated before)
                previous = store.get_all(PREVIOUS)
            prev = previous.get(name)
            if isinstance(prev, dict):
                user, ppw = prev.get("username"), prev.get("password")
                a.secrets[name].previous_user = user if isinstance(user, str) else None
                a.secrets[name].previous_hash = native_hash(ppw) if isinstance(ppw, str) and ppw else None
    return a
