"""Failure throttles (failed logins, bad tokens) on the ``limits`` library.

Counts live in the storage named by ``NOTIFIER_RATELIMIT_STORAGE_URL``: Redis when one is
configured, so every server process and host shares one count (with two gunicorn
workers, "5 failed logins" stays 5, not 10); ``memory://`` (per process) is the embedded
default. The window is a moving window: a failure counts for exactly ``window`` seconds.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

# A Redis that stops answering must cost a login a second, not a hung thread.
_REDIS_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


def throttle_storage(url: str) -> Storage:
    """The ``limits`` storage for ``url`` (``memory://``, ``redis://...``, ``rediss://...``)."""
    problem = "it is an asyncio storage"
    try:
        if url.startswith(("redis://", "rediss://", "redis+sentinel://", "redis+cluster://")):
            storage = storage_from_string(url, key_prefix="notifier", **_REDIS_TIMEOUTS)
        else:
            storage = storage_from_string(url)
    except Exception as exc:  # the library's message names the scheme it does not know
        storage, problem = None, str(exc)
    if not isinstance(storage, Storage):
        raise ValueError(
            f"NOTIFIER_RATELIMIT_STORAGE_URL={url!r} is not a storage the throttles can use "
            f"({problem}); use memory:// or a redis:// URL"
        )
    return storage


class FailureThrottle:
    """Counts failures per key; once ``limit`` happen within ``window`` seconds, the key waits.

    Two ways to use it. :meth:`retry_after` before the work and :meth:`fail` only when it
    failed: a success never uses up the allowance, but attempts in flight at once all pass
    the check before any of them is counted. :meth:`reserve` counts the attempt before the
    work, in one atomic step of the storage: however many arrive at once, at most
    ``limit`` go ahead (for the password checks of the login form).
    If the storage cannot be reached, the throttle lets the request through and logs it:
    an outage of the counter store must not lock every admin out.
    """

    def __init__(
        self, limit: int, window: float, storage: Storage | None = None, name: str = "failures"
    ) -> None:
        self.limit = limit
        self.window = window
        self._item = RateLimitItemPerSecond(
            max(1, limit), max(1, math.ceil(window)), namespace=name
        )
        self._limiter = MovingWindowRateLimiter(storage if storage is not None else MemoryStorage())

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it is not throttled."""
        try:
            if self._limiter.test(self._item, key):
                return 0
            return self._wait(key)
        except Exception:
            log.exception("the throttle's storage failed; letting the request through")
            return 0

    def reserve(self, key: str) -> int:
        """Count one attempt for ``key`` unless throttled; the seconds to wait, or 0.

        0 lets the attempt go ahead (and counts it); otherwise nothing is counted and the
        answer is the seconds to wait.
        """
        try:
            # hit() tests and adds in one step (a Lua script on Redis, a lock in memory).
            if self._limiter.hit(self._item, key):
                return 0
            return self._wait(key)
        except Exception:
            log.exception("the throttle's storage failed; letting the request through")
            return 0

    def _wait(self, key: str) -> int:
        reset_at = self._limiter.get_window_stats(self._item, key).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def fail(self, key: str) -> None:
        """Record one failure for ``key``."""
        try:
            self._limiter.hit(self._item, key)
        except Exception:
            log.exception("the throttle's storage failed; this failure was not counted")

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a success)."""
        try:
            self._limiter.clear(self._item, key)
        except Exception:
            log.exception("the throttle's storage failed; old failures were not cleared")
