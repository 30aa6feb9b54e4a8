"""A small in-process sliding-window counter of failures, for login and token throttling."""

from __future__ import annotations

import threading
import time
from collections import deque


class FailureThrottle:
    """Counts failures per key; once ``limit`` happen within ``window`` seconds, the key waits.

    State lives in the process: with several server workers each keeps its own count, so
    the effective limit is ``limit`` times the number of workers. That still turns an
    online password guess from thousands per second into a handful per window.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it is not throttled."""
        now = time.monotonic()
        with self._lock:
            failures = self._prune(key, now)
            if len(failures) < self.limit:
                return 0
            return max(1, int(failures[0] + self.window - now) + 1)

    def fail(self, key: str) -> None:
        """Record one failure for ``key``."""
        now = time.monotonic()
        with self._lock:
            self._prune(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of distinct keys
                self._failures = {k: v for k, v in self._failures.items() if v}

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a success)."""
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
