"""Retry on a real worker: an opted-in task's failure keeps its route and sealed arguments,
the retry goes to the original queue under its own task id, and its outcome is recorded;
without a key the failure is still recorded, just not retryable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu import Exchange, Queue
from notifier.worker import import_job, install, uninstall
from notifier.worker.retry import send_pending_retries
from sqlalchemy import select

from notifier import Database
from notifier.accounts.users import create_admin
from notifier.models import AdminNotification, FailedRun, TaskRetry
from notifier.retry import generate_key, retry_notification, unseal
from tests.conftest import RABBITMQ_URL, require_service
from tests.worker.conftest import make_app, wait_for

KEY = generate_key()


@pytest.fixture
def queue() -> str:
    return f"retry-{uuid.uuid4().hex[:8]}"


def _with_flaky_task(app: Celery) -> Celery:
    """Add a retryable task that fails until its marker file exists, and install the plugin."""

    @app.task(name="t.flaky_import", shared=False)
    @import_job(retryable=True)
    def flaky_import(store_id: int, marker: str) -> str:
        path = Path(marker)
        if not path.exists():
            path.write_text("ran once")
            raise ValueError(f"first run of store {store_id} fails")
        return f"imported store {store_id}"

    install(app)
    return app


@pytest.fixture
def retry_app(
    redis_url: str, worker_database: Database, spool_dir: Path, queue: str
) -> Iterator[Celery]:
    """An app with the flaky task and a worker consuming ``queue`` (Redis)."""
    app = _with_flaky_task(make_app(redis_url, worker_database.url, spool_dir))
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue]
    ):
        yield app
    uninstall(app)
    app.close()


def _run(worker_database: Database) -> FailedRun | None:
    with worker_database.session_scope() as db:
        return db.scalars(select(FailedRun)).one_or_none()


def _fail_then_retry(app: Celery, database: Database, marker: str, **route: Any) -> FailedRun:
    """Run the flaky task (it fails), retry it as an admin, and wait for the retry's success."""
    first = app.tasks["t.flaky_import"].apply_async((7,), {"marker": marker}, **route)
    first.get(timeout=30, propagate=False)
    assert first.state == "FAILURE"
    run = wait_for(lambda: _run(database))
    assert (run.task_id, run.problem) == (first.id, None)
    assert unseal(run.payload, KEY) == ([7], {"marker": marker})

    with database.session_scope() as db:
        admin = create_admin(db, email="ops@example.com", password="correct horse")
        note = db.scalars(select(AdminNotification)).one()
        retry_id = retry_notification(db, note, admin).retries[0].task_id
    # What notifier.dispatch_deliveries does when the web's commit kicks it.
    assert send_pending_retries(app, database) == 1
    assert send_pending_retries(app, database) == 0  # sent once
    assert app.AsyncResult(retry_id).get(timeout=30) == "imported store 7"

    def finished() -> TaskRetry | None:
        with database.session_scope() as db:
            retry = db.scalars(select(TaskRetry)).one()
            return retry if retry.status == "succeeded" else None

    retry = wait_for(finished)
    assert retry.task_id == retry_id and retry.finished_at is not None
    return run


def test_a_retry_runs_with_the_original_arguments_on_the_original_queue(
    monkeypatch: pytest.MonkeyPatch,
    retry_app: Celery,
    worker_database: Database,
    queue: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("NOTIFIER_RETRY_KEY", KEY)
    run = _fail_then_retry(retry_app, worker_database, str(tmp_path / "marker"), queue=queue)
    assert run.routing_key == queue  # the worker consumes only that queue


@pytest.mark.rabbitmq
def test_on_rabbitmq_a_retry_goes_through_the_original_exchange_and_routing_key(
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    worker_database: Database,
    spool_dir: Path,
    queue: str,
    tmp_path: Path,
) -> None:
    require_service("RabbitMQ", RABBITMQ_URL)
    monkeypatch.setenv("NOTIFIER_RETRY_KEY", KEY)
    exchange = Exchange(f"{queue}-x", type="direct", auto_delete=True)
    bound = Queue(queue, exchange, routing_key="imports.csv", auto_delete=True)
    app = _with_flaky_task(
        make_app(RABBITMQ_URL, worker_database.url, spool_dir, task_queues=[bound])
    )
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue]
        ):
            run = _fail_then_retry(
                app,
                worker_database,
                str(tmp_path / "marker"),
                exchange=exchange.name,
                routing_key="imports.csv",
            )
        assert (run.exchange, run.routing_key) == (exchange.name, "imports.csv")
    finally:
        uninstall(app)
        app.close()


def test_without_a_key_the_failure_is_recorded_but_not_retryable(
    monkeypatch: pytest.MonkeyPatch,
    retry_app: Celery,
    worker_database: Database,
    queue: str,
    tmp_path: Path,
    caplog: Any,
) -> None:
    monkeypatch.delenv("NOTIFIER_RETRY_KEY", raising=False)
    task = retry_app.tasks["t.flaky_import"]
    task.apply_async((8,), {"marker": str(tmp_path / "m")}, queue=queue).get(
        timeout=30, propagate=False
    )
    run = wait_for(lambda: _run(worker_database))
    assert run.payload is None
    assert "NOTIFIER_RETRY_KEY is not set" in (run.problem or "")
    with worker_database.session_scope() as db:
        assert db.scalars(select(AdminNotification)).one().store_id == 8


def test_only_opted_in_tasks_or_an_app_wide_setting_capture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from notifier.worker.decorators import GenericJob
    from notifier.worker.retry import retry_capture

    monkeypatch.setenv("NOTIFIER_RETRY_KEY", KEY)
    request = SimpleNamespace(delivery_info={"exchange": "", "routing_key": "reports"})
    conf: dict[str, Any] = {}
    task = SimpleNamespace(name="t.report", request=request, app=SimpleNamespace(conf=conf))
    assert retry_capture(task, GenericJob(), (1,), {}) is None
    opted = retry_capture(task, GenericJob(retryable=True), (1,), {"day": "monday"})
    assert opted is not None and opted["routing_key"] == "reports"
    assert unseal(opted["payload"], KEY) == ([1], {"day": "monday"})
    conf["notifier_retry_all_tasks"] = True
    assert retry_capture(task, GenericJob(), (2,), {}) is not None
    unserialisable = retry_capture(task, GenericJob(), (object(),), {})
    assert unserialisable is not None and "not JSON" in unserialisable["problem"]


def test_a_retry_whose_key_was_dropped_ends_unsendable_saying_why(
    monkeypatch: pytest.MonkeyPatch, worker_database: Database
) -> None:
    from datetime import timedelta

    from notifier import FailureReport, JobKind, record_failures
    from notifier.retry import seal

    report = FailureReport(
        key="celery:gone:failure",
        job=JobKind.IMPORT,
        task_name="t.flaky_import",
        task_id="gone",
        store_id=1,
        fingerprint="celery:t.flaky_import:ValueError",
        retry={"routing_key": "imports", "payload": seal([1], {}, KEY)},
    )
    with worker_database.session_scope() as db:
        record_failures(db, [report], cooldown=timedelta(0))
        admin = create_admin(db, email="ops@example.com", password="correct horse")
        note = db.scalars(select(AdminNotification)).one()
        retry_notification(db, note, admin)
    monkeypatch.setenv("NOTIFIER_RETRY_KEY", generate_key())  # the sealing key was dropped
    app = Celery("retry-unsendable", broker="memory://", set_as_current=False)
    assert send_pending_retries(app, worker_database) == 0
    with worker_database.session_scope() as db:
        retry = db.scalars(select(TaskRetry)).one()
        assert retry.status == "unsendable"
        assert "no key in NOTIFIER_RETRY_KEY opens" in (retry.detail or "")
        assert db.scalars(select(FailedRun.retry_status)).one() == "unsendable"
    app.close()
