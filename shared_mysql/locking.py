"""Advisory file locks (flock) with a wait limit, shared by the instance lock and the server-start lock."""

from __future__ import annotations

import fcntl
import time


def flock_within(fd: int, wait: float, poll: float = 0.05) -> bool:
    """Take an exclusive flock on `fd`, trying for up to `wait` seconds (0: once); False when it stayed taken."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
