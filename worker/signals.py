"""The Celery signal handlers, and ``install(app)`` / ``uninstall(app)`` that connect them.

Handlers are module-level functions connected with a ``dispatch_uid`` (so installing twice
connects once). Each one runs entirely inside :func:`guard`: whatever goes wrong in the
notifier is logged once and swallowed, and the task's own state, result, exception and
traceback stay exactly what Celery made them.

Where each fact arrives:

- a body exception, a retry that ran out, an uncaught soft time limit: ``task_failure``
  in the process that ran the task (a prefork child, or the main process for solo/threads);
- a pool child killed (``WorkerLostError``) or a hard time limit: ``task_failure`` in the
  worker's *main* process, with the traceback as a string; ``on_failure`` is not called;
- a result that cannot be stored: ``task_internal_error``;
- a returned run: ``task_success``, which carries the returned value.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
import traceback as traceback_module
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from billiard.process import current_process
from celery import Celery, signals

from notifier import Database, Settings

from .decorators import spec_of
from .drainer import start_process, stop_process
from .events import Event, failure_event, returned_events
from .recorder import record_batch
from .spool import Drainer, Spool

logger = logging.getLogger("notifier.worker")

DEFAULT_ERROR_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 15 * 60
_RECENT_KEYS = 10_000
_DRAINER_RESTART_DELAY = 1.0  # seconds, so a drainer that dies at once cannot spin


@contextmanager
def guard(what: str, **context: Any) -> Iterator[None]:
    """Log and swallow any error of notifier code, so the host task is never affected."""
    try:
        yield
    except Exception:
        logger.exception("notifier: %s failed (%r); the task itself is unaffected", what, context)


class _Installation:
    """What ``install(app)`` set up for one Celery app: its spool, drainer and database."""

    def __init__(self, app: Celery, *, all_tasks: bool) -> None:
        self.app = app
        self.all_tasks = all_tasks
        self.spool = Spool(self.spool_dir())
        self.drainer = Drainer(self.spool, self.record_batch)
        self._database: Database | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        # Guards the drainer process handle; never held across a fork by emit()'s callers.
        self._process_lock = threading.Lock()

    # -- configuration, read from app.conf when first needed ----------------------------

    def setting(self, name: str, default: Any) -> Any:
        value = self.app.conf.get(name)
        return default if value is None else value

    def spool_dir(self) -> Path:
        configured = self.setting("notifier_spool_dir", None)
        if configured:
            return Path(configured)
        return Settings.from_env().instance_path / "spool"

    def cooldown(self) -> timedelta:
        value = self.setting("notifier_notification_cooldown", DEFAULT_COOLDOWN_SECONDS)
        return value if isinstance(value, timedelta) else timedelta(seconds=float(value))

    def error_threshold(self) -> int:
        return int(self.setting("notifier_error_threshold", DEFAULT_ERROR_THRESHOLD))

    def database_url(self) -> str:
        url = self.setting("notifier_database_url", None)
        return str(url) if url else Settings.from_env().database_url

    def database(self) -> Database:
        if self._database is None:
            self._database = Database(self.database_url())
        return self._database

    # -- the two halves: emit (any process) and record (the drainer) ---------------------

    def emit(self, event: Event) -> None:
        """Keep ``event`` durably, once per process, and have it recorded soon."""
        with self._lock:
            if event.key in self._recent:  # Celery reported this very event twice
                return
            self._recent[event.key] = None
            if len(self._recent) > _RECENT_KEYS:
                self._recent.popitem(last=False)
        self.spool.put(event)
        if not _in_pool_child() and self._process is None:
            self.drainer.start()
            self.drainer.wake()

    def record_batch(self, events: list[Event]) -> list[bool]:
        """Record ``events`` in this process (solo/threads pools, tests)."""
        return record_batch(self.database(), events, cooldown=self.cooldown())

    def start_draining(self, prefork: bool) -> None:
        """At worker start: a drainer process for a prefork worker, else a thread.

        Either one first replays what a previous run left in the spool.
        """
        if prefork:
            if self._process is None or self._process.poll() is not None:
                self.spool.ensure()
                self._process = start_process(
                    self.spool.directory, self.database_url(), self.cooldown()
                )
                threading.Thread(
                    target=self._keep_drainer_alive,
                    args=(self._process,),
                    name="notifier-drainer-watch",
                    daemon=True,
                ).start()
            return
        self.drainer.start()
        self.drainer.wake()

    def _keep_drainer_alive(self, process: subprocess.Popen[bytes]) -> None:
        """Restart the drainer process if it dies (OOM killer, crash) while the worker runs.

        Its events are safe in the spool meanwhile; without a restart they would wait there
        until the worker itself restarts. Blocked in ``wait()``, this thread holds no GIL.
        """
        while True:
            code = process.wait()
            time.sleep(_DRAINER_RESTART_DELAY)
            with self._process_lock:
                if self._process is not process:  # stopped or replaced on purpose
                    return
                logger.warning("notifier: drainer process exited (%s); restarting it", code)
                process = start_process(self.spool.directory, self.database_url(), self.cooldown())
                self._process = process

    def stop_draining(self) -> None:
        with self._process_lock:
            process, self._process = self._process, None
        if process is not None:
            stop_process(process)
        self.drainer.stop()

    def after_fork(self) -> None:
        """In a new pool child: drop the parent's engine and drainer, keep the spool."""
        if self._database is not None:
            # The parent's pooled connections belong to the parent: drop, never close them.
            self._database.engine.dispose(close=False)
            self._database = None
        self._process = None
        self._process_lock = threading.Lock()
        self.drainer = Drainer(self.spool, self.record_batch)

    def close(self) -> None:
        self.stop_draining()
        if self._database is not None:
            self._database.dispose()
            self._database = None


_installations: dict[int, _Installation] = {}
_installations_lock = threading.Lock()


def _in_pool_child() -> bool:
    """True in a prefork pool child: the drainer its main process started records its events."""
    return bool(current_process().name != "MainProcess")


def _for(app: Any) -> _Installation | None:
    return _installations.get(id(app)) if app is not None else None


def install(celery_app: Celery, *, all_tasks: bool = False) -> None:
    """Connect the notifier to ``celery_app``; safe to call twice.

    With ``all_tasks=True`` the final failure of any task notifies (critical_error), not
    only tasks decorated with ``@import_job``, ``@sync_job`` or ``@notify_on_failure``.
    """
    with _installations_lock:
        current = _installations.get(id(celery_app))
        if current is not None:
            current.all_tasks = current.all_tasks or all_tasks
            return
        _installations[id(celery_app)] = _Installation(celery_app, all_tasks=all_tasks)
        signals.task_failure.connect(_on_task_failure, dispatch_uid="notifier.task_failure")
        signals.task_success.connect(_on_task_success, dispatch_uid="notifier.task_success")
        signals.task_internal_error.connect(
            _on_task_internal_error, dispatch_uid="notifier.task_internal_error"
        )
        signals.worker_process_init.connect(
            _on_worker_process_init, dispatch_uid="notifier.worker_process_init"
        )
        signals.worker_ready.connect(_on_worker_ready, dispatch_uid="notifier.worker_ready")
        signals.worker_shutdown.connect(
            _on_worker_shutdown, dispatch_uid="notifier.worker_shutdown"
        )


def uninstall(celery_app: Celery) -> None:
    """Disconnect the notifier from ``celery_app``, recording what is spooled first."""
    with _installations_lock:
        installation = _installations.pop(id(celery_app), None)
        if not _installations:
            signals.task_failure.disconnect(dispatch_uid="notifier.task_failure")
            signals.task_success.disconnect(dispatch_uid="notifier.task_success")
            signals.task_internal_error.disconnect(dispatch_uid="notifier.task_internal_error")
            signals.worker_process_init.disconnect(dispatch_uid="notifier.worker_process_init")
            signals.worker_ready.disconnect(dispatch_uid="notifier.worker_ready")
            signals.worker_shutdown.disconnect(dispatch_uid="notifier.worker_shutdown")
    if installation is not None:
        with guard("uninstall"):
            installation.close()


def is_installed(celery_app: Celery) -> bool:
    """Whether ``install`` was called for ``celery_app`` (and not undone)."""
    return id(celery_app) in _installations


# -- handlers ---------------------------------------------------------------------------


def _traceback_text(traceback: Any, einfo: Any) -> str:
    text = getattr(einfo, "traceback", None)
    if isinstance(text, str) and text:
        return text
    if isinstance(traceback, str):
        return traceback
    if traceback is not None:
        return "".join(traceback_module.format_tb(traceback))
    return ""


def _attempts(task: Any) -> int:
    request = getattr(task, "request", None)
    retries = getattr(request, "retries", 0) or 0
    return int(retries) + 1


def _on_task_failure(sender: Any = None, **kwargs: Any) -> None:
    _emit_failure("task_failure", "failure", sender, **kwargs)


def _on_task_internal_error(sender: Any = None, **kwargs: Any) -> None:
    _emit_failure("task_internal_error", "internal_error", sender, **kwargs)


def _emit_failure(
    signal_name: str,
    kind: str,
    sender: Any,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    traceback: Any = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    """Turn a failure signal into an event; both signals send the same arguments."""
    with guard(signal_name, task=getattr(sender, "name", None), task_id=task_id):
        installation = _for(getattr(sender, "app", None))
        if installation is None or exception is None:
            return
        event = failure_event(
            sender,
            task_id=str(task_id),
            exc=exception,
            traceback_text=_traceback_text(traceback, einfo),
            args=args,
            kwargs=kwargs,
            attempts=_attempts(sender),
            all_tasks=installation.all_tasks,
            kind=kind,
        )
        if event is not None:
            installation.emit(event)


def _on_task_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    request = getattr(sender, "request", None)
    task_id = getattr(request, "id", None)
    with guard("task_success", task=getattr(sender, "name", None), task_id=task_id):
        # The success path of every task passes here: leave before reading any setting
        # unless the task is one of ours.
        if task_id is None or spec_of(sender) is None:
            return
        installation = _for(getattr(sender, "app", None))
        if installation is None:
            return
        for event in returned_events(
            sender,
            task_id=str(task_id),
            result=result,
            args=getattr(request, "args", None),
            kwargs=getattr(request, "kwargs", None),
            default_threshold=installation.error_threshold(),
        ):
            installation.emit(event)


def _on_worker_process_init(**_: Any) -> None:
    with guard("worker_process_init", pid=os.getpid()):
        if not _in_pool_child():  # the solo pool sends this signal in the main process
            return
        for installation in list(_installations.values()):
            installation.after_fork()


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # Replays whatever a previous run left in the spool (a restart after a DB outage).
    with guard("worker_ready"):
        installation = _for(getattr(sender, "app", None))
        if installation is not None:
            pool = getattr(sender, "pool", None)
            installation.start_draining(prefork="prefork" in type(pool).__module__)


def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    with guard("worker_shutdown"):
        installation = _for(getattr(sender, "app", None))
        if installation is not None:
            installation.stop_draining()
