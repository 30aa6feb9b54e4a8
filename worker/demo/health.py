"""The demo's job health cases: a job that hangs, and a queue nobody consumes.

The hanging job runs past the limit set on it (10 s) and finishes at 30 s: its alert opens
within a health interval of the limit and resolves by itself when it ends. The message
sent to ``notifier-demo-unconsumed`` waits there for good (no worker listens to that
queue), so its critical capacity alert stays open. Loaded by the demo worker with
``--include``; nothing else imports it.
"""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from ..decorators import import_job

UNCONSUMED_QUEUE = "notifier-demo-unconsumed"
HANG_LIMIT = 10  # seconds


@shared_task(name="notifier.demo.hang", notifier_run_limit=HANG_LIMIT)  # type: ignore[untyped-decorator]
@import_job
def hang(store_id: int, seconds: float = 30) -> str:
    """Run three times past its limit, then finish: an alert that resolves by itself."""
    time.sleep(seconds)
    return "finished late"


def health_env() -> dict[str, str]:
    """What the demo worker's environment needs: the unconsumed queue is watched."""
    return {"NOTIFIER_HEALTH_QUEUES": UNCONSUMED_QUEUE}


def enqueue_health(app: Any) -> list[str]:
    """Send the two health cases; one line each saying what it will show."""
    app.send_task("notifier.demo.hang", args=(9,), task_id="notifier-demo-hang")
    app.send_task("notifier.demo.newsletter", queue=UNCONSUMED_QUEUE, task_id="notifier-demo-lost")
    return [
        f"  notifier.demo.hang(9,): runs past its {HANG_LIMIT}s limit -> alert, resolved at 30s",
        f"  a message on {UNCONSUMED_QUEUE}: no worker consumes it -> critical capacity alert",
    ]
