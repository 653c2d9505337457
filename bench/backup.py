#!/usr/bin/env python3
"""Backup and restore speed against the peers, in one run, on one fresh embedded server.

Dataset (made here, no sysbench needed): sysbench's oltp shape, TABLES x ROWS (default 8 x 500,000: ~1 GB on
disk) in one tenant's database: id INT AUTO_INCREMENT primary key, k INT with a secondary index, c CHAR(120),
pad CHAR(60), random digits as sysbench fills them.

  backup_s          `shared-mysql backup create` (CLI start-up included): consistent, no global lock, zstd +
                    AES-GCM sealed files with a manifest
  restore_s         `shared-mysql restore --tenant T --allow-destructive` (drop + load + indexes)
  mariadb_dump_s    `mariadb-dump --single-transaction` to one SQL file; client_restore_s: `mariadb < dump.sql`
  mydumper_s        `mydumper -t WORKERS` (takes FLUSH TABLES WITH READ LOCK); myloader_s: `myloader -t WORKERS -o`
  pitr_s            `restore --to-time` at the end of 10 minutes of binlogs (PITR_TPS transactions a second for
                    600 s, written with SET timestamp so the run does not last 10 minutes), load + replay;
                    pitr_replay_s is the replay part
Every restore goes into the same server (binlog on, as it is for all of them). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, embedded  # noqa: E402

from shared_mysql.db import connect  # noqa: E402

DB = "sbtest_db"


def cli(t, *args) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "shared-mysql"), "-c", str(t.loaded.path), *args]


def timed(cmd, **kw) -> float:
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, **kw)
    took = time.monotonic() - t0
    if res.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({res.returncode}): {res.stderr.decode(errors='replace')[-800:]}")
    return took


def make_dataset(t, tables: int, rows: int) -> float:
    conn = connect(t.admin_info())
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")  # the dataset is not part of the measured binlog
        cur.execute(f"USE {DB}")
        for i in range(1, tables + 1):
            cur.execute(f"DROP TABLE IF EXISTS {DB}.sbtest{i}")
            cur.execute(f"CREATE TABLE {DB}.sbtest{i} (id INT NOT NULL AUTO_INCREMENT, k INT NOT NULL DEFAULT 0, "
                        "c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id), "
                        "KEY k_1 (k)) ENGINE=InnoDB")
            groups = lambda n: "CONCAT_WS('-'," + ",".join(["LPAD(FLOOR(RAND()*99999999999),11,'0')"] * n) + ")"  # noqa: E731
            cur.execute(f"INSERT INTO {DB}.sbtest{i} (k, c, pad) SELECT FLOOR(RAND()*{rows}), {groups(10)}, "
                        f"{groups(5)} FROM seq_1_to_{rows}")
        cur.execute("ANALYZE TABLE " + ", ".join(f"{DB}.sbtest{i}" for i in range(1, tables + 1)))
        cur.fetchall()
        cur.execute(f"SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA='{DB}'")
        size = float(cur.fetchone()[0]) / 1e6
    conn.close()
    return size


def checksum(t, tables: int) -> list:
    conn = connect(t.admin_info())
    with conn.cursor() as cur:
        cur.execute("CHECKSUM TABLE " + ", ".join(f"{DB}.sbtest{i}" for i in range(1, tables + 1)))
        out = [r[1] for r in cur.fetchall()]
    conn.close()
    return out


def client_cnf(t, d: Path) -> Path:
    info = t.admin_info()
    p = d / "client.cnf"
    p.write_text(f"[client]\nuser={info.user}\npassword={info.password}\nhost={info.host}\nport={info.port}\n"
                 f"ssl-ca={info.ca}\nssl-verify-server-cert\n")
    p.chmod(0o600)
    return p


def recreate(t) -> None:
    conn = connect(t.admin_info())
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
    conn.close()


def binlog_minutes(t, tables: int, rows: int, tps: int, seconds: int) -> float:
    """`seconds` of OLTP writes at `tps`, stamped with SET timestamp from now on; returns the last second."""
    conn = connect(t.admin_info(), multi_statements=True)
    start = int(time.time()) + 1
    import random

    rnd = random.Random(7)
    with conn.cursor() as cur:
        batch = []
        for s in range(seconds):
            batch.append(f"SET timestamp={start + s}")
            for _ in range(tps):
                i = rnd.randint(1, tables)
                if rnd.random() < 0.7:
                    batch.append(f"UPDATE {DB}.sbtest{i} SET k=k+1 WHERE id={rnd.randint(1, rows)}")
                else:
                    batch.append(f"INSERT INTO {DB}.sbtest{i} (k, c, pad) VALUES ({rnd.randint(1, rows)}, "
                                 f"'{rnd.getrandbits(64):020d}', 'p')")
            if len(batch) > 2000:
                cur.execute(";".join(batch))
                while cur.nextset():
                    pass
                batch = []
        if batch:
            cur.execute(";".join(batch))
            while cur.nextset():
                pass
        cur.execute("SET timestamp=DEFAULT")
    conn.close()
    return start + seconds - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=8)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pitr-tps", type=int, default=100)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    t = embedded(base, "server", ["  sbtest: {}"], 200)
    subprocess.run(cli(t, "apply", "--auto-approve"), check=True, stdout=subprocess.DEVNULL)
    work = base / "work"
    work.mkdir(mode=0o700)
    cnf = client_cnf(t, work)
    out: dict = {}
    try:
        t0 = time.monotonic()
        out["size_mb"] = round(make_dataset(t, args.tables, args.rows), 1)
        print(f"dataset: {args.tables} x {args.rows} rows, {out['size_mb']} MB on disk, made in "
              f"{time.monotonic() - t0:.1f} s", file=sys.stderr)
        reference = checksum(t, args.tables)
        subprocess.run(cli(t, "backup", "archive"), check=True, capture_output=True)

        # ours
        out["backup_s"] = round(timed(cli(t, "backup", "create", "--workers", str(args.workers))), 2)
        listing = json.loads(subprocess.run(cli(t, "-o", "json", "backup", "list"), check=True,
                                            capture_output=True).stdout)
        newest = listing["backups"][-1]
        out["backup_mb"] = round(newest["size"] / 1e6, 1)
        out["lock_ms"] = newest["lock_ms"]
        out["restore_s"] = round(timed(cli(t, "restore", "--tenant", "sbtest", "--allow-destructive",
                                           "--workers", str(args.workers))), 2)
        assert checksum(t, args.tables) == reference, "our restore differs from the data"

        # mariadb-dump + client
        dump = work / "dump.sql"
        with open(dump, "wb") as f:
            t0 = time.monotonic()
            r = subprocess.run(["mariadb-dump", f"--defaults-extra-file={cnf}", "--single-transaction", "--quick",
                                DB], stdout=f, stderr=subprocess.PIPE)
            out["mariadb_dump_s"] = round(time.monotonic() - t0, 2) if r.returncode == 0 else None
        recreate(t)
        with open(dump, "rb") as f:
            t0 = time.monotonic()
            r = subprocess.run(["mariadb", f"--defaults-extra-file={cnf}", DB], stdin=f, capture_output=True)
            out["client_restore_s"] = round(time.monotonic() - t0, 2) if r.returncode == 0 else None
        assert checksum(t, args.tables) == reference, "the client restore differs from the data"
        dump.unlink()

        # mydumper / myloader
        info = t.admin_info()
        if shutil.which("mydumper") and shutil.which("myloader"):
            md = work / "mydumper"
            common = ["-h", info.host, "-P", str(info.port), "-u", info.user, "-p", info.password, "--ssl"]
            t0 = time.monotonic()
            r = subprocess.run(["mydumper", *common, "-t", str(args.workers), "-B", DB, "-o", str(md)],
                               capture_output=True)
            out["mydumper_s"] = round(time.monotonic() - t0, 2) if r.returncode == 0 else None
            t0 = time.monotonic()
            r = subprocess.run(["myloader", *common, "-t", str(args.workers), "-o", "-B", DB, "-d", str(md)],
                               capture_output=True)
            out["myloader_s"] = round(time.monotonic() - t0, 2) if r.returncode == 0 else None
            if out["myloader_s"] is not None:
                assert checksum(t, args.tables) == reference, "the myloader restore differs from the data"
            shutil.rmtree(md, ignore_errors=True)
        else:
            out["mydumper_s"] = out["myloader_s"] = None
            print("mydumper/myloader not installed (apt-get install mydumper): peers skipped", file=sys.stderr)

        # PITR: a fresh backup, 10 minutes of binlogs, restore to their last second
        subprocess.run(cli(t, "backup", "create"), check=True, capture_output=True)
        t0 = time.monotonic()
        end = binlog_minutes(t, args.tables, args.rows, args.pitr_tps, 600)
        print(f"10 minutes of binlogs ({args.pitr_tps * 600} transactions) written in {time.monotonic() - t0:.1f} s",
              file=sys.stderr)
        final = checksum(t, args.tables)
        subprocess.run(cli(t, "backup", "archive"), check=True, capture_output=True)
        when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(end))
        t0 = time.monotonic()
        res = subprocess.run(cli(t, "-o", "json", "restore", "--tenant", "sbtest", "--allow-destructive",
                                 "--to-time", when), capture_output=True)
        out["pitr_s"] = round(time.monotonic() - t0, 2)
        if res.returncode != 0:
            raise SystemExit(f"PITR restore failed: {res.stderr.decode()}")
        out["pitr_replay_s"] = json.loads(res.stdout)["replay_s"]
        assert checksum(t, args.tables) == final, "the PITR restore differs from the data at T"
    finally:
        subprocess.run(cli(t, "local", "down"), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    rows = [("backup", out["backup_s"], "mariadb-dump", out["mariadb_dump_s"], "mydumper", out["mydumper_s"]),
            ("restore", out["restore_s"], "mariadb <", out["client_restore_s"], "myloader", out["myloader_s"])]
    print(f"\n{out['size_mb']} MB ({args.tables} x {args.rows} rows), {args.workers} workers, {os.cpu_count()} cores")
    for what, ours, p1, v1, p2, v2 in rows:
        print(f"{what:<8} shared-mysql {ours:>7.2f} s   {p1:<13}{_s(v1)}   {p2:<9}{_s(v2)}")
    print(f"backup size {out['backup_mb']} MB; commits held {out['lock_ms']} ms (mydumper: FLUSH TABLES WITH READ "
          "LOCK)")
    print(f"PITR over 10 minutes of binlogs: {out['pitr_s']:.2f} s (replay {out['pitr_replay_s']} s)")
    print(json.dumps(out))


def _s(v) -> str:
    return f"{v:>7.2f} s" if v is not None else "    n/a"


if __name__ == "__main__":
    main()
