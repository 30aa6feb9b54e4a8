"""The bundled digest job: ``notifier.digests``, run every minute by celery beat."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from notifier import Database
from notifier.delivery import DispatchSettings, run_digests

logger = logging.getLogger("notifier.worker")


@shared_task(name="notifier.digests", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def send_digests(self: Any) -> dict[str, int]:
    """Send the hourly and daily digests that are due (each admin and period exactly once)."""
    settings = DispatchSettings.from_env()
    if settings.smtp is None:
        logger.info("notifier: digests skipped: NOTIFIER_SMTP_URL is not set")
        return {}
    database = Database(self.app.conf.notifier_database_url)
    try:
        report = run_digests(database, settings)
    finally:
        database.dispose()
    counts = dict(report.counts)
    if counts:
        logger.info("notifier: digests %s", counts)
    return counts
