"""Job health on the Celery side: beat entries' runs, beat's ticks, and the watcher's homes.

``install(app)`` connects it; ``notifier watch -A app`` runs the watcher on its own.
"""

from __future__ import annotations

from .beat import install_health as install_health
from .beat import uninstall_health as uninstall_health
from .schedule import sync_schedule as sync_schedule
from .schedule import watched_entries as watched_entries
from .watch import WatcherThread as WatcherThread
from .watch import watch_command as watch_command

__all__ = [
    "WatcherThread",
    "install_health",
    "sync_schedule",
    "uninstall_health",
    "watch_command",
    "watched_entries",
]
