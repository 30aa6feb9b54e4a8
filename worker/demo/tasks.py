"""Tasks that fail on purpose, in each way the demo can show safely.

The demo worker loads them, and the demo's import jobs, with ``--include
notifier.worker.demo.tasks``; nothing else imports them.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from celery import shared_task

from ..decorators import import_job, notify_on_failure
from .letzshop import import_letzshop_orders as import_letzshop_orders
from .products import import_products as import_products


@shared_task(name="notifier.demo.crash")  # type: ignore[untyped-decorator]
@import_job(store_name=lambda _: "Demo crash store")
def crash(store_id: int) -> None:
    """Kill this pool child, as the OOM killer would (the pool replaces it)."""
    os.kill(os.getpid(), signal.SIGKILL)


@shared_task(name="notifier.demo.too_slow", time_limit=2)  # type: ignore[untyped-decorator]
@import_job
def too_slow(store_id: int) -> None:
    """Run past the hard time limit."""
    time.sleep(10)


@shared_task(name="notifier.demo.soft_limit", soft_time_limit=1)  # type: ignore[untyped-decorator]
@import_job
def soft_limit(store_id: int) -> None:
    """Run past the soft time limit without catching it."""
    time.sleep(5)


@shared_task(  # type: ignore[untyped-decorator]
    name="notifier.demo.flaky", bind=True, autoretry_for=(ConnectionError,), max_retries=3
)
@import_job
def flaky(self: Any, store_id: int) -> str:
    """Fail once, then succeed on the retry: no notification."""
    if self.request.retries == 0:
        raise ConnectionError("first attempt fails")
    return "ok"


@shared_task(name="notifier.demo.nightly_report")  # type: ignore[untyped-decorator]
@notify_on_failure(priority="critical", title="Nightly report failed")
def nightly_report(api_token: str) -> None:
    """A generic job whose failure notifies (its token argument is redacted)."""
    raise RuntimeError("report template missing")


@shared_task(name="notifier.demo.price_feed")  # type: ignore[untyped-decorator]
@import_job(store_name=lambda _: "Demo storm store")
def price_feed(store_id: int) -> None:
    """Fail the same way every time: a storm of these is one notification."""
    raise TimeoutError("price feed did not answer")


@shared_task(name="notifier.demo.stock_check")  # type: ignore[untyped-decorator]
@notify_on_failure(
    type="store_issue", priority="normal", store_id="store_id", title="Stock check failed"
)
def stock_check(store_id: int) -> None:
    """A generic job about one store whose failure is worth a normal notification."""
    raise LookupError("warehouse feed has no rows for this store today")


@shared_task(name="notifier.demo.newsletter")  # type: ignore[untyped-decorator]
@notify_on_failure(type="system_info", priority="low", title="Newsletter not sent")
def newsletter() -> None:
    """A generic job whose failure can wait: a low-priority notification."""
    raise RuntimeError("no subscribers opted in this week")


@shared_task(name="notifier.demo.warehouse_import")  # type: ignore[untyped-decorator]
@import_job
def warehouse_import(store_id: int) -> None:
    """Read a warehouse database that is not there: a connection error, a held-back symptom."""
    import sqlite3

    with sqlite3.connect("file:/nonexistent/notifier-demo/warehouse.db?mode=ro", uri=True) as db:
        db.execute("SELECT 1")


@shared_task(name="notifier.demo.missed_report")  # type: ignore[untyped-decorator]
def missed_report() -> str:
    """A scheduled job the demo routes to a queue nobody consumes: it never starts."""
    return "ran"
