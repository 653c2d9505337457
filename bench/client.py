#!/usr/bin/env python3
"""Connect latency, in one run against one embedded server:
  plain_pymysql     PyMySQL with known credentials and a verifying TLS context built once (the best case)
  client_warm       shared_mysql.client.connect with a warm secret cache
  fetch_every_time  GetSecretValue from Secrets Manager (a local moto server) before every PyMySQL connect
Rounds are interleaved so that drift on the machine hits all three alike. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import free_port  # noqa: E402 (also puts the repository on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connects", type=int, default=300, help="connections per contender")
    args = ap.parse_args()

    import logging

    import boto3
    import pymysql
    from moto.server import ThreadedMotoServer

    from shared_mysql.client import Client
    from shared_mysql.config import load_config
    from shared_mysql.db import tls_context
    from shared_mysql.target import open_target

    base = Path(tempfile.mkdtemp(prefix="shared-mysql-bench-client-"))
    cfg = base / "shared-mysql.yaml"
    cfg.write_text(f"environment: bench\nidentifier: bench\ninstance: {{port: {free_port()}}}\n"
                   "tenants: {orders: {max_connections: 50}}\n")
    t = open_target(load_config(cfg))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's request log
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    try:
        t.local_up()
        with t.executor() as ex:
            plan, desired = t.plan(ex)
            t.apply(ex, plan, desired)
        secret = t.store.get("bench-orders-db-credentials")

        moto.start()
        sm = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        sm.create_secret(Name="bench-orders-db-credentials", SecretString=json.dumps(secret))

        ctx = tls_context(secret["ssl_ca"])

        def plain():
            return pymysql.connect(host=secret["host"], port=secret["port"], user=secret["username"],
                                   password=secret["password"], database=secret["dbname"], ssl=ctx, charset="utf8mb4")

        client = Client(config=cfg)
        client.connect("orders").close()  # warm the cache

        def warm():
            return client.connect("orders")

        def fetch_every_time():
            s = json.loads(sm.get_secret_value(SecretId="bench-orders-db-credentials",
                                               VersionStage="AWSCURRENT")["SecretString"])
            return pymysql.connect(host=s["host"], port=s["port"], user=s["username"], password=s["password"],
                                   database=s["dbname"], ssl=ctx, charset="utf8mb4")

        contenders = {"plain_pymysql": plain, "client_warm": warm, "fetch_every_time": fetch_every_time}
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(args.connects):
            for name, fn in contenders.items():
                start = time.perf_counter()
                conn = fn()
                times[name].append(time.perf_counter() - start)
                conn.close()
    finally:
        moto.stop()
        t.server.down()
        shutil.rmtree(base, ignore_errors=True)

    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    overhead = (med["client_warm"] / med["plain_pymysql"] - 1) * 100
    print(f"{args.connects} connects each, TLS verified, {os.cpu_count()} cores (median per connect)")
    print(f"  plain PyMySQL, known credentials     {med['plain_pymysql']:7.2f} ms")
    print(f"  shared_mysql.client, warm cache      {med['client_warm']:7.2f} ms   ({overhead:+.1f}%)")
    print(f"  Secrets Manager fetch every connect  {med['fetch_every_time']:7.2f} ms   "
          f"(caching saves {med['fetch_every_time'] - med['client_warm']:.2f} ms per connect)")
    print(json.dumps({"connects": args.connects, "plain_pymysql_ms": round(med["plain_pymysql"], 3),
                      "client_warm_ms": round(med["client_warm"], 3), "client_overhead_pct": round(overhead, 1),
                      "fetch_every_connect_ms": round(med["fetch_every_time"], 3)}))


if __name__ == "__main__":
    main()
