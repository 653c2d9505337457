"""The alarm evaluator against the CloudWatch User Guide's own tables ("How alarm state is evaluated when data is
missing"): evaluation range 5, Evaluation Periods 3, Datapoints to Alarm 3 (first table) and 2 (second table).
0 is a non-breaching datapoint, X a breaching one, - a missing one; the most recent is on the right."""

import pytest

from shared_mysql.observe.alarms import ALARM, INSUFFICIENT, OK, evaluate

RETAIN = "retain"


def points(text):
    return [{"0": 1.0, "X": 99.0, "-": None}[c] for c in text.split()]


# (datapoints, MISSING, IGNORE, BREACHING, NOT BREACHING)
TABLE_3_OF_3 = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT, RETAIN, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - X - -", ALARM, RETAIN, ALARM, OK),
]
TABLE_2_OF_3 = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - X -", ALARM, RETAIN, ALARM, OK),
]


@pytest.mark.parametrize("m,row", [(3, r) for r in TABLE_3_OF_3] + [(2, r) for r in TABLE_2_OF_3])
@pytest.mark.parametrize("current", [OK, ALARM, INSUFFICIENT])
def test_the_user_guide_tables(m, row, current):
    data, *expected = row
    for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected):
        got = evaluate(points(data), threshold=50, evaluation_periods=3, datapoints_to_alarm=m, treat_missing=treat,
                       current_state=current)
        assert got == (current if want == RETAIN else want), (data, m, treat)


@pytest.mark.parametrize("data", ["- - - - X", "- - - X -"])
def test_no_premature_alarm_from_one_recent_breach(data):
    """'the alarm does not go immediately into ALARM state when the data is either - - - - X or - - - X - and
    Datapoints to Alarm is 3'."""
    assert evaluate(points(data), threshold=50, evaluation_periods=3, datapoints_to_alarm=3,
                    current_state=OK) == OK
    assert evaluate(points(data), threshold=50, evaluation_periods=3, datapoints_to_alarm=3,
                    current_state=INSUFFICIENT) == INSUFFICIENT


def test_the_seed_alarms_two_periods_and_comparisons():
    # CPU > 80 for 2 of 2 five-minute periods
    assert evaluate([85, 90], threshold=80) == ALARM
    assert evaluate([85, 70], threshold=80) == OK
    assert evaluate([80, 80], threshold=80) == OK  # greater than, not equal
    # free storage < 5 GiB
    assert evaluate([4e9, 3e9], threshold=5 * 1024**3, comparison="LessThanThreshold") == ALARM
    # the failed-login alarm: 1 period, missing data is not breaching
    assert evaluate([None], threshold=10, evaluation_periods=1, treat_missing="notBreaching") == OK
    assert evaluate([11], threshold=10, evaluation_periods=1, treat_missing="notBreaching") == ALARM
    with pytest.raises(ValueError):
        evaluate([1], threshold=1, evaluation_periods=2, datapoints_to_alarm=3)
