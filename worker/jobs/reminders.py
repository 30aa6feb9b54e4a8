"""The bundled reminder job: ``notifier.alert_reminders``, run every few minutes by celery beat."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task

from notifier import DEFAULT_REPEAT_INTERVAL, Database, queue_reminders

logger = logging.getLogger("notifier.worker")


@shared_task(name="notifier.alert_reminders", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def send_alert_reminders(self: Any, repeat_interval: float | None = None) -> int:
    """Queue the owed reminder emails of open critical alerts nobody acknowledged.

    ``repeat_interval`` (seconds) defaults to the app's ``notifier_alert_repeat_interval``,
    else 4 hours. A tick claims each alert's interval before queuing, so ticking twice, or
    two beats at once, queue one reminder per interval; the dispatcher sends them.
    """
    seconds = repeat_interval or self.app.conf.get("notifier_alert_repeat_interval")
    interval = timedelta(seconds=float(seconds)) if seconds else DEFAULT_REPEAT_INTERVAL
    database = Database(self.app.conf.notifier_database_url)
    try:
        with database.session_scope(immediate=True) as db:
            queued = queue_reminders(db, repeat_interval=interval)
    finally:
        database.dispose()
    if queued:
        logger.info("notifier: queued %d alert reminder emails", queued)
    return queued
