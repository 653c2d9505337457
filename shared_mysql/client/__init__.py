"""What applications import.

    from shared_mysql.client import connect, engine
    conn = connect("orders")                 # PyMySQL connection, TLS verified
    eng = engine("orders", user="readonly")  # SQLAlchemy engine, the seed's pool settings + pre-ping
    conn = connect(secret="prod-orders-db-credentials")   # on ECS: Secrets Manager, no config file

Secrets are cached (1 hour with jitter) and re-read once on an authentication error; connects are retried through
a Multi-AZ failover (2003/2006/2013/1290) with exponential backoff and jitter until a deadline (130 s); a certificate
that does not verify is one line at once, never retried.

Keyword arguments for PyMySQL (also `engine(connect_args=...)`) pass an allowlist (`PASS_THROUGH`: charset,
autocommit, cursorclass, timeouts...); `ssl_ca=` / `ssl={"ca": ...}` map onto `ca=`; anything that could loosen
TLS or change the account or endpoint (ssl_verify_cert=False, an SSLContext, host, unix_socket, read_default_file,
local_infile...) is refused with one line before any secret is read.
"""

from .core import PASS_THROUGH, Client, ClientError, check_options, connect, default_client, engine

__all__ = ["PASS_THROUGH", "Client", "ClientError", "check_options", "connect", "default_client", "engine"]
