"""Recording spooled failure reports: the recorder, and the drainer process of a prefork worker.

A prefork worker's main process dispatches every message to its pool; a drainer thread
there would compete with it for the GIL and slow every task down. So on ``worker_ready``
a prefork worker starts a drainer as its own process, configured through the environment,
restarts it if it dies (the OOM killer, a crash) and stops it on shutdown. The process
also exits when its parent is gone; whatever it could not record stays in the spool for
the next worker. Solo and threads pools drain in a thread with the same recorder.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from notifier import (
    AlertType,
    ConfigurationError,
    Database,
    FailureKind,
    FailureReport,
    Severity,
    bounded,
    metrics,
    platform_alert_service,
    prune_processed,
    queued_in,
    record_runs,
    schema_problem,
)
from notifier.delivery import DispatcherThread, DispatchSettings

from ..health import DatabaseOutage
from ..health.watch import start_in_drainer
from .choice import database_tag, spool_env, spool_from_env
from .contract import EventSpool, SpoolUnavailable
from .drain import Drainer, NotReady, Recorder

logger = logging.getLogger("notifier.worker")

_ENV_DATABASE = "NOTIFIER_DRAIN_DATABASE_URL"
_ENV_COOLDOWN = "NOTIFIER_DRAIN_COOLDOWN"
_ENV_LIVE = "NOTIFIER_DRAIN_LIVE_REDIS_URL"
_ENV_PARENT = "NOTIFIER_DRAIN_PARENT"
# Started with -c, not -m: `python -m` of a module the package already imported warns
# (RuntimeWarning: found in sys.modules) on every worker start.
_MAIN = "from notifier.worker.spool.drainer import main; main()"
_RESTART_DELAY = 1.0  # seconds, so a drainer that dies at once cannot spin
_PRUNE_EVERY = 600.0  # seconds between two prunings of processed keys


class SpoolRecorder(Recorder):
    """Records spooled reports in the notifier store at ``database_url``.

    Before the first batch it checks the schema: while it is missing or out of date, the
    drainer logs one line saying what to run and keeps every report in the spool.
    """

    def __init__(
        self, database_url: str, cooldown: timedelta, live_redis_url: str | None = None
    ) -> None:
        self.database_url = database_url
        self.cooldown = cooldown
        self.live_redis_url = live_redis_url  # where commits announce themselves (SQLite)
        self._database: Database | None = None
        self._pruned_at = 0.0
        self._dispatcher: DispatcherThread | None = None
        self.outage = DatabaseOutage(database_tag(database_url))

    @property
    def database(self) -> Database:
        """The engine, created on first use (never in a process that only spools)."""
        if self._database is None:
            self._database = Database(self.database_url, live_redis_url=self.live_redis_url)
        return self._database

    def prepare(self, spool: EventSpool[Any]) -> None:
        """Raise NotReady while the schema is missing or old; then report dead letters."""
        try:
            problem = schema_problem(self.database_url)
        except Exception as exc:
            self.outage.failed(exc)
            raise
        if problem is not None:
            shown = make_url(self.database_url).render_as_string(hide_password=True)
            raise NotReady(
                f"notifier: {problem} at {shown}; run `notifier init-db --database-url URL` "
                f"against that URL. Failures stay in {spool.location} and are recorded once "
                "it is done."
            )
        self.buried(spool, spool.dead_count(), at_start=True)
        self._start_dispatcher()

    def _start_dispatcher(self) -> None:
        # Deliveries (email, webhooks, chat) queued by what this process records are sent
        # from here too: woken right after the commit, and a sweep every few seconds for
        # rows queued elsewhere (the web app) or waiting for a retry.
        if self._dispatcher is not None:
            return
        try:
            settings = DispatchSettings.from_env()
        except ConfigurationError as exc:
            logger.error("notifier: deliveries are not sent: %s", exc)
            return
        self._dispatcher = DispatcherThread(self.database, settings)
        self._dispatcher.start()

    def record(self, events: list[FailureReport]) -> list[bool]:
        """Record a batch in one transaction (see ``notifier.record_runs``).

        After an outage, the root cause "database unreachable" opens first, in the same
        transaction, so the batch's connection errors are held back by it.
        """
        # A session with no transaction begun: the batch runs in the session's own
        # transaction rather than a savepoint inside one (two round trips less a batch).
        try:
            with self.database.sessionmaker() as db:
                self.outage.open(db)
                outcomes = record_runs(db, events, cooldown=self.cooldown)
                queued = queued_in(db)
                db.commit()
        except Exception as exc:
            self.outage.failed(exc)
            raise
        if queued and self._dispatcher is not None:
            self._dispatcher.wake()
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY:
            with self.database.session_scope() as db:
                prune_processed(db)
            self._pruned_at = time.monotonic()
        return outcomes

    def record_bypassing(
        self, spool: EventSpool[Any], events: list[FailureReport], error: BaseException
    ) -> list[bool]:
        """Record events the spool refused, and count the spool's alert, in one transaction."""
        with self.database.session_scope() as db:
            outcomes = record_runs(db, events, cooldown=self.cooldown)
            _count_spool_alert(db, spool, error, len(events))
        for event in events:
            metrics.inc("notifier_failures_captured_total", FailureKind(event.kind).value)
        return outcomes

    def drained(self) -> None:
        """The spool is empty: an outage seen while recording is over (its summary goes)."""
        if self.outage.since is None:
            return
        with self.database.session_scope() as db:
            self.outage.over(db)
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def spool_unavailable(self, spool: EventSpool[Any], error: BaseException) -> None:
        """Count the spool's platform alert (the drainer found it unusable)."""
        with self.database.session_scope() as db:
            _count_spool_alert(db, spool, error, 1)

    def buried(self, spool: EventSpool[Any], count: int, *, at_start: bool = False) -> None:
        """Count a platform alert for events that can never be recorded."""
        if count <= 0:
            return
        what = "wait" if at_start else "were moved"
        with self.database.session_scope() as db:
            _count_notifier_alert(
                db,
                "Failure reports could not be recorded",
                f"notifier:dead-letter:{spool.dead_location}",
                f"{count} failure report(s) {what} in {spool.dead_location}: they can never be "
                "recorded as they are. Look at them, then `notifier spool retry` moves them "
                "back to the spool.",
                count,
            )

    def close(self) -> None:
        """Stop sending deliveries and close the engine's connections."""
        if self._dispatcher is not None:
            self._dispatcher.stop()
            self._dispatcher = None
        if self._database is not None:
            self._database.dispose()
            self._database = None


def _count_spool_alert(
    db: Session, spool: EventSpool[Any], error: BaseException, count: int
) -> None:
    _count_notifier_alert(
        db,
        "The failure spool cannot be used",
        f"notifier:spool:{spool.location}",
        f"{spool.location} cannot take failure reports ({error}). Meanwhile each failure is "
        "recorded straight to the database (held in the worker's memory while the database "
        "is down too), and the spool is drained again as soon as it works. Fix it: the "
        "folder's permissions or free space, or the Redis server.",
        count,
    )


def _count_notifier_alert(
    db: Session, title: str, fingerprint: str, description: str, count: int
) -> None:
    """Count ``count`` occurrences of a ``system`` alert about the notifier itself."""
    platform_alert_service.create_or_increment_alert(
        db,
        alert_type=AlertType.SYSTEM,
        severity=Severity.ERROR,
        title=title,
        fingerprint=bounded(fingerprint),
        description=description,
        affected_systems=["notifier"],
        occurrences=count,
    )


class DrainerProcess:
    """The drainer process of one prefork worker, restarted if it dies while the worker runs."""

    def __init__(
        self,
        spool: EventSpool[Any],
        database_url: str,
        cooldown: timedelta,
        live_redis_url: str | None = None,
    ) -> None:
        self.spool = spool
        self.database_url = database_url
        self.cooldown = cooldown
        self.live_redis_url = live_redis_url
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def running(self) -> bool:
        """Whether a drainer process is alive."""
        process = self._process
        return process is not None and process.poll() is None

    def start(self) -> None:
        """Start the process (and the thread that restarts it), unless it runs."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            try:  # a spool that cannot be made now still gets its drainer, which waits for it
                self.spool.ensure()
            except (OSError, SpoolUnavailable) as exc:
                logger.error("notifier: the spool cannot be used yet: %s", exc)
            self._process = self._spawn()
            threading.Thread(
                target=self._watch,
                args=(self._process,),
                name="notifier-drainer-watch",
                daemon=True,
            ).start()

    def stop(self) -> bool:
        """Ask the process to finish its batch and exit; kill it if it does not.

        Returns False when it did not exit by itself (it was killed, or a signal reached it
        while it was still starting, before it could drain once more): the caller may
        have events left in the spool to record.
        """
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return True
        stop_process(process)
        return process.returncode == 0

    def forget(self) -> None:
        """In a forked child: the parent's process is not ours to manage."""
        self._process = None
        self._lock = threading.Lock()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # The URL travels in the environment, not argv (ps shows argv to every user).
        env = {
            **os.environ,
            **spool_env(self.spool),
            _ENV_DATABASE: self.database_url,
            _ENV_COOLDOWN: str(self.cooldown.total_seconds()),
            _ENV_PARENT: str(os.getpid()),
            _ENV_LIVE: self.live_redis_url or "",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        return subprocess.Popen([sys.executable, "-c", _MAIN], env=env)

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Restart the process when it exits unasked.

        Its events are safe in the spool meanwhile; without a restart they would wait there
        until the worker itself restarts. Blocked in ``wait()``, this thread holds no GIL.
        """
        while True:
            code = process.wait()
            time.sleep(_RESTART_DELAY)
            with self._lock:
                if self._process is not process:  # stopped or replaced on purpose
                    return
                logger.warning("notifier: drainer process exited (%s); restarting it", code)
                process = self._spawn()
                self._process = process


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Ask a drainer process to finish its batch and exit; kill it if it does not."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main() -> None:
    """Drain the spool named in the environment until told to stop or orphaned."""
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s: %(levelname)s/drainer] %(message)s"
    )
    recorder = SpoolRecorder(
        os.environ[_ENV_DATABASE],
        timedelta(seconds=float(os.environ.get(_ENV_COOLDOWN) or 0)),
        os.environ.get(_ENV_LIVE) or None,
    )
    parent = int(os.environ.get(_ENV_PARENT) or os.getppid())
    spool = spool_from_env(os.environ)
    drainer = Drainer(spool, recorder)

    def _stop(_signum: int, _frame: Any) -> None:
        drainer.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker, which stops us
    # The job-health watcher lives here too: a process every prefork worker already has.
    watcher = start_in_drainer(recorder.database_url, recorder.live_redis_url)
    try:
        drainer.run(alive=lambda: os.getppid() == parent)
    finally:
        if watcher is not None:
            watcher.stop()
        recorder.close()
        spool.close()
        metrics.process_exiting()
