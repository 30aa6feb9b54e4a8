"""notifier's Celery side: final job failures become notifications and platform alerts.

from notifier.worker import install, import_job
install(app)
"""

from __future__ import annotations

from .decorators import import_job as import_job
from .decorators import notify_on_failure as notify_on_failure
from .decorators import sync_job as sync_job
from .schedule import beat_schedule as beat_schedule
from .signals import install as install
from .signals import uninstall as uninstall

__all__ = [
    "beat_schedule",
    "import_job",
    "install",
    "notify_on_failure",
    "sync_job",
    "uninstall",
]
