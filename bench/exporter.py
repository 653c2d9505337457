#!/usr/bin/env python3
"""Scrape latency under load: `shared-mysql exporter` vs prometheus-mysqld-exporter (Debian package), on the same
embedded server with N tenants, in one run.

Load: 8 threads connecting through `shared_mysql.client` and querying across the tenants for the whole run.
Scrapes alternate between the two exporters (200 each); mysqld_exporter runs with its default collectors.
  ours_median_ms / ours_p95_ms                   shared-mysql exporter
  mysqld_exporter_median_ms / mysqld_exporter_p95_ms
  series / mysqld_exporter_series                samples per scrape
The last line is JSON. mysqld_exporter is unpacked from its Debian package into a temp dir (not installed).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import embedded, free_port  # noqa: E402 (puts the repository on sys.path)


def mysqld_exporter_binary(tmp: Path) -> str:
    found = next(iter(glob.glob("/usr/bin/prometheus-mysqld-exporter")), None)
    if found:
        return found
    subprocess.run(["apt-get", "download", "prometheus-mysqld-exporter"], cwd=tmp, check=True, capture_output=True)
    deb = next(tmp.glob("prometheus-mysqld-exporter_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True)
    return str(tmp / "root" / "usr" / "bin" / "prometheus-mysqld-exporter")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} never came up: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmpdir:
        tmp = Path(tmpdir)
        binary = mysqld_exporter_binary(tmp)
        t = embedded(tmp, "a", [f"  t{i:03d}: {{max_connections: 5, readonly: true}}" for i in range(args.tenants)],
                     12 * args.tenants + 100)
        procs: list[subprocess.Popen] = []
        stop = threading.Event()
        try:
            cfg = t.loaded.path
            subprocess.run([sys.executable, "-m", "shared_mysql", "-c", str(cfg), "apply", "--auto-approve"],
                           check=True, capture_output=True)
            from shared_mysql.client import Client

            client = Client(config=str(cfg))

            def load(i: int) -> None:
                k = i
                while not stop.is_set():
                    try:
                        conn = client.connect(f"t{k % args.tenants:03d}")
                        with conn.cursor() as cur:
                            cur.execute("SELECT SLEEP(0.05)")
                        conn.close()
                    except Exception:  # noqa: BLE001 - load only
                        time.sleep(0.05)
                    k += 8

            workers = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(8)]
            for w in workers:
                w.start()
            ours_port, theirs_port = free_port(), free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "shared_mysql", "-c", str(cfg), "exporter", "--port",
                                           str(ours_port)], stderr=subprocess.PIPE, text=True))
            m = t.master_secret()
            env = {**os.environ, "DATA_SOURCE_NAME": f"{m['username']}:{m['password']}@tcp(127.0.0.1:{t.port})/"
                                                     "?tls=skip-verify"}
            procs.append(subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{theirs_port}"], env=env,
                                          stderr=subprocess.PIPE, text=True))
            ours, theirs = f"http://127.0.0.1:{ours_port}/metrics", f"http://127.0.0.1:{theirs_port}/metrics"
            wait_up(ours, procs[0])
            wait_up(theirs, procs[1])
            times: dict[str, list[float]] = {ours: [], theirs: []}
            bodies: dict[str, str] = {}
            for _ in range(args.scrapes):
                for url in (ours, theirs):
                    start = time.perf_counter()
                    bodies[url] = urllib.request.urlopen(url, timeout=30).read().decode()
                    times[url].append((time.perf_counter() - start) * 1000)
            count = {u: sum(1 for ln in b.splitlines() if ln and not ln.startswith("#")) for u, b in bodies.items()}
            up = "mysql_up 1" in bodies[theirs]
        finally:
            stop.set()
            for p in procs:
                p.terminate()
                p.wait(timeout=30)
            t.local_down()
    out = {"tenants": args.tenants, "scrapes": args.scrapes,
           "ours_median_ms": round(statistics.median(times[ours]), 2), "ours_p95_ms": round(pct(times[ours], 95), 2),
           "mysqld_exporter_median_ms": round(statistics.median(times[theirs]), 2),
           "mysqld_exporter_p95_ms": round(pct(times[theirs], 95), 2), "series": count[ours],
           "mysqld_exporter_series": count[theirs], "mysqld_exporter_up": up}
    print(f"{args.tenants} tenants, 8 load threads, {args.scrapes} scrapes each, interleaved")
    print(f"  {'':28} {'median':>8} {'p95':>8} {'series':>7}")
    print(f"  {'shared-mysql exporter':28} {out['ours_median_ms']:>6.1f}ms {out['ours_p95_ms']:>6.1f}ms "
          f"{out['series']:>7}")
    print(f"  {'prometheus-mysqld-exporter':28} {out['mysqld_exporter_median_ms']:>6.1f}ms "
          f"{out['mysqld_exporter_p95_ms']:>6.1f}ms {out['mysqld_exporter_series']:>7}"
          f"{'' if up else '  (mysql_up 0: it could not read the server)'}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
