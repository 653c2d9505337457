"""`slowlog digest` on the embedded server's own slow log (long_query_time = 0): every entry it writes is read
(no garbage, no unknown header field), queries run by two tenants' accounts are attributed to those tenants, the
admin's to admin, an account outside the config to `unmanaged` with its name, and a password in a CREATE USER
never prints."""

import json

from .helpers import login


def test_the_servers_own_slow_log_by_tenant(instance_factory):
    i = instance_factory({"orders": {"max_connections": 3}, "billing": {"max_connections": 3}},
                         parameters={"long_query_time": 0})
    i.cli("apply", "--auto-approve", check=True)
    t = i.target()
    runs = {"orders": 5, "billing": 3}
    for name, n in runs.items():
        c = login({**t.store.get(f"test-{name}-db-credentials"), "ssl_ca": t.ca})
        cur = c.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, v VARCHAR(20))")
        for k in range(n):
            cur.execute("INSERT INTO items VALUES (%s, %s)", (k, f"value-{k}"))
            cur.execute("SELECT v FROM items WHERE id = %s", (k,))
        c.commit()
        c.close()
    with t.executor() as ex:
        ex.query("CREATE USER 'stranger'@'%' IDENTIFIED BY 'Slow-Log-Secret-7'")
    try:
        s = login({"host": "127.0.0.1", "port": i.port, "username": "stranger", "password": "Slow-Log-Secret-7",
                   "ssl_ca": t.ca}, database=None)
        s.cursor().execute("SELECT 42")
        s.close()
    finally:
        with t.executor() as ex:
            ex.query("DROP USER 'stranger'@'%'")
    raw = t.server.paths.slow_log.read_bytes()
    assert b"Slow-Log-Secret-7" in raw  # MariaDB logs the statement as sent: the digest must mask it
    res = i.cli("slowlog", "digest", "-o", "json", "--limit", "0")
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert r["skipped"]["garbage"] == 0 and r["unknown_fields"] == {}, r["skipped"]
    by = {(c["fingerprint"], tt["tenant"]): tt["count"] for c in r["classes"] for tt in c["tenants"]}
    assert by[("select v from items where id = ?", "orders")] == 5
    assert by[("select v from items where id = ?", "billing")] == 3
    assert by[("insert into items values(?+)", "orders")] == 5
    tenants = {x["tenant"]: x for x in r["tenants"]}
    assert {"orders", "billing", "admin", "unmanaged"} <= set(tenants)
    assert any(u["user"] == "stranger" for u in tenants["unmanaged"]["users"])
    assert any(c["fingerprint"].startswith("create user ?@? identified by ?") for c in r["classes"])
    for fmt in (["-o", "json"], [], ["--pt-compatible"], ["--tenant", "admin"]):
        out = i.cli("slowlog", "digest", "--limit", "0", *fmt)
        assert out.returncode == 0 and "Slow-Log-Secret-7" not in out.stdout + out.stderr, fmt
    only = json.loads(i.cli("slowlog", "digest", "-o", "json", "--tenant", "billing", check=True).stdout)
    assert {x["tenant"] for x in only["tenants"]} == {"billing"} and only["skipped"]["filtered_out"] > 0
