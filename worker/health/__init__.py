"""The worker's side of job health: runs past their limit, queue depths, the health loop."""

from __future__ import annotations

from .queues import observe as observe
from .queues import probe as probe
from .queues import watched_queues as watched_queues
from .reporter import HealthReporter as HealthReporter
from .reporter import health_after_fork as health_after_fork
from .reporter import start_health as start_health
from .reporter import stop_health as stop_health
from .runs import RunWatch as RunWatch

__all__ = [
    "HealthReporter",
    "RunWatch",
    "health_after_fork",
    "observe",
    "probe",
    "start_health",
    "stop_health",
    "watched_queues",
]
