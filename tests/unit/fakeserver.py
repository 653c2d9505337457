"""Rows a server would return for a set of tenants, so unit tests can drive inspect without a server.

The state is kept as the grant tables hold it (accounts, mysql.db patterns, tables/columns/procs/proxies_priv,
roles); `executor()` answers inspect's queries from it in each flavor's shape (MariaDB: global_priv JSON with the
access bitmask; MySQL: mysql.user columns + global_grants)."""

import json

from shared_mysql.db import FakeExecutor
from shared_mysql.sql.passwords import native_hash
from shared_mysql.sql.quoting import escape_db_pattern
from shared_mysql.tenants.inspect import MARIADB_ACCESS_BITS, column_privilege

DB_COLUMNS = ["Select_priv", "Insert_priv", "Update_priv", "Delete_priv", "Create_priv", "Drop_priv", "Grant_priv",
              "References_priv", "Index_priv", "Alter_priv", "Create_tmp_table_priv", "Lock_tables_priv",
              "Create_view_priv", "Show_view_priv", "Create_routine_priv", "Alter_routine_priv", "Execute_priv",
              "Event_priv", "Trigger_priv"]
MYSQL_USER_COLUMNS = ["Select_priv", "Insert_priv", "Update_priv", "Delete_priv", "Create_priv", "Drop_priv",
                      "Reload_priv", "Shutdown_priv", "Process_priv", "File_priv", "Grant_priv", "References_priv",
                      "Index_priv", "Alter_priv", "Show_db_priv", "Super_priv", "Create_tmp_table_priv",
                      "Lock_tables_priv", "Execute_priv", "Repl_slave_priv", "Repl_client_priv", "Create_view_priv",
                      "Show_view_priv", "Create_routine_priv", "Alter_routine_priv", "Create_user_priv", "Event_priv",
                      "Trigger_priv", "Create_tablespace_priv", "Create_role_priv", "Drop_role_priv"]
_SSL = {"": 0, "ANY": 1, "X509": 2, "SPECIFIED": 3}


def json_chunks(rows):
    """Rows as inspect's JSON reads return them: JSON arrays of rows, a few per result row (none when empty)."""
    rows = list(rows)
    return [(json.dumps(rows[i:i + 3]),) for i in range(0, len(rows), 3)]


def account(plugin="mysql_native_password", auth="", ssl_type="ANY", maxc=0, **kw):
    return {"plugin": plugin, "auth": auth, "ssl_type": ssl_type, "maxc": maxc, "locked": False, "expired": False,
            "is_role": False, "limits": {}, "lifetime": None, "default_role": "", "auth_or": [], **kw}


class FakeServer:
    def __init__(self, flavor):
        self.flavor = flavor
        self.schemata = [("mysql", "utf8mb4", "utf8mb4_general_ci"), ("information_schema", "utf8", "utf8_general_ci")]
        self.accounts = {("admin", "%"): account(auth="*ADMIN"),
                         ("mariadb.sys", "localhost"): account(auth="", ssl_type="", locked=True)}
        self.global_privs = {("admin", "%"): {"SUPER", "GRANT OPTION"}}
        self.db_grants: dict[tuple[str, str, str], set[str]] = {}  # (user, host, pattern) -> privileges
        self.table_rows = []  # (user, host, db, table, "Select,Insert")
        self.column_rows = []  # (user, host, db, table, column, "Select")
        self.proc_rows = []  # (user, host, db, name, "PROCEDURE", "Execute")
        self.proxy_rows = []  # (user, host, proxied_user, proxied_host, with_grant)
        self.role_rows = []  # (user, host, role, role_host)
        self.current_user = "admin@%"
        self.mandatory_roles = ""
        self.dynamic_grants = []  # MySQL: (user, host, PRIV, "Y"/"N") in mysql.global_grants
        self.definer_rows = []  # (schema, name, "PROCEDURE"|"VIEW"|..., "user@host")

    @property
    def db_columns(self):
        return DB_COLUMNS + (["Delete_history_priv"] if self.flavor.is_mariadb else [])

    def reset(self):
        """Back to the admin and system accounts only (what apply_to_fake rebuilds from)."""
        self.schemata = [r for r in self.schemata if not r[0].endswith("_db")]
        self.accounts = {k: v for k, v in self.accounts.items() if k[0] in ("admin", "mariadb.sys")}
        self.global_privs = {k: v for k, v in self.global_privs.items() if k[0] == "admin"}
        self.db_grants = {}
        self.table_rows, self.column_rows, self.proc_rows, self.proxy_rows, self.role_rows = [], [], [], [], []

    def add_tenant(self, name, passwords, readonly=False, limit=10, ro_limit=None, twins=True, twin_limits=None):
        twin_limits = twin_limits or {}
        db = f"{name}_db"
        self.schemata.append((db, "utf8mb4", "utf8mb4_unicode_ci"))
        accounts = [(f"{name}_user", self.flavor.db_all_privileges, limit)]
        if readonly:
            accounts.append((f"{name}_readonly", {"SELECT"}, ro_limit or max(1, limit // 4)))
        for user, privs, lim in accounts:
            self.accounts[(user, "%")] = account(auth=native_hash(passwords[user]), maxc=lim)
            if twins:  # alternating rotation: `<user>_alt`, a random password nobody holds, 1 connection
                self.accounts[(user + "_alt", "%")] = account(auth=native_hash(passwords.get(user + "_alt", "x" * 32)),
                                                             maxc=twin_limits.get(user + "_alt", 1), locked=True)
                self.db_grants[(user + "_alt", "%", escape_db_pattern(db))] = set(privs)
            self.db_grants[(user, "%", escape_db_pattern(db))] = set(privs)

    # -- rows in each flavor's shape ---------------------------------------------------------------------------
    def _global_priv_rows(self):
        rows = []
        for (user, host), a in self.accounts.items():
            access = 0
            for p in self.global_privs.get((user, host), ()):
                access |= 1 << MARIADB_ACCESS_BITS.index(p)
            priv = {"access": access, "plugin": a["plugin"], "authentication_string": a["auth"],
                    "ssl_type": _SSL[a["ssl_type"]], "max_user_connections": a["maxc"],
                    "password_last_changed": 0 if a["expired"] else 1700000000, **a["limits"]}
            if a["auth_or"]:
                priv["auth_or"] = [{}] + [{"plugin": p} for p in a["auth_or"]]
            if a["locked"]:
                priv["account_locked"] = True
            if a["is_role"]:
                priv["is_role"] = True
            if a["lifetime"] is not None:
                priv["password_lifetime"] = a["lifetime"]
            if a["default_role"]:
                priv["default_role"] = a["default_role"]
            rows.append((user, host, priv))
        for key, privs in self.global_privs.items():  # grants to PUBLIC live in a role row
            if key not in self.accounts:
                access = sum(1 << MARIADB_ACCESS_BITS.index(p) for p in privs)
                rows.append((key[0], key[1], {"access": access, "is_role": True}))
        return json_chunks(rows)

    def _mysql_user_rows(self):
        rows = []
        for (user, host), a in self.accounts.items():
            privs = self.global_privs.get((user, host), set())
            mask = "".join("Y" if column_privilege(c) in privs else "N" for c in MYSQL_USER_COLUMNS)
            rows.append((user, host, a["plugin"], a["auth"], a["ssl_type"], a["maxc"],
                         a["limits"].get("max_questions", 0), a["limits"].get("max_updates", 0),
                         a["limits"].get("max_connections", 0), "Y" if a["locked"] else "N",
                         "Y" if a["expired"] else "N", a["lifetime"], "", "", "", mask))
        return rows

    def _db_rows(self):
        cols = self.db_columns
        return json_chunks([(u, h, pattern, "".join("Y" if column_privilege(c) in privs else "N" for c in cols))
                            for (u, h, pattern), privs in self.db_grants.items()])

    def _columns(self):
        rows = [("db", c) for c in self.db_columns]
        if not self.flavor.is_mariadb:
            rows += [("user", c) for c in MYSQL_USER_COLUMNS]
        return rows

    def executor(self):
        session = (lambda: [(self.current_user, "ON", "0")]) if self.flavor.is_mariadb else \
            (lambda: [(self.current_user, "ON", "0", self.mandatory_roles)])
        return FakeExecutor(self.flavor, {
            "information_schema.COLUMNS": self._columns,
            "information_schema.ROUTINES": lambda: self.definer_rows,
            "information_schema.SCHEMATA": lambda: json_chunks(self.schemata),
            "CURRENT_USER()": session,
            "mysql.global_priv": self._global_priv_rows,
            "FROM mysql.user": self._mysql_user_rows,
            "FROM mysql.db": self._db_rows,
            "mysql.tables_priv": lambda: self.table_rows,
            "mysql.columns_priv": lambda: self.column_rows,
            "mysql.procs_priv": lambda: self.proc_rows,
            "mysql.proxies_priv": lambda: self.proxy_rows,
            "mysql.roles_mapping": lambda: self.role_rows,
            "mysql.role_edges": lambda: self.role_rows,
            "mysql.default_roles": lambda: [(u, h, a["default_role"], "%") for (u, h), a in self.accounts.items()
                                            if a["default_role"]],
            "mysql.global_grants": lambda: self.dynamic_grants,
        })
