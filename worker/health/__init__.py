"""The worker's side of job health.

Runs past their limit, queue depths, the health loop, the root causes it sees and the
successes that resolve alerts.
"""

from __future__ import annotations

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

__all__ = [
    "DatabaseOutage",
    "HealthReporter",
    "RecoveryWatch",
    "RunWatch",
    "connection_scopes",
    "forget_watch",
    "health_after_fork",
    "observe",
    "probe",
    "start_health",
    "stop_health",
    "watch_for",
    "watched_queues",
]
