"""Runs of beat entries, recorded by the worker that runs them, and beat's own ticks.

Only runs of tasks that a beat entry names are recorded (two short transactions, start
and finish): any other task pays one dictionary lookup in ``task_prerun`` and
``task_postrun``. A run counts when a worker started it, not when beat sent it: a run
routed to a queue nobody consumes is a miss. Entries sharing a task are told apart by
their arguments.

In the beat process (``celery beat``, or ``worker -B``), the scheduler loop stamps the time
of each pass in memory, and a thread started at ``beat_init`` syncs the schedule into the
store (with when beat itself will next send each entry) and writes the loop's latest
pass as beat's tick. The watcher counts beat as stopped after its longest interval plus
grace without one: a beat whose process died, or whose loop hangs in a blocking call.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery, signals
from celery.concurrency import get_implementation

from notifier import Database, schema_problem
from notifier.health import beat_ticked, grace_for, run_finished, run_started

from ..guard import guard
from .schedule import (
    WatchedEntry,
    database_url,
    live_redis_url,
    scheduler_dues,
    sync_schedule,
    watched_entries,
)
from .watch import WatcherThread, watch_every

__all__ = ["install_health", "uninstall_health"]

logger = logging.getLogger("notifier.worker")

_ASK_EVERY = 60.0  # seconds between two looks at a schema that was not ready
_UIDS = {
    "worker_init": "notifier.health.worker_init",
    "beat_init": "notifier.health.beat_init",
    "worker_ready": "notifier.health.worker_ready",
    "worker_shutdown": "notifier.health.worker_shutdown",
    "worker_process_init": "notifier.health.worker_process_init",
}


class _AppHealth:
    """One app's watched entries by task name, and this process's database, built on use."""

    def __init__(self, app: Celery) -> None:
        self._app = weakref.ref(app)
        self._by_task: dict[str, list[WatchedEntry]] | None = None
        self._database: Database | None = None
        self.watcher: WatcherThread | None = None
        self.lock = threading.Lock()
        self._ready = False
        self._asked = -_ASK_EVERY

    @property
    def conf(self) -> Mapping[str, Any]:
        app = self._app()
        return app.conf if app is not None else {}

    def by_task(self) -> dict[str, list[WatchedEntry]]:
        if self._by_task is None:
            found: dict[str, list[WatchedEntry]] = {}
            for entry in watched_entries(self.conf, self._app()):
                found.setdefault(entry.task, []).append(entry)
            self._by_task = found
        return self._by_task

    def ready(self) -> bool:
        """Whether the store has this release's schema (asked at most once a minute).

        Until it does (a host upgraded the package but not yet the database), runs are not
        recorded, and one warning says so, rather than a traceback per run.
        """
        now = time.monotonic()
        if self._ready or now - self._asked < _ASK_EVERY:
            return self._ready
        self._asked = now
        url = database_url(self.conf)
        problem = schema_problem(url)
        self._ready = problem is None
        if problem is not None:
            logger.warning(
                "notifier: scheduled runs are not recorded: %s; run `notifier init-db`", problem
            )
        return self._ready

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database(
                database_url(self.conf), live_redis_url=live_redis_url(self.conf)
            )
        return self._database

    def forget_database(self) -> None:
        """In a forked child: the parent's engine is not ours to use."""
        self._database = None
        self.lock = threading.Lock()
        self._ready = False
        self._asked = -_ASK_EVERY

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self._database is not None:
            self._database.dispose()
            self._database = None


_apps: weakref.WeakKeyDictionary[Celery, _AppHealth] = weakref.WeakKeyDictionary()
#: Start times of this process's runs in progress, by task id (a run starts and ends here).
_started: dict[str, datetime] = {}
#: The per-task connections made by ``_connect_runs``, to undo in ``uninstall_health``.
_run_uids: dict[str, Any] = {}


def _entry_of(state: _AppHealth, task: Any, args: Any, kwargs: Any) -> WatchedEntry | None:
    candidates = state.by_task().get(task.name)
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    return next((entry for entry in candidates if entry.matches(args, kwargs)), None)


def _on_task_prerun(
    sender: Any = None, task_id: str | None = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    state = _apps.get(getattr(sender, "app", None))
    if state is None or task_id is None:
        return
    with guard("task_prerun (job health)"):
        entry = _entry_of(state, sender, args, kwargs)
        if entry is None or not state.ready():
            return
        now = datetime.now(UTC)
        _started[task_id] = now
        with state.database.session_scope(immediate=True) as db:
            run_started(db, entry.name, task_id=task_id, next_due_at=entry.next_due_after(now))


def _on_task_postrun(
    sender: Any = None,
    task_id: str | None = None,
    args: Any = None,
    kwargs: Any = None,
    state: str | None = None,
    **_: Any,
) -> None:
    health = _apps.get(getattr(sender, "app", None))
    if health is None or task_id is None or _started.pop(task_id, None) is None:
        return
    with guard("task_postrun (job health)"):
        entry = _entry_of(health, sender, args, kwargs)
        if entry is None:
            return
        with health.database.session_scope(immediate=True) as db:
            run_finished(db, entry.name, task_id=task_id, state=str(state or "SUCCESS"))


def _connect_runs(app: Celery, state: _AppHealth) -> None:
    """Hear the start and end of runs of the tasks beat entries name, and only those.

    Connected per task (``sender=`` the task): every other task's ``task_prerun`` and
    ``task_postrun`` find no receiver for them and stay as cheap as without the notifier.
    Done at ``worker_init``, in the main process before the pool forks, so the children
    inherit the connections.
    """
    for name in state.by_task():
        task = app.tasks.get(name)
        if task is None:  # beat sends it by name to workers of another code base
            continue
        uid = f"notifier.health.run:{name}"
        signals.task_prerun.connect(_on_task_prerun, sender=task, dispatch_uid=f"{uid}:prerun")
        signals.task_postrun.connect(_on_task_postrun, sender=task, dispatch_uid=f"{uid}:postrun")
        _run_uids[uid] = task


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    with guard("worker_init (job health)"):
        app = getattr(sender, "app", None)
        state = _apps.get(app)
        if app is not None and state is not None:
            _connect_runs(app, state)


def _on_worker_process_init(**_: Any) -> None:
    with guard("worker_process_init (job health)"):
        _started.clear()
        for state in list(_apps.values()):
            state.forget_database()


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    with guard("worker_ready (job health)"):
        app = getattr(sender, "app", None)
        state = _apps.get(app)
        if state is None:
            return
        # An app without a schedule leaves the entries other apps synced alone.
        if state.conf.get("beat_schedule") and state.ready():
            sync_schedule(state.database, state.conf, app)
        # A prefork worker's drainer process watches (see spool/drainer.py); solo and
        # threads pools have no such process, so they watch in a thread here.
        prefork = isinstance(getattr(sender, "pool", None), get_implementation("prefork"))
        every = watch_every(state.conf)
        if not prefork and every > 0 and state.watcher is None:
            state.watcher = WatcherThread(state.database, every)
            state.watcher.start()


def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    with guard("worker_shutdown (job health)"):
        state = _apps.get(getattr(sender, "app", None))
        if state is not None and state.watcher is not None:
            state.watcher.stop()
            state.watcher = None


class _LoopClock:
    """When beat's scheduler loop last finished a pass (``time.monotonic()``).

    Set by the loop itself, in memory only; the ticker thread turns it into the store's
    tick. A loop hung in a blocking call stops setting it, though its process lives on.
    """

    def __init__(self) -> None:
        # Stamped before the first pass, so a loop that wedges at once goes stale.
        self.at = time.monotonic()

    def stamped(self, tick: Callable[..., Any]) -> Callable[..., Any]:
        """``tick`` stamping this clock each time it returns (one float store a pass)."""

        @functools.wraps(tick)
        def tick_and_stamp(*args: Any, **kwargs: Any) -> Any:
            interval = tick(*args, **kwargs)
            self.at = time.monotonic()
            return interval

        return tick_and_stamp


class _BeatTicker(threading.Thread):
    """In the beat process: sync the schedule once, then write the loop's latest pass.

    It looks every ``every`` s and writes when the loop has passed since its last write;
    the tick it writes is the loop's time, not its own, so a hung loop goes silent.
    """

    def __init__(
        self,
        conf: Mapping[str, Any],
        app: Any,
        max_interval: float,
        clock: _LoopClock,
        scheduler_due: Mapping[str, datetime],
    ) -> None:
        super().__init__(name="notifier-beat-ticks", daemon=True)
        self.conf = conf
        self.app = app
        self.clock = clock
        self.scheduler_due = dict(scheduler_due)
        self.every = min(max(max_interval / 2, 1.0), 30.0)
        floor = float(conf.get("notifier_schedule_grace_floor") or 60.0)
        # The loop passes at least every max_interval; this thread sees a pass up to
        # ``every`` later; the grace is on top.
        self.stale_after = max_interval + self.every + grace_for(max_interval, floor=floor)
        self._stop = threading.Event()

    def run(self) -> None:
        database = Database(database_url(self.conf), live_redis_url=live_redis_url(self.conf))
        synced = not self.conf.get("beat_schedule")
        detail = f"pid {os.getpid()}"
        written: float | None = None
        failing = False
        try:
            while not self._stop.is_set():
                try:
                    if not synced:
                        sync_schedule(database, self.conf, self.app, self.scheduler_due)
                        synced = True
                    passed = self.clock.at
                    if passed != written:
                        seen = datetime.now(UTC) - timedelta(seconds=time.monotonic() - passed)
                        with database.session_scope(immediate=True) as db:
                            beat_ticked(
                                db, stale_after_seconds=self.stale_after, detail=detail, at=seen
                            )
                        written = passed
                    failing = False
                except Exception as exc:  # the database is down or not migrated: say it once
                    if not failing:
                        logger.warning("notifier: beat ticks not recorded yet (%s)", exc)
                    failing = True
                self._stop.wait(self.every)
        finally:
            database.dispose()

    def stop(self) -> None:
        self._stop.set()


_tickers: list[_BeatTicker] = []


def _on_beat_init(sender: Any = None, **_: Any) -> None:
    """Beat starts (its loop's thread, before the first pass): clock the loop, start ticks.

    Celery has no signal per pass of the loop; the loop calls its scheduler's ``tick()``
    each pass, so that one scheduler instance's ``tick`` is wrapped to stamp the clock.
    The host's scheduler class (Celery's, django-celery-beat's, any other) is kept.
    """
    with guard("beat_init (job health)"):
        app = getattr(sender, "app", None)
        state = _apps.get(app)
        if state is None:
            return
        scheduler = sender.scheduler
        clock = _LoopClock()
        scheduler.tick = clock.stamped(scheduler.tick)
        due: dict[str, datetime] = {}
        try:
            due = scheduler_dues(scheduler, {e.name for e in watched_entries(state.conf, app)})
        except Exception:  # the ticks matter more than the due times: sync without them
            logger.exception("notifier: beat's next sends could not be read")
        ticker = _BeatTicker(state.conf, app, float(scheduler.max_interval), clock, due)
        _tickers.append(ticker)
        ticker.start()


def install_health(app: Celery) -> None:
    """Watch ``app``'s beat entries and beat itself (called by ``install(app)``)."""
    if app not in _apps:
        _apps[app] = _AppHealth(app)
    signals.worker_init.connect(_on_worker_init, dispatch_uid=_UIDS["worker_init"])
    signals.beat_init.connect(_on_beat_init, dispatch_uid=_UIDS["beat_init"])
    signals.worker_ready.connect(_on_worker_ready, dispatch_uid=_UIDS["worker_ready"])
    signals.worker_shutdown.connect(_on_worker_shutdown, dispatch_uid=_UIDS["worker_shutdown"])
    signals.worker_process_init.connect(
        _on_worker_process_init, dispatch_uid=_UIDS["worker_process_init"]
    )


def uninstall_health(app: Celery) -> None:
    """Stop watching ``app``; disconnect the handlers once no app is watched."""
    state = _apps.pop(app, None)
    if state is not None:
        state.close()
    if not _apps:
        for name, uid in _UIDS.items():
            getattr(signals, name).disconnect(dispatch_uid=uid)
        while _run_uids:
            uid, task = _run_uids.popitem()
            signals.task_prerun.disconnect(sender=task, dispatch_uid=f"{uid}:prerun")
            signals.task_postrun.disconnect(sender=task, dispatch_uid=f"{uid}:postrun")
        while _tickers:
            _tickers.pop().stop()
