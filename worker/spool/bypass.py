"""Reports the spool cannot take: recorded straight to the database, else held and retried.

A spool folder that turned unwritable (permissions, a full disk, a folder replaced by a
file) or a Redis spool that is unreachable must not lose the failures that happen
meanwhile. The process that has the report records it in the database at once, in the
same transaction as a platform alert about the spool; if the database cannot take it
either, the report is held in this process's memory and a thread retries the spool, then
the database, until one of them takes it. Replays are harmless: the processed keys make
recording exact whichever way a report arrives.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from notifier import FailureReport

from .contract import EventSpool

logger = logging.getLogger("notifier.worker")

#: Records reports straight to the database and counts the spool's alert, in one
#: transaction; raises when the database cannot take them.
DirectRecorder = Callable[[EventSpool[Any], list[FailureReport], BaseException], list[bool]]


class SpoolBypass:
    """What a process does with the reports its spool refused; see the module docstring."""

    RETRY_SECONDS = 0.5
    MAX_RETRY_SECONDS = 5.0
    BATCH = 200
    #: Held at most; beyond it the oldest are dropped (and said so), rather than the worker
    #: running out of memory in an outage of both the spool and the database.
    MAX_HELD = 100_000

    def __init__(self, spool: EventSpool[Any], record: DirectRecorder) -> None:
        self.spool = spool
        self._record = record
        self._held: deque[FailureReport] = deque()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    @property
    def held(self) -> int:
        """How many reports wait in memory."""
        return len(self._held)

    def take(self, report: FailureReport, error: BaseException) -> None:
        """``report`` could not be spooled (``error``): record it now, or hold it for later."""
        if self._record_now([report], error):
            return
        with self._lock:
            self._held.append(report)
            if len(self._held) > self.MAX_HELD:
                self._held.popleft()
                logger.error(
                    "notifier: more than %d failure reports held in memory while neither "
                    "the spool nor the database takes them; the oldest one is dropped",
                    self.MAX_HELD,
                )
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._retry, name="notifier-bypass", daemon=True
                )
                self._thread.start()

    def _record_now(self, reports: list[FailureReport], error: BaseException) -> bool:
        try:
            outcomes = self._record(self.spool, reports, error)
        except Exception as exc:
            if not self._warned:
                logger.error(
                    "notifier: the spool cannot take failure reports (%s) and the database "
                    "cannot either (%s: %s); holding them in memory (pid %d) and retrying",
                    error,
                    type(exc).__name__,
                    exc,
                    os.getpid(),
                )
                self._warned = True
            return False
        if not self._warned:
            logger.error(
                "notifier: the spool cannot take failure reports (%s); recording them "
                "straight to the database",
                error,
            )
            self._warned = True
        refused = len(outcomes) - sum(outcomes)
        if refused:
            logger.error(
                "notifier: %d failure report(s) could never be recorded and the spool cannot "
                "keep them as dead letters (%s)",
                refused,
                error,
            )
        return True

    def flush(self) -> int:
        """Hand held reports to the spool, else the database, oldest first.

        Returns how many are still held (both still refuse them).
        """
        with self._flushing:
            while True:
                with self._lock:
                    if not self._held:
                        self._warned = False
                        return 0
                    first = self._held[0]
                try:
                    self.spool.put(first)
                    taken = [first]
                except Exception as exc:
                    with self._lock:
                        taken = list(itertools.islice(self._held, self.BATCH))
                    if not self._record_now(taken, exc):
                        return len(self._held)
                with self._lock:
                    for report in taken:  # by identity: take() may have dropped the oldest
                        if self._held and self._held[0] is report:
                            self._held.popleft()

    def _retry(self) -> None:
        delay = self.RETRY_SECONDS
        while self._held:
            self._wake.wait(delay)
            self._wake.clear()
            if self.flush():
                delay = min(delay * 2, self.MAX_RETRY_SECONDS)

    def close(self) -> None:
        """At process exit: one last flush; say how many reports are lost if any remain."""
        left = self.flush()
        if left:
            logger.error(
                "notifier: %d failure report(s) lost at exit: neither the spool (%s) nor the "
                "database took them",
                left,
                self.spool.location,
            )
