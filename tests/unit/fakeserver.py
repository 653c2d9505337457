"""Rows a server would return for a set of tenants, so unit tests can drive inspect without a server."""

from shared_mysql.db import FakeExecutor
from shared_mysql.sql.passwords import native_hash
from shared_mysql.sql.quoting import escape_db_pattern


class FakeServer:
    def __init__(self, flavor):
        self.flavor = flavor
        self.schemata = [("mysql", "utf8mb4", "utf8mb4_general_ci"), ("information_schema", "utf8", "utf8_general_ci")]
        self.users = [("admin", "%", "mysql_native_password", "*ADMIN", "ANY", 0),
                      ("mariadb.sys", "localhost", "mysql_native_password", "", "", 0)]
        self.global_rows = [("'admin'@'%'", "SUPER", "YES")]
        self.schema_rows = []
        self.table_rows = []
        self.column_rows = []
        self.role_rows = []

    def add_tenant(self, name, passwords, readonly=False, limit=10, ro_limit=None):
        db = f"{name}_db"
        self.schemata.append((db, "utf8mb4", "utf8mb4_unicode_ci"))
        accounts = [(f"{name}_user", self.flavor.db_all_privileges, limit)]
        if readonly:
            accounts.append((f"{name}_readonly", {"SELECT"}, ro_limit or max(1, limit // 4)))
        for user, privs, lim in accounts:
            self.users.append((user, "%", "mysql_native_password", native_hash(passwords[user]), "ANY", lim))
            self.global_rows.append((f"'{user}'@'%'", "USAGE", "NO"))
            for p in sorted(privs):
                self.schema_rows.append((f"'{user}'@'%'", escape_db_pattern(db), p, "NO"))

    def executor(self):
        return FakeExecutor(self.flavor, {
            "information_schema.SCHEMATA": lambda: self.schemata,
            "FROM mysql.user": lambda: self.users,
            "USER_PRIVILEGES": lambda: self.global_rows,
            "SCHEMA_PRIVILEGES": lambda: self.schema_rows,
            "TABLE_PRIVILEGES": lambda: self.table_rows,
            "COLUMN_PRIVILEGES": lambda: self.column_rows,
            "mysql.roles_mapping": lambda: self.role_rows,
            "mysql.role_edges": lambda: self.role_rows,
        })
