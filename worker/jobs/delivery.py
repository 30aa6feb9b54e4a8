"""The dispatcher as a Celery task: ``notifier.dispatch_deliveries``, kicked and swept.

A process that queues deliveries and holds a Celery app sends this task after its commit
(the web app, given ``NOTIFIER_DELIVERY_KICK``); celery beat sends it every
``NOTIFIER_DISPATCH_SWEEP`` seconds (the bundled ``beat_schedule``), for anything missed and
for retries coming due. A run is bounded; one that stops at its bound with work left sends
itself again rather than holding a worker process for long. Retry times stay in the rows'
``next_attempt_at``: no countdowns, which outlive a Redis visibility timeout and run twice.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from notifier import Database
from notifier.delivery import DispatchSettings, dispatch_batches

from ..retry import send_pending_retries

logger = logging.getLogger("notifier.worker")

TASK_NAME = "notifier.dispatch_deliveries"
#: Batches (``DispatchSettings.batch_size`` deliveries each) one run may send.
MAX_BATCHES = 50


@shared_task(name=TASK_NAME, bind=True)  # type: ignore[untyped-decorator]
def dispatch_deliveries(self: Any, max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """Send every delivery that is due, up to ``max_batches`` batches; what happened, by outcome."""
    settings = DispatchSettings.from_env()
    database = Database(self.app.conf.notifier_database_url)
    try:
        try:  # retries admins asked for ride the same kick (see notifier.worker.retry)
            send_pending_retries(self.app, database)
        except Exception:
            logger.exception("notifier: pending retries not sent; the next run tries again")
        report = dispatch_batches(database, settings, max_batches=max(1, max_batches))
    finally:
        database.dispose()
    if report.batches >= max(1, max_batches):
        logger.info("notifier: %d delivery batches sent; sending the rest next", max_batches)
        self.apply_async(kwargs={"max_batches": max_batches})
    return dict(report.counts)
