"""Tasks the worker tests run, on an app built from the environment.

In-process tests call ``define_tasks(app)`` on their own app; subprocess workers start with
``celery -A worker_test_tasks worker`` and read ``NOTIFIER_TEST_*`` variables.
"""

from __future__ import annotations

import json
import os
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject
from notifier.worker import import_job, install, notify_on_failure, sync_job


class AuditedTask(Task):  # type: ignore[misc]
    """A custom base class, as host projects often have."""

    audited = True


class UnprintableError(Exception):
    """An exception whose ``__str__`` raises, as a broken library's may."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


def define_tasks(app: Celery) -> None:
    """Register every test task on ``app`` only (not shared with apps created later)."""
    task = partial(app.task, shared=False)

    @task(name="t.boom")
    @import_job(store_name="store_name")
    def boom(store_id: int, store_name: str = "Acme", **extra: Any) -> None:
        """Fail on purpose."""
        raise ValueError(f"boom for store {store_id}")

    @task(name="t.owned")
    @notify_on_failure(owner="team-payments", runbook="https://runbooks.example/payments")
    def owned() -> None:
        """Fail on purpose; its decorator names its owner and runbook."""
        raise ValueError("payment provider down")

    @task(name="t.retry_self", bind=True, max_retries=2)
    @import_job
    def retry_self(self: Task, store_id: int, succeed_on: int | None = None) -> str:
        """Retry itself until ``succeed_on`` (or forever, until the retries run out)."""
        if succeed_on is not None and self.request.retries >= succeed_on:
            return "ok"
        raise self.retry(exc=RuntimeError("flaky"), countdown=0.05)

    @task(
        name="t.autoretry",
        bind=True,
        base=AuditedTask,
        autoretry_for=(ConnectionError,),
        max_retries=2,
        default_retry_delay=0.05,
    )
    @sync_job
    def autoretry(self: Task, store_id: int) -> None:
        """A sync whose API is down."""
        raise ConnectionError("marketplace unreachable")

    @task(name="t.rows")
    @import_job(error_threshold=None)
    def rows(store_id: int, errors: int, as_count: bool = False) -> dict[str, Any]:
        """Return ``errors`` row errors."""
        if as_count:
            return {"imported": 1, "error_count": errors}
        return {"imported": 1, "errors": [f"line {n}: bad price" for n in range(errors)]}

    @task(name="t.rows_strict")
    @import_job(error_threshold=2)
    def rows_strict(store_id: int, errors: int) -> dict[str, Any]:
        """Same, with a per-task threshold of 2."""
        return {"errors": ["bad"] * errors}

    @task(name="t.sync_orders")
    @sync_job(store_name=lambda a: f"Shop {a['store_id']}")
    def sync_orders(store_id: int) -> dict[str, Any]:
        """A sync that finds orders with unknown products."""
        return {
            "orders": 3,
            "order_exceptions": [
                {"order_number": "A-1", "unmatched_products": ["SKU-9"]},
                {"order_number": "A-2", "unmatched_products": ["SKU-7", "SKU-8"]},
            ],
        }

    @task(name="t.sync_rows")
    @sync_job
    def sync_rows(store_id: int, errors: int, orders: int = 0) -> dict[str, Any]:
        """A sync that returns ``errors`` row errors and ``orders`` orders with unknown SKUs."""
        return {
            "errors": [{"line": n, "reason": "unknown status"} for n in range(errors)],
            "order_exceptions": [
                {"order_number": f"S-{n}", "unmatched_products": ["SKU-1"]} for n in range(orders)
            ],
        }

    @task(name="t.generic")
    @notify_on_failure(type="critical_error", priority="critical", title="Nightly {task_name}")
    def generic() -> None:
        """A generic job that fails."""
        raise KeyError("missing")

    @task(name="t.plain")
    def plain(n: int = 0) -> None:
        """An undecorated task that fails."""
        raise ZeroDivisionError(f"plain {n}")

    @task(name="t.control", throws=(LookupError,))
    @import_job
    def control(store_id: int, how: str) -> None:
        """Leave through control flow, or through an exception listed in ``throws``."""
        if how == "ignore":
            raise Ignore()
        if how == "reject":
            raise Reject("no thanks", requeue=False)
        raise LookupError("expected")

    @task(name="t.secret")
    @import_job
    def secret(store_id: int, api_key: str, options: dict[str, Any], blob: str = "") -> None:
        """Fail with secrets among the arguments."""
        raise PermissionError("denied")

    @task(name="t.sleep")
    @import_job
    def sleep(store_id: int, seconds: float) -> str:
        """Sleep, for time limits."""
        time.sleep(seconds)
        return "slept"

    @task(name="t.soft", soft_time_limit=0.5)
    @import_job
    def soft(store_id: int) -> None:
        """Run past the soft time limit without catching it."""
        time.sleep(3)

    @task(name="t.kill")
    @import_job
    def kill(store_id: int) -> None:
        """Die like the OOM killer's victim."""
        os.kill(os.getpid(), signal.SIGKILL)

    @task(name="t.unprintable")
    @import_job
    def unprintable(store_id: int) -> None:
        """Fail with an exception whose text cannot be made."""
        raise UnprintableError("the message")

    @task(name="t.noop")
    def noop() -> None:
        """Nothing."""

    @task(name="t.unstorable")
    @import_job
    def unstorable(store_id: int) -> object:
        """Return a value the JSON result backend cannot store."""
        return object()

    @task(name="t.publish")
    @import_job
    def publish(store_id: int, go: str) -> None:
        """Say it started, wait until ``go`` exists, then send a task through the broker."""
        Path(f"{go}.started").touch()
        deadline = time.monotonic() + 60
        while not Path(go).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        app.tasks["t.noop"].delay()

    @task(name="t.db_import")
    @import_job
    def db_import(store_id: int, url: str, fail: bool = False) -> int:
        """Read the shop's database at ``url`` (fails when it is unreachable), or fail."""
        from sqlalchemy import create_engine, text

        engine = create_engine(url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as connection:
                if fail:
                    raise ValueError(f"bad data for store {store_id}")
                return int(connection.scalar(text("SELECT 1")) or 0)
        finally:
            engine.dispose()


def app_from_env() -> Celery:
    """The app a subprocess worker runs, configured by ``NOTIFIER_TEST_*`` variables."""
    broker = os.environ["NOTIFIER_TEST_BROKER"]
    app = Celery("worker_tests", broker=broker, backend=os.environ.get("NOTIFIER_TEST_BACKEND"))
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        worker_prefetch_multiplier=int(os.environ.get("NOTIFIER_TEST_PREFETCH", "4")),
        task_default_queue=os.environ.get("NOTIFIER_TEST_QUEUE", "celery"),
        notifier_database_url=os.environ["NOTIFIER_TEST_DATABASE"],
        notifier_spool_dir=os.environ["NOTIFIER_TEST_SPOOL"],
        notifier_spool_url=os.environ.get("NOTIFIER_TEST_SPOOL_URL") or None,
        notifier_spool_claim_idle=float(os.environ.get("NOTIFIER_TEST_CLAIM_IDLE") or 60),
        notifier_notification_cooldown=float(os.environ.get("NOTIFIER_TEST_COOLDOWN", "900")),
        notifier_recovery_refresh=float(os.environ.get("NOTIFIER_TEST_RECOVERY_REFRESH", "5")),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if os.environ.get("NOTIFIER_TEST_CONF"):  # any further settings, as a JSON object
        app.conf.update(json.loads(os.environ["NOTIFIER_TEST_CONF"]))
    if os.environ.get("NOTIFIER_TEST_TIME_LIMIT"):
        app.conf.task_time_limit = float(os.environ["NOTIFIER_TEST_TIME_LIMIT"])
    define_tasks(app)
    if os.environ.get("NOTIFIER_TEST_PLUGIN", "1") == "1":
        install(app, all_tasks=os.environ.get("NOTIFIER_TEST_ALL_TASKS") == "1")
    return app


if os.environ.get("NOTIFIER_TEST_BROKER"):
    app = app_from_env()
