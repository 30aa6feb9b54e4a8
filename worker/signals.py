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
import threading
import traceback as traceback_module
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from billiard.process import current_process
from celery import Celery, signals
from celery.concurrency import get_implementation

from notifier import Database, FailureReport, Settings, live_redis_url_from_env, metrics

from .decorators import spec_of
from .events import failure_report, returned_reports
from .guard import guard as guard
from .health import health_after_fork, start_health, stop_health
from .health import recovery as health_recovery
from .health.beat import install_health, uninstall_health
from .retry import on_retried_failure, on_retried_success
from .spool.bypass import SpoolBypass
from .spool.choice import configured_spool
from .spool.contract import EventSpool
from .spool.drain import Drainer
from .spool.drainer import DrainerProcess, SpoolRecorder

logger = logging.getLogger("notifier.worker")

DEFAULT_ERROR_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 15 * 60
_RECENT_KEYS = 10_000


@dataclass
class _Parts:
    """The spool and its recording machinery of one installation, built on first use."""

    spool: EventSpool[Any]
    recorder: SpoolRecorder
    drainer: Drainer
    process: DrainerProcess
    bypass: SpoolBypass


class _Installation:
    """What ``install(app)`` set up for one Celery app: its spool, recorder and drainer.

    Settings are read from ``app.conf`` once, when first needed (never per task), so an
    app configured after ``install(app)`` is read as configured.
    """

    def __init__(self, app: Celery, *, all_tasks: bool) -> None:
        self.all_tasks = all_tasks
        self._app = weakref.ref(app)  # the registry is weak-keyed by the app: no cycle
        self._parts: _Parts | None = None
        self._threshold: int | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def _setting(self, name: str, default: Any) -> Any:
        app = self._app()
        value = app.conf.get(name) if app is not None else None
        return default if value is None else value

    @property
    def parts(self) -> _Parts:
        """The spool, recorder, drainer thread and drainer process, built once."""
        parts = self._parts
        if parts is None:
            with self._lock:
                if self._parts is None:
                    app = self._app()
                    database_url = self._database_url()
                    # The spool is this database's: a drainer of another database sharing
                    # the folder or stream leaves these reports alone.
                    spool = configured_spool(
                        app.conf if app is not None else {}, database_url=database_url
                    )
                    recorder = SpoolRecorder(database_url, self._cooldown(), self._live_redis_url())
                    process = DrainerProcess(
                        spool, recorder.database_url, recorder.cooldown, recorder.live_redis_url
                    )
                    drainer = Drainer(spool, recorder)
                    bypass = SpoolBypass(spool, recorder.record_bypassing)
                    self._parts = _Parts(spool, recorder, drainer, process, bypass)
                parts = self._parts
        return parts

    def _cooldown(self) -> timedelta:
        value = self._setting("notifier_notification_cooldown", DEFAULT_COOLDOWN_SECONDS)
        return value if isinstance(value, timedelta) else timedelta(seconds=float(value))

    def _database_url(self) -> str:
        url = self._setting("notifier_database_url", None)
        return str(url) if url else Settings.from_env().database_url

    def _live_redis_url(self) -> str | None:
        url = self._setting("notifier_live_redis_url", None)
        return str(url) if url else live_redis_url_from_env()

    def database(self) -> Database:
        """This process's engine of the notifier store (the recorder's)."""
        return self.parts.recorder.database

    def error_threshold(self) -> int:
        """The app's ``notifier_error_threshold``, read once."""
        if self._threshold is None:
            value = self._setting("notifier_error_threshold", DEFAULT_ERROR_THRESHOLD)
            self._threshold = int(value)
        return self._threshold

    # -- the two halves: emit (any process) and record (the drainer) ---------------------

    def emit(self, report: FailureReport) -> None:
        """Keep ``report`` durably, once per process, and have it recorded soon."""
        parts = self.parts
        with self._lock:
            if report.key in self._recent:  # Celery reported this very event twice
                return
            self._recent[report.key] = None
            if len(self._recent) > _RECENT_KEYS:
                self._recent.popitem(last=False)
        try:
            parts.spool.put(report)
        except Exception as exc:  # unwritable folder, Redis down: never lose the report
            parts.bypass.take(report, exc)
        if not _in_pool_child() and not parts.process.running():
            parts.drainer.start()
            parts.drainer.wake()

    def start_draining(self, prefork: bool) -> None:
        """At worker start: a drainer process for a prefork worker, else a thread.

        Either one first replays what a previous run left in the spool.
        """
        parts = self.parts
        if prefork:
            parts.process.start()
            return
        parts.drainer.start()
        parts.drainer.wake()

    def stop_draining(self) -> None:
        """Stop the drainer process or thread, recording what it can first."""
        parts = self._parts
        if parts is None:
            return
        if parts.bypass.held:  # into the spool (or the database) before the last drain
            with guard("bypass flush", spool=parts.spool.location):
                parts.bypass.close()
        if not parts.process.stop():
            # The drainer process never had its last drain (a shutdown right after start):
            # record what it left here, once, rather than at the next start.
            with guard("final drain", spool=parts.spool.location):
                parts.drainer.drain()
        parts.drainer.stop()

    def after_fork(self) -> None:
        """In a new pool child: drop the parent's engine and drainer, keep the spool."""
        self._lock = threading.Lock()  # a thread of the parent may have held it at fork
        parts = self._parts
        if parts is not None:
            old = parts.recorder
            parts.recorder = SpoolRecorder(old.database_url, old.cooldown, old.live_redis_url)
            parts.process.forget()
            parts.drainer = Drainer(parts.spool, parts.recorder)
            parts.bypass = SpoolBypass(parts.spool, parts.recorder.record_bypassing)

    def process_exiting(self) -> None:
        """A pool child exits: hand over what it holds in memory, if anything."""
        parts = self._parts
        if parts is not None and parts.bypass.held:
            parts.bypass.close()

    def close(self) -> None:
        """Stop draining and close the database connections."""
        self.stop_draining()
        if self._parts is not None:
            self._parts.bypass.close()
            self._parts.recorder.close()
            self._parts.spool.close()


# Weak-keyed like the web's per-app state: an app that is garbage collected leaves no entry.
_installations: weakref.WeakKeyDictionary[Celery, _Installation] = weakref.WeakKeyDictionary()
_installations_lock = threading.Lock()


def _in_pool_child() -> bool:
    """True in a prefork pool child: the drainer its main process started records its events."""
    return bool(current_process().name != "MainProcess")


def _for(app: Any) -> _Installation | None:
    return _installations.get(app) if app is not None else None


def install(celery_app: Celery, *, all_tasks: bool = False) -> None:
    """Connect the notifier to ``celery_app``; safe to call twice.

    With ``all_tasks=True`` the final failure of any task notifies (critical_error), not
    only tasks decorated with ``@import_job``, ``@sync_job`` or ``@notify_on_failure``.
    """
    with _installations_lock:
        current = _installations.get(celery_app)
        if current is not None:
            current.all_tasks = current.all_tasks or all_tasks
            return
        installation = _Installation(celery_app, all_tasks=all_tasks)
        _installations[celery_app] = installation
        health_recovery.watch_for(celery_app, installation.database)
        signals.task_failure.connect(_on_task_failure, dispatch_uid="notifier.task_failure")
        signals.task_success.connect(_on_task_success, dispatch_uid="notifier.task_success")
        signals.task_internal_error.connect(
            _on_task_internal_error, dispatch_uid="notifier.task_internal_error"
        )
        signals.worker_process_init.connect(
            _on_worker_process_init, dispatch_uid="notifier.worker_process_init"
        )
        signals.worker_process_shutdown.connect(
            _on_worker_process_shutdown, dispatch_uid="notifier.worker_process_shutdown"
        )
        signals.worker_init.connect(_on_worker_init, dispatch_uid="notifier.worker_init")
        signals.worker_ready.connect(_on_worker_ready, dispatch_uid="notifier.worker_ready")
        signals.worker_shutdown.connect(
            _on_worker_shutdown, dispatch_uid="notifier.worker_shutdown"
        )
        signals.worker_process_init.connect(  # after the installation's own: see after_fork
            health_recovery.on_worker_process_init, dispatch_uid="notifier.recovery_init"
        )
        signals.worker_ready.connect(
            health_recovery.on_worker_ready, dispatch_uid="notifier.recovery_ready"
        )
    install_health(celery_app)


def uninstall(celery_app: Celery) -> None:
    """Disconnect the notifier from ``celery_app``, recording what is spooled first."""
    with _installations_lock:
        installation = _installations.pop(celery_app, None)
        if not _installations:
            signals.task_failure.disconnect(dispatch_uid="notifier.task_failure")
            signals.task_success.disconnect(dispatch_uid="notifier.task_success")
            signals.task_internal_error.disconnect(dispatch_uid="notifier.task_internal_error")
            signals.worker_process_init.disconnect(dispatch_uid="notifier.worker_process_init")
            signals.worker_process_shutdown.disconnect(
                dispatch_uid="notifier.worker_process_shutdown"
            )
            signals.worker_init.disconnect(dispatch_uid="notifier.worker_init")
            signals.worker_ready.disconnect(dispatch_uid="notifier.worker_ready")
            signals.worker_shutdown.disconnect(dispatch_uid="notifier.worker_shutdown")
            signals.worker_process_init.disconnect(dispatch_uid="notifier.recovery_init")
            signals.worker_ready.disconnect(dispatch_uid="notifier.recovery_ready")
        health_recovery.forget(celery_app)
    if installation is not None:
        with guard("uninstall"):
            stop_health(celery_app)
            installation.close()
    with guard("uninstall (job health)"):
        uninstall_health(celery_app)


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
    with guard("retry outcome"):  # a retried run failed again: its retry says how
        on_retried_failure(sender, **kwargs)
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
        report = failure_report(
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
        if report is not None:
            report = health_recovery.watch_for(sender.app, installation.database).annotate(
                report, sender, exception, installation.parts.recorder.database_url
            )
            installation.emit(report)


def _on_task_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    # Every task's success passes here: a task without a spec, or a result with nothing to
    # report (the common case), must cost next to nothing, so those checks come first.
    try:
        on_retried_success(sender)  # one attribute read unless an admin retried this run
        if getattr(sender, "name", None) in health_recovery.watching:  # an open alert
            _emit_recovery(sender)
        spec = spec_of(sender)
        if spec is None:
            return
        installation = _for(sender.app)
        if installation is None or not spec.wants_result(result, installation.error_threshold):
            return
        request = sender.request
        if request.id is None:  # called directly, not run by a worker: nothing to key it by
            return
    except Exception:
        logger.exception("notifier: task_success failed; the task itself is unaffected")
        return
    with guard("task_success", task=getattr(sender, "name", None), task_id=request.id):
        for report in returned_reports(
            sender,
            task_id=str(request.id),
            result=result,
            args=request.args,
            kwargs=request.kwargs,
            default_threshold=installation.error_threshold,
            spec=spec,
        ):
            installation.emit(report)


def _emit_recovery(task: Any) -> None:
    with guard("task_success recovery", task=getattr(task, "name", None)):
        installation = _for(task.app)
        if installation is not None:
            watch = health_recovery.watch_for(task.app, installation.database)
            watch.succeeded(task, installation.emit)


def _on_worker_process_init(**_: Any) -> None:
    with guard("worker_process_init", pid=os.getpid()):
        if not _in_pool_child():  # the solo pool sends this signal in the main process
            return
        health_after_fork()
        for installation in list(_installations.values()):
            installation.after_fork()


def _on_worker_process_shutdown(**_: Any) -> None:
    # A pool child exits (max_tasks_per_child, shutdown): what it holds in memory because
    # neither the spool nor the database took it gets one last try.
    with guard("worker_process_shutdown", pid=os.getpid()):
        if not _in_pool_child():
            return
        for installation in list(_installations.values()):
            installation.process_exiting()


def _on_worker_init(**_: Any) -> None:
    # Before the pool forks: what every pool child counts on a failure is made once here.
    with guard("worker_init"):
        metrics.prepare("notifier_failures_captured_total")


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # Replays whatever a previous run left in the spool (a restart after a DB outage).
    with guard("worker_ready"):
        installation = _for(getattr(sender, "app", None))
        if installation is not None:
            # Celery's own prefork pool class, not a guess from a module name.
            prefork = isinstance(getattr(sender, "pool", None), get_implementation("prefork"))
            installation.start_draining(prefork=prefork)
    with guard("health start"):  # runs past their limit, queues nobody consumes
        health = _for(getattr(sender, "app", None))
        if health is not None:
            url = health.parts.recorder.database_url
            start_health(sender, url, all_tasks=health.all_tasks)


def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    with guard("worker_shutdown"):
        installation = _for(getattr(sender, "app", None))
        if installation is not None:
            stop_health(sender.app)
            installation.stop_draining()
