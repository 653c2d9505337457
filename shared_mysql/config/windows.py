"""RDS backup/maintenance window rules: formats, the 30-minute minimum, and no overlap (touching is fine)."""

from __future__ import annotations

import re

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK = 7 * 1440


def _hm(s: str) -> int:
    h, m = int(s[:2]), int(s[3:])
    if h > 23 or m > 59:
        raise ValueError
    return h * 60 + m


def parse_backup(w: str) -> tuple[int, int]:
    if not re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", w):
        raise ValueError(f"backup_window {w!r}: use hh:mm-hh:mm in UTC, e.g. 03:00-04:00")
    try:
        start, end = _hm(w[:5]), _hm(w[6:])
    except ValueError:
        raise ValueError(f"backup_window {w!r}: hours 00-23, minutes 00-59") from None
    if end <= start:
        end += 1440
    if end - start < 30:
        raise ValueError(f"backup_window {w!r}: RDS needs at least 30 minutes")
    return start, end


def parse_maintenance(w: str) -> tuple[int, int]:
    m = re.fullmatch(r"([A-Za-z]{3}):(\d\d:\d\d)-([A-Za-z]{3}):(\d\d:\d\d)", w)
    if not m or m.group(1).lower() not in DAYS or m.group(3).lower() not in DAYS:
        raise ValueError(f"maintenance_window {w!r}: use ddd:hh:mm-ddd:hh:mm in UTC, e.g. Mon:04:00-Mon:05:00")
    try:
        start = DAYS.index(m.group(1).lower()) * 1440 + _hm(m.group(2))
        end = DAYS.index(m.group(3).lower()) * 1440 + _hm(m.group(4))
    except ValueError:
        raise ValueError(f"maintenance_window {w!r}: hours 00-23, minutes 00-59") from None
    if end <= start:
        end += WEEK
    if end - start < 30:
        raise ValueError(f"maintenance_window {w!r}: RDS needs at least 30 minutes")
    return start, end


def check_windows(backup: str, maintenance: str) -> None:
    bs, be = parse_backup(backup)
    ms, me = parse_maintenance(maintenance)
    for day in range(-1, 8):  # every daily backup window that can meet the weekly one, wrap-around included
        for shift in (-WEEK, 0, WEEK):
            s, e = day * 1440 + bs, day * 1440 + be
            if s < me + shift and ms + shift < e:
                raise ValueError(f"backup_window {backup} overlaps maintenance_window {maintenance}; RDS rejects "
                                 "overlapping windows (touching, as in the seed, is fine)")
