"""``notifier.dispatch_deliveries``: kicked after a commit, and swept by celery beat."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.beat import EmbeddedService
from celery.contrib.testing.worker import start_worker
from notifier.worker.celeryconfig import beat_schedule
from notifier.worker.jobs.delivery import TASK_NAME
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from notifier import Database, DeliveryStatus, admin_notification_service, kick_after_commit
from notifier.delivery import endpoint_service
from notifier.models import Delivery
from tests.receivers import Receiver

from .conftest import make_app, wait_for


@pytest.fixture
def plain_app(
    redis_url: str, worker_database: Database, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Celery]:
    """A Celery app with the bundled jobs but no notifier plugin: no drainer, so no
    dispatcher thread; only the task can send."""
    monkeypatch.setenv("NOTIFIER_DELIVERY_ALLOW_PRIVATE", "true")  # loopback receivers
    app = make_app(redis_url, worker_database.url, spool_dir)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
        yield app
    app.close()


def _endpoint(database: Database, receiver: Receiver) -> str:
    with database.session_scope() as db:
        _, secret = endpoint_service.create(
            db, name="ops", channel="webhook", url=receiver.url(), allow_private=True
        )
    assert secret is not None
    return secret


def _statuses(database: Database) -> list[DeliveryStatus]:
    with database.session_scope() as db:
        return list(db.scalars(select(Delivery.status)))


def test_a_commit_that_queued_deliveries_kicks_the_task_which_sends_them(
    plain_app: Celery, worker_database: Database, receiver: Receiver
) -> None:
    secret = _endpoint(worker_database, receiver)
    kicks: list[Any] = []
    database = Database(worker_database.url)  # its own sessionmaker, as the web app's
    kick_after_commit(database.sessionmaker, lambda: kicks.append(plain_app.send_task(TASK_NAME)))
    try:
        with database.session_scope() as db:
            admin_notification_service.create_notification(
                db, type="import_failure", title="Import 3 failed", message="bad row"
            )
            assert kicks == []  # nothing leaves before the commit
        [kicked] = wait_for(lambda: kicks)  # sent on the kick's own thread
        assert kicked.get(timeout=30) == {"succeeded": 1}
        with database.session_scope() as db:  # a commit that queued nothing kicks nothing
            db.execute(select(1))
        assert len(kicks) == 1
    finally:
        database.dispose()
    [request] = receiver.requests
    event = Webhook(secret).verify(request.body, request.headers)
    assert (event["type"], event["data"]["title"]) == ("notification.created", "Import 3 failed")
    assert _statuses(worker_database) == [DeliveryStatus.SUCCEEDED]


def test_celery_beat_sweeps_up_a_delivery_queued_with_no_kick(
    plain_app: Celery, worker_database: Database, receiver: Receiver, tmp_path: Path
) -> None:
    secret = _endpoint(worker_database, receiver)
    with worker_database.session_scope() as db:  # no kick: only the sweep can find it
        admin_notification_service.create_notification(
            db, type="import_failure", title="Import 4 failed", message="bad row"
        )
    # The bundled schedule's sweep (every NOTIFIER_DISPATCH_SWEEP seconds, 30 by default),
    # here every half second, run by a real beat service in this process.
    entry = beat_schedule["notifier-dispatch"]
    assert entry["task"] == TASK_NAME
    plain_app.conf.beat_schedule = {"notifier-dispatch": {**entry, "schedule": 0.5}}
    plain_app.conf.beat_schedule_filename = str(tmp_path / "schedule")
    beat = EmbeddedService(plain_app, thread=True)
    beat.start()
    try:
        wait_for(lambda: receiver.requests, timeout=30)
    finally:
        beat.stop()
    event = Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert event["data"]["title"] == "Import 4 failed"
    wait_for(lambda: _statuses(worker_database) == [DeliveryStatus.SUCCEEDED], timeout=10)
