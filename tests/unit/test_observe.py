"""Pure parts of observability: literal masking, and samples into CloudWatch-style datapoints."""

from shared_mysql.observe.sessions import mask
from shared_mysql.observe.status import PERIOD, datapoints


def test_mask_hides_every_literal():
    assert mask("ALTER USER 'a'@'%' IDENTIFIED BY 'S3cret-pass'") == "ALTER USER ?@? IDENTIFIED BY ?"
    assert mask('SELECT * FROM t WHERE card = "4111 1111" AND n IN (1, 2.5, 0xFF, 3e10)') == \
        "SELECT * FROM t WHERE card = ? AND n IN (?, ?, ?, ?)"
    assert mask("SELECT 'it''s', 'a\\'b' FROM t2") == "SELECT ?, ? FROM t2"
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
