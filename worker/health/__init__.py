"""Job health on the Celery side.

Beat entries' runs and beat's ticks, the watcher's homes (``notifier watch -A app`` runs it
on its own), runs past their limit, queue depths, the root causes the worker sees and the
successes that resolve alerts. ``install(app)`` connects it.
"""

from __future__ import annotations

from .beat import install_health as install_health
from .beat import uninstall_health as uninstall_health
from .inhibition import DatabaseOutage as DatabaseOutage
from .inhibition import connection_scopes as connection_scopes
from .queues import observe as observe
from .queues import probe as probe
from .queues import watched_queues as watched_queues
from .recovery import RecoveryWatch as RecoveryWatch
from .recovery import forget as forget_watch
from .recovery import watch_for as watch_for
from .reporter import HealthReporter as HealthReporter
from .reporter import health_after_fork as health_after_fork
from .reporter import start_health as start_health
from .reporter import stop_health as stop_health
from .runs import RunWatch as RunWatch
from .schedule import sync_schedule as sync_schedule
from .schedule import watched_entries as watched_entries
from .watch import WatcherThread as WatcherThread
from .watch import watch_command as watch_command

__all__ = [
    "DatabaseOutage",
    "HealthReporter",
    "RecoveryWatch",
    "RunWatch",
    "WatcherThread",
    "connection_scopes",
    "forget_watch",
    "health_after_fork",
    "install_health",
    "observe",
    "probe",
    "start_health",
    "stop_health",
    "sync_schedule",
    "uninstall_health",
    "watch_command",
    "watch_for",
    "watched_entries",
    "watched_queues",
]
