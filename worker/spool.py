"""Durable spools of events, and the drain loop that records them in the database.

:class:`EventSpool` is what a drainer reads from; two kinds implement it. The embedded
default, :class:`Spool`, is a local folder: every event is first written to its own file
(write aside, then rename: a reader never sees half a file), so a failure is kept even
when the database is down or the process dies a moment later. Several workers on one
host may share the folder: each file is claimed with ``flock`` before it is read, so no
two drainers record the same file. ``stream_spool.StreamSpool`` keeps events in a Redis
stream instead, which outlives the host.

A drainer (a process next to a prefork worker, see ``drainer.py``, or a thread for
solo/threads pools) records spooled events in batches and lets go of each one only after
its transaction committed.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from notifier import AlertType, FailureKind, FailureReport, JobKind, metrics

logger = logging.getLogger("notifier.worker")

_counter = itertools.count()


class SpoolUnavailable(Exception):
    """The spool's storage (its folder, or its Redis server) cannot be used right now."""


@dataclass
class Claim:
    """A spooled event this process holds until it calls done/release/bury.

    ``event`` is None for an entry that is not a readable failure report.
    """

    event: FailureReport | None


ClaimT = TypeVar("ClaimT", bound=Claim)


class EventSpool(ABC, Generic[ClaimT]):
    """Where events wait to be recorded: what ``emit`` writes to and a drainer reads from."""

    #: Where the events are, for log lines and the spool's platform alert.
    location: str
    #: Where dead events are, for log lines and the dead-letter alert.
    dead_location: str

    @abstractmethod
    def ensure(self) -> None:
        """Make the spool ready to take events; raise OSError/SpoolUnavailable if it cannot."""

    @abstractmethod
    def put(self, event: FailureReport) -> object:
        """Keep ``event`` durably; raise OSError/SpoolUnavailable if the spool cannot."""

    @abstractmethod
    def claim(self, limit: int) -> list[ClaimT]:
        """Take up to ``limit`` pending events that no other drainer holds."""

    @abstractmethod
    def done(self, claim: ClaimT) -> None:
        """The event is recorded (committed): forget it."""

    def done_all(self, claims: list[ClaimT]) -> None:
        """Each of ``claims`` is recorded; every one is let go of even if one fails."""
        error: Exception | None = None
        for claim in claims:
            try:
                self.done(claim)
            except Exception as exc:  # each claim must be let go of
                error = error or exc
        if error is not None:
            raise error

    @abstractmethod
    def release(self, claim: ClaimT) -> None:
        """Keep the event for a later attempt."""

    @abstractmethod
    def bury(self, claim: ClaimT) -> None:
        """Move an event that can never be recorded to the dead letters."""

    @abstractmethod
    def stats(self) -> tuple[int, int, float]:
        """Pending events, dead events, and the oldest pending event's age in seconds."""

    @abstractmethod
    def dead_count(self) -> int:
        """How many events wait in the dead letters."""

    @abstractmethod
    def dead_listing(self, limit: int) -> list[str]:
        """One line for each of the first ``limit`` dead events (its name and when it died)."""

    @abstractmethod
    def retry_dead(self) -> int:
        """Move every dead event back to be recorded again; returns how many."""

    def close(self) -> None:
        """Let go of connections (nothing for a folder)."""


@dataclass
class FileClaim(Claim):
    """A spooled file this process holds the ``flock`` of."""

    path: Path
    fd: int


class Spool(EventSpool[FileClaim]):
    """A directory of one-event JSON files, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.dead = self.directory / "dead"
        self.location = str(self.directory)
        self.dead_location = str(self.dead)
        self._ensured = False

    def ensure(self) -> None:
        """Create the directory (and its dead-letter folder) if missing."""
        self.dead.mkdir(parents=True, exist_ok=True)
        self._ensured = True

    def put(self, event: FailureReport) -> Path:
        """Write ``event`` to a new file, visible to drainers only once complete."""
        try:
            path = self._put(event)
        except FileNotFoundError:  # the folder was removed under us: recreate, write again
            self._ensured = False
            path = self._put(event)
        metrics.inc("notifier_failures_captured_total", FailureKind(event.kind).value)
        return path

    def _put(self, event: FailureReport) -> Path:
        if not self._ensured:
            self.ensure()
        stamp = int(event.occurred_at.timestamp() * 1e9)
        name = f"{stamp:020d}-{os.getpid()}-{next(_counter):08d}.json"
        folder = str(self.directory)
        tmp = f"{folder}/.{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, event.to_json().encode())
        finally:
            os.close(fd)
        path = f"{folder}/{name}"
        os.rename(tmp, path)
        return Path(path)

    def stats(self) -> tuple[int, int, float]:
        """Pending events, dead events, and the oldest pending event's age in seconds."""
        pending = self.pending()
        dead = self.dead_count()
        oldest = 0.0
        if pending:  # names start with the event's time in nanoseconds
            stamp = pending[0].name.split("-", 1)[0]
            if stamp.isdigit():
                oldest = max(0.0, time.time() - int(stamp) / 1e9)
        return len(pending), dead, oldest

    def pending(self) -> list[Path]:
        """Spooled files, oldest first."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        return [self.directory / n for n in names if not n.startswith(".")]

    def claim(self, limit: int) -> list[FileClaim]:
        """Lock up to ``limit`` pending files that no other drainer holds."""
        claims: list[FileClaim] = []
        for path in self.pending():
            if len(claims) >= limit:
                break
            claim = self._claim_one(path)
            if claim is not None:
                claims.append(claim)
        return claims

    def _claim_one(self, path: Path) -> FileClaim | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Another drainer may have recorded and unlinked it between listing and locking.
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
            with os.fdopen(os.dup(fd), encoding="utf-8") as handle:
                text = handle.read()
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        try:
            event: FailureReport | None = read_report(text)
        except (ValueError, KeyError, TypeError, AttributeError):
            event = None
        return FileClaim(event, path, fd)

    def done(self, claim: FileClaim) -> None:
        """The event is recorded: delete its file, then let go of the lock."""
        try:  # a file left behind (the folder moved away) is a replay the keys make harmless
            with suppress(FileNotFoundError):
                claim.path.unlink()
        finally:
            os.close(claim.fd)

    def release(self, claim: FileClaim) -> None:
        """Keep the file for a later attempt."""
        os.close(claim.fd)

    def bury(self, claim: FileClaim) -> None:
        """Move an event that can never be recorded to ``dead/``, for a human to look at."""
        try:
            self.ensure()
            with suppress(FileNotFoundError):
                os.replace(claim.path, self.dead / claim.path.name)
        finally:
            os.close(claim.fd)

    def dead_count(self) -> int:
        """How many events wait in the dead-letter folder."""
        return len(self._dead_files())

    def _dead_files(self) -> list[Path]:
        try:
            names = sorted(n for n in os.listdir(self.dead) if n.endswith(".json"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [self.dead / n for n in names if not n.startswith(".")]

    def dead_listing(self, limit: int) -> list[str]:
        """The first ``limit`` dead files, each with when it was moved there."""
        lines = []
        for path in self._dead_files()[:limit]:
            with suppress(FileNotFoundError):
                moved = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
                lines.append(f"{path.name}  (moved {moved:%Y-%m-%d %H:%M:%S} UTC)")
        return lines

    def retry_dead(self) -> int:
        """Move every dead file back into the folder."""
        dead = self._dead_files()
        for path in dead:
            os.replace(path, self.directory / path.name)
        return len(dead)


def read_report(text: str) -> FailureReport:
    """A spooled report, also from a spool written by a version before failure reports.

    Those files named a service method and its arguments; a worker upgraded with such
    files pending records them rather than burying them.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or "action" not in data:
        return FailureReport.from_json(text)
    action, params, alert = data["action"], dict(data["params"]), data.get("alert") or {}
    meta = dict(params.get("extra") or params.get("details") or params.get("metadata") or {})
    kinds = {"capacity": FailureKind.WORKER_LOST, "performance": FailureKind.TIME_LIMIT}
    kind = kinds.get(str(alert.get("alert_type")), FailureKind.EXCEPTION)
    if action == "notify_order_exception":
        kind = FailureKind.ORDER_EXCEPTION
    elif params.get("error_count"):
        kind = FailureKind.ROW_ERRORS
    jobs = {"notify_import_failure": JobKind.IMPORT, "notify_critical_error": JobKind.GENERIC}
    generic = action == "create_notification"
    return FailureReport(
        key=str(data["key"]),
        job=jobs.get(action, JobKind.GENERIC if generic else JobKind.SYNC),
        kind=kind,
        event=str(meta.get("event") or "failure"),
        task_name=str(meta.get("task_name") or "unknown"),
        task_id=str(meta.get("task_id") or ""),
        occurred_at=datetime.fromtimestamp(float(data["occurred_at"]), UTC),
        store_id=params.get("store_id"),
        store_name=str(params.get("store_name") or ""),
        job_id=str(params.get("job_id") or ""),
        attempts=int(meta.get("attempts") or 1),
        exception_class=meta.get("exception_class"),
        message=str(params.get("error_message") or params.get("message") or ""),
        arguments=meta.get("arguments"),
        traceback=str(meta.get("traceback") or ""),
        fingerprint=alert.get("fingerprint"),
        alert_type=AlertType(alert.get("alert_type") or AlertType.SYSTEM),
        error_count=params.get("error_count"),
        errors=meta.get("errors"),
        order_number=str(params.get("order_number") or ""),
        unmatched_products=list(params.get("unmatched_products") or []),
        notification_type=params.get("type") if generic else None,
        priority=params.get("priority") if generic else None,
        title=params.get("title") if generic else None,
    )


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
            self._raise_spool_alert()  # an outage seen while the database was down too
            self._alerted = False
            backoff = 0.0
            if self._stop.is_set():
                return
