#!/usr/bin/env python3
"""Migration speed: SCRIPTS small versioned scripts from empty, against the floor, in one run.

Each script: CREATE TABLE t<i> (id INT PRIMARY KEY, v VARCHAR(40)) and one INSERT. Both sides log in as the
tenant over verified TLS, each on a fresh embedded server.

  ours_s    `shared-mysql migrate bench --dir D` (CLI start-up, discovery, checksums, Flyway's lock, the history
            table and its 500 rows included)
  floor_s   the same statements, concatenated, piped through the stock `mariadb` client
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import ROOT, embedded  # noqa: E402


def scripts(d: Path, n: int) -> list[str]:
    d.mkdir()
    stmts = []
    for i in range(1, n + 1):
        body = (f"CREATE TABLE t{i} (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB;\n"
                f"INSERT INTO t{i} VALUES (1, 'row of script {i}');\n")
        (d / f"V{i}__table_{i}.sql").write_text(body)
        stmts.append(body)
    return stmts


def applied(t) -> dict:
    t.store.reload()
    with t.executor() as ex:
        plan, desired = t.plan(ex)
        t.apply(ex, plan, desired)
    return t.store.get("bench-bench-db-credentials")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scripts", type=int, default=500)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    try:
        d = base / "migrations"
        stmts = scripts(d, a.scripts)
        # the floor
        t1 = embedded(base, "floor", ["  bench: {}"], 200)
        s = applied(t1)
        cnf = base / "client.cnf"
        cnf.write_text(f"[client]\nuser={s['username']}\npassword={s['password']}\nhost=127.0.0.1\n"
                       f"port={t1.port}\nssl-ca={t1.ca}\nssl-verify-server-cert\n")
        os.chmod(cnf, 0o600)
        client = shutil.which("mariadb") or shutil.which("mysql")
        t0 = time.monotonic()
        subprocess.run([client, f"--defaults-extra-file={cnf}", "bench_db"], input="".join(stmts).encode(),
                       check=True)
        floor = time.monotonic() - t0
        t1.local_down()
        # ours
        t2 = embedded(base, "ours", [f"  bench: {{migrations: {{dir: {d}}}}}"], 200)
        applied(t2)
        t0 = time.monotonic()
        subprocess.run([str(ROOT / ".venv" / "bin" / "shared-mysql"), "-c", str(t2.loaded.path), "migrate", "bench"],
                       check=True, capture_output=True)
        ours = time.monotonic() - t0
        with t2.executor() as ex:
            rows = ex.query("SELECT COUNT(*) FROM bench_db.flyway_schema_history WHERE success = 1")[0][0]
        t2.local_down()
        if rows != a.scripts:
            raise SystemExit(f"only {rows} of {a.scripts} migrations recorded")
        print(f"{a.scripts} versioned scripts (2 statements each), from empty, as the tenant over TLS")
        print(f"  mariadb client (floor)   {floor:7.2f} s")
        print(f"  shared-mysql migrate     {ours:7.2f} s   ({ours / floor:.2f}x the floor; goal <= 1.5x)")
        print(json.dumps({"scripts": a.scripts, "ours_s": round(ours, 2), "floor_s": round(floor, 2),
                          "ratio": round(ours / floor, 2)}))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
