"""The failure path does not depend on the broker: the same failure on RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from notifier.worker import install, uninstall

from notifier import Database
from tests.conftest import RABBITMQ_URL, require_service

from .conftest import alerts, make_app, notifications, settle


@pytest.fixture
def rabbit_app(redis_url: str, worker_database: Database, spool_dir: Path) -> Iterator[Celery]:

    require_service("RabbitMQ", RABBITMQ_URL)
    app = make_app(RABBITMQ_URL, worker_database.url, spool_dir, task_default_queue="notifier-test")
    install(app)
    yield app
    uninstall(app)
    app.close()


@pytest.mark.rabbitmq
def test_a_failure_on_rabbitmq_notifies_once(
    rabbit_app: Celery, worker_database: Database, spool_dir: Path
) -> None:
    with start_worker(rabbit_app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
        result = rabbit_app.tasks["t.boom"].delay(11)
        result.get(timeout=30, propagate=False)
        settle(worker_database, spool_dir)
    assert result.state == "FAILURE"
    [note] = notifications(worker_database)
    assert note.store_id == 11
    [alert] = alerts(worker_database)
    assert alert.occurrence_count == 1
