"""The bundled reminder job, on the schedule the package gives celery beat."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import func, select, update

from notifier import Database, DeliveryEvent, platform_alert_service
from notifier.accounts.users import create_admin
from notifier.models import Delivery, PlatformAlert
from notifier.outbox import ensure_default_email_endpoint
from notifier.types import utcnow

from .conftest import wait_for


def _reminders(database: Database) -> int:
    with database.session_scope() as db:
        return int(
            db.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.event_type == DeliveryEvent.ALERT_REMINDER)
            )
            or 0
        )


def test_the_beat_task_queues_reminders_of_an_old_unacknowledged_critical_alert(
    celery_app: Celery, celery_worker: Any, worker_database: Database
) -> None:
    with worker_database.session_scope() as db:
        create_admin(db, email="ops@shop.example", password="pw-123456")
        ensure_default_email_endpoint(db)
        alert, _ = platform_alert_service.create_or_increment_alert(
            db, alert_type="database", severity="critical", title="Primary down"
        )
        db.execute(
            update(PlatformAlert)
            .where(PlatformAlert.id == alert.id)
            .values(first_occurred_at=utcnow() - timedelta(hours=4, minutes=1))
        )
    task = celery_app.tasks["notifier.alert_reminders"]
    task.delay()
    assert wait_for(lambda: _reminders(worker_database) == 1, timeout=20)
    # An interval given in the schedule's kwargs (3 h): the interval that began at 3 h is a
    # new one, owed its own reminder.
    task.delay(repeat_interval=3 * 3600)
    assert wait_for(lambda: _reminders(worker_database) == 2, timeout=20)


def test_the_package_schedule_runs_reminders_every_five_minutes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from notifier.worker import celeryconfig

    monkeypatch.setenv("NOTIFIER_DATABASE_URL", f"sqlite:///{tmp_path / 'n.db'}")
    monkeypatch.setenv("NOTIFIER_BROKER_URL", "memory://")
    monkeypatch.setenv("NOTIFIER_ALERT_REPEAT_INTERVAL", "2h")
    try:
        config = importlib.reload(celeryconfig)
        entry = config.beat_schedule["notifier-alert-reminders"]
        assert entry == {"task": "notifier.alert_reminders", "schedule": 300}
        assert config.notifier_alert_repeat_interval == 7200
    finally:
        monkeypatch.undo()
        importlib.reload(celeryconfig)
