"""The worker's health loop: a thread of its main process that reports and checks.

Every ``notifier_health_interval`` seconds (10 by default) it scans the worker's active
requests for runs past their limit, counts the messages waiting in the app's queues, and
in one short transaction writes the worker's heartbeat (its queues, its overdue runs), adds
the run durations it observed to the shared ones, and checks the queues it probed. It
wakes rarely and does little, so the pool's dispatching does not feel it; nothing is
written per task. A worker stopped cleanly removes its
heartbeat, so its queues count one consumer less at once.

The hung-run check reads only the heartbeats, so it is the watcher's (one process at a
time, under its lease). The queue check stays here: it needs this process's broker
observations of the moment. Two workers checking the same queue count once: the check
locks the queue's row and skips an observation older than the last check
(:func:`notifier.health.check_queues`). The probe is also the broker's reachability probe
(:class:`~.broker.BrokerWatch`): a probe that cannot reach the broker still writes the
heartbeat, and a few in a row open the broker's root cause.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery.worker import state as worker_state

from notifier import Database
from notifier.health import QueueObservation, check_queues, forget_worker, record_heartbeat

from .broker import BrokerWatch
from .queues import probe, watched_queues
from .runs import RunWatch, positive

logger = logging.getLogger("notifier.worker")

DEFAULT_INTERVAL = 10.0
DEFAULT_QUEUE_MAX_AGE = 600.0


class HealthReporter:
    """One worker's heartbeat, overdue runs and queue checks, every interval."""

    def __init__(
        self,
        app: Any,
        hostname: str,
        database_url: str,
        consumed: Callable[[], list[str]],
        *,
        all_tasks: bool = False,
    ) -> None:
        conf = app.conf
        self.hostname = hostname
        self.interval = positive(conf.get("notifier_health_interval")) or DEFAULT_INTERVAL
        self.queue_max_age = timedelta(
            seconds=positive(conf.get("notifier_queue_max_age")) or DEFAULT_QUEUE_MAX_AGE
        )
        self.queue_max_ages = {
            str(name): timedelta(seconds=positive(value) or self.queue_max_age.total_seconds())
            for name, value in dict(conf.get("notifier_queue_max_ages") or {}).items()
        }
        self.runs = RunWatch.for_app(app, all_tasks=all_tasks)
        self.broker = BrokerWatch(app, self.interval)
        self._app = weakref.ref(app)
        self._database_url = database_url
        self._database: Database | None = None
        self._consumed = consumed
        self._connection: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop's thread (a daemon: it never holds the worker's exit)."""
        self._thread = threading.Thread(target=self._run, name="notifier-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, remove this worker's heartbeat, close connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 10)
        try:
            if self._database is not None:
                with self._database.session_scope() as db:
                    forget_worker(db, self.hostname)
        except Exception:
            logger.exception("notifier: removing the heartbeat of %s failed", self.hostname)
        self._close()

    def after_fork(self) -> None:
        """In a pool child: leave the parent's connections alone (never close them)."""
        if self._database is not None:
            self._database.engine.dispose(close=False)
        self._database = None
        self._connection = None

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                # Once per outage (a database down, a schema not created yet), not per tick.
                log = logger.debug if failing else logger.exception
                log("notifier: the health check failed; it is retried every %ss", self.interval)
                failing = True
                self._close_broker()
            else:
                if failing:
                    logger.info("notifier: the health check works again")
                failing = False
            self._stop.wait(self.interval)

    def tick(self) -> None:
        """Scan, probe, then write the heartbeat and durations and check the queues at once."""
        app = self._app()
        if app is None:
            self._stop.set()
            return
        requests = _active_requests()
        overdue = self.runs.scan(requests, time.time())
        observations = self._observe(app)
        if self._database is None:
            self._database = Database(self._database_url)
        with self._database.session_scope(immediate=True) as db:
            self.runs.share(db, requests)  # the next scan's limits use what it reads
            record_heartbeat(
                db,
                self.hostname,
                pid=os.getpid(),
                queues=self._consumed(),
                overdue=overdue,
                ttl=timedelta(seconds=self.interval * 3 + 5),
            )
            self.broker.report(db, self.hostname)
            if observations is not None:
                check_queues(
                    db, observations, max_age=self.queue_max_age, max_ages=self.queue_max_ages
                )

    def _observe(self, app: Any) -> list[QueueObservation] | None:
        """The watched queues' depths, or None if the broker could not be reached."""
        try:
            if self._connection is None:
                self._connection = self.broker.connect(app)
            observations = probe(self._connection, watched_queues(app))
        except Exception as exc:
            if not self.broker.unreachable(exc):
                raise
            self._close_broker()  # a new connection next tick
            self.broker.failed(exc)
            return None
        self.broker.reached()
        return observations

    def _close_broker(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception:
                logger.debug("notifier: releasing the probe connection failed", exc_info=True)

    def _close(self) -> None:
        self._close_broker()
        if self._database is not None:
            self._database.dispose()
            self._database = None


def _active_requests() -> list[Any]:
    # The pool's thread adds and discards requests while this thread reads: copy the
    # WeakSet's underlying set of references in one step (no Python code runs while the
    # set is copied, so it cannot change size under us), then follow each reference.
    references = list(worker_state.active_requests.data)
    return [request for request in (ref() for ref in references) if request is not None]


_reporters: weakref.WeakKeyDictionary[Any, HealthReporter] = weakref.WeakKeyDictionary()


def _consumed_by(consumer: Any) -> Callable[[], list[str]]:
    ref = weakref.ref(consumer)

    def consumed() -> list[str]:
        current = ref()
        task_consumer = getattr(current, "task_consumer", None) if current else None
        if task_consumer is not None:
            return [str(queue.name) for queue in task_consumer.queues]
        app = getattr(current, "app", None)
        return list(app.amqp.queues.consume_from) if app is not None else []

    return consumed


def start_health(consumer: Any, database_url: str, *, all_tasks: bool) -> None:
    """At worker ready (main process): start the health loop of ``consumer``'s app."""
    app = consumer.app
    if app.conf.get("notifier_health_enabled") is False or app in _reporters:
        return
    reporter = HealthReporter(
        app, str(consumer.hostname), database_url, _consumed_by(consumer), all_tasks=all_tasks
    )
    _reporters[app] = reporter
    reporter.start()


def stop_health(app: Any) -> None:
    """At worker shutdown or uninstall: stop the loop and remove the heartbeat."""
    reporter = _reporters.pop(app, None)
    if reporter is not None:
        reporter.stop()


def health_after_fork() -> None:
    """In a new pool child: drop the parent's health loop without touching its sockets."""
    for app in list(_reporters):
        reporter = _reporters.pop(app, None)
        if reporter is not None:
            reporter.after_fork()
