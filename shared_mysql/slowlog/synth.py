"""A slow log as a busy shared server writes it (MariaDB or MySQL 8 format), for benchmarks and tests: several
services' accounts, sysbench's statements, an ORM's backquoted queries with strings, IN lists, multi-row
inserts, formatted multi-line statements, comments, and a small share of the statements pt-query-digest 3.2.1
fingerprints wrongly. Deterministic for a seed."""

from __future__ import annotations

import random
import time as _time

USERS = ("orders_user", "orders_readonly", "billing_user", "billing_user_alt", "search_user", "legacy_app", "admin")


def _statements(r: random.Random):
    n = r.randint(1, 32)
    i = r.randint(1, 1_000_000)
    c = "-".join(str(r.randint(10**10, 10**11 - 1)) for _ in range(5))
    w = r.random()
    if w < 0.30:
        return f"SELECT c FROM sbtest{n} WHERE id={i}"
    if w < 0.38:
        return f"SELECT c FROM sbtest{n} WHERE id BETWEEN {i} AND {i + 99}"
    if w < 0.42:
        return f"SELECT SUM(k) FROM sbtest{n} WHERE id BETWEEN {i} AND {i + 99}"
    if w < 0.46:
        return f"SELECT DISTINCT c FROM sbtest{n} WHERE id BETWEEN {i} AND {i + 99} ORDER BY c ASC"
    if w < 0.52:
        return f"UPDATE sbtest{n} SET k=k+1 WHERE id={i}"
    if w < 0.58:
        return f"UPDATE sbtest{n} SET c='{c}' WHERE id={i}"
    if w < 0.62:
        return f"DELETE FROM sbtest{n} WHERE id={i}"
    if w < 0.66:
        return f"INSERT INTO sbtest{n} (id, k, c, pad) VALUES ({i}, {r.randint(1, 10**6)}, '{c}', '{c[:59]}')"
    if w < 0.76:
        name = "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(4, 12)))
        return (f"SELECT `users`.`id`, `users`.`email`, `users`.`created_at` FROM `users` WHERE `users`.`email` = "
                f"'{name}.{i}@example.com' AND `users`.`deleted_at` IS NULL LIMIT 1")
    if w < 0.82:
        ids = ", ".join(str(r.randint(1, 10**6)) for _ in range(r.randint(1, 40)))
        return (f"/* app:checkout trace:{r.getrandbits(64):016x} */ SELECT o.id, o.total, e1.account_id FROM orders o "
                f"JOIN entries e1 ON e1.order_id = o.id WHERE o.customer_id IN ({ids}) ORDER BY o.created_at DESC "
                f"LIMIT {r.choice((10, 20, 50))}")
    if w < 0.86:
        rows = ",".join(f"({r.randint(1, 10**6)}, 'evt-{r.getrandbits(32):08x}', {r.random():.6f}, NOW())"
                        for _ in range(r.randint(2, 25)))
        return f"INSERT INTO events (user_id, kind, score, created_at) VALUES {rows}"
    if w < 0.92:
        return (f"SELECT\n    p.id,\n    p.name,\n    COUNT(*) AS n\nFROM products p\n    JOIN stock s ON s.product_id = "
                f"p.id\nWHERE p.category_id = {n}\n  AND s.qty > {r.randint(0, 50)}\nGROUP BY p.id, p.name\n"
                f"ORDER BY n DESC\nLIMIT 100")
    if w < 0.96:
        return (f"UPDATE `accounts` SET `balance` = `balance` - {r.randint(1, 999)}.{r.randint(0, 99):02d}, "
                f"`updated_at` = '2026-11-26 10:{r.randint(10, 59)}:00' WHERE `id` = {i} AND `balance` >= 0")
    if w < 0.98:
        return f"SELECT * FROM t_{r.choice(('a', 'b'))} WHERE flag = {r.choice(('TRUE', 'FALSE'))} AND v IS NOT NULL"
    if w < 0.985:
        return f"UPDATE counters SET n = n + 1 WHERE id = {i}"
    if w < 0.99:  # pt 3.2.1 merges this with the one above: `n ? ?`
        return f"UPDATE counters SET n = n - 1 WHERE id = {i}"
    if w < 0.995:
        return f"SELECT 1 FROM DUAL WHERE @a = {i}"
    return f"SELECT name FROM people WHERE name = '{r.choice(('it', 'o'))}''s' LIMIT 1"


def write(path, target_bytes: int, seed: int = 42, flavor: str = "mariadb", start: float | None = None) -> int:
    """Write about `target_bytes` of slow log; returns the number of entries."""
    r = random.Random(seed)
    now = int(start if start is not None else 1795683600)  # 2026-11-26 04:20 UTC
    entries = 0
    written = 0
    db = None
    with open(path, "wb") as fh:
        if flavor == "mysql":
            banner = ("/usr/sbin/mysqld, Version: 8.0.40 (MySQL Community Server - GPL). started with:\n"
                      "Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock\n"
                      "Time                 Id Command    Argument\n")
        else:
            banner = ("/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-0+deb12u1-log (Debian 12). started with:\n"
                      "Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock\nTime\t\t    Id Command\tArgument\n")
        fh.write(banner.encode())
        last_second = None
        buf = []
        while written < target_bytes:
            now += r.random() < 0.03
            user = r.choice(USERS)
            qt = r.lognormvariate(-6.5, 1.6)
            lt = qt * r.random() * 0.1
            sent, examined = r.randint(0, 100), r.randint(0, 5000)
            tid = r.randint(5, 500)
            q = _statements(r)
            schema = user.split("_")[0]
            lines = []
            if flavor == "mysql":
                frac = r.randint(0, 999999)
                stamp = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(now))
                lines.append(f"# Time: {stamp}.{frac:06d}Z")
                lines.append(f"# User@Host: {user}[{user}] @ localhost [127.0.0.1]  Id: {tid:>5}")
                lines.append(f"# Query_time: {qt:.6f}  Lock_time: {lt:.6f} Rows_sent: {sent}  Rows_examined: {examined}")
            else:
                if now != last_second:
                    lines.append("# Time: " + _time.strftime("%y%m%d %H:%M:%S", _time.localtime(now)))
                    last_second = now
                lines.append(f"# User@Host: {user}[{user}] @ localhost [127.0.0.1]")
                lines.append(f"# Thread_id: {tid}  Schema: {schema}  QC_hit: No")
                lines.append(f"# Query_time: {qt:.6f}  Lock_time: {lt:.6f}  Rows_sent: {sent}  Rows_examined: {examined}")
                lines.append(f"# Rows_affected: {r.randint(0, 3)}  Bytes_sent: {r.randint(50, 9000)}")
            if schema != db:
                lines.append(f"use {schema};")
                db = schema
            lines.append(f"SET timestamp={now};")
            lines.append(q + ";")
            text = ("\n".join(lines) + "\n").encode()
            buf.append(text)
            written += len(text)
            entries += 1
            if len(buf) >= 2000:
                fh.write(b"".join(buf))
                buf = []
        fh.write(b"".join(buf))
    return entries


__all__ = ["write", "USERS"]
