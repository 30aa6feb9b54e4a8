"""Retry from the alerts tab in a real browser: the new task runs on a real worker (in this
process, solo pool, Redis broker) and the alert shows its result."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from notifier.worker import import_job, install, uninstall
from playwright.sync_api import Page, expect
from sqlalchemy import select

from notifier import Database
from notifier.models import FailedRun, TaskRetry
from notifier.retry import generate_key
from tests.web.browser.conftest import LiveServer, shoot, sign_in
from tests.web.conftest import Admin
from tests.worker.conftest import make_app, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture
def queue() -> str:
    return f"retry-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worker_app(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, database: Database, tmp_path: Path, queue: str
) -> Iterator[Celery]:
    """A worker on the page's database, consuming the job's queue and the dispatcher's."""
    monkeypatch.setenv("NOTIFIER_RETRY_KEY", generate_key())
    app = make_app(redis_url, database.url, tmp_path / "spool")

    @app.task(name="t.browser_import", shared=False)
    @import_job(retryable=True)
    def browser_import(store_id: int, marker: str) -> str:
        path = Path(marker)
        if not path.exists():
            path.write_text("ran once")
            raise ValueError(f"import of store {store_id} failed")
        return "ok"

    install(app)
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=20, queues=[queue, "celery"]
    ):
        yield app
    uninstall(app)
    app.close()


@pytest.fixture
def live_config(live_config: dict[str, Any], worker_app: Celery) -> dict[str, Any]:
    """The page kicks the worker's dispatcher after a commit, as a host configures it."""
    return {
        **live_config,
        "NOTIFIER_DELIVERY_KICK": lambda: worker_app.send_task("notifier.dispatch_deliveries"),
    }


def _status(database: Database) -> str | None:
    with database.session_scope() as db:
        return db.scalar(select(TaskRetry.status))


def test_retry_from_the_alert_runs_on_the_worker_and_shows_its_result(
    page: Page,
    live: LiveServer,
    admin: Admin,
    database: Database,
    worker_app: Celery,
    queue: str,
    tmp_path: Path,
) -> None:
    task = worker_app.tasks["t.browser_import"]
    task.apply_async((3,), {"marker": str(tmp_path / "marker")}, queue=queue).get(
        timeout=30, propagate=False
    )

    def kept() -> FailedRun | None:
        with database.session_scope() as db:
            return db.scalars(select(FailedRun)).one_or_none()

    wait_for(kept)
    sign_in(page, live, admin, "/admin/notifications?tab=alerts")
    row = page.locator(".nt-row", has_text="t.browser_import failed")
    row.get_by_role("button", name="Retry", exact=True).click()
    row = page.locator(".nt-row", has_text="t.browser_import failed")
    expect(row.locator("[data-retry-status]")).to_contain_text("by admin@example.com")
    wait_for(lambda: _status(database) == "succeeded", timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the page shows what the worker recorded
        page.reload()
        if page.locator('[data-retry-status="succeeded"]').count():
            break
    expect(page.locator('[data-retry-status="succeeded"]')).to_contain_text("Retry succeeded")
    expect(row.get_by_role("button", name="Retry", exact=True)).to_have_count(0)
    shoot(page, "alert-retried")
