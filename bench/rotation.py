#!/usr/bin/env python3
"""Rotation under load: `rotate --all` for N tenants, and what clients see, alternating vs single, in one run.

Each strategy gets its own fresh embedded server with N tenants (app accounts). Load threads connect through
`shared_mysql.client` (secret cache, re-read on error 1045) and run SELECT 1, continuously:
  idle phase       LOAD_S seconds with no rotation: connect latency p50/p99
  rotating phase   `shared-mysql rotate --all --force` ROUNDS times back to back: latency, client-visible failures,
                   failed logins the server counted (Access_denied_errors)
  rotate_all_s     the wall time of one `shared-mysql rotate --all` (CLI start-up included; median of the rounds)
The peer is `rotation: single`, the model of Secrets Manager's single-user rotation (one account, one password
change): its failures show the window alternating closes. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, embedded  # noqa: E402 (puts the repository on sys.path)

from shared_mysql.target import LocalTarget  # noqa: E402


def make_instance(base: Path, name: str, n: int, rotation: str) -> LocalTarget:
    t = embedded(base, name, [f"  t{i:04d}: {{max_connections: 8, rotation: {rotation}}}" for i in range(n)],
                 n * 16 + 100)
    subprocess.run(cli(t, "apply", "--auto-approve"), check=True, stdout=subprocess.DEVNULL)
    return t


def cli(t: LocalTarget, *args) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "shared-mysql"), "-c", str(t.loaded.path), *args]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


class Load:
    def __init__(self, t: LocalTarget, tenants: list[str], threads: int):
        from shared_mysql.client import Client

        self.client = Client(config=str(t.loaded.path))
        self.tenants, self.threads = tenants, threads
        self.phase = "idle"
        self.lat: dict[str, list[float]] = {"idle": [], "rotating": []}
        self.failures: dict[str, list[str]] = {"idle": [], "rotating": []}
        self.stop = threading.Event()
        self.workers = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, i: int) -> None:
        k = i
        while not self.stop.is_set():
            tenant = self.tenants[k % len(self.tenants)]
            k += self.threads
            phase = self.phase
            start = time.perf_counter()
            try:
                conn = self.client.connect(tenant)
                took = time.perf_counter() - start
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                conn.close()
                self.lat[phase].append(took)
            except Exception as exc:  # noqa: BLE001 - counted, that is the measurement
                self.failures[phase].append(f"{type(exc).__name__}: {exc}"[:200])

    def __enter__(self):
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for w in self.workers:
            w.join()


def denied(t: LocalTarget) -> int:
    with t.executor() as ex:
        return int(ex.query("SHOW GLOBAL STATUS LIKE 'Access_denied_errors'")[0][1])


def measure(base: Path, n: int, rotation: str, threads: int, load_s: float, rounds: int) -> dict:
    t = make_instance(base, rotation, n, rotation)
    names = [f"t{i:04d}" for i in range(n)]
    with Load(t, names, threads) as load:
        time.sleep(load_s)
        load.phase = "rotating"
        before = denied(t)
        runs = []
        for _ in range(rounds):
            start = time.perf_counter()
            subprocess.run(cli(t, "rotate", "--all", "--force"), check=True, stdout=subprocess.DEVNULL)
            runs.append(time.perf_counter() - start)
        time.sleep(0.5)
        counted = denied(t) - before
    t.local_down()
    return {"rotate_all_s": statistics.median(runs), "failures": len(load.failures["rotating"]),
            "idle_failures": len(load.failures["idle"]), "failed_logins": counted,
            "connects_idle": len(load.lat["idle"]), "connects_rotating": len(load.lat["rotating"]),
            "p50_idle_ms": pct(load.lat["idle"], 50), "p99_idle_ms": pct(load.lat["idle"], 99),
            "p50_rotating_ms": pct(load.lat["rotating"], 50), "p99_rotating_ms": pct(load.lat["rotating"], 99),
            "sample_failure": (load.failures["rotating"] or [None])[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--idle-seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3, help="rotate --all runs during the rotating phase")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rotation-") as tmp:
        alt = measure(Path(tmp), args.tenants, "alternating", args.threads, args.idle_seconds, args.rounds)
        single = measure(Path(tmp), args.tenants, "single", args.threads, args.idle_seconds, args.rounds)
    print(f"{args.tenants} tenants, {args.threads} client threads, {args.rounds} x `rotate --all` under load")
    print(f"{'':28s}{'alternating':>14s}{'single (peer)':>16s}")
    for key, label in (("rotate_all_s", "rotate --all (s)"), ("failures", "client-visible failures"),
                       ("failed_logins", "failed logins (server)"), ("p50_idle_ms", "connect p50 idle (ms)"),
                       ("p99_idle_ms", "connect p99 idle (ms)"), ("p50_rotating_ms", "connect p50 rotating (ms)"),
                       ("p99_rotating_ms", "connect p99 rotating (ms)")):
        a, s = alt[key], single[key]
        fmt = (lambda v: f"{v:.2f}") if isinstance(a, float) else str
        print(f"{label:28s}{fmt(a):>14s}{fmt(s):>16s}")
    if single["sample_failure"]:
        print(f"single, first failure: {single['sample_failure']}")
    out = {"tenants": args.tenants, "rotate_all_s": alt["rotate_all_s"], "failures": alt["failures"],
           "p50_idle_ms": alt["p50_idle_ms"], "p99_idle_ms": alt["p99_idle_ms"],
           "p50_rotating_ms": alt["p50_rotating_ms"], "p99_rotating_ms": alt["p99_rotating_ms"],
           "failed_logins": alt["failed_logins"], "single_rotate_all_s": single["rotate_all_s"],
           "single_failures": single["failures"], "single_failed_logins": single["failed_logins"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
