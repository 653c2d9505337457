import pymysql

from shared_mysql.db import tls_context
from shared_mysql.secrets import CURRENT


def login(secret: dict, *, tls: bool = True, database: str | None = "default"):
    return pymysql.connect(
        host=secret["host"], port=secret["port"], user=secret["username"], password=secret["password"],
        database=secret.get("dbname") if database == "default" else database,
        # PyMySQL 1.2 negotiates (unverified) TLS on its own unless told not to: ssl_disabled for a plain login.
        ssl=tls_context(secret["ssl_ca"]) if tls else None, ssl_disabled=not tls, connect_timeout=5,
        autocommit=True,
    )


def error_code(fn) -> int | None:
    try:
        conn = fn()
    except pymysql.err.MySQLError as exc:
        return exc.args[0]
    conn.close()
    return None


def assert_all_stored_credentials_log_in(target) -> int:
    """Every managed secret logs in, and every managed user on the server has a stored secret."""
    store = target.store
    store.reload()
    # Secrets of server/aws targets carry no CA path: clients bring the bundle, as the test does here.
    secrets = {n: {"ssl_ca": target.ca, **v} for n, v in store.get_all(CURRENT).items()
               if n != target.config.master_secret_name}
    for name, s in secrets.items():
        conn = login(s)
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone()[0] == s["dbname"], name
        conn.close()
    with target.executor() as ex:
        users = {r[0] for r in ex.query("SELECT User FROM mysql.user WHERE Host = '%'")}
    # Rotation twins (`<name>_alt`) count as their account: the secret names one of the two.
    stored_users = {s["username"].removesuffix("_alt") for s in secrets.values()}
    managed = {u.removesuffix("_alt") for u in users if u.removesuffix("_alt").endswith(("_user", "_readonly"))}
    assert managed == stored_users, f"users without a stored secret: {managed - stored_users}"
    return len(secrets)
