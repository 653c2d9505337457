"""RDS IAM auth tokens: cached (they live 15 minutes; refreshed 5 minutes early) and rate-limited (RDS documents at
most 200 new IAM-authenticated connections per second per instance)."""

from __future__ import annotations

import re
import threading
import time
from typing import Callable

TOKEN_LIFETIME = 15 * 60
REFRESH_BEFORE = 5 * 60
MAX_NEW_CONNECTIONS_PER_SECOND = 200


def region_of(host: str) -> str | None:
    """`x.abc.ap-northeast-2.rds.amazonaws.com` -> `ap-northeast-2`."""
    m = re.search(r"\.([a-z]{2}(?:-gov)?-[a-z]+-\d)\.rds\.amazonaws\.com(?:\.cn)?$", host)
    return m.group(1) if m else None


class TokenCache:
    def __init__(self, generate: Callable[[str, int, str, str | None], str] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._generate = generate or _boto3_generate
        self.clock = clock
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.generated = 0

    def get(self, host: str, port: int, user: str, region: str | None = None) -> str:
        key = (host, port, user, region)
        now = self.clock()
        with self._lock:
            hit = self._tokens.get(key)
            if hit and now - hit[1] < TOKEN_LIFETIME - REFRESH_BEFORE:
                return hit[0]
        token = self._generate(host, port, user, region or region_of(host))
        with self._lock:
            self._tokens[key] = (token, now)
            self.generated += 1
        return token

    def invalidate(self, host: str, port: int, user: str, region: str | None = None) -> None:
        with self._lock:
            self._tokens.pop((host, port, user, region), None)


class RateLimiter:
    """A token bucket per endpoint: at most `rate` acquisitions per second (burst up to `rate`)."""

    def __init__(self, rate: int = MAX_NEW_CONNECTIONS_PER_SECOND, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, key: object) -> float:
        """Take one slot; returns how long it waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                tokens, last = self._buckets.get(key, (float(self.rate), now))
                tokens = min(float(self.rate), tokens + (now - last) * self.rate)
                # Tolerance: after sleeping exactly the computed delay, float rounding can leave 0.999999...
                if tokens >= 1 - 1e-9:
                    self._buckets[key] = (max(0.0, tokens - 1), now)
                    return waited
                self._buckets[key] = (tokens, now)
                delay = max((1 - tokens) / self.rate, 1e-6)
            self.sleep(delay)
            waited += delay


def _boto3_generate(host: str, port: int, user: str, region: str | None) -> str:
    from ..aws import client

    return client("rds", region=region).generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user,
                                                               Region=region)
