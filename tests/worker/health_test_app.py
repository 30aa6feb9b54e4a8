"""A beat schedule with one entry a worker runs and one routed to a queue nobody consumes.

Subprocess workers and beats start with ``celery -A health_test_app`` and read the same
``NOTIFIER_TEST_*`` variables as ``worker_test_tasks``; periods are 1 s, grace 1 s.
``beat -S health_test_app:HangingScheduler`` is beat whose loop hangs on demand.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler
from notifier.worker import install

#: The queue no worker of the test consumes (unless the test starts one for it).
NOBODY = "health-schedule-nobody"


def app_from_env() -> Celery:
    """The app of the job-health tests."""
    app = Celery(
        "health_tests",
        broker=os.environ["NOTIFIER_TEST_BROKER"],
        backend=os.environ.get("NOTIFIER_TEST_BACKEND"),
    )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_default_queue=os.environ.get("NOTIFIER_TEST_QUEUE", "celery"),
        notifier_database_url=os.environ["NOTIFIER_TEST_DATABASE"],
        notifier_spool_dir=os.environ["NOTIFIER_TEST_SPOOL"],
        notifier_schedule_grace_floor=1.0,
        notifier_health_watch_every=0.5,
        beat_schedule={
            "health-ok": {"task": "h.ok", "schedule": 1.0},
            "health-missed": {
                "task": "h.elsewhere",
                "schedule": 1.0,
                "options": {"queue": NOBODY, "expires": 5},
            },
        },
    )

    @app.task(name="h.ok", shared=False)
    def ok() -> str:
        return "ok"

    @app.task(name="h.elsewhere", shared=False)
    def elsewhere() -> str:
        return "ran"

    install(app)
    return app


class HangingScheduler(PersistentScheduler):
    """Celery's scheduler, whose loop blocks for good once ``NOTIFIER_TEST_HANG_FILE`` exists.

    The call never returns, as a scheduler stuck on a lock or a dead connection: the
    process and all its threads live on, only the loop stops.
    """

    def tick(self, *args: Any, **kwargs: Any) -> Any:
        hang = os.environ.get("NOTIFIER_TEST_HANG_FILE")
        while hang and os.path.exists(hang):
            time.sleep(3600)
        return super().tick(*args, **kwargs)


if os.environ.get("NOTIFIER_TEST_BROKER"):
    app = app_from_env()
