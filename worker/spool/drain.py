"""The drain loop: spooled events recorded in batches, each in one transaction.

The drain loop: claim spooled events in batches, record each batch in one transaction, and
let go of an event only once its transaction committed.

A :class:`Drainer` runs as a daemon thread (solo and threads pools) or as the main loop
of the drainer process next to a prefork worker (``drainer.py``). While the database or
the spool is down it keeps the events and retries with backoff.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any, TypeVar

from notifier import FailureReport, metrics

from .contract import EventSpool, SpoolUnavailable

__all__ = ["BatchRecorder", "Drainer", "NotReady", "Recorder"]

logger = logging.getLogger("notifier.worker")

_T = TypeVar("_T")

#: Records a batch of events in one transaction; for each event, True when it is recorded
#: and False when it can never be (bad data). Raises when the database is unreachable.
BatchRecorder = Callable[[list[FailureReport]], list[bool]]


class NotReady(Exception):
    """The database cannot take events yet; the message says what to do, in one line."""


class Recorder:
    """What a drainer records with: a batch recorder, and what to do before and after.

    ``prepare`` runs before the first batch (and again until it succeeds): it raises while
    the database cannot take events. ``buried`` is told how many events went to the dead
    letters, ``spool_unavailable`` that the spool itself cannot be used.
    """

    def prepare(self, spool: EventSpool[Any]) -> None:
        """Check that events can be recorded now; raise (NotReady, a driver error) if not."""

    def record(self, events: list[FailureReport]) -> list[bool]:
        """Record ``events``; True for each recorded one (see :data:`BatchRecorder`)."""
        raise NotImplementedError

    def buried(self, spool: EventSpool[Any], count: int) -> None:
        """``count`` events were moved to the dead letters."""

    def drained(self) -> None:
        """Everything pending was recorded (after each successful drain)."""

    def spool_unavailable(self, spool: EventSpool[Any], error: BaseException) -> None:
        """The spool cannot take or give events (raise if this cannot be told now)."""


class _Plain(Recorder):
    def __init__(self, record: BatchRecorder) -> None:
        self._record = record

    def record(self, events: list[FailureReport]) -> list[bool]:
        return self._record(events)


class Drainer:
    """A daemon thread that records spooled events, retrying with backoff while the DB is down."""

    BATCH = 200
    POLL_SECONDS = 0.1
    MAX_BACKOFF_SECONDS = 5.0
    #: A burst of failures (a storm: one every few milliseconds) is recorded as one batch
    #: once it pauses, fills a batch, or its oldest event waited LINGER_SECONDS. A pause is
    #: no new event for QUIET_SECONDS, or for three times the burst's mean gap between
    #: events if longer (at most MAX_QUIET_SECONDS). A batch costs the same round trips
    #: (seven for a storm's) whether it holds 1 event or 200; a drainer recording a few
    #: events a transaction took more CPU than the failing tasks' own handling
    #: (BENCHMARKS.md, Worker). A lone failure waits QUIET_SECONDS. On a loaded machine
    #: the pool children stall for tens of milliseconds: a shorter pause cut bursts short.
    QUIET_SECONDS = 0.05
    MAX_QUIET_SECONDS = 0.2
    LINGER_SECONDS = 0.4

    def __init__(self, spool: EventSpool[Any], recorder: Recorder | BatchRecorder) -> None:
        self.spool = spool
        self.recorder = recorder if isinstance(recorder, Recorder) else _Plain(recorder)
        self._prepared = False
        self._ensured = False
        self._alerted = False  # the spool's alert was raised during this outage
        self._unraised: SpoolUnavailable | None = None  # an outage whose alert is not raised
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._reported = 0.0

    def start(self) -> None:
        """Start the thread (once per process)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="notifier-drainer", daemon=True)
            self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to drain once more and return (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look at the spool now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Drain what can be drained, then stop the thread."""
        thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def report(self) -> None:
        """Publish the spool's depth, dead letters and lag as gauges (at most once a second)."""
        now = time.monotonic()
        if now - self._reported < 1.0:
            return
        self._reported = now
        pending, dead, lag = self._spool_call(self.spool.stats)
        metrics.set_gauge("notifier_spool_pending_events", pending)
        metrics.set_gauge("notifier_spool_dead_events", dead)
        metrics.set_gauge("notifier_drainer_lag_seconds", lag)

    def drain(self) -> int:
        """Record every pending event now; returns how many events were handled.

        Raises SpoolUnavailable while the spool cannot be read (a folder that cannot be
        created, Redis down), and the database's error while events cannot be recorded.
        """
        if not self._ensured:
            self._spool_call(self.spool.ensure)
            self._ensured = True
        self.report()
        if not self._prepared:
            self.recorder.prepare(self.spool)
            self._prepared = True
        handled = 0
        for batch in self._batches():
            handled += self._handle(batch)
        return handled

    def _handle(self, batch: list[Any]) -> int:
        """Record one claimed batch; whatever goes wrong, no claim stays held."""
        unsettled = {id(claim): claim for claim in batch}  # by identity: claims compare by value
        try:
            readable = [claim for claim in batch if claim.event is not None]
            buried = 0
            for claim in batch:
                if claim.event is None:
                    logger.error(
                        "notifier: unreadable spooled event moved to %s", self.spool.dead_location
                    )
                    del unsettled[id(claim)]
                    self.spool.bury(claim)
                    buried += 1
            recorded = self.recorder.record([c.event for c in readable])
            finished = [claim for claim, ok in zip(readable, recorded, strict=True) if ok]
            for claim in finished:
                del unsettled[id(claim)]
            self.spool.done_all(finished)
            for claim, ok in zip(readable, recorded, strict=True):
                if not ok:
                    del unsettled[id(claim)]
                    self.spool.bury(claim)
                    buried += 1
            if buried:
                self.recorder.buried(self.spool, buried)
        finally:
            for claim in unsettled.values():
                with suppress(Exception):
                    self.spool.release(claim)
        return len(batch)

    def _settle(self) -> None:
        """Wait while a burst of events is still arriving (see :attr:`QUIET_SECONDS`)."""
        waited = 0.0
        while not self._stop.is_set():
            try:
                burst = self.spool.burst()
            except Exception:  # drain() meets it again and reports it
                return
            if burst is None:
                return
            count, oldest, newest = burst
            if count == 0 or count >= self.BATCH or max(oldest, waited) >= self.LINGER_SECONDS:
                return
            gap = (oldest - newest) / (count - 1) if count > 1 else 0.0
            quiet = min(max(self.QUIET_SECONDS, 3 * gap), self.MAX_QUIET_SECONDS)
            if newest >= quiet:
                return
            pause = min(quiet - newest, self.LINGER_SECONDS - max(oldest, waited))
            self._stop.wait(pause)
            waited += pause

    def _spool_call(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except OSError as exc:  # SpoolUnavailable passes through as it is
            raise SpoolUnavailable(f"{self.spool.location}: {exc}") from exc

    def _batches(self) -> Iterator[list[Any]]:
        while True:
            batch = self._spool_call(lambda: self.spool.claim(self.BATCH))
            if not batch:
                return
            yield batch
            if len(batch) < self.BATCH:
                # Caught up: what arrived meanwhile is a burst still going on, which the run
                # loop lets settle (claiming it now made a transaction of a few events each).
                return

    def _run(self) -> None:
        self.run()

    def _spool_failed(self, exc: SpoolUnavailable) -> None:
        """Note the spool's outage: its platform alert is raised once per outage."""
        self._ensured = False
        if not self._alerted:
            self._unraised = exc

    def _raise_spool_alert(self) -> None:
        """Raise a noted spool alert; kept for the next round while the database is down."""
        exc = self._unraised
        if exc is None:
            return
        try:
            self.recorder.spool_unavailable(self.spool, exc)
        except Exception as alert_error:
            logger.debug("notifier: spool alert not raised yet: %s", alert_error)
            return
        self._unraised = None
        self._alerted = True

    def _log_failure(self, exc: Exception) -> None:
        """One line when draining starts to fail (not one per retry)."""
        if isinstance(exc, NotReady):
            logger.warning("%s", exc)
        elif isinstance(exc, SpoolUnavailable):
            logger.error(
                "notifier: the spool cannot be used (%s); failures are recorded straight to "
                "the database meanwhile, and drained from the spool once it works again",
                exc,
            )
        else:
            logger.warning(
                "notifier: cannot record events yet, keeping them in %s and retrying (%s: %s)",
                self.spool.location,
                type(exc).__name__,
                exc,
            )

    def run(self, alive: Callable[[], bool] = lambda: True) -> None:
        """The drain loop, in the calling thread, until stopped or ``alive()`` turns False."""
        backoff = 0.0
        failing = False
        while True:
            if not alive():
                self._stop.set()
            self._wake.wait(backoff or self.POLL_SECONDS)
            self._wake.clear()
            if not backoff:
                self._settle()
            try:
                self.drain()
            except Exception as exc:  # the database or the spool is down: keep the events
                backoff = min(max(backoff * 2, 0.25), self.MAX_BACKOFF_SECONDS)
                if isinstance(exc, SpoolUnavailable):
                    self._spool_failed(exc)
                self._raise_spool_alert()
                if not failing:
                    self._log_failure(exc)
                failing = True
                if self._stop.is_set():
                    return
                continue
            if failing:
                logger.warning("notifier: recording events again")
            failing = False
            try:
                self.recorder.drained()
            except Exception as exc:  # told again after the next drain
                logger.debug("notifier: after the drain: %s", exc)
            self._raise_spool_alert()  # an outage seen while the database was down too
            self._alerted = False
            backoff = 0.0
            if self._stop.is_set():
                return
