#!/usr/bin/env python3
"""`doctor` against the seed's runbook by hand, in one run against one embedded server:
  doctor_cli        `shared-mysql doctor orders`, a fresh process (start-up included), healthy: every step
  doctor_inprocess  shared_mysql.doctor.diagnose(), the same steps without the process start-up
  runbook_by_hand   what the seed's troubleshooting #1 runs: a TCP check, then `mysql` with the stored
                    credential, verified TLS and `SELECT 1` (two steps of the nine, no diagnosis)
And a server that accepts TCP but never speaks (a hung middlebox):
  doctor_hang       until doctor names the tls step (its own 5 s timeout)
  mysql_hang        until the `mysql` client gives up, capped at 30 s (its default waits for the greeting)
Medians of --rounds rounds; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, free_port  # noqa: E402 (also puts the repository on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    from shared_mysql import doctor
    from shared_mysql.config import load_config
    from shared_mysql.target import open_target

    base = Path(tempfile.mkdtemp(prefix="shared-mysql-bench-doctor-"))
    cfg = base / "shared-mysql.yaml"
    cfg.write_text(f"environment: bench\nidentifier: bench\ninstance: {{port: {free_port()}}}\n"
                   "tenants: {orders: {}, billing: {}}\n")
    t = open_target(load_config(cfg))
    client = shutil.which("mariadb") or shutil.which("mysql")
    cli = [str(ROOT / ".venv" / "bin" / "shared-mysql")]
    if not Path(cli[0]).exists():
        cli = [sys.executable, "-m", "shared_mysql"]
    times: dict[str, list[float]] = {"doctor_cli": [], "doctor_inprocess": [], "runbook_by_hand": []}
    try:
        t.local_up()
        with t.executor() as ex:
            plan, desired = t.plan(ex)
            t.apply(ex, plan, desired)
        s = t.store.get("bench-orders-db-credentials")
        env = {**os.environ, "MYSQL_PWD": s["password"]}  # not on the command line
        for _ in range(args.rounds):
            start = time.perf_counter()
            res = subprocess.run([*cli, "-c", str(cfg), "doctor", "orders"], capture_output=True, text=True)
            times["doctor_cli"].append(time.perf_counter() - start)
            assert res.returncode == 0, res.stdout + res.stderr
            start = time.perf_counter()
            r = doctor.diagnose(open_target(load_config(cfg)), "orders")
            times["doctor_inprocess"].append(time.perf_counter() - start)
            assert r.ok
            start = time.perf_counter()
            with socket.create_connection((s["host"], s["port"]), timeout=5):
                pass
            if client:
                subprocess.run([client, "-h", s["host"], "-P", str(s["port"]), "-u", s["username"],
                                f"--ssl-ca={s['ssl_ca']}", "--ssl-verify-server-cert", s["dbname"], "-e", "SELECT 1"],
                               env=env, check=True, capture_output=True)
            times["runbook_by_hand"].append(time.perf_counter() - start)
        # a server that accepts and never speaks
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        hang_port = srv.getsockname()[1]
        ht = open_target(load_config(cfg))
        type(ht).port = property(lambda self: hang_port)
        # the published port is the real server's; that link is not what this measures
        doctor._exports = lambda *a: doctor.Step("exports", True, "not measured here")
        start = time.perf_counter()
        r = doctor.diagnose(ht, "orders")
        doctor_hang = time.perf_counter() - start
        bad = next(x for x in r.steps if not x.ok)
        mysql_hang = None
        if client:
            start = time.perf_counter()
            try:
                subprocess.run([client, "-h", "127.0.0.1", "-P", str(hang_port), "-u", "x", "-e", "SELECT 1"],
                               capture_output=True, timeout=30, env=env)
            except subprocess.TimeoutExpired:
                pass
            mysql_hang = time.perf_counter() - start
        srv.close()
    finally:
        t.server.down()
        shutil.rmtree(base, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'contender':18} {'median s':>9}")
    for k, v in med.items():
        print(f"{k:18} {v:9.3f}")
    print(f"{'doctor_hang':18} {doctor_hang:9.3f}  ({bad.name}: {bad.detail[:60]}...)")
    if mysql_hang is not None:
        print(f"{'mysql_hang':18} {mysql_hang:9.3f}  ({'capped at 30 s' if mysql_hang >= 29.9 else 'gave up'})")
    print(json.dumps({"doctor_healthy_cli_s": round(med["doctor_cli"], 3),
                      "doctor_healthy_inprocess_s": round(med["doctor_inprocess"], 3),
                      "runbook_by_hand_s": round(med["runbook_by_hand"], 3),
                      "doctor_hang_s": round(doctor_hang, 2), "doctor_hang_step": bad.name,
                      "mysql_client_hang_s": None if mysql_hang is None else round(mysql_hang, 2)}))


if __name__ == "__main__":
    main()
