#!/usr/bin/env python3
"""The server audit at N tenants: `shared-mysql audit --only server` vs the per-account way, in one run.

  audit_s          `shared-mysql audit --only server -o json` (CLI start-up included), median of 3
  audit_inproc_s   the snapshot and every check in-process (no start-up), median of 3
  audit_queries    the queries that snapshot took (constant whatever N)
  peer_s           the way CIS-benchmark scripts and Ansible's mysql_info read grants: SHOW GRANTS per account
                   (plus the variables), one round trip each, over the same TLS connection
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import embedded  # noqa: E402 (puts the repository on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=1000)
    args = ap.parse_args()
    n = args.tenants
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        t = embedded(Path(tmp), "a", [f"  t{i:05d}: {{max_connections: 1, readonly: true}}" for i in range(n)],
                     3 * n + 100)
        try:
            cfg = t.loaded.path
            subprocess.run([sys.executable, "-m", "shared_mysql", "-c", str(cfg), "apply", "--auto-approve"],
                           check=True, capture_output=True)
            cli = []
            for _ in range(3):
                start = time.perf_counter()
                res = subprocess.run([sys.executable, "-m", "shared_mysql", "-c", str(cfg), "audit", "--only",
                                      "server", "--fail-on", "low", "-o", "json"], capture_output=True, text=True)
                cli.append(time.perf_counter() - start)
                assert res.returncode == 0, res.stdout[-2000:] + res.stderr
            accounts = json.loads(res.stdout)["summary"]

            from shared_mysql.audit import run_checks
            from shared_mysql.audit.checks_server import server_snapshot

            inproc, queries = [], 0
            for _ in range(3):
                with t.executor() as ex:
                    desired = t.desired(ex.flavor)
                    before = ex.queries
                    start = time.perf_counter()
                    snap = server_snapshot(ex, t.config, desired, t.store)
                    run_checks("server", snap, target="local")
                    inproc.append(time.perf_counter() - start)
                    queries = ex.queries - before
            peer = []
            for _ in range(3):
                with t.executor() as ex:
                    start = time.perf_counter()
                    users = ex.query("SELECT User, Host FROM mysql.user")
                    for user, host in users:
                        ex.query(f"SHOW GRANTS FOR '{user}'@'{host}'")
                    ex.query("SHOW GLOBAL VARIABLES")
                    peer.append(time.perf_counter() - start)
            n_accounts = len(users)
        finally:
            t.local_down()
    out = {"tenants": n, "accounts": n_accounts, "audit_s": round(statistics.median(cli), 3),
           "audit_inproc_s": round(statistics.median(inproc), 3), "audit_queries": queries,
           "peer_s": round(statistics.median(peer), 3), "peer_queries": n_accounts + 2,
           "checks_passed": accounts["passed"], "failed": accounts["failed"]}
    print(f"tenants {n} ({n_accounts} accounts)")
    print(f"  shared-mysql audit --only server (CLI)   {out['audit_s']:.3f} s   {queries} queries")
    print(f"  snapshot + checks in-process             {out['audit_inproc_s']:.3f} s")
    print(f"  SHOW GRANTS per account (peer way)       {out['peer_s']:.3f} s   {n_accounts + 2} queries, grants only")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
