"""Resolve on recovery, worker side: a success of a task with an open alert is spooled.

Every success passes through ``task_success``, so the check there is one lookup in
:data:`watching`, a frozenset of task names this process holds, and nothing else. Each
process refreshes it (with one cheap query, on a daemon thread) every
``notifier_recovery_refresh`` seconds (default 5); a failure this process spools for a
task adds the task at once. Only a success of a watched task (for a watched store) is
spooled, as a report whose ``event`` is ``recovered``; the drainer resolves the alert.

Which failures resolve on recovery: ``notifier_auto_resolve_failures`` app-wide (default
``"store"``: the imports and syncs of a store, whose next successful run for the same
store is the same data flowing again; ``True``: every task; ``False``: none), and a task's
own ``notifier_auto_resolve = True | False`` option over it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from celery.concurrency import get_implementation

from notifier import RECOVERED, Database, FailureReport, JobKind, watched_recoveries

from ..decorators import spec_of, task_arguments
from ..spool.choice import database_tag
from .inhibition import broker_tag, connection_scopes

__all__ = [
    "DEFAULT_REFRESH_SECONDS",
    "RecoveryWatch",
    "forget",
    "on_worker_process_init",
    "on_worker_ready",
    "watch_for",
    "watching",
]

logger = logging.getLogger("notifier.worker")

DEFAULT_REFRESH_SECONDS = 5.0
#: Seconds a failure spooled here stays watched while its alert is not in the database yet.
LOCAL_GRACE = 60.0
#: The task names some process's watch holds: the success path's only check.
watching: frozenset[str] = frozenset()
_watches: weakref.WeakKeyDictionary[Any, RecoveryWatch] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _publish() -> None:
    global watching  # one frozenset swapped whole: readers never lock
    watching = frozenset(name for w in list(_watches.values()) for name, _ in w.pairs)


class RecoveryWatch:
    """One app's watched (task, store) pairs in this process, and the thread refreshing them."""

    def __init__(self, app: Any, database: Callable[[], Database]) -> None:
        self._app = weakref.ref(app)
        self._database = database
        self.pairs: frozenset[tuple[str, int | None]] = frozenset()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._database_tag = ""
        self._broker_tag = ""
        self._local: dict[tuple[str, int | None], float] = {}

    def _setting(self, name: str, default: Any) -> Any:
        app = self._app()
        value = app.conf.get(name) if app is not None else None
        return default if value is None else value

    def start(self) -> None:
        """Start refreshing in this process (once per process; again after a fork)."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifier-recovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing."""
        self._stop.set()

    def _run(self) -> None:
        every = float(self._setting("notifier_recovery_refresh", DEFAULT_REFRESH_SECONDS))
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # the database is away: keep what we had
                logger.debug("notifier: recovery watch not refreshed: %s", exc)
            self._stop.wait(every)

    def refresh(self) -> None:
        """Read the open recoverable alerts once."""
        with self._database().session_scope() as db:
            found = watched_recoveries(db)
        # A failure this process spooled stays watched until the database shows its alert
        # (the drainer may not have recorded it yet), or for LOCAL_GRACE seconds at most.
        now = time.monotonic()
        with _lock:
            self._local = {
                pair: at
                for pair, at in self._local.items()
                if pair not in found and now - at < LOCAL_GRACE
            }
            self.pairs = frozenset(found) | frozenset(self._local)
        _publish()

    def add(self, task_name: str, store_id: int | None) -> None:
        """A failure this process spooled: watch its task now, not at the next refresh."""
        pair = (task_name, store_id)
        with _lock:
            self._local[pair] = time.monotonic()
            if pair in self.pairs:  # a storm: watched already, nothing to rebuild
                return
            self.pairs = self.pairs | {pair}
        _publish()

    # -- the two hooks ------------------------------------------------------------------

    def resolves_on_success(self, task: Any, job: JobKind) -> bool:
        """Whether ``task``'s failure alert resolves on its next success (see module doc)."""
        own = getattr(task, "notifier_auto_resolve", None)
        if own is not None:
            return bool(own)
        default = self._setting("notifier_auto_resolve_failures", "store")
        if default == "store":
            return job in (JobKind.IMPORT, JobKind.SYNC)
        return bool(default)

    def annotate(
        self, report: FailureReport, task: Any, exc: BaseException, database_url: str
    ) -> FailureReport:
        """``report`` with its root-cause scopes and whether it resolves on recovery."""
        if not self._database_tag:  # both tags once per process, not a hash per failure
            self._database_tag = database_tag(database_url)
            app = self._app()
            self._broker_tag = broker_tag(app) if app is not None else ""
        scopes = connection_scopes(exc, self._database_tag, self._broker_tag)
        resolves = (
            report.fingerprint is not None
            and report.event == "failure"
            and self.resolves_on_success(task, report.job)
        )
        if resolves:
            self.add(report.task_name, report.store_id)
        if scopes:
            return replace(report, scopes=scopes, resolve_on_success=resolves)
        if resolves:
            # Only the flag changes on a report made a moment ago and not yet shared: set it
            # rather than building (and normalizing every field of) a copy per failure.
            object.__setattr__(report, "resolve_on_success", True)
        return report

    def succeeded(self, task: Any, emit: Callable[[FailureReport], None]) -> None:
        """A watched task succeeded: spool a recovery if it was for a watched store."""
        request = task.request
        if request.id is None:
            return
        name = str(task.name)
        store_id: int | None = None
        spec = spec_of(task)
        if spec is not None:
            located = spec.locate(task_arguments(task, request.args, request.kwargs), request.id)
            store_id = located["store_id"]
        if (name, store_id) not in self.pairs and (name, None) not in self.pairs:
            return
        emit(
            FailureReport(
                key=f"celery:{request.id}:{RECOVERED}",
                job=spec.job if spec is not None else JobKind.GENERIC,
                event=RECOVERED,
                task_name=name,
                task_id=str(request.id),
                store_id=store_id,
            )
        )


def watch_for(app: Any, database: Callable[[], Database]) -> RecoveryWatch:
    """The app's watch in this process, made on first use."""
    with _lock:
        watch = _watches.get(app)
        if watch is None:
            watch = _watches[app] = RecoveryWatch(app, database)
        return watch


def forget(app: Any) -> None:
    """Stop and drop the app's watch (``uninstall``)."""
    with _lock:
        watch = _watches.pop(app, None)
    if watch is not None:
        watch.stop()
    _publish()


def on_worker_process_init(**_: Any) -> None:
    """A pool child (or a solo worker) starts: refresh its watches from here."""
    try:
        for watch in list(_watches.values()):
            watch.start()
    except Exception:
        logger.exception("notifier: the recovery watch did not start; tasks are unaffected")


def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """A threads pool runs its tasks in this process: refresh here (prefork: in the children)."""
    try:
        if isinstance(getattr(sender, "pool", None), get_implementation("prefork")):
            return
        for watch in list(_watches.values()):
            watch.start()
    except Exception:
        logger.exception("notifier: the recovery watch did not start; tasks are unaffected")
