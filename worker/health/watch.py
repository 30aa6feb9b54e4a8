"""Where the job-health watcher runs: every worker's drainer, and ``notifier watch``.

The watcher must not depend on beat (it is what notices beat is gone), so it runs in
processes that exist anyway: a prefork worker's drainer process (a thread beside the
drain loop), a solo or threads worker (a thread), and for shops that want detection
while every worker is down, ``notifier watch -A app``. All of them call the same
``notifier.health.watch_tick``; a database lease lets one act at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Mapping
from typing import Any

import click

from notifier import Database, Settings
from notifier.cli import app_conf, settings_options
from notifier.health import release_lease, watch_tick

from .schedule import sync_schedule

__all__ = ["ENV_WATCH_EVERY", "WatcherThread", "watch_command", "watch_every"]

logger = logging.getLogger("notifier.worker")

#: Seconds between two watcher ticks (``notifier_health_watch_every``); 0 turns it off.
ENV_WATCH_EVERY = "NOTIFIER_HEALTH_WATCH_EVERY"
DEFAULT_WATCH_EVERY = 15.0


def watch_every(conf: Mapping[str, Any] | None = None) -> float:
    """The watcher's tick: the app's ``notifier_health_watch_every``, else the environment's."""
    value = (conf or {}).get("notifier_health_watch_every")
    if value is None:
        value = os.environ.get(ENV_WATCH_EVERY) or DEFAULT_WATCH_EVERY
    return max(float(value), 0.0)


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class WatcherThread:
    """Runs a watcher tick every ``every`` seconds in a daemon thread until stopped."""

    def __init__(self, database: Database, every: float) -> None:
        self.database = database
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start ticking (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run, name="notifier-health-watch", daemon=True
            )
            self._thread.start()

    def run(self) -> None:
        """Tick until stopped, in the calling thread."""
        holder = _holder()
        failing = False
        while not self._stop.is_set():
            try:
                watch_tick(self.database, holder, lease_seconds=max(3 * self.every, 5.0))
                failing = False
            except Exception as exc:  # the database is down: say so once, keep trying
                if not failing:
                    logger.warning("notifier: job-health watcher cannot reach the store: %s", exc)
                failing = True
            self._stop.wait(self.every)
        self.release(holder)

    def release(self, holder: str) -> None:
        """Give the lease up, so another watcher takes over at its next tick."""
        try:
            with self.database.session_scope() as db:
                release_lease(db, holder)
        except Exception as exc:  # it expires by itself
            logger.debug("notifier: watcher lease not released: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None


def start_in_drainer(database_url: str, live_redis_url: str | None) -> WatcherThread | None:
    """In a prefork worker's drainer process: watch, unless ``NOTIFIER_HEALTH_WATCH_EVERY=0``."""
    every = watch_every()
    if every <= 0:
        return None
    watcher = WatcherThread(Database(database_url, live_redis_url=live_redis_url), every)
    watcher.start()
    return watcher


@click.command("watch")
@settings_options()
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    default=None,
    help=f"Seconds between two checks (default: notifier_health_watch_every, "
    f"{ENV_WATCH_EVERY}, else {DEFAULT_WATCH_EVERY:g}).",
)
@click.option("--once", is_flag=True, help="Check once, then exit.")
def watch_command(settings: Settings, every: float | None, once: bool) -> None:
    """Watch scheduled jobs and beat even while every worker is down (Ctrl-C stops)."""
    conf = app_conf(click.get_current_context())
    database = Database.from_settings(settings)
    try:
        if conf.get("beat_schedule"):
            count = sync_schedule(database, conf)
            click.echo(f"Watching {count} scheduled entries and beat.")
        else:
            click.echo("No beat_schedule given (-A app): watching what workers synced.")
        if once:
            acted = watch_tick(database, _holder(), lease_seconds=5.0)
            if acted:
                WatcherThread(database, 0).release(_holder())
            click.echo("Checked." if acted else "Another watcher holds the lease; skipped.")
            return
        watcher = WatcherThread(database, every or watch_every(conf) or DEFAULT_WATCH_EVERY)
        signal.signal(signal.SIGTERM, lambda *_: watcher.stop(0))
        with contextlib.suppress(KeyboardInterrupt):
            watcher.run()
    finally:
        database.dispose()
