"""backup/rds.py and rds_drill.py pure pieces: names, identifiers, the leftover rule, the comparison rule."""

import os
import subprocess
import sys
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from shared_mysql.backup import rds as R
from shared_mysql.backup import rds_drill as D
from shared_mysql.errors import UsageError

CONFIG = SimpleNamespace(db_instance_identifier="prod-shared-mysql")
NOW = datetime(2026, 11, 26, 10, 15, 59, tzinfo=timezone.utc)


def test_snapshot_name_follows_the_seed_in_utc():
    assert R.snapshot_name(CONFIG, "manual", NOW) == "prod-shared-mysql-manual-20261126-1015"
    assert R.snapshot_name(CONFIG, "before-migration", NOW, suffix=2) == \
        "prod-shared-mysql-before-migration-20261126-1015-2"
    kst = datetime(2026, 11, 26, 19, 15, tzinfo=timezone.utc).astimezone()  # any zone: named in UTC
    assert R.snapshot_name(CONFIG, "x", kst).endswith("-20261126-1915")
    assert R.snapshot_name(CONFIG, "x", NOW.timestamp()).endswith("-20261126-1015")


@pytest.mark.parametrize("reason", ["Manual", "a\nb", 'a"b', "a'b", "a--b", "-a", "a-", "", "a" * 33, "a b",
                                    "a_b", "a`b", "ü", None, 5])
def test_bad_reasons_are_one_line_usage_errors(reason):
    with pytest.raises(UsageError) as e:
        R.snapshot_name(CONFIG, reason, NOW)
    assert "\n" not in str(e.value) and "--reason" in str(e.value)


@pytest.mark.parametrize("ident,ok", [("a", True), ("prod-shared-mysql-restored-1", True), ("A1-b", True),
                                      ("1a", False), ("a--b", False), ("a-", False), ("-a", False), ("a_b", False),
                                      ("a" * 63, True), ("a" * 64, False), ("", False), ("a\nb", False),
                                      ("a b", False), ("a;b", False)])
def test_instance_identifier_rules(ident, ok):
    if ok:
        assert R.check_identifier(ident, "--into") == ident.lower()
    else:
        with pytest.raises(UsageError) as e:
            R.check_identifier(ident, "--into")
        assert "not a valid RDS identifier" in str(e.value) and "\n" not in str(e.value)


def test_a_long_instance_name_still_gives_valid_snapshot_restore_and_temp_names():
    long = SimpleNamespace(db_instance_identifier="staging-" + "x" * 55)  # 63 characters
    assert len(R.snapshot_name(long, "manual", NOW)) <= 255
    for name in (R.default_restore_id(long, NOW), D.temp_id(long.db_instance_identifier, NOW)):
        assert R.check_identifier(name, "name") == name and len(name) <= 63
    assert D.temp_id("prod-shared-mysql", NOW) == "prod-shared-mysql-bt-202611261015"
    assert R.default_restore_id(CONFIG, NOW) == "prod-shared-mysql-restored-202611261015"
    hyphen = "a" * 46 + "-b"  # truncation must not leave `--`
    assert "--" not in D.temp_id(hyphen, NOW)


def test_the_leftover_rule():
    me = R.operator()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = 1_800_000_000.0

    def tags(owner, expires=now + 3600, source="prod-shared-mysql", purpose="backup-test"):
        return {D.TAG_PURPOSE: purpose, D.TAG_SOURCE: source, D.TAG_OWNER: owner, D.TAG_EXPIRES: str(expires)}

    assert "is gone" in D.is_leftover(tags(f"{me} {dead.pid}"), "prod-shared-mysql", now)
    assert D.is_leftover(tags(f"{me} {os.getppid()}"), "prod-shared-mysql", now) is None  # alive
    assert D.is_leftover(tags(f"{me} {os.getpid()}"), "prod-shared-mysql", now) is None  # this very run
    assert D.is_leftover(tags("bob@elsewhere 1"), "prod-shared-mysql", now) is None  # another host, not expired
    assert "expired" in D.is_leftover(tags("bob@elsewhere 1", now - 1), "prod-shared-mysql", now)
    assert D.is_leftover(tags(f"{me} {dead.pid}", source="other"), "prod-shared-mysql", now) is None
    assert D.is_leftover(tags(f"{me} {dead.pid}", purpose="x"), "prod-shared-mysql", now) is None
    assert D.is_leftover({}, "prod-shared-mysql", now) is None
    assert D.is_leftover(tags(f"{me} notapid", "junk"), "prod-shared-mysql", now) is None


def test_the_comparison_rule():
    since = 1_800_000_000.4
    s1 = {"a.same": [10, 1], "a.diff": [10, 1], "a.moved": [10, 1], "a.aba": [10, 1], "a.gone": [5, 5]}
    s2 = {"a.same": [10, 1], "a.diff": [10, 1], "a.moved": [11, 2], "a.aba": [10, 1], "a.gone": [5, 5],
          "a.new": [1, 1]}
    restored = {"a.same": [10, 1], "a.diff": [9, 7], "a.moved": [10, 1], "a.aba": [11, 3], "a.new": [1, 1]}
    updated = {"a.same": since - 5, "a.diff": None, "a.moved": since + 1, "a.aba": 1_800_000_000.0,
               "a.gone": None, "a.new": since + 2}
    problems, skipped, n = D.compare(s1, s2, restored, updated, True, since, False)
    assert n == 2  # same, diff (gone is missing: a problem whatever its numbers)
    assert problems == ["a.diff: source 10 rows / checksum 1, restored 9 rows / checksum 7",
                        f"a.gone: missing on the restored instance (it existed at {D.R.iso(since)})"]
    assert [s.split(":")[0] for s in skipped] == ["a.aba", "a.moved", "a.new"]  # UPDATE_TIME in T's second counts
    # UPDATE_TIME untrusted (restart): PITR relies on S1 == S2; a snapshot can prove nothing.
    problems, skipped, n = D.compare(s1, s2, restored, updated, False, since, False)
    assert n == 3 and any(p.startswith("a.aba") for p in problems)  # and a.gone: missing
    problems, skipped, n = D.compare(s1, s2, restored, updated, False, since, True)
    assert n == 0 and all("server restarted" in s for s in skipped)
    # ... and a run that compared nothing is not an OK (review: "0 of 1 table(s) compared ... OK")
    assert problems and problems[-1].startswith("no table could be compared")


def test_a_table_that_existed_at_t_must_be_on_the_restore_even_if_written_since():
    """Review: a busy table missing from the restore was only "not compared"."""
    since = 1_800_000_000.4
    s1, s2 = {"a.busy": [10, 1], "a.calm": [1, 1]}, {"a.busy": [11, 2], "a.calm": [1, 1]}
    problems, _, _ = D.compare(s1, s2, {"a.calm": [1, 1]}, {"a.busy": None, "a.calm": None}, True, since, False)
    assert problems == [f"a.busy: missing on the restored instance (it existed at {D.R.iso(since)})"]
    # snapshot mode: a table created before the snapshot's time must be there, one created after need not
    created = {"a.busy": since - 100, "a.calm": since + 100}
    problems, _, _ = D.compare(s1, s2, {}, {}, False, since, True, created)
    assert [p.split(":")[0] for p in problems] == ["a.busy"]


def test_the_default_option_group_is_not_named_in_a_restore():
    """RDS assigns the engine's default option group anyway; naming it failed against moto (not found), which
    broke `restore` of an instance that never had its own option group."""
    from shared_mysql.backup.rds import _settings

    src = {"DBInstanceClass": "db.t4g.small", "OptionGroupMemberships": [{"OptionGroupName": "default:mysql-8-0"}]}
    assert "OptionGroupName" not in _settings(src, True, None)
    src["OptionGroupMemberships"] = [{"OptionGroupName": "shared-mysql-audit"}]
    assert _settings(src, True, None)["OptionGroupName"] == "shared-mysql-audit"
