"""CloudWatch's alarm semantics as one pure function, so an alarm means the same thing on every target.

An alarm looks at datapoints, one per period (a statistic over the samples in it), oldest first; the last
`evaluation_periods` (N) of them decide, `datapoints_to_alarm` (M) of which must breach. The evaluation range
reaches a little further back (CloudWatch: 5 datapoints for N = 3) for when recent ones are missing. As the
CloudWatch User Guide ("How alarm state is evaluated when data is missing") has it:
  - no missing datapoint among the N most recent: M of those N breaching -> ALARM, else OK;
  - some missing, but at least N real datapoints in the range: the N most recent real ones decide;
  - fewer than N real: the missing ones are filled as few times as possible, per `treat_missing`:
    breaching / notBreaching fill them; `missing` evaluates the real ones (none at all: INSUFFICIENT_DATA);
    `ignore` does the same but keeps the current state where `missing` would change it for want of data;
  - "premature alarm": with fewer than M real datapoints, ALARM anyway when the oldest breaching one among the N
    most recent is at least M periods old and everything after it is breaching or missing.
"""

from __future__ import annotations

from typing import Sequence

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
COMPARISONS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
TREAT_MISSING = ("missing", "ignore", "breaching", "notBreaching")


def evaluate(points: Sequence[float | None], *, threshold: float, comparison: str = "GreaterThanThreshold",
             evaluation_periods: int = 2, datapoints_to_alarm: int | None = None, treat_missing: str = "missing",
             current_state: str = INSUFFICIENT) -> str:
    """The state an alarm moves to, given the datapoints of its evaluation range (oldest first, None = missing)."""
    n = evaluation_periods
    m = datapoints_to_alarm or n
    if not 1 <= m <= n:
        raise ValueError(f"datapoints_to_alarm must be 1..{n}, not {m}")
    if treat_missing not in TREAT_MISSING:
        raise ValueError(f"treat_missing must be one of {', '.join(TREAT_MISSING)}")
    breaches = COMPARISONS[comparison]
    marks = [None if p is None else breaches(p, threshold) for p in points]  # None missing, True breaching
    recent = marks[-n:]
    real = [x for x in marks if x is not None]

    def decide(values) -> str:
        return ALARM if sum(1 for x in values if x) >= m else OK

    if len(recent) == n and None not in recent:
        return decide(recent)
    if len(real) >= n:
        return decide(real[-n:])
    fill = n - len(real)
    if treat_missing == "breaching":
        return decide(real + [True] * fill)
    if treat_missing == "notBreaching":
        return decide(real + [False] * fill)
    # missing / ignore: only the real datapoints, with CloudWatch's guard against premature (and late) alarms.
    hold = current_state if treat_missing == "ignore" else None
    if not real:
        return hold or INSUFFICIENT
    if len(real) >= m:
        return decide(real)
    window = [None] * (n - len(recent)) + recent  # the N most recent periods, oldest first
    oldest = next((i for i, x in enumerate(window) if x), None)
    if oldest is not None and n - oldest >= m and all(x is not False for x in window[oldest:]):
        return hold or ALARM
    if not any(real):
        return OK
    return current_state  # too few datapoints to say yet (CloudWatch waits rather than alarm early)


__all__ = ["evaluate", "OK", "ALARM", "INSUFFICIENT", "COMPARISONS", "TREAT_MISSING"]
