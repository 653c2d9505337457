"""Accounts and authentication plugins the servers themselves define; one list, used by config validation, the
plan, and the embedded server's passwordless sweep."""

# Rotation alternates between `<user>` and `<user><ROTATION_SUFFIX>` (config sizes names for it). Here, not in
# config.model, so that the rotation Lambda (shared_mysql.rotation) imports no pydantic.
ROTATION_SUFFIX = "_alt"

# Created locked by MariaDB 10.4+ / MySQL 8 for internal use (definers of system views, sessions).
SERVER_ACCOUNTS = ("mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema")
# RDS's own accounts on an RDS instance.
RDS_ACCOUNTS = ("rdsadmin", "rdsrepladmin", "rdstopmgr")
# Never planned for any change, never a name a tenant or the master may take (PUBLIC: MariaDB's pseudo-role).
PROTECTED_ACCOUNTS = ("root", *SERVER_ACCOUNTS, *RDS_ACCOUNTS, "PUBLIC")
PROTECTED_NAMES = frozenset(PROTECTED_ACCOUNTS)
# Plugins that check a password: with an empty authentication string, anyone logs in with no password.
PASSWORD_PLUGINS = ("", "mysql_native_password", "mysql_old_password", "ed25519", "parsec", "caching_sha2_password",
                    "sha256_password")
# Plugins that log in whoever the operating system says the client is, with no password (socket only).
SOCKET_PLUGINS = ("unix_socket", "auth_socket")
