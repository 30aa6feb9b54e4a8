"""The bundled retention job: ``notifier.prune``, run daily by celery beat."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from notifier import Database, parse_age, prune

logger = logging.getLogger("notifier.worker")


@shared_task(name="notifier.prune", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def prune_old(self: Any, older_than: str = "90d") -> dict[str, int]:
    """Remove read notifications and resolved alerts older than ``older_than`` (e.g. 90d)."""
    database = Database(self.app.conf.notifier_database_url)
    try:
        report = prune(database, parse_age(older_than), dry_run=False)
    finally:
        database.dispose()
    logger.info(
        "notifier: pruned %d read notifications and %d resolved alerts older than %s",
        report.notifications,
        report.alerts,
        older_than,
    )
    return {"notifications": report.notifications, "alerts": report.alerts}
