"""A durable local spool of events, and the drain loop that records them in the database.

Every event is first written to its own file (write aside, then rename: a reader never
sees half a file), so a failure is kept even when the database is down or the process
dies a moment later. A drainer (a process next to a prefork worker, see ``drainer.py``, or
a thread for solo/threads pools) records spooled events in batches and deletes each file
only after its transaction committed. Several workers on one host may share the
directory: each file is claimed with ``flock`` before it is read, so no two drainers
record the same file.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from notifier import AlertType, FailureKind, FailureReport, JobKind, metrics

logger = logging.getLogger("notifier.worker")

_counter = itertools.count()


@dataclass
class Claim:
    """A spooled event this process holds the lock of until it calls done/release."""

    path: Path
    fd: int
    event: FailureReport | None


class Spool:
    """A directory of one-event JSON files, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.dead = self.directory / "dead"
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
        try:
            dead = sum(1 for n in os.listdir(self.dead) if n.endswith(".json"))
        except FileNotFoundError:
            dead = 0
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

    def claim(self, limit: int) -> list[Claim]:
        """Lock up to ``limit`` pending files that no other drainer holds."""
        claims: list[Claim] = []
        for path in self.pending():
            if len(claims) >= limit:
                break
            claim = self._claim_one(path)
            if claim is not None:
                claims.append(claim)
        return claims

    def _claim_one(self, path: Path) -> Claim | None:
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
        return Claim(path, fd, event)

    def done(self, claim: Claim) -> None:
        """The event is recorded: delete its file, then let go of the lock."""
        with suppress(FileNotFoundError):
            claim.path.unlink()
        os.close(claim.fd)

    def release(self, claim: Claim) -> None:
        """Keep the file for a later attempt."""
        os.close(claim.fd)

    def bury(self, claim: Claim) -> None:
        """Move an event that can never be recorded to ``dead/``, for a human to look at."""
        self.ensure()
        with suppress(FileNotFoundError):
            os.replace(claim.path, self.dead / claim.path.name)
        os.close(claim.fd)

    def dead_count(self) -> int:
        """How many events wait in the dead-letter folder."""
        try:
            return sum(1 for n in os.listdir(self.dead) if n.endswith(".json"))
        except FileNotFoundError:
            return 0


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


#: Records a batch of events in one transaction; for each event, True when it is recorded
#: and False when it can never be (bad data). Raises when the database is unreachable.
BatchRecorder = Callable[[list[FailureReport]], list[bool]]


class NotReady(Exception):
    """The database cannot take events yet; the message says what to do, in one line."""


class Recorder:
    """What a drainer records with: a batch recorder, and what to do before and after.

    ``prepare`` runs before the first batch (and again until it succeeds): it raises while
    the database cannot take events. ``buried`` is told how many events went to ``dead/``.
    """

    def prepare(self, spool: Spool) -> None:
        """Check that events can be recorded now; raise (NotReady, a driver error) if not."""

    def record(self, events: list[FailureReport]) -> list[bool]:
        """Record ``events``; True for each recorded one (see :data:`BatchRecorder`)."""
        raise NotImplementedError

    def buried(self, spool: Spool, count: int) -> None:
        """``count`` events were moved to the dead-letter folder."""


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

    def __init__(self, spool: Spool, recorder: Recorder | BatchRecorder) -> None:
        self.spool = spool
        self.recorder = recorder if isinstance(recorder, Recorder) else _Plain(recorder)
        self._prepared = False
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
        pending, dead, lag = self.spool.stats()
        metrics.set_gauge("notifier_spool_pending_events", pending)
        metrics.set_gauge("notifier_spool_dead_events", dead)
        metrics.set_gauge("notifier_drainer_lag_seconds", lag)

    def drain(self) -> int:
        """Record every pending event now; returns how many files were handled."""
        self.report()
        if not self._prepared:
            self.recorder.prepare(self.spool)
            self._prepared = True
        handled = 0
        for batch in self._batches():
            readable = [claim for claim in batch if claim.event is not None]
            for claim in batch:
                if claim.event is None:
                    logger.error("notifier: unreadable spool file moved to %s", self.spool.dead)
                    self.spool.bury(claim)
            try:
                recorded = self.recorder.record([c.event for c in readable if c.event is not None])
            except BaseException:
                for claim in readable:
                    self.spool.release(claim)
                raise
            buried = len(batch) - len(readable)
            for claim, ok in zip(readable, recorded, strict=True):
                if ok:
                    self.spool.done(claim)
                else:
                    self.spool.bury(claim)
                    buried += 1
            if buried:
                self.recorder.buried(self.spool, buried)
            handled += len(batch)
        return handled

    def _batches(self) -> Iterator[list[Claim]]:
        while True:
            batch = self.spool.claim(self.BATCH)
            if not batch:
                return
            yield batch

    def _run(self) -> None:
        self.run()

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
            except Exception as exc:  # the database is down or unreachable: keep the files
                backoff = min(max(backoff * 2, 0.25), self.MAX_BACKOFF_SECONDS)
                if not failing and isinstance(exc, NotReady):
                    logger.warning("%s", exc)
                elif not failing:
                    logger.warning(
                        "notifier: cannot record events yet, keeping them in %s and retrying "
                        "(%s: %s)",
                        self.spool.directory,
                        type(exc).__name__,
                        exc,
                    )
                failing = True
                if self._stop.is_set():
                    return
                continue
            if failing:
                logger.warning("notifier: recording events again")
            failing = False
            backoff = 0.0
            if self._stop.is_set():
                return
