"""What applications import.

    from shared_mysql.client import connect, engine
    conn = connect("orders")                 # PyMySQL connection, TLS verified
    eng = engine("orders", user="readonly")  # SQLAlchemy engine, the seed's pool settings + pre-ping
    conn = connect(secret="prod-orders-db-credentials")   # on ECS: Secrets Manager, no config file

Secrets are cached (1 hour with jitter) and re-read once on an authentication error; connects are retried through
a Multi-AZ failover (2003/2006/2013/1290) with exponential backoff and jitter until a deadline (130 s).
"""

from .core import Client, ClientError, connect, default_client, engine

__all__ = ["Client", "ClientError", "connect", "default_client", "engine"]
