#!/usr/bin/env python3
"""Masking speed on the real embedded server, against the floor: one hand-written UPDATE over the same table.

Dataset (made here): ROWS rows (default 1,000,000) of users(id INT primary key, email VARCHAR(100) UNIQUE,
name VARCHAR(64), phone VARCHAR(20), note VARCHAR(40)); three masked columns: email -> email, name -> hash,
phone -> fixed('010-0000-0000').

  single_update_s   UPDATE users SET email = CONCAT('u', LEFT(SHA2(CONCAT(@s, email), 256), 32), '@example.com'),
                    name = LEFT(SHA2(CONCAT(@s, name), 256), 64), phone = '010-0000-0000'   (one statement, one
                    transaction: neither batched nor resumable)
  ours_s            the masking phase of `shared-mysql mask` (batches of --batch rows, each committed with its
                    progress row: resumable), same expressions, binlog off in both sessions
  ours_total_s      + the fingerprints of the source values before and the whole verification after
Both start from the same data (the table is re-made between them). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from _common import embedded  # noqa: E402

from shared_mysql.db import connect  # noqa: E402

DB = "people_db"
RULES = {"users.email": "email", "users.name": "hash", "users.phone": "fixed('010-0000-0000')"}


def make(t, rows: int) -> None:
    conn = connect(t.admin_info())
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
        cur.execute(f"DROP TABLE IF EXISTS {DB}.users")
        cur.execute(f"CREATE TABLE {DB}.users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL, name VARCHAR(64), "
                    "phone VARCHAR(20), note VARCHAR(40), UNIQUE KEY (email)) DEFAULT CHARSET utf8mb4")
        cur.execute(f"INSERT INTO {DB}.users SELECT seq, CONCAT('person', seq, '@corp.example.net'), "
                    "CONCAT('Name ', seq), CONCAT('010-', LPAD(seq % 10000, 4, '0'), '-', LPAD(seq DIV 10000, 4, "
                    f"'0')), 'n' FROM {DB}.seq_1_to_{rows}")
        cur.execute(f"ANALYZE TABLE {DB}.users")
        cur.fetchall()
    conn.close()


def single_update(t) -> float:
    conn = connect(t.admin_info())
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin=0")
        cur.execute("SET @s = SHA2(RANDOM_BYTES(32), 256)")
        t0 = time.monotonic()
        cur.execute(f"UPDATE {DB}.users SET email = CONCAT('u', LEFT(SHA2(CONCAT(@s, email), 256), 32), "
                    "'@example.com'), name = LEFT(SHA2(CONCAT(@s, name), 256), 64), phone = '010-0000-0000'")
        took = time.monotonic() - t0
    conn.close()
    return took


def ours(t, batch: int) -> dict:
    from shared_mysql.masking import engine
    from shared_mysql.masking.rules import parse_rules
    from shared_mysql.masking.run import mask_database

    conn, _ = engine.open_session(t.admin_info())
    try:
        t0 = time.monotonic()
        r = mask_database(conn, "people", parse_rules(RULES), source="bench", new_run=True, batch=batch)
        total = time.monotonic() - t0
    finally:
        conn.close()
    if not r["ok"]:
        raise SystemExit(f"masking did not verify: {r['problems']}")
    return {"total": total, "report": r}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=20000)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-masking-"))
    try:
        t = embedded(base, "server", ["  people: {}"], 200)
        make(t, a.rows)
        single = single_update(t)
        make(t, a.rows)
        # The masking phase alone: fingerprints and verification are timed by mask_database's report.
        o = ours(t, a.batch)
        rep = o["report"]
        mask_only = rep["mask_s"]
        print(f"rows {a.rows}, 3 masked columns (email, hash, fixed), unique index on email")
        print(f"  single UPDATE (floor)          {single:8.2f} s  {a.rows / single:>10,.0f} rows/s")
        print(f"  ours: fingerprints + masking   {mask_only:8.2f} s  {a.rows / mask_only:>10,.0f} rows/s  "
              f"(batches of {a.batch}, resumable)")
        print(f"  ours: + verification           {o['total']:8.2f} s")
        print(f"  ratio ours/single              {mask_only / single:8.2f}x  (goal <= 1.5x)")
        print(json.dumps({"rows": a.rows, "batch": a.batch, "ours_s": round(mask_only, 2),
                          "ours_total_s": round(o["total"], 2), "single_update_s": round(single, 2),
                          "ratio": round(mask_only / single, 2), "fingerprints": rep["fingerprints"]}))
        t.local_down()
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
