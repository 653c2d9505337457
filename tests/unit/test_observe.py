"""Pure parts of observability: literal masking, and samples into CloudWatch-style datapoints."""

import pytest

from shared_mysql.observe.sessions import mask
from shared_mysql.observe.status import PERIOD, datapoints


def test_mask_hides_every_literal():
    assert mask("ALTER USER 'a'@'%' IDENTIFIED BY 'S3cret-pass'") == "ALTER USER ?@? IDENTIFIED BY ?"
    assert mask('SELECT * FROM t WHERE card = "4111 1111" AND n IN (1, 2.5, 0xFF, 3e10)') == \
        "SELECT * FROM t WHERE card = ? AND n IN (?, ?, ?, ?)"
    assert mask("SELECT 'it''s', 'a\\'b' FROM t2") == "SELECT ?, ? ..."  # after a backslash-quote: all masked
    assert mask("SELECT 'unterminated secret") == "SELECT ?"
    assert mask("UPDATE t\nSET a = 1\n\nWHERE b = 'x'") == "UPDATE t SET a = ? WHERE b = ?"
    assert mask(None) == "" and len(mask("SELECT " + "a, " * 500)) == 200


def test_samples_become_one_datapoint_per_period_with_missing_periods():
    now = 10 * PERIOD + 100
    samples = [
        {"t": now - 2 * PERIOD, "connections": 5, "denied": 10},
        {"t": now - 1, "connections": 7, "denied": 10},
        {"t": now, "connections": 9, "denied": 22},
    ]
    pts = datapoints(samples, now)
    assert pts["DatabaseConnections"] == [None, None, 5.0, None, 9.0]  # Maximum per period; a period unsampled
    assert pts["FailedLoginAttempts"] == [None, None, None, None, 12.0]  # Sum of the increases


@pytest.mark.parametrize("sql", [
    "SELECT SLEEP(600) -- it's a comment\n, 'billing-pw-leak'",
    "SELECT /* it's */ 'billing-pw-leak'",
    "SELECT 1 # it's\n, 'billing-pw-leak'",
    "SELECT `it's`, 'billing-pw-leak'",
    "SELECT 'C:\\', 'billing-pw-leak'",  # NO_BACKSLASH_ESCAPES: the first string ends at the backslash
    "SELECT 0b1010, 'billing-pw-leak'",
])
def test_mask_never_leaks_past_comments_names_or_escapes(sql):
    out = mask(sql)
    assert "billing-pw-leak" not in out and "1010" not in out, out


def test_slow_log_entries_are_attributed_only_from_one_well_formed_header():
    from shared_mysql.observe.sessions import SlowScanner

    who = {"orders_user": "orders", "orders_user_alt": "orders", "billing_user": "billing"}
    log = [
        "# Time: 261126 10:00:00\n", "# User@Host: orders_user_alt[orders_user_alt] @ localhost [127.0.0.1]\n",
        "# Thread_id: 5  Schema: orders_db\n", "# Query_time: 1.0  Lock_time: 0.0\n", "SELECT 1;\n",
        # an account named 'orders_user[x'
        "# User@Host: orders_user[x[orders_user[x] @ localhost [127.0.0.1]\n", "# Query_time: 1.0\n", "SELECT 2;\n",
        # an account whose name holds a newline and a forged header
        "# User@Host: evil\n", "# User@Host: billing_user[billing_user] @ localhost []\n",
        "[evil\n", "# User@Host: billing_user[billing_user] @ localhost []\n", "] @ localhost [127.0.0.1]\n",
        "# Query_time: 1.0\n", "SELECT 3;\n",
        "# User@Host: admin[admin] @  [127.0.0.1]\n", "# Query_time: 1.0\n",
    ]
    s = SlowScanner(who, admins=["admin"])
    hits = [h[1] for h in (s.feed(line) for line in log) if h]
    assert hits == ["orders", "unmanaged", "unmanaged", "admin"]


def test_a_corrupt_or_hostile_history_starts_fresh(tmp_path):
    import os

    from shared_mysql.observe.status import load_history

    p = tmp_path / "metrics.json"
    for text in ('{"samples":[1,2]}', '{"samples":[{"x":1}]}', '{"samples":[{"t":"abc"}]}',
                 '{"samples":[{"t":null}]}', '{"samples":[],"states":[]}', "garbage", '{"samples":[{"t":true}]}'):
        p.write_text(text)
        h = load_history(p)
        assert h["samples"] == [] and h["states"] == {}
    p.write_text('{"samples":[{"t":5,"connections":3},{"t":"x"}],"states":{"cpu-utilization":"ALARM","x":1}}')
    assert load_history(p) == {"samples": [{"t": 5, "connections": 3}], "states": {"cpu-utilization": "ALARM"}}
    p.unlink()
    os.mkfifo(p)  # never blocks on a FIFO
    assert load_history(p)["samples"] == []
    p.unlink()
    p.symlink_to("/dev/zero")  # never follows a symlink
    assert load_history(p)["samples"] == []
