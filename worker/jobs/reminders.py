"""The bundled reminder job: ``notifier.alert_reminders``, run every few minutes by celery beat.

It runs the escalation policies; the default one is the 4-hour critical reminder.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task

from notifier import DEFAULT_REPEAT_INTERVAL, Database
from notifier.escalation import MINUTE, queue_escalations

logger = logging.getLogger("notifier.worker")


@shared_task(name="notifier.alert_reminders", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def send_alert_reminders(self: Any, repeat_interval: float | None = None) -> int:
    """Queue the owed escalation steps of open alerts nobody acknowledged.

    The default policy (critical alerts without a policy of their own) reminds every
    ``repeat_interval`` seconds: the app's ``notifier_alert_repeat_interval``, else 4 hours.
    A step's minute lasts ``notifier_escalation_minute`` seconds (60; tests shorten it). A
    tick claims each step before queuing, so ticking twice, or two beats at once, queue each
    step once; the dispatcher sends them.
    """
    seconds = repeat_interval or self.app.conf.get("notifier_alert_repeat_interval")
    interval = timedelta(seconds=float(seconds)) if seconds else DEFAULT_REPEAT_INTERVAL
    unit = self.app.conf.get("notifier_escalation_minute")
    minute = timedelta(seconds=float(unit)) if unit else MINUTE
    database = Database(self.app.conf.notifier_database_url)
    try:
        with database.session_scope(immediate=True) as db:
            queued = queue_escalations(db, default_interval=interval, minute=minute)
    finally:
        database.dispose()
    if queued:
        logger.info("notifier: queued %d alert reminder and escalation deliveries", queued)
    return queued
