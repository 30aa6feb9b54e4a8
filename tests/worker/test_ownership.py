"""Owners and runbooks from the decorators and the app's task-name maps, through a real worker;
and the escalation beat task with a shortened minute."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from notifier.worker import import_job
from sqlalchemy import select

from notifier import Database, DeliveryEvent, platform_alert_service
from notifier.delivery import endpoint_service
from notifier.escalation import escalation_service
from notifier.models import Delivery

from .conftest import alerts, notifications, settle, wait_for


@pytest.fixture
def celery_config() -> dict[str, Any]:
    """Owners and runbooks by task-name pattern; a one-second escalation minute."""
    return {
        "notifier_owners": {"t.*": "team-platform", "t.boom": "team-imports"},
        "notifier_runbooks": {"t.b*": "https://runbooks.example/boom", "t.auto*": "ftp://no"},
        "notifier_escalation_minute": 1,
    }


def test_owners_and_runbooks_come_from_the_decorator_else_the_app_map(
    celery_app: Celery, celery_worker: Any, worker_database: Database, spool_dir: Path
) -> None:
    runs = [
        celery_app.tasks["t.boom"].apply_async(args=(3,)),
        celery_app.tasks["t.owned"].apply_async(),
        celery_app.tasks["t.autoretry"].apply_async(args=(4,)),
    ]
    for run in runs:
        run.get(timeout=30, propagate=False)
    settle(worker_database, spool_dir)
    owned = {a.alert_metadata["task_name"]: (a.owner, a.runbook) for a in alerts(worker_database)}
    assert owned == {
        "t.boom": ("team-imports", "https://runbooks.example/boom"),  # exact name beats t.*
        "t.owned": ("team-payments", "https://runbooks.example/payments"),  # the decorator's
        "t.autoretry": ("team-platform", None),  # an ftp runbook is left out
    }
    metadata = {
        n.notification_metadata["task_name"]: n.notification_metadata
        for n in notifications(worker_database)
    }
    assert metadata["t.boom"]["owner"] == "team-imports"
    assert metadata["t.owned"]["runbook"] == "https://runbooks.example/payments"


def test_a_runbook_that_is_not_an_http_url_is_refused_at_decoration() -> None:
    with pytest.raises(ValueError, match="runbook"):

        @import_job(runbook="javascript:alert(1)")
        def task(store_id: int) -> None: ...


def test_the_beat_task_escalates_with_the_apps_minute(
    celery_app: Celery, celery_worker: Any, worker_database: Database
) -> None:
    with worker_database.session_scope() as db:
        endpoint, _ = endpoint_service.create(
            db, name="pager", channel="webhook", url="http://127.0.0.1:9/p", allow_private=True
        )
        escalation_service.create(
            db,
            name="Fast",
            severity="error",
            steps=[{"after_minutes": 1, "endpoint_ids": [endpoint.id]}],
        )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="system", severity="error", title="Cache cold"
        )
    time.sleep(1.1)  # one escalation minute (notifier_escalation_minute = 1 s)
    celery_app.tasks["notifier.alert_reminders"].delay()

    def escalated() -> list[int]:
        with worker_database.session_scope() as db:
            payloads = db.scalars(
                select(Delivery.payload).where(Delivery.event_type == DeliveryEvent.ALERT_REMINDER)
            ).all()
        return [p["escalation"]["step"] for p in payloads]

    assert wait_for(escalated, timeout=20) == [1]
